"""SemSimConfig / SemSimModel: embeddings, distances, the training loss, transformers integration, strict I/O."""

import json
import os
import stat

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, ResNetConfig, ViTConfig

from semsim_metric import SemSimConfig, SemSimModel
from semsim_metric.models.backbones import CifarResNet18


def test_paper_backbone_shape_and_defaults():
    cfg = SemSimConfig()
    assert (cfg.model_type, cfg.base_width, cfg.image_size) == ("semsim", 64, 32)
    assert cfg.image_mean == pytest.approx([0.5071, 0.4865, 0.4409])
    net = CifarResNet18(64)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    assert [len(layer) for layer in (net.layer1, net.layer2, net.layer3, net.layer4)] == [2, 2, 2, 2]
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 512)


def test_embeddings_are_unit_length_and_distance_in_range(random_model):
    x, y = torch.randn(5, 3, 32, 32), torch.randn(5, 3, 32, 32)
    emb = random_model.embed(x)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(5))
    d = random_model.distance(x, y)
    assert d.shape == (5,) and bool(((d >= 0) & (d <= 2)).all())
    assert float(random_model.distance(x, x).abs().max()) == 0.0


def test_smoothed_spatial_embedding_moves_less_than_the_plain_one_when_the_image_shifts():
    torch.manual_seed(0)
    plain = SemSimModel(SemSimConfig(base_width=4, embedding="spatial")).eval()
    smooth = SemSimModel(SemSimConfig(base_width=4, embedding="spatial_smooth")).eval()
    smooth.load_state_dict(plain.state_dict())  # the same network; only the embedding differs
    x = torch.rand(4, 3, 32, 32)
    shifted = torch.roll(x, shifts=(2, 2), dims=(2, 3))
    with torch.no_grad():
        assert smooth.embed(x).shape == plain.embed(x).shape
        assert float(smooth.distance(x, shifted).mean()) < float(plain.distance(x, shifted).mean())


def test_spatial_embedding_keeps_the_feature_map_and_the_distance_range():
    model = SemSimModel(SemSimConfig(base_width=4, embedding="spatial")).eval()
    x, y = torch.randn(3, 3, 32, 32), torch.randn(3, 3, 32, 32)
    assert model.embed(x).shape == (3, model.config.embedding_dim) == (3, 32 * 4 * 4)
    assert model.config.feature_dim == 32 and model.backbone.pooled(x).shape == (3, 32)
    d = model.distance(x, y)
    assert bool(((d >= 0) & (d <= 2)).all()) and float(model.distance(x, x).abs().max()) == 0.0
    with pytest.raises(ValueError, match="embedding must be one of .*'spatial_smooth'.*got 'mean'"):
        SemSimConfig(embedding="mean")
    with pytest.raises(ValueError, match="only available for backbone='cifar_resnet18'"):
        SemSimConfig(backbone="transformers", backbone_config={"model_type": "resnet"}, embedding="spatial")


def test_forward_embeds_like_embed(random_model):
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(random_model(pixel_values=x).embeddings, random_model.embed(x))


def test_triplet_objective_is_the_paper_loss(random_model):
    from semsim_metric.training.stages.triplets import TripletObjective

    a, n = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    out = TripletObjective(random_model, margin=1.0)(anchor=a, positive=a, negative=n)
    d_neg = random_model.distance(a, n)
    torch.testing.assert_close(out["loss"], torch.relu(0.0 - d_neg + 1.0).mean())
    assert float(out["positive_distance"].abs().max()) == 0.0


def test_global_loss_adds_to_the_triplet_loss(random_model):
    from semsim_metric.training.stages.triplets import TripletObjective

    a, p, n = (torch.randn(4, 3, 32, 32) for _ in range(3))
    share = dict(positive_share=torch.ones(4), negative_share=torch.zeros(4))
    plain = TripletObjective(random_model)(a, p, n, **share)["loss"]
    weighted = TripletObjective(random_model, global_loss_weight=1.0)(a, p, n, **share)["loss"]
    assert float(weighted) > float(plain)


def test_registered_with_auto_classes(tmp_path, random_model):
    assert isinstance(AutoConfig.for_model("semsim"), SemSimConfig)
    random_model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, SemSimModel) and not loaded.training
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded.embed(x), random_model.embed(x))


@pytest.mark.parametrize(
    "backbone_config",
    [
        ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]).to_dict(),
        ViTConfig(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            image_size=32,
            patch_size=8,
        ).to_dict(),
    ],
)
def test_transformers_backbone_adapter(tmp_path, backbone_config):
    cfg = SemSimConfig(backbone="transformers", backbone_config=backbone_config)
    model = SemSimModel(cfg).eval()
    x = torch.randn(3, 3, 32, 32)
    assert model.embed(x).shape == (3, cfg.embedding_dim)
    model.save_pretrained(tmp_path)
    torch.testing.assert_close(SemSimModel.from_pretrained(tmp_path).embed(x), model.embed(x))


def test_missing_and_unexpected_keys_are_named(tmp_path, random_model):
    random_model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state.pop("backbone.conv1.weight")
    state["backbone.extra.weight"] = torch.zeros(1)
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(
        RuntimeError, match=r"Missing keys \(1\): backbone.conv1.weight.*backbone.extra.weight"
    ):
        SemSimModel.from_pretrained(tmp_path)


def test_wrong_architecture_is_an_error(tmp_path, random_model):
    random_model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["base_width"] = 8
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RuntimeError, match="wrong shape"):
        SemSimModel.from_pretrained(tmp_path)


def test_pickled_weights_are_never_loaded(tmp_path, random_model):
    random_model.config.save_pretrained(tmp_path)
    torch.save(random_model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="missing model.safetensors"):
        SemSimModel.from_pretrained(tmp_path)


def test_fp16_storage_round_trip(tmp_path, random_model):
    random_model.save_pretrained(tmp_path, dtype=torch.float16)
    assert load_file(tmp_path / "model.safetensors")["backbone.conv1.weight"].dtype == torch.float16
    loaded = SemSimModel.from_pretrained(tmp_path)
    assert loaded.backbone.conv1.weight.dtype == torch.float32
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded.embed(x), random_model.embed(x), atol=2e-2, rtol=0)


def test_forward_honours_return_dict_and_refuses_what_it_cannot_return(random_model):
    """transformers' habit: a ModelOutput by default (and with return_dict=True), the tuple with return_dict=False,
    config.return_dict when None; outputs it has not are refused, and a misspelled argument is a TypeError."""
    from semsim_metric.errors import ModelArgumentError
    from semsim_metric.models.modeling_semsim import SemSimOutput

    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = random_model.embed(x)
        default, as_dict = random_model(x), random_model(x, return_dict=True)
        as_tuple = random_model(x, return_dict=False)
    assert isinstance(default, SemSimOutput) and isinstance(as_dict, SemSimOutput)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 1
    for out in (default.embeddings, as_dict.embeddings, as_tuple[0]):
        assert torch.equal(out, expected)
    random_model.config.return_dict = False
    try:
        with torch.no_grad():
            assert isinstance(random_model(x), tuple)
            assert isinstance(random_model(x, return_dict=True), SemSimOutput)
    finally:
        random_model.config.return_dict = True
    # accepted as transformers' callers pass them; False/None change nothing, True cannot be honoured
    with torch.no_grad():
        quiet = random_model(x, output_attentions=False, output_hidden_states=None)
    assert torch.equal(quiet.embeddings, expected)
    for name in ("output_attentions", "output_hidden_states"):
        with pytest.raises(ModelArgumentError, match=name):
            random_model(x, **{name: True})
    with pytest.raises(TypeError, match="retrun_dict"):
        random_model(x, retrun_dict=False)
    with pytest.raises(TypeError, match="labels"):
        random_model(x, labels=torch.zeros(3))


def test_embed_pair_and_distance_are_the_modules_functions_bit_for_bit(random_model):
    from semsim_metric.models.modeling_semsim import embed_pair, embedding_distance

    x, y = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        ex, ey = embed_pair(random_model, x, y)
        mx, my = random_model.embed_pair(x, y)
        assert torch.equal(ex, mx) and torch.equal(ey, my)
        assert torch.equal(random_model.distance(x, y), embedding_distance(ex, ey))
        assert torch.equal(embedding_distance(ex, ey), torch.linalg.vector_norm(ex - ey, ord=2, dim=1))


def test_saved_weights_are_readable_like_the_config(tmp_path):
    from semsim_metric import SemSimConfig, SemSimModel

    SemSimModel(SemSimConfig(base_width=2)).save_pretrained(tmp_path)
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in tmp_path.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"]
