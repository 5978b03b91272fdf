"""Checks against independent references: formulas written out here, other libraries, or properties that
a plausible bug would break (each test names the bug it exists to catch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semsim_metric.preprocessing import to_unit_rgb


# --------------------------------------------------------------------------- preprocessing
def test_resizing_is_antialiased_like_pil():
    """Bug caught: resizing without antialiasing (stripes alias into a false pattern)."""
    from PIL import Image

    stripes = np.zeros((96, 96), dtype=np.uint8)
    stripes[:, ::3] = 255
    ours = to_unit_rgb(torch.from_numpy(stripes)[None, None], data_range=255, image_size=32)[0, 0].numpy()
    pil = np.asarray(Image.fromarray(stripes).resize((32, 32), Image.BILINEAR), dtype=np.float64) / 255
    assert np.abs(ours - pil).max() < 3 / 255
    assert (
        ours.std() < 0.02
    )  # antialiased: almost uniform grey (1/3); aliased sampling would give 0/1 columns


def test_greyscale_and_uint8_conversion_by_hand():
    x = torch.tensor([[[[0, 51], [204, 255]]]], dtype=torch.uint8)
    out = to_unit_rgb(x, data_range=255, image_size=2)
    expected = torch.tensor([[0.0, 0.2], [0.8, 1.0]])
    assert out.shape == (1, 3, 2, 2)
    for c in range(3):
        torch.testing.assert_close(out[0, c], expected, atol=1e-7, rtol=0)


def test_model_input_is_normalised_with_the_configured_statistics():
    from semsim_metric.preprocessing import to_model_input

    x = torch.full((1, 3, 4, 4), 0.5)
    out = to_model_input(x, data_range=1.0, image_size=4, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 0.125))
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.8, 1.2, 1.6]))


# --------------------------------------------------------------------------- baselines' orientation
def _weight_free_baselines():
    from semsim_metric.evaluation.baselines import BASELINES

    return [n for n, s in BASELINES.items() if not s.needs_weights]


@pytest.mark.parametrize("name", _weight_free_baselines())
def test_every_baseline_is_oriented_so_a_near_copy_leaks_more_than_noise(name):
    """Bug caught: HaarPSI (or any baseline) with its direction flipped."""
    pytest.importorskip("piq")
    from semsim_metric.evaluation.baselines import BASELINES, leakage_score

    spec = BASELINES[name]
    size = max(spec.min_size, 48)
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    target = torch.stack([(torch.sin(6 * xx) * torch.cos(4 * yy) + 1) / 2, xx, yy])[None].repeat(4, 1, 1, 1)
    near = (target + 0.02 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    noise = torch.rand(target.shape, generator=g)
    leak_near = leakage_score(name, spec.fn(near, target).detach().numpy())
    leak_noise = leakage_score(name, spec.fn(noise, target).detach().numpy())
    assert (leak_near > leak_noise).all(), (name, leak_near, leak_noise)


def test_semsim_is_oriented_as_a_distance():
    from semsim_metric.evaluation.baselines import leakage_score

    assert leakage_score("SemSim", np.array([0.1]))[0] > leakage_score("SemSim", np.array([1.5]))[0]


# --------------------------------------------------------------------------- cluster bootstrap
def bootstrap_auc_ci(y, score, ids, *, n_boot, seed):
    from semsim_metric.evaluation.statistics import image_level

    return image_level(y, score, ids, n_boot=n_boot, seed=seed)["roc_auc_ci"]


def test_the_bootstrap_resamples_originals_not_rows():
    """Bug caught: the bootstrap drawn over rows. Repeating every row of an original 9 times changes neither the
    AUC nor the information; an interval over originals keeps its width, one over rows shrinks ~3x."""
    rng = np.random.default_rng(0)
    n = 60
    y = rng.random(n) < 0.5
    score = y + rng.normal(0, 1.0, n)
    ids = np.arange(n)
    lo1, hi1 = bootstrap_auc_ci(y, score, ids, n_boot=400, seed=1)
    rep = 9
    lo9, hi9 = bootstrap_auc_ci(
        np.repeat(y, rep), np.repeat(score, rep), np.repeat(ids, rep), n_boot=400, seed=1
    )
    width1, width9 = hi1 - lo1, hi9 - lo9
    assert width9 == pytest.approx(width1, rel=0.25)
    assert lo1 < hi1


def test_bootstrap_interval_contains_the_point_estimate_and_narrows_with_more_originals():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    widths = []
    for n in (40, 640):
        y = rng.random(n) < 0.5
        s = y + rng.normal(0, 1.0, n)
        lo, hi = bootstrap_auc_ci(y, s, np.arange(n), n_boot=300, seed=0)
        assert lo <= roc_auc_score(y, s) <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2.5  # 16x the originals: about 4x narrower


# --------------------------------------------------------------------------- attacks against a direct formula
def _reference_attack(victim, x, y, cfg, seed, distance):
    """The attack written out with plain autograd (no torch.func, no vmap): Adam on (signed) gradients."""
    dummy = (
        torch.rand(x.shape[1:], generator=torch.Generator().manual_seed(seed))[None]
        .clone()
        .requires_grad_(True)
    )
    params = list(victim.parameters())
    target_loss = F.cross_entropy(victim(x), y)
    target = [t.detach() for t in torch.autograd.grad(target_loss, params)]
    opt = torch.optim.Adam([dummy], lr=cfg.learning_rate)
    for _ in range(cfg.iterations):
        loss = F.cross_entropy(victim(dummy), y)
        g = torch.autograd.grad(loss, params, create_graph=True)
        if distance == "cosine":
            dot = sum((a * b).sum() for a, b in zip(g, target))
            value = 1 - dot / (
                torch.sqrt(sum(a.pow(2).sum() for a in g)) * torch.sqrt(sum(b.pow(2).sum() for b in target))
                + 1e-12
            )
        else:
            value = sum((a - b).pow(2).sum() for a, b in zip(g, target))
        d = dummy[0]
        tv = (d[:, 1:, :] - d[:, :-1, :]).abs().mean() + (d[:, :, 1:] - d[:, :, :-1]).abs().mean()
        value = value + cfg.tv_weight * tv
        (g_dummy,) = torch.autograd.grad(value, [dummy])
        dummy.grad = g_dummy.sign() if cfg.signed else g_dummy
        opt.step()
        with torch.no_grad():
            dummy.clamp_(0, 1)
    return dummy.detach()


@pytest.mark.parametrize("name, distance", [("inverting_gradients", "cosine"), ("idlg", "l2")])
def test_attacks_follow_their_published_update_rule(name, distance):
    """Bugs caught: the sign step removed, the TV term dropped, the gradient distance changed."""
    from semsim_metric.generate.attacks import AttackConfig, attack_preset, run_attack
    from semsim_metric.generate.victims import VictimSpec, build_victim

    torch.manual_seed(0)
    victim = build_victim(VictimSpec("conv_relu", width=4), 1, 10, 12).eval()
    x = torch.rand(1, 1, 12, 12)
    y = torch.tensor([3])
    cfg = attack_preset(name, "paper", iterations=4, milestones=(), tv_weight=0.05)
    assert isinstance(cfg, AttackConfig)
    seed = 11
    ours = run_attack(victim, x, y, cfg, seeds=[seed])["reconstructions"]
    reference = _reference_attack(victim, x, y, cfg, seed, distance)
    torch.testing.assert_close(ours, reference, atol=2e-5, rtol=0)
    for changed in ({"signed": not cfg.signed}, {"tv_weight": 0.0}):
        other = _reference_attack(victim, x, y, type(cfg)(**{**cfg.to_dict(), **changed}), seed, distance)
        assert (other - reference).abs().max() > 1e-3, changed  # the reference is sensitive to each term


def test_inverting_gradients_approaches_an_easy_original():
    """A linear victim leaks its input exactly; the attack must get close to it, not just lower its loss."""
    from semsim_metric.generate.attacks import AttackConfig, run_attack

    torch.manual_seed(0)
    victim = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4)).eval()
    x = torch.rand(1, 1, 8, 8)
    start = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(5))
    out = run_attack(
        victim,
        x,
        torch.tensor([2]),
        AttackConfig("inverting_gradients", 400, learning_rate=0.05, tv_weight=0.0, milestones=()),
        seeds=[5],
    )
    err_start = (start - x[0]).abs().mean()
    err_end = (out["reconstructions"][0] - x[0]).abs().mean()
    assert err_end < err_start / 4


# --------------------------------------------------------------------------- model revisions
def test_only_the_pinned_revision_of_the_default_is_served_from_the_bundle(monkeypatch):
    """Bug caught: the bundled copy returned for any requested revision of the default model."""
    from semsim_metric import hub

    bundled = hub.bundled_model_path()
    assert bundled is not None
    assert hub.resolve_model_folder(hub.DEFAULT_MODEL_ID) == bundled
    assert hub.resolve_model_folder(hub.DEFAULT_MODEL_ID, revision=hub.DEFAULT_REVISION) == bundled
    requested = []

    def fake_download(repo_id, **kwargs):
        requested.append(kwargs.get("revision"))
        raise OSError("offline")

    monkeypatch.setattr(hub, "_download", fake_download)
    for other in ("v2", "main", "0123456789abcdef0123456789abcdef01234567"):
        with pytest.raises(OSError):
            hub.resolve_model_folder(hub.DEFAULT_MODEL_ID, revision=other)
    assert requested == ["v2", "main", "0123456789abcdef0123456789abcdef01234567"]


# --------------------------------------------------------------------------- semsim score == semsim()
def test_semsim_score_values_equal_the_function_on_the_same_pairs(tmp_path, tiny_model_dir, capsys):
    """Bug caught: `semsim score` pairing a reconstruction with the wrong original."""
    import csv

    from PIL import Image

    from semsim_metric import SemSimModel, semsim
    from semsim_metric.cli import main
    from semsim_metric.image_io import load_image

    rng = np.random.default_rng(0)
    (tmp_path / "o").mkdir()
    (tmp_path / "r").mkdir()
    for name in ("alpha", "beta", "gamma", "delta"):
        base = rng.integers(0, 256, (28, 28), dtype=np.uint8)
        Image.fromarray(base).save(tmp_path / "o" / f"{name}.png")
        noisy = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(tmp_path / "r" / f"{name}_rec.png")
    out = tmp_path / "s.csv"
    assert (
        main(
            [
                "score",
                str(tmp_path / "o"),
                str(tmp_path / "r"),
                "--model",
                str(tiny_model_dir),
                "--output",
                str(out),
                "--quiet",
                "--batch-size",
                "3",
                "--precision",
                "float32",  # exact: the default bf16 on such CPUs is within 0.01 (tests/test_cli_habits.py)
            ]
        )
        == 0
    )
    model = SemSimModel.from_pretrained(tiny_model_dir)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4
    for row in rows:
        assert row["original"].endswith(row["reconstruction"].rsplit("/", 1)[1].replace("_rec", ""))
        o, r = load_image(row["original"]), load_image(row["reconstruction"])
        direct = float(semsim(r[None], o[None], model=model, data_range=255).detach())
        assert float(row["semsim"]) == pytest.approx(direct, abs=2e-6)
    values = [float(r["semsim"]) for r in rows]
    assert len(set(values)) == 4  # distinct pairs get distinct scores (a constant would pass the check above)
