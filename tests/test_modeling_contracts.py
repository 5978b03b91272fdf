"""Contracts of ``semsim_metric.models.modeling_semsim`` that the broader tests leave loose: exact values, messages
and the arguments passed through to the Hub and the model folder (the Hub itself is never reached: ``HfApi`` is
replaced by a recorder)."""

from __future__ import annotations

import json
import re
import shutil
import sys
from fnmatch import fnmatch
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub import HfApi
from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, AutoModel

from semsim_metric.errors import InvalidInputError, ModelArgumentError, ModelMismatchError
from semsim_metric.models import modeling_semsim
from semsim_metric.models.configuration_semsim import SemSimConfig
from semsim_metric.models.modeling_semsim import (
    SemSimModel,
    embed_pair,
    embedding_distance,
    layout_embedding,
)
from semsim_metric.models.remote_code import EXPORTED_FILES

MODEL_FILES = {"config.json", "model.safetensors", "preprocessor_config.json"}


class FixedFeatures(nn.Module):
    """A backbone stand-in: returns the given features (one row per image), in the images' dtype."""

    def __init__(self, features: torch.Tensor) -> None:
        super().__init__()
        self.features = features

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.features[: pixel_values.shape[0]].to(pixel_values.dtype)


def with_features(config: SemSimConfig, features: torch.Tensor) -> SemSimModel:
    model = SemSimModel(config).eval()
    model.backbone = FixedFeatures(features)
    return model


def reference_layout(pixel_values, mean, std, size):
    """The layout written out: back to pixel values, averaged over ``size x size`` blocks, centred, unit length."""
    n, c, s, _ = pixel_values.shape
    pixels = pixel_values * torch.tensor(std).view(1, c, 1, 1) + torch.tensor(mean).view(1, c, 1, 1)
    blocks = pixels.reshape(n, c, size, s // size, size, s // size).mean(dim=(3, 5)).flatten(1)
    centred = blocks - blocks.mean(dim=1, keepdim=True)
    return centred / centred.norm(dim=1, keepdim=True)


# -- embed_chunk_size ---------------------------------------------------------------------------------------------------


def test_embed_chunk_size_accepts_none_and_every_positive_integer_from_one():
    model = SemSimModel(SemSimConfig(base_width=2))
    assert model.embed_chunk_size is None
    for value in (1, 2, 4096):
        model.embed_chunk_size = value
        assert model.embed_chunk_size == value
    model.embed_chunk_size = None
    assert model.embed_chunk_size is None


@pytest.mark.parametrize("bad", [0, -1, False, True, 1.0, "4"])
def test_embed_chunk_size_refuses_anything_else_with_its_message(bad):
    model = SemSimModel(SemSimConfig(base_width=2))
    model.embed_chunk_size = 3
    message = f"embed_chunk_size must be None (whole batches) or a positive number of images, got {bad!r}."
    with pytest.raises(InvalidInputError, match=f"^{re.escape(message)}$"):
        model.embed_chunk_size = bad
    assert model.embed_chunk_size == 3  # a refused value changes nothing


def test_eval_mode_embeds_a_larger_batch_in_equal_chunks_and_training_mode_whole(tiny_model):
    x = torch.randn(10, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    calls = []
    tiny_model.backbone.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    with torch.no_grad():
        whole = tiny_model.embed(x)
        tiny_model.embed_chunk_size = 3
        chunked = tiny_model.embed(x)
        assert calls == [10, 3, 3, 2, 2]  # ceil(10 / 3) = 4 parts, as equal as can be
        calls.clear()
        tiny_model.embed_chunk_size = 10
        tiny_model.embed(x)  # not larger than the chunk: one pass
        tiny_model.embed_chunk_size = 1
        tiny_model.embed(x[:2])
        assert calls == [10, 1, 1]
        calls.clear()
        tiny_model.train()
        tiny_model.embed(x)  # training mode: batch statistics need the whole batch
        assert calls == [10]
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)


# -- initialisation -----------------------------------------------------------------------------------------------------


def test_the_paper_backbone_starts_from_kaiming_fan_out_convolutions():
    torch.manual_seed(0)
    model = SemSimModel(SemSimConfig(base_width=16))
    conv = model.backbone.layer2[0].conv1  # 16 -> 32 channels: fan_in and fan_out differ
    assert (conv.in_channels, conv.out_channels) == (16, 32)
    fan_out_std = (2 / (32 * 3 * 3)) ** 0.5  # 0.083 (fan_in would give 0.118, PyTorch's default 0.048)
    assert float(conv.weight.detach().std()) == pytest.approx(fan_out_std, rel=0.05)


def test_init_weights_resets_convolutions_and_batch_norms_of_the_paper_backbone():
    model = SemSimModel(SemSimConfig(base_width=2))
    conv, norm = nn.Conv2d(64, 64, 3, bias=False), nn.BatchNorm2d(8)
    with torch.no_grad():
        conv.weight.fill_(5.0)
        norm.weight.fill_(3.0)
        norm.bias.fill_(2.0)
    model._init_weights(conv)
    model._init_weights(norm)
    assert float(conv.weight.detach().std()) == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)
    assert abs(float(conv.weight.detach().mean())) < 0.01
    assert torch.equal(norm.weight, torch.ones(8)) and torch.equal(norm.bias, torch.zeros(8))


def test_init_weights_leaves_the_modules_of_a_transformers_backbone_alone():
    config = SemSimConfig(
        backbone="transformers",
        backbone_config={
            "model_type": "resnet",
            "embedding_size": 8,
            "hidden_sizes": [8, 16],
            "depths": [1, 1],
        },
    )
    model = SemSimModel(config)
    conv, norm = nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)
    with torch.no_grad():
        conv.weight.fill_(5.0)
        norm.weight.fill_(3.0)
        norm.bias.fill_(2.0)
    model._init_weights(conv)
    model._init_weights(norm)
    assert bool((conv.weight == 5.0).all())
    assert bool((norm.weight == 3.0).all()) and bool((norm.bias == 2.0).all())


# -- the embedding ------------------------------------------------------------------------------------------------------


def test_features_of_any_length_are_scaled_to_unit_euclidean_length():
    features = torch.tensor([[3e-4, 4e-4, 0.0], [0.0, -6.0, 8.0]])  # far shorter and longer than 1
    model = with_features(SemSimConfig(base_width=2), features)
    embedding = model.embed(torch.zeros(2, 3, 32, 32))
    torch.testing.assert_close(
        embedding, torch.tensor([[0.6, 0.8, 0.0], [0.0, -0.6, 0.8]]), atol=1e-6, rtol=0
    )


def test_a_float64_model_normalises_in_float64():
    torch.manual_seed(0)
    model = SemSimModel(SemSimConfig(base_width=2)).eval().double()
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        features = model.backbone(x)
        embedding = model.embed(x)
    assert embedding.dtype == torch.float64
    assert torch.equal(embedding, F.normalize(features, p=2.0, dim=1, eps=1e-12))


def test_a_bfloat16_model_normalises_in_float32_and_returns_bfloat16():
    torch.manual_seed(0)
    model = SemSimModel(SemSimConfig(base_width=4)).eval().to(torch.bfloat16)
    x = torch.randn(4, 3, 32, 32).to(torch.bfloat16)
    with torch.no_grad():
        features = model.backbone(x)
        embedding = model.embed(x)
    assert embedding.dtype == torch.bfloat16
    assert torch.equal(embedding, F.normalize(features.float(), p=2.0, dim=1).to(torch.bfloat16))
    assert not torch.equal(embedding, F.normalize(features, p=2.0, dim=1))  # the check above means something


MEAN, STD = [0.25, 0.5, 0.75], [0.5, 0.25, 0.125]  # distinct per channel, and exact in binary
LAYOUT_CONFIG = dict(base_width=2, layout_weight=0.25, layout_size=4, image_mean=MEAN, image_std=STD)


def test_the_layout_joins_the_network_embedding_weighted_by_the_square_roots_of_its_weight():
    features = torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 5.0]])
    model = with_features(SemSimConfig(**LAYOUT_CONFIG), features)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    layout = reference_layout(x, MEAN, STD, 4)
    expected = torch.cat([0.75**0.5 * F.normalize(features, dim=1), 0.5 * layout], dim=1)
    embedding = model.embed(x)
    assert embedding.shape == (2, 3 + 3 * 4 * 4)
    torch.testing.assert_close(embedding, expected, atol=1e-6, rtol=0)


def test_a_flat_image_has_no_layout_so_its_embedding_is_the_network_part_at_unit_length():
    features = torch.tensor([[1e-3, 0.0, 0.0]])
    model = with_features(SemSimConfig(**LAYOUT_CONFIG), features)
    flat = ((0.5 - torch.tensor(MEAN)) / torch.tensor(STD)).view(1, 3, 1, 1).expand(1, 3, 8, 8)  # grey 0.5
    embedding = model.embed(flat)
    expected = torch.zeros(1, 3 + 48)
    expected[0, 0] = 1.0
    torch.testing.assert_close(embedding, expected, atol=1e-6, rtol=0)


def test_layout_weight_zero_adds_nothing_to_the_network_embedding():
    features = torch.tensor([[0.0, 3.0, 4.0]])
    model = with_features(SemSimConfig(base_width=2, layout_weight=0.0), features)
    torch.testing.assert_close(model.embed(torch.randn(1, 3, 8, 8)), torch.tensor([[0.0, 0.6, 0.8]]))


def test_a_bfloat16_model_computes_its_layout_in_float32():
    features = torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 5.0]])
    model = with_features(SemSimConfig(**LAYOUT_CONFIG), features).to(torch.bfloat16)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16)
    layout = layout_embedding(x.float(), MEAN, STD, size=4)
    expected = F.normalize(torch.cat([0.75**0.5 * F.normalize(features, dim=1), 0.5 * layout], dim=1), dim=1)
    embedding = model.embed(x)
    assert embedding.dtype == torch.bfloat16
    assert torch.equal(embedding, expected.to(torch.bfloat16))


def test_layout_embedding_is_the_centred_unit_length_thumbnail_of_the_pixel_values():
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    got = layout_embedding(x, MEAN, STD, size=2)
    assert got.shape == (2, 3 * 2 * 2)
    torch.testing.assert_close(got, reference_layout(x, MEAN, STD, 2), atol=1e-6, rtol=0)


def test_layout_embedding_sets_even_a_faint_layout_to_unit_length():
    mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    pixels = 0.5 + 1e-3 * torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    got = layout_embedding((pixels - 0.5) / 0.25, mean, std, size=4)
    torch.testing.assert_close(got.norm(dim=1), torch.ones(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(got, reference_layout((pixels - 0.5) / 0.25, mean, std, 4), atol=1e-4, rtol=0)


def test_embedding_distance_is_the_euclidean_distance_row_by_row():
    a = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    assert torch.equal(embedding_distance(a, b), torch.tensor([5.0, 2.0]))


# -- embed_pair, distance, probability ----------------------------------------------------------------------------------


def test_embed_pair_returns_the_first_batchs_embeddings_first(tiny_model):
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(3, 3, 32, 32, generator=g), torch.randn(3, 3, 32, 32, generator=g)
    with torch.no_grad():
        ex, ey = tiny_model.embed_pair(x, y)
        torch.testing.assert_close(ex, tiny_model.embed(x), atol=1e-6, rtol=0)
        torch.testing.assert_close(ey, tiny_model.embed(y), atol=1e-6, rtol=0)
        expected = torch.linalg.vector_norm(tiny_model.embed(x) - tiny_model.embed(y), dim=1)
        torch.testing.assert_close(tiny_model.distance(x, y), expected, atol=1e-6, rtol=0)


def test_embed_pair_refuses_batches_of_different_shapes(tiny_model):
    message = "SemSim needs two batches of the same shape, got (2, 3, 32, 32) and (3, 3, 32, 32)."
    with pytest.raises(InvalidInputError, match=f"^{re.escape(message)}$"):
        embed_pair(tiny_model, torch.zeros(2, 3, 32, 32), torch.zeros(3, 3, 32, 32))
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        tiny_model.distance(torch.zeros(2, 3, 32, 32), torch.zeros(3, 3, 32, 32))


def test_probability_is_the_calibrations_logistic_curve_of_the_distance(tiny_model):
    distance = torch.tensor([0.0, 0.5, 1.25, 2.0])
    expected = torch.sigmoid(2.0 - 4.0 * distance)  # the fixture's calibration: intercept 2, slope -4
    torch.testing.assert_close(tiny_model.probability(distance), expected, atol=1e-6, rtol=0)


def test_probability_without_a_calibration_says_how_to_get_one():
    model = SemSimModel(SemSimConfig(base_width=2))
    message = (
        "This SemSim model has no calibration, so output='probability' is unavailable. "
        "Use output='distance', or fit one with semsim_metric.training.calibration.fit_calibration()."
    )
    with pytest.raises(InvalidInputError, match=f"^{re.escape(message)}$"):
        model.probability(torch.tensor([0.5]))


# -- from_pretrained ----------------------------------------------------------------------------------------------------


@pytest.fixture
def resolve_spy(monkeypatch):
    """Records the arguments ``from_pretrained`` gives ``resolve_model_folder`` and passes them on."""
    calls = []
    real = modeling_semsim.resolve_model_folder

    def spy(name, **kwargs):
        calls.append((name, kwargs))
        return real(name, **kwargs)

    monkeypatch.setattr(modeling_semsim, "resolve_model_folder", spy)
    return calls


def test_from_pretrained_passes_the_hub_arguments_to_the_folder_resolution(tmp_path, tiny_model, resolve_spy):
    tiny_model.save_pretrained(tmp_path / "repo" / "sub")
    model = SemSimModel.from_pretrained(
        tmp_path / "repo",
        revision="v1",
        cache_dir=tmp_path / "cache",
        local_files_only=True,
        token="hf_secret",
        subfolder="sub",
        force_download=True,
    )
    assert resolve_spy == [
        (
            str(tmp_path / "repo"),
            {
                "revision": "v1",
                "cache_dir": tmp_path / "cache",
                "local_files_only": True,
                "token": "hf_secret",
                "subfolder": "sub",
                "force_download": True,
            },
        )
    ]
    assert model.config._name_or_path == str(tmp_path / "repo")
    assert not model.training


def test_from_pretrained_defaults_resolve_without_hub_options(tiny_model_dir, resolve_spy):
    SemSimModel.from_pretrained(tiny_model_dir, subfolder=None, force_download=0)
    SemSimModel.from_pretrained(tiny_model_dir)
    expected = {
        "revision": None,
        "cache_dir": None,
        "local_files_only": None,
        "token": None,
        "subfolder": "",
        "force_download": False,
    }
    assert resolve_spy == [(str(tiny_model_dir), expected)] * 2
    assert all(kwargs["force_download"] is False for _, kwargs in resolve_spy)  # a bool, whatever was passed
    SemSimModel.from_pretrained(tiny_model_dir, force_download=1)
    assert resolve_spy[-1][1]["force_download"] is True


def test_from_pretrained_accepts_what_transformers_passes_with_empty_values(tiny_model_dir):
    model = SemSimModel.from_pretrained(
        tiny_model_dir,
        trust_remote_code=True,
        low_cpu_mem_usage=True,
        use_safetensors=True,
        adapter_kwargs={},
        code_revision=None,
        _from_auto=True,
        _commit_hash="0123456789abcdef",
        variant="",
        from_flax=False,
    )
    assert isinstance(model, SemSimModel)
    assert SemSimModel.from_pretrained(tiny_model_dir, use_safetensors=None).config.base_width == 4


def test_from_pretrained_names_every_argument_it_cannot_honour(tiny_model_dir):
    supported = (
        "Supported: revision, cache_dir, local_files_only, token, config, dtype/torch_dtype, device_map (one "
        "device), output_loading_info, subfolder, force_download, use_safetensors, trust_remote_code."
    )
    cases = [
        ((), {"variant": "fp16", "from_tf": True, "quiet": None}, "['variant', 'from_tf']"),
        (("extra", 2), {}, "['extra', 2]"),
        (("extra",), {"variant": "fp16"}, "['variant']"),  # the keyword arguments are named first
        ((), {"adapter_kwargs": {"a": 1}}, "['adapter_kwargs']"),
    ]
    for args, kwargs, named in cases:
        message = f"SemSimModel.from_pretrained() got arguments it cannot honour: {named}. {supported}"
        with pytest.raises(ModelArgumentError, match=f"^{re.escape(message)}$"):
            SemSimModel.from_pretrained(tiny_model_dir, *args, **kwargs)
    message = (
        "SemSim models load from model.safetensors only (use_safetensors=False is "
        "refused: other formats would have to be unpickled)."
    )
    with pytest.raises(ModelArgumentError, match=f"^{re.escape(message)}$"):
        SemSimModel.from_pretrained(tiny_model_dir, use_safetensors=False)


def test_torch_dtype_is_read_as_dtype_and_dtype_wins_when_both_are_given(tiny_model_dir):
    assert SemSimModel.from_pretrained(tiny_model_dir, torch_dtype="float16").dtype == torch.float16
    assert SemSimModel.from_pretrained(tiny_model_dir, torch_dtype=torch.float64).dtype == torch.float64
    both = SemSimModel.from_pretrained(tiny_model_dir, dtype="bfloat16", torch_dtype="float16")
    assert both.dtype == torch.bfloat16 and both.config.dtype == torch.bfloat16
    assert SemSimModel.from_pretrained(tiny_model_dir).dtype == torch.float32


def test_from_pretrained_refuses_a_dtype_map_and_non_float_dtypes_with_their_messages(tiny_model_dir):
    message = "dtype={'': 'float16'}: a SemSim model has one dtype; pass a torch.dtype, its name or 'auto'."
    with pytest.raises(ModelArgumentError, match=f"^{re.escape(message)}$"):
        SemSimModel.from_pretrained(tiny_model_dir, dtype={"": "float16"})
    with pytest.raises(ModelArgumentError, match=r"^dtype must be one of .*got torch\.int8\.$"):
        SemSimModel.from_pretrained(tiny_model_dir, dtype=torch.int8)


def test_a_config_passed_to_from_pretrained_replaces_the_folders(tiny_model_dir):
    config = SemSimConfig.from_pretrained(tiny_model_dir)
    config.calibration = {"intercept": 1.0, "slope": -1.0}
    model = SemSimModel.from_pretrained(tiny_model_dir, config=config)
    assert model.config.calibration == {"intercept": 1.0, "slope": -1.0}
    assert SemSimModel.from_pretrained(tiny_model_dir).config.calibration["intercept"] == 2.0


def test_a_config_that_does_not_fit_the_weights_is_named_by_where_it_came_from(tmp_path, tiny_model_dir):
    with pytest.raises(
        ModelMismatchError, match="^the config passed to from_pretrained describes a network of "
    ):
        SemSimModel.from_pretrained(tiny_model_dir, config=SemSimConfig(base_width=128))
    shutil.copytree(tiny_model_dir, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "base_width": 128}))
    source = re.escape(str(tmp_path / "m" / "config.json"))
    with pytest.raises(ModelMismatchError, match=f"^{source} describes a network of "):
        SemSimModel.from_pretrained(tmp_path / "m")


def test_dtype_auto_loads_the_dtype_config_json_records_or_else_the_stored_one(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path, dtype=torch.float16)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "dtype": "bfloat16"}))
    assert SemSimModel.from_pretrained(tmp_path, dtype="auto").dtype == torch.bfloat16  # the record wins
    del config["dtype"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert SemSimModel.from_pretrained(tmp_path, dtype="auto").dtype == torch.float16


def test_output_loading_info_reports_nothing_missing_since_loading_is_strict(tiny_model_dir):
    model, info = SemSimModel.from_pretrained(tiny_model_dir, output_loading_info=True)
    assert isinstance(model, SemSimModel) and not model.training
    assert info == {
        "missing_keys": set(),
        "unexpected_keys": set(),
        "mismatched_keys": set(),
        "error_msgs": [],
    }


def test_from_pretrained_moves_the_model_to_the_device_map_device(tiny_model_dir):
    model = SemSimModel.from_pretrained(tiny_model_dir, device_map="meta")
    assert model.device == torch.device("meta")
    assert SemSimModel.from_pretrained(tiny_model_dir, device_map=None).device == torch.device("cpu")


@pytest.mark.parametrize("strategy", ["auto", "balanced", "balanced_low_0", "sequential"])
def test_every_placement_strategy_is_refused(tiny_model_dir, strategy):
    message = (
        f"device_map={strategy!r}: a SemSim model is small and lives on one device; pass "
        "a device such as 'cpu' or 'cuda:0' (or {'': 'cuda:0'})."
    )
    with pytest.raises(ModelArgumentError, match=f"^{re.escape(message)}$"):
        SemSimModel.from_pretrained(tiny_model_dir, device_map=strategy)


def test_a_device_map_names_one_device():
    single = modeling_semsim._single_device
    assert single(None) is None
    assert single(1) == torch.device("cuda", 1)
    assert single("cpu") == torch.device("cpu")
    assert single(torch.device("cuda", 0)) == torch.device("cuda", 0)
    assert single({"": 0, "backbone": "cuda:0"}) == torch.device("cuda", 0)
    assert single({"a": "cpu", "b": torch.device("cpu")}) == torch.device("cpu")


def test_a_device_map_that_is_not_one_device_is_refused_with_its_message():
    single = modeling_semsim._single_device
    several = (
        "device_map maps the model onto 6 devices (cpu, cuda:0, cuda:1, cuda:2, cuda:3, meta): a SemSim model is "
        "small and lives on one device; pass one device, e.g. device_map={'': 'cuda:0'}."
    )
    none = (
        "device_map maps the model onto 0 devices (none): a SemSim model is small and lives on one device; "
        "pass one device, e.g. device_map={'': 'cuda:0'}."
    )
    disk = (
        "device_map puts weights on 'disk': a SemSim model is small and is loaded whole on "
        "one device; pass a device such as 'cpu' or 'cuda:0'."
    )
    for device_map, message in (
        ({"f": "meta", "e": 3, "d": 2, "c": 1, "b": 0, "a": "cpu"}, several),  # named in order
        ({}, none),
        ("disk", disk),
        ({"": "disk"}, disk),
        (True, "device_map entry True is not a device."),
        ({"": False}, "device_map entry False is not a device."),
    ):
        with pytest.raises(ModelArgumentError, match=f"^{re.escape(message)}$"):
            single(device_map)
    for bad in ("nonsense", 2.5):
        with pytest.raises(
            ModelArgumentError, match=f"^device_map entry {re.escape(repr(bad))} is not a device \\("
        ):
            single(bad)


# -- save_pretrained ----------------------------------------------------------------------------------------------------


def test_save_pretrained_writes_the_model_folder_creating_missing_parents(tmp_path, tiny_model):
    folder = tmp_path / "a" / "b" / "model"
    tiny_model.save_pretrained(folder)
    tiny_model.save_pretrained(folder)  # an existing folder is written again
    assert {p.name for p in folder.iterdir()} == MODEL_FILES
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["SemSimModel"] and config["dtype"] == "float32"
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    assert processor["image_mean"] == pytest.approx(tiny_model.config.image_mean)
    stored = load_file(folder / "model.safetensors")
    assert stored.keys() == tiny_model.state_dict().keys()
    assert all(torch.equal(stored[k], v) for k, v in tiny_model.state_dict().items())


def test_save_pretrained_stores_floats_in_the_dtype_asked_for_and_keeps_integer_buffers(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path, dtype="float16")
    stored = load_file(tmp_path / "model.safetensors")
    assert stored["backbone.conv1.weight"].dtype == torch.float16
    assert stored["backbone.bn1.num_batches_tracked"].dtype == torch.int64
    assert torch.equal(stored["backbone.conv1.weight"], tiny_model.backbone.conv1.weight.detach().half())
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "float16"
    assert tiny_model.config.dtype == torch.float32


def test_save_pretrained_records_the_dtype_the_model_runs_in(tmp_path, tiny_model):
    model = tiny_model.to(torch.bfloat16)
    model.save_pretrained(tmp_path, dtype=torch.float32)
    assert model.config.dtype == torch.bfloat16
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "float32"


def test_save_pretrained_stores_the_state_dict_given_instead_of_the_models(tmp_path, tiny_model):
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    state["backbone.conv1.weight"] = torch.full_like(state["backbone.conv1.weight"], 0.5)
    state["backbone.layer1.0.conv1.weight"] = state["backbone.layer1.0.conv1.weight"].transpose(2, 3)
    assert not state["backbone.layer1.0.conv1.weight"].is_contiguous()
    tiny_model.save_pretrained(tmp_path, state_dict=state)
    stored = load_file(tmp_path / "model.safetensors")
    assert all(torch.equal(stored[k], v) for k, v in state.items())
    assert not torch.equal(stored["backbone.conv1.weight"], tiny_model.backbone.conv1.weight)


def test_save_pretrained_writes_nothing_outside_the_main_process(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "m", is_main_process=False)
    assert not (tmp_path / "m").exists()
    with pytest.raises(
        ModelArgumentError, match="safe_serialization=False"
    ):  # arguments are checked everywhere
        tiny_model.save_pretrained(tmp_path / "m", is_main_process=False, safe_serialization=False)


def test_save_pretrained_refuses_pickles_and_arguments_it_cannot_honour(tmp_path, tiny_model):
    message = "SemSim saves safetensors only (safe_serialization=False is not supported)."
    with pytest.raises(ModelArgumentError, match=f"^{re.escape(message)}$"):
        tiny_model.save_pretrained(tmp_path, safe_serialization=False)
    message = "save_pretrained() got arguments it cannot honour: ['variant']."
    with pytest.raises(ModelArgumentError, match=f"^{re.escape(message)}$"):
        tiny_model.save_pretrained(tmp_path, variant="fp16", token="x", push_to_hub=True)
    message = "save_pretrained() got arguments it cannot honour: ['private', 'repo_id']."
    with pytest.raises(ModelArgumentError, match=f"^{re.escape(message)}$"):
        tiny_model.save_pretrained(
            tmp_path, repo_id="me/x", private=True
        )  # Hub arguments without push_to_hub
    assert not any(tmp_path.iterdir())


def test_max_shard_size_is_compared_with_the_stored_bytes(tmp_path, tiny_model):
    size32 = sum(v.numel() * v.element_size() for v in tiny_model.state_dict().values())
    size16 = sum(
        v.numel() * (2 if v.is_floating_point() else v.element_size())
        for v in tiny_model.state_dict().values()
    )
    tiny_model.save_pretrained(
        tmp_path / "equal", max_shard_size=size32
    )  # a limit it reaches is not exceeded
    tiny_model.save_pretrained(tmp_path / "half", max_shard_size=size16, dtype=torch.float16)
    message = (
        f"the weights take {size32 / 2**20:.1f} MiB, more than max_shard_size={size32 - 1}; SemSim writes one "
        "unsharded model.safetensors: pass a larger max_shard_size."
    )
    with pytest.raises(ModelArgumentError, match=f"^{re.escape(message)}$"):
        tiny_model.save_pretrained(tmp_path / "over", max_shard_size=size32 - 1)
    with pytest.raises(ModelArgumentError, match="max_shard_size=1KB"):
        tiny_model.save_pretrained(tmp_path / "over", max_shard_size="1KB")
    assert not (tmp_path / "over" / "model.safetensors").exists()


# -- the Hub, replaced by a recorder ------------------------------------------------------------------------------------


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """``HfApi.create_repo`` / ``upload_folder`` record their arguments (and the token of their ``HfApi``), and
    the upload copies the files its ``allow_patterns`` select into ``hub.uploaded / repo_id``."""
    record = SimpleNamespace(calls=[], uploaded=tmp_path / "hub")

    def create_repo(self, repo_id, **kwargs):
        record.calls.append(("create_repo", self.token, repo_id, kwargs))
        return SimpleNamespace(repo_id=f"resolved/{repo_id.split('/')[-1]}")

    def upload_folder(self, **kwargs):
        record.calls.append(("upload_folder", self.token, kwargs))
        target = record.uploaded / kwargs["repo_id"]
        target.mkdir(parents=True)
        for path in Path(kwargs["folder_path"]).iterdir():
            if any(fnmatch(path.name, pattern) for pattern in kwargs["allow_patterns"]):
                shutil.copy(path, target / path.name)
        return SimpleNamespace(commit_url=f"https://hub.test/{kwargs['repo_id']}/commit/abc")

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return record


def test_push_to_hub_uploads_a_loadable_model_folder_with_card_and_code(hub, tiny_model):
    url = tiny_model.push_to_hub("me/semsim-tiny")
    assert url == "https://hub.test/resolved/semsim-tiny/commit/abc"
    assert hub.calls[0] == ("create_repo", None, "me/semsim-tiny", {"private": None, "exist_ok": True})
    name, token, upload = hub.calls[1]
    assert (name, token, len(hub.calls)) == ("upload_folder", None, 2)
    assert {k: v for k, v in upload.items() if k not in ("folder_path", "allow_patterns")} == {
        "repo_id": "resolved/semsim-tiny",
        "revision": None,
        "commit_message": "Upload SemSim model",
        "commit_description": None,
        "create_pr": False,
    }
    pushed = hub.uploaded / "resolved" / "semsim-tiny"
    assert {p.name for p in pushed.iterdir()} == {*MODEL_FILES, "README.md", *EXPORTED_FILES}
    readme = (pushed / "README.md").read_text()
    assert "license: apache-2.0" in readme and 'SemSimModel.from_pretrained("me/semsim-tiny")' in readme
    assert json.loads((pushed / "config.json").read_text())["dtype"] == "float32"
    back = SemSimModel.from_pretrained(pushed)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(back.embed(x), tiny_model.embed(x), atol=0, rtol=0)


def test_push_to_hub_passes_every_argument_through(hub, tiny_model):
    tiny_model.push_to_hub(
        "me/semsim-args",
        commit_message="first",
        commit_description="the details",
        private=True,
        token="hf_secret",
        revision="dev",
        create_pr=True,
        dtype=torch.float16,
        dataset="org/pairs",
        license="mit",
    )
    assert hub.calls[0] == ("create_repo", "hf_secret", "me/semsim-args", {"private": True, "exist_ok": True})
    _, token, upload = hub.calls[1]
    assert token == "hf_secret"
    assert _commit_settings(upload) == ("dev", "first", "the details", True)
    pushed = hub.uploaded / "resolved" / "semsim-args"
    assert load_file(pushed / "model.safetensors")["backbone.conv1.weight"].dtype == torch.float16
    readme = (pushed / "README.md").read_text()
    assert "license: mit" in readme and "org/pairs" in readme and "apache-2.0" not in readme


def _commit_settings(upload: dict) -> tuple:
    """What a recorded ``upload_folder`` call was told about the commit: revision, message, description, PR."""
    return upload["revision"], upload["commit_message"], upload["commit_description"], upload["create_pr"]


def test_push_to_hub_uploads_the_card_given_and_refuses_an_oversized_model(hub, tiny_model):
    tiny_model.push_to_hub("me/semsim-card", card="# my own card\n")
    assert (hub.uploaded / "resolved" / "semsim-card" / "README.md").read_text() == "# my own card\n"
    with pytest.raises(ModelArgumentError, match="max_shard_size=1KB"):
        tiny_model.push_to_hub("me/semsim-big", max_shard_size="1KB")
    assert len(hub.calls) == 2  # the refused model never reached the Hub


def test_save_pretrained_with_push_to_hub_uploads_the_saved_folder(hub, tmp_path, tiny_model):
    folder = tmp_path / "semsim-folder"
    tiny_model.save_pretrained(
        folder,
        push_to_hub=True,
        repo_id="me/other-name",
        token="hf_secret",
        private=False,
        revision="dev",
        commit_message="second",
        commit_description="more",
        create_pr=True,
        dataset="org/pairs",
        license="mit",
    )
    assert hub.calls[0] == ("create_repo", "hf_secret", "me/other-name", {"private": False, "exist_ok": True})
    _, token, upload = hub.calls[1]
    assert token == "hf_secret" and upload["folder_path"] == str(folder)
    assert _commit_settings(upload) == ("dev", "second", "more", True)
    readme = (folder / "README.md").read_text()
    assert "license: mit" in readme and "org/pairs" in readme
    assert {p.name for p in (hub.uploaded / "resolved" / "other-name").iterdir()} == {
        *MODEL_FILES,
        "README.md",
        *EXPORTED_FILES,
    }


def test_save_pretrained_pushes_to_the_folders_name_by_default_and_only_when_asked(hub, tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "kept-local")
    assert hub.calls == [] and not (tmp_path / "kept-local" / "README.md").exists()
    tiny_model.save_pretrained(tmp_path / "semsim-named", push_to_hub=True)
    assert hub.calls[0] == ("create_repo", None, "semsim-named", {"private": None, "exist_ok": True})


def test_uploading_without_the_package_says_what_to_install(monkeypatch, tiny_model):
    import semsim_metric.models

    monkeypatch.delattr(semsim_metric.models, "hub_upload", raising=False)
    monkeypatch.setitem(sys.modules, "semsim_metric.models.hub_upload", None)
    message = "uploading needs the semsim-metric package (pip install semsim-metric)"
    with pytest.raises(ImportError, match=f"^{re.escape(message)}$"):
        tiny_model.push_to_hub("me/semsim-tiny")


# -- registration -------------------------------------------------------------------------------------------------------


def test_registering_again_keeps_the_real_classes_with_the_auto_classes():
    modeling_semsim._register()
    modeling_semsim._register()  # idempotent: the stand-in and an earlier registration are replaced, not refused
    assert type(AutoConfig.for_model("semsim")) is SemSimConfig
    assert AutoModel._model_mapping[SemSimConfig] is SemSimModel
    assert type(AutoModel.from_config(SemSimConfig(base_width=2))) is SemSimModel


def test_every_flat_grey_level_has_no_layout_through_the_input_gate():
    """The way back from model-ready values leaves float round-off on a flat image; it must not become a layout."""
    from semsim_metric.preprocessing import to_model_input_for

    config = SemSimConfig(base_width=4, layout_weight=0.5)
    greys = torch.arange(256, dtype=torch.uint8).view(256, 1, 1, 1).expand(256, 1, 28, 28)
    x = to_model_input_for(config, greys, data_range=255)
    layouts = layout_embedding(x, config.image_mean, config.image_std, size=config.layout_size)
    assert torch.equal(layouts, torch.zeros_like(layouts))
    one_level = greys[100:101].clone()
    one_level[0, 0, :2, :2] += 1  # one grey level brighter in one corner: a layout, set to unit length
    single = layout_embedding(
        to_model_input_for(config, one_level, data_range=255), config.image_mean, config.image_std, size=16
    )
    assert float(single.norm()) == pytest.approx(1.0, abs=1e-4)
