"""The layout part of the embedding (``SemSimConfig.layout_weight``): what it ignores, what it sees, how it is
configured, and that training learns the network alone and sets the weight at the end."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from semsim_metric.models import SemSimConfig, SemSimModel
from semsim_metric.models.modeling_semsim import embedding_distance, layout_embedding

DEFAULT_DATASET = Path(__file__).resolve().parents[1] / "hub" / "fmnist-judged-v1"
MEAN, STD = [0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762]


def ready(x: torch.Tensor) -> torch.Tensor:
    """Pixel values in [0, 1] -> model-ready (normalised as the input gate does)."""
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def smooth_images(n: int, seed: int = 0) -> torch.Tensor:
    """Images with structure at several scales (random blobs upsampled), values in [0.2, 0.8]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=g)
    return 0.2 + 0.6 * F.interpolate(coarse, size=32, mode="bilinear", align_corners=False)


def layout(x: torch.Tensor, size: int = 16) -> torch.Tensor:
    return layout_embedding(ready(x), MEAN, STD, size=size)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=1)


def test_the_layout_ignores_brightness_and_contrast_exactly():
    x = smooth_images(8)
    base = layout(x)
    brighter = layout(x + 0.15)
    flatter = layout(0.6 * (x - 0.5) + 0.5)
    assert torch.allclose(base, brighter, atol=1e-5) and torch.allclose(base, flatter, atol=1e-5)
    assert torch.allclose(base.norm(dim=1), torch.ones(8), atol=1e-6)


def test_the_layout_hardly_moves_under_blur_and_a_one_pixel_shift_but_sees_noise_and_other_images():
    x = smooth_images(16)
    base = layout(x)
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    shifted = torch.roll(x, shifts=(1, 1), dims=(2, 3))
    noise = torch.rand_like(x)
    other = x.roll(1, dims=0)
    assert cosine(base, layout(blurred)).min() > 0.95
    assert cosine(base, layout(shifted)).min() > 0.8
    assert cosine(base, layout(noise)).abs().max() < 0.5
    assert cosine(base, layout(other)).mean() < 0.5


def test_a_flat_grey_image_has_no_layout_and_finite_gradients():
    flat = ready(torch.full((2, 3, 32, 32), 0.3)).requires_grad_(True)  # one grey: no layout at all
    part = layout_embedding(flat, MEAN, STD, size=16)
    assert torch.equal(part, torch.zeros_like(part))
    part.sum().backward()
    assert torch.isfinite(flat.grad).all()


def test_a_luminance_layout_keeps_the_shapes_of_a_recoloured_copy_that_the_rgb_layout_tells_apart():
    lum = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    x = smooth_images(8)
    grey = (x * lum).sum(dim=1, keepdim=True)
    # the same light and dark in other colours: equal-luminance tints of the grey image
    tint = torch.tensor([1.0, -0.3, -1.0]).view(1, 3, 1, 1) * 0.05
    tint = tint - (tint * lum).sum(dim=1, keepdim=True)  # zero luminance: the tint changes colour only
    recoloured = (grey + tint * torch.randn(8, 1, 32, 32).sign()).clamp(0, 1)
    original = grey.expand(-1, 3, -1, -1)
    rgb = embedding_distance(layout(recoloured), layout(original))
    luminance = embedding_distance(
        layout_embedding(ready(recoloured), MEAN, STD, size=16, channels="luminance"),
        layout_embedding(ready(original), MEAN, STD, size=16, channels="luminance"),
    )
    assert luminance.max() < 1e-3 < rgb.min()


def test_on_greyscale_images_the_luminance_and_rgb_layouts_measure_the_same_distances():
    a, b = (smooth_images(4, seed)[:, :1].expand(-1, 3, -1, -1) for seed in (1, 2))
    rgb = embedding_distance(layout(a), layout(b))
    luminance = embedding_distance(
        *(layout_embedding(ready(x), MEAN, STD, size=16, channels="luminance") for x in (a, b))
    )
    assert torch.allclose(rgb, luminance, atol=1e-5)
    assert layout_embedding(ready(a), MEAN, STD, size=16, channels="luminance").shape == (4, 256)


def test_layout_channels_sets_the_embedding_size_survives_saving_and_rejects_other_values(tmp_path):
    config = SemSimConfig(base_width=4, layout_weight=0.5, layout_size=8, layout_channels="luminance")
    assert config.embedding_dim == config.network_embedding_dim + 64
    model = SemSimModel(config).eval()
    model.save_pretrained(tmp_path)
    loaded = SemSimModel.from_pretrained(tmp_path)
    assert loaded.config.layout_channels == "luminance"
    with torch.no_grad():
        assert loaded.embed(ready(smooth_images(2))).shape == (2, config.embedding_dim)
    with pytest.raises(ValueError, match="layout_channels must be one of rgb, luminance, got 'hsv'"):
        SemSimConfig(layout_channels="hsv")
    with pytest.raises(ValueError, match="channels must be 'rgb' or 'luminance'"):
        layout_embedding(ready(smooth_images(1)), MEAN, STD, size=8, channels="grey")


def test_a_model_folder_saved_before_layout_channels_existed_keeps_its_rgb_layout(tmp_path):
    import json

    model = SemSimModel(SemSimConfig(base_width=4, layout_weight=0.5)).eval()
    model.save_pretrained(tmp_path)
    config_file = tmp_path / "config.json"
    record = json.loads(config_file.read_text())
    del record["layout_channels"]
    config_file.write_text(json.dumps(record))
    loaded = SemSimModel.from_pretrained(tmp_path)
    assert loaded.config.layout_channels == "rgb"
    assert loaded.config.embedding_dim == model.config.embedding_dim


def test_weight_zero_is_the_network_alone_and_a_weight_mixes_the_squared_distances():
    torch.manual_seed(0)
    plain = SemSimModel(SemSimConfig(base_width=4)).eval()
    mixed = SemSimModel(SemSimConfig(base_width=4, layout_weight=0.3)).eval()
    mixed.load_state_dict(plain.state_dict())
    x, y = ready(smooth_images(4, seed=1)), ready(smooth_images(4, seed=2))
    with torch.no_grad():
        e = mixed.embed(x)
        assert e.shape == (4, mixed.config.embedding_dim) == (4, 32 + 3 * 16 * 16)
        assert torch.allclose(e.norm(dim=1), torch.ones(4), atol=1e-6)
        d_net = embedding_distance(plain.embed(x), plain.embed(y))
        d_layout = embedding_distance(
            layout_embedding(x, MEAN, STD, size=16), layout_embedding(y, MEAN, STD, size=16)
        )
        expected = torch.sqrt(0.7 * d_net**2 + 0.3 * d_layout**2)
        assert torch.allclose(mixed.distance(x, y), expected, atol=1e-5)
        assert plain.config.embedding_dim == plain.embed(x).shape[1] == 32


@pytest.mark.parametrize("weight", [1.0, -0.1, math.nan, "0.5", True])
def test_a_layout_weight_outside_zero_to_one_is_refused(weight):
    with pytest.raises(ValueError, match="layout_weight must be a number in \\[0, 1\\)"):
        SemSimConfig(layout_weight=weight)


def test_a_layout_larger_than_the_input_is_refused_when_it_is_used():
    with pytest.raises(ValueError, match="layout_size \\(33\\) must not exceed image_size \\(32\\)"):
        SemSimConfig(layout_size=33, layout_weight=0.5)
    assert SemSimConfig(image_size=8).layout_size == 16  # unused at weight 0: small inputs keep the default


def test_the_layout_settings_survive_a_save_and_load(tmp_path):
    model = SemSimModel(SemSimConfig(base_width=4, layout_weight=0.5, layout_size=8)).eval()
    model.save_pretrained(tmp_path)
    loaded = SemSimModel.from_pretrained(tmp_path)
    assert (loaded.config.layout_weight, loaded.config.layout_size) == (0.5, 8)
    x = ready(smooth_images(2))
    with torch.no_grad():
        assert torch.allclose(loaded.embed(x), model.embed(x), atol=1e-6)


def test_training_learns_the_network_alone_and_sets_the_recipes_layout_at_the_end(tmp_path, monkeypatch):
    import json

    from semsim_metric.training import TrainOptions, train
    from semsim_metric.training import run as run_module

    seen = []
    real = run_module._run_stages

    def spy(model, *args, **kwargs):
        seen.append(model.config.layout_weight)
        out = real(model, *args, **kwargs)
        seen.append(model.config.layout_weight)
        return out

    monkeypatch.setattr(run_module, "_run_stages", spy)
    train(
        DEFAULT_DATASET,
        tmp_path / "m",
        recipe="quick",
        epochs=1,
        base_width=4,
        layout_weight=0.5,
        layout_size=8,
        layout_channels="luminance",
        options=TrainOptions(write_card=False),
    )
    assert seen == [0.0, 0.0]
    saved = SemSimModel.from_pretrained(tmp_path / "m")
    assert (saved.config.layout_weight, saved.config.layout_size, saved.config.layout_channels) == (
        0.5,
        8,
        "luminance",
    )
    info = json.loads((tmp_path / "m" / "training_info.json").read_text())
    recorded = info["recipe"]
    assert (recorded["layout_weight"], recorded["layout_size"], recorded["layout_channels"]) == (
        0.5,
        8,
        "luminance",
    )
    # the training domain summarises the network's part of the embedding: the layout says nothing about the domain
    assert len(saved.config.training_domain["embedding_mean"]) == saved.config.network_embedding_dim

    # fine-tuning from it trains the network alone again
    seen.clear()
    train(
        DEFAULT_DATASET,
        tmp_path / "m2",
        recipe="quick",
        epochs=1,
        options=TrainOptions(write_card=False, init_from=tmp_path / "m"),
    )
    assert seen == [0.0, 0.0]
    assert SemSimModel.from_pretrained(tmp_path / "m2").config.layout_weight == 0.0


def test_a_layout_larger_than_the_model_input_is_refused_before_any_stage_runs(tmp_path, monkeypatch):
    from semsim_metric.training import TrainOptions, train
    from semsim_metric.training import run as run_module

    def must_not_run(*args, **kwargs):
        raise AssertionError("a stage ran before the recipe's layout_size was checked")

    monkeypatch.setattr(run_module, "_run_stages", must_not_run)
    with pytest.raises(ValueError, match=r"layout_size \(33\) must not exceed image_size \(32\)"):
        train(
            DEFAULT_DATASET,
            tmp_path / "m",
            recipe="quick",
            layout_weight=0.5,
            layout_size=33,
            options=TrainOptions(write_card=False),
        )
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_an_unknown_layout_channels_is_refused_before_any_stage_runs_even_without_a_layout(
    tmp_path, monkeypatch
):
    from semsim_metric.training import TrainOptions, train
    from semsim_metric.training import run as run_module

    def must_not_run(*args, **kwargs):
        raise AssertionError("a stage ran before the recipe's layout_channels was checked")

    monkeypatch.setattr(run_module, "_run_stages", must_not_run)
    with pytest.raises(ValueError, match="layout_channels must be one of rgb, luminance, got 'hsv'"):
        train(
            DEFAULT_DATASET,
            tmp_path / "m",
            recipe="quick",
            layout_channels="hsv",
            options=TrainOptions(write_card=False),
        )


def test_a_recipe_without_layout_records_no_layout_size_and_reads_one_back():
    from semsim_metric.training.recipes import RECIPES, Recipe, get_recipe

    assert "layout_size" not in RECIPES["colour"].flat()  # the default (16) is not written
    variant = get_recipe("colour:layout_weight=0.5,layout_size=8")
    assert variant.flat()["layout_size"] == 8
    assert Recipe.from_flat(variant.flat()) == variant


def test_the_heldout_runner_trains_one_network_for_recipes_that_differ_only_in_their_layout(tmp_path):
    from semsim_metric.evaluation.heldout import reuse_network

    networks: dict = {}
    first = tmp_path / "colour"
    first.mkdir()
    (first / "stage-record").write_text("finished")
    reuse_network(first, networks, "colour", None)  # the first of its network: trained as usual
    same = tmp_path / "colour-layout"
    reuse_network(same, networks, "colour:layout_weight=0.5", None)
    assert (same / "stage-record").read_text() == "finished"  # resumed from the finished network
    coarser = tmp_path / "colour-layout-8"
    reuse_network(coarser, networks, "colour:layout_weight=0.5,layout_size=8,layout_channels=luminance", None)
    assert (coarser / "stage-record").read_text() == "finished"  # the layout's size is set after training too
    other = tmp_path / "semantic"
    reuse_network(other, networks, "semantic", None)
    assert not other.exists()  # another network: trained from scratch
    (same / "stage-record").write_text("mine")
    reuse_network(same, networks, "colour:layout_weight=0.5", None)  # an existing folder is never overwritten
    assert (same / "stage-record").read_text() == "mine"
