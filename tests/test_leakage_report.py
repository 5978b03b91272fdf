"""The leakage report (``semsim report``, ``evaluation.leakage``): its numbers checked against independent
computations, its inputs against each other, its errors, and its page in headless Chromium."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semsim_metric.errors import SemSimError, UnsafeFileError
from semsim_metric.evaluation.leakage import LeakageInputError, leak_rate_interval, leakage_report, load_pairs
from semsim_metric.evaluation.leakage_html import GENERATOR, render_html, write_leakage_report
from semsim_metric.evaluation.statistics import cluster_bootstrap, percentile_interval

ROOT = Path(__file__).resolve().parents[1]
ORIGINALS, RECONSTRUCTIONS = ROOT / "examples" / "originals", ROOT / "examples" / "reconstructions"
ARTIFACTS = Path(os.environ.get("SEMSIM_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def _example_arrays() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The committed example pairs as uint8 (N, 1, 28, 28) arrays, in the order `semsim score` pairs them
    (reconstruction file names sorted), read with PIL (not through the package)."""
    recs = sorted(RECONSTRUCTIONS.glob("*.png"))
    orig = np.stack(
        [np.asarray(Image.open(ORIGINALS / (p.stem.split("__")[0] + ".png")))[None] for p in recs]
    )
    rec = np.stack([np.asarray(Image.open(p))[None] for p in recs])
    return [p.name for p in recs], orig, rec


@pytest.fixture(autouse=True)
def _restore_logging():
    """`semsim` (main) attaches a handler to the test's captured stderr; take it off again afterwards."""
    from semsim_metric._progress import logger

    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture(scope="module")
def examples():
    return _example_arrays()


@pytest.fixture(scope="module")
def folder_report():
    return leakage_report(ORIGINALS, RECONSTRUCTIONS, n_boot=500, progress=False)


# -- the numbers --------------------------------------------------------------------------------------------


def test_leak_rate_is_the_share_of_independently_computed_probabilities(folder_report, examples):
    from semsim_metric import semsim

    names, orig, rec = examples
    p = semsim(
        torch.from_numpy(rec).float() / 255,
        torch.from_numpy(orig).float() / 255,
        reduction="none",
        output="probability",
    ).numpy()
    assert [r.id for r in folder_report.rows] == names
    np.testing.assert_allclose([r.p_recognised for r in folder_report.rows], p, atol=1e-5)
    assert folder_report.n_leaked == int((p > 0.5).sum())
    assert folder_report.leak_rate == pytest.approx(float((p > 0.5).mean()))
    assert (
        0 < folder_report.n_leaked < folder_report.n
    )  # the examples hold both kinds: the test can fail both ways
    assert folder_report.sentence().startswith(f"{int((p > 0.5).sum())} of 12 reconstructions (")
    # the distance threshold is where the calibration crosses 0.5
    assert all((r.distance < folder_report.distance_threshold) == r.recognised for r in folder_report.rows)


def test_psnr_and_ssim_are_the_torchmetrics_values(folder_report, examples):
    import torchmetrics.functional.image as tmf

    _, orig, rec = examples
    for row, o, r in zip(folder_report.rows, orig, rec, strict=True):
        x, y = torch.from_numpy(r[None]).float() / 255, torch.from_numpy(o[None]).float() / 255
        assert row.baselines["PSNR"] == pytest.approx(
            float(tmf.peak_signal_noise_ratio(x, y, data_range=1.0)), rel=1e-4
        )
        assert row.baselines["SSIM"] == pytest.approx(
            float(tmf.structural_similarity_index_measure(x, y, data_range=1.0)), abs=1e-5
        )


@pytest.fixture(scope="module")
def dim_copy_report(tmp_path_factory):
    """The examples plus a dim, low-contrast copy of one original: SemSim (blind to brightness and contrast) calls
    it leaked while both pixel metrics rank it among the least similar - a disagreement the rule must flag."""
    folder = tmp_path_factory.mktemp("dim-copy")
    shutil.copytree(ORIGINALS, folder / "originals")
    shutil.copytree(RECONSTRUCTIONS, folder / "reconstructions")
    original = np.asarray(Image.open(ORIGINALS / "fmnist-test-00041.png"), dtype=np.float64)
    dim = 0.3 * (original - original.mean()) + original.mean() * 0.6
    Image.fromarray(dim.round().clip(0, 255).astype(np.uint8)).save(
        folder / "reconstructions" / "fmnist-test-00041__dim.png"
    )
    return leakage_report(folder / "originals", folder / "reconstructions", n_boot=50, progress=False)


@pytest.mark.parametrize("which", ["folder_report", "dim_copy_report"])
def test_disagreements_follow_the_matched_count_rule(which, request):
    report = request.getfixturevalue(which)
    rows = report.rows
    k = report.n_leaked
    top = {}
    for name in ("PSNR", "SSIM"):  # each baseline's k most similar reconstructions, by sorting (no ties here)
        order = sorted(rows, key=lambda r: -r.baselines[name])
        top[name] = {r.id for r in order[:k]}
    for r in rows:
        in_top = [r.id in top["PSNR"], r.id in top["SSIM"]]
        want = (
            "semsim_only"
            if r.recognised and not any(in_top)
            else "pixels_only"
            if not r.recognised and all(in_top)
            else ""
        )
        assert r.disagreement == want, r
    assert report.disagreements == {
        "semsim_only": sum(r.disagreement == "semsim_only" for r in rows),
        "pixels_only": sum(r.disagreement == "pixels_only" for r in rows),
    }
    if which == "dim_copy_report":  # the rule is exercised: the dim copy is leaked by SemSim alone
        dim = next(r for r in rows if r.id == "fmnist-test-00041__dim.png")
        assert dim.recognised and dim.disagreement == "semsim_only"


def test_the_interval_resamples_originals_not_reconstructions():
    flags = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    base = leak_rate_interval(flags, np.arange(8), n_boot=2000, seed=3)
    # four reconstructions per original, all alike: no new evidence, so exactly the same interval
    same = leak_rate_interval(np.repeat(flags, 4), np.repeat(np.arange(8), 4), n_boot=2000, seed=3)
    assert same == base
    # the same 32 reconstructions from 32 different originals: four times the evidence, a narrower interval
    independent = leak_rate_interval(np.repeat(flags, 4), np.arange(32), n_boot=2000, seed=3)
    assert independent[1] - independent[0] < (base[1] - base[0]) * 0.75
    # two originals, one leaking everything: the interval covers [0, 1] (a row bootstrap would give ~[0.2, 0.8])
    assert leak_rate_interval(np.repeat([True, False], 5), np.repeat(["a", "b"], 5), n_boot=500) == (0.0, 1.0)


def test_the_interval_is_the_cluster_bootstrap_of_the_statistics_module():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 15, 60)
    flags = rng.random(60) < 0.4
    want = percentile_interval([float(flags[idx].mean()) for idx in cluster_bootstrap(ids, 400, 7)])
    assert leak_rate_interval(flags, ids, n_boot=400, seed=7) == pytest.approx(tuple(want))


def test_several_reconstructions_of_one_original_are_one_cluster(folder_report, examples):
    _, orig, rec = examples
    assert folder_report.n_originals == 6
    # a batch with each original repeated for each of its reconstructions: grouped by identical pixels
    rep = leakage_report(orig, rec, n_boot=500, progress=False)
    assert rep.n_originals == 6
    assert rep.interval == folder_report.interval
    # the same through 6 originals and an index
    _, first, index = np.unique(orig.reshape(12, -1), axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # originals in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    rep2 = leakage_report(
        orig[np.sort(first)], rec, original_index=rank[index.reshape(-1)], n_boot=500, progress=False
    )
    np.testing.assert_allclose([r.distance for r in rep2.rows], [r.distance for r in rep.rows], atol=1e-6)
    assert rep2.interval == rep.interval and rep2.n_originals == 6
    # and the interval is the bootstrap over the originals, computed directly
    ids = [r.original_id for r in rep.rows]
    codes = {o: i for i, o in enumerate(dict.fromkeys(ids))}
    assert rep.interval == leak_rate_interval(
        [r.recognised for r in rep.rows], [codes[o] for o in ids], n_boot=500
    )


def test_pt_npz_and_folder_inputs_give_the_same_numbers(tmp_path, folder_report, examples):
    _, orig, rec = examples
    torch.save(
        {"originals": torch.from_numpy(orig), "reconstructions": torch.from_numpy(rec)},
        tmp_path / "attack.pt",
    )
    torch.save(torch.from_numpy(rec).permute(0, 2, 3, 1).float() / 255, tmp_path / "rec.pt")  # NHWC float
    np.savez(tmp_path / "orig.npz", x=orig)  # one array under another name
    uniq_first = sorted(np.unique(orig.reshape(12, -1), axis=0, return_index=True)[1])
    index = [uniq_first.index(next(j for j in uniq_first if (orig[j] == orig[i]).all())) for i in range(12)]
    np.savez(
        tmp_path / "both.npz", gt=orig[uniq_first].transpose(0, 2, 3, 1), x_hat=rec, original_index=index
    )
    reports = [
        leakage_report(tmp_path / "attack.pt", n_boot=500, progress=False),
        leakage_report(tmp_path / "orig.npz", tmp_path / "rec.pt", n_boot=500, progress=False),
        leakage_report(tmp_path / "both.npz", n_boot=500, progress=False),
    ]
    for rep in reports:
        np.testing.assert_allclose(
            [r.distance for r in rep.rows], [r.distance for r in folder_report.rows], atol=1e-6
        )
        np.testing.assert_allclose(
            [r.baselines["SSIM"] for r in rep.rows],
            [r.baselines["SSIM"] for r in folder_report.rows],
            atol=1e-6,
        )
        assert (rep.n_leaked, rep.n_originals, rep.interval) == (
            folder_report.n_leaked,
            6,
            folder_report.interval,
        )
        assert rep.sentence() == folder_report.sentence()


def test_a_dataset_folder_in_the_schema(tmp_path):
    from semsim_metric import semsim
    from semsim_metric.data.loading import load_folder_or_hub
    from semsim_metric.image_io import decode_image
    from tests.annotate_helpers import make_unannotated_dataset

    folder = make_unannotated_dataset(tmp_path / "ds", originals_per_split=2)
    rep = leakage_report(folder, split="test", n_boot=200, progress=False)
    ds = load_folder_or_hub(folder, split="test")
    assert [r.id for r in rep.rows] == list(ds["reconstruction_id"])
    assert rep.n_originals == len(set(ds["original_id"])) == 2
    o = torch.stack([decode_image(v) for v in ds["original"]]).float() / 255
    r = torch.stack([decode_image(v) for v in ds["reconstruction"]]).float() / 255
    p = semsim(r, o, reduction="none", output="probability").numpy()
    np.testing.assert_allclose([row.p_recognised for row in rep.rows], p, atol=1e-5)
    with pytest.raises(LeakageInputError, match="split 'nope'"):
        leakage_report(folder, split="nope", progress=False)


# -- inputs that cannot be used -------------------------------------------------------------------------------


class _NotATensor:
    pass


def _bad(tmp_path, kind):
    rec = np.zeros((4, 1, 8, 8), np.uint8)
    if kind == "pickle":
        path = tmp_path / "rec.pt"
        with path.open("wb") as f:
            pickle.dump({"reconstructions": _NotATensor()}, f)
        return (tmp_path / "orig.npz", path), UnsafeFileError, r"rec\.pt.*weights_only=True"
    if kind == "object-npz":
        path = tmp_path / "rec.npz"
        np.savez(path, reconstructions=np.array([None, 1], dtype=object))
        return (tmp_path / "orig.npz", path), UnsafeFileError, r"rec\.npz.*unpickling"
    if kind == "3d":
        np.save(tmp_path / "rec.npy", rec[:, 0])
        return (
            (tmp_path / "orig.npz", tmp_path / "rec.npy"),
            LeakageInputError,
            r"rec\.npy: images of shape \(4, 8, 8\).*x\[:, None\]",
        )
    if kind == "0-255 floats":
        torch.save(torch.full((4, 3, 8, 8), 200.0), tmp_path / "rec.pt")
        return (
            (tmp_path / "orig.npz", tmp_path / "rec.pt"),
            LeakageInputError,
            r"rec\.pt: float pixels span \[200, 200\].*divide by 255",
        )
    if kind == "int64":
        np.save(tmp_path / "rec.npy", rec.astype(np.int64))
        return (
            (tmp_path / "orig.npz", tmp_path / "rec.npy"),
            LeakageInputError,
            r"rec\.npy: images of dtype int64",
        )
    if kind == "rgba":
        np.save(tmp_path / "rec.npy", np.zeros((4, 8, 8, 4), np.uint8))
        return (
            (tmp_path / "orig.npz", tmp_path / "rec.npy"),
            LeakageInputError,
            r"shape \(4, 8, 8, 4\) has 4 channels",
        )
    if kind == "nan":
        x = torch.rand(4, 1, 8, 8)
        x[0, 0, 0, 0] = float("nan")
        torch.save({"reconstructions": x}, tmp_path / "rec.pt")
        return (tmp_path / "orig.npz", tmp_path / "rec.pt"), LeakageInputError, "1 value\\(s\\) are NaN"
    if kind == "counts":
        np.save(tmp_path / "rec.npy", np.zeros((3, 1, 8, 8), np.uint8))
        return (
            (tmp_path / "orig.npz", tmp_path / "rec.npy"),
            LeakageInputError,
            r"4 originals .* but 3 reconstructions",
        )
    if kind == "sizes":
        np.save(tmp_path / "rec.npy", np.zeros((4, 1, 9, 9), np.uint8))
        return (
            (tmp_path / "orig.npz", tmp_path / "rec.npy"),
            LeakageInputError,
            r"originals are 8x8 .* reconstructions are 9x9",
        )
    if kind == "keys":
        torch.save({"a": torch.zeros(4, 1, 8, 8), "b": torch.zeros(4, 1, 8, 8)}, tmp_path / "attack.pt")
        return (
            (tmp_path / "attack.pt", None),
            LeakageInputError,
            r"attack\.pt holds the keys \['a', 'b'\].*'originals'",
        )
    if kind == "one batch":
        torch.save(torch.zeros(4, 1, 8, 8), tmp_path / "rec.pt")
        return (
            (tmp_path / "rec.pt", None),
            LeakageInputError,
            r"rec\.pt holds one batch.*give the reconstructions as well",
        )
    if kind == "folder and file":
        np.save(tmp_path / "rec.npy", rec)
        return (
            (ORIGINALS, tmp_path / "rec.npy"),
            LeakageInputError,
            "is a folder but the reconstructions are not",
        )
    raise AssertionError(kind)


BAD = [
    "pickle",
    "object-npz",
    "3d",
    "0-255 floats",
    "int64",
    "rgba",
    "nan",
    "counts",
    "sizes",
    "keys",
    "one batch",
    "folder and file",
]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", BAD)
def test_bad_inputs_are_refused_with_a_message_that_names_the_file_and_the_fix(tmp_path, kind):
    np.savez(tmp_path / "orig.npz", originals=np.zeros((4, 1, 8, 8), np.uint8))
    (a, b), err, pattern = _bad(tmp_path, kind)
    with pytest.raises(err, match=pattern) as info:
        leakage_report(a, b, progress=False)
    assert isinstance(info.value, SemSimError)


def test_bad_inputs_through_the_command_are_one_line_errors(tmp_path, capsys):
    from semsim_metric.cli import main

    np.savez(tmp_path / "orig.npz", originals=np.zeros((4, 1, 8, 8), np.uint8))
    (a, b), _, pattern = _bad(tmp_path, "3d")
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("semsim report: error:") and re.search(pattern, err) and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_unpaired_files_are_listed_or_skipped_with_a_note(tmp_path):
    import shutil

    o, r = tmp_path / "o", tmp_path / "r"
    shutil.copytree(ORIGINALS, o)
    shutil.copytree(RECONSTRUCTIONS, r)
    shutil.copy(r / "fmnist-test-00041__00000.png", r / "stray.png")
    with pytest.raises(LeakageInputError, match=r"reconstruction without original: .*stray\.png"):
        load_pairs(o, r)
    pairs = load_pairs(o, r, skip_unpaired=True)
    assert len(pairs) == 12 and "stray.png" in pairs.notes[0]


def test_lpips_is_skipped_with_a_note_without_its_weights_and_shown_with_them(
    tmp_path, monkeypatch, examples
):
    from semsim_metric.evaluation import baselines, leakage

    _, orig, rec = examples
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    rep = leakage_report(orig[:4], rec[:4], n_boot=50, progress=False)
    assert "LPIPS" not in rep.baselines and any(n.startswith("LPIPS not computed") for n in rep.notes)
    assert "LPIPS is shown only when its weights are on this machine" in render_html(rep, histogram=b"")
    # with weights present (here: a stand-in metric), LPIPS is a column of every row and of the page
    fake = baselines.MetricSpec(
        "LPIPS", lambda x, y: (x - y).abs().flatten(1).mean(1), False, needs_weights=("w.pt",)
    )
    monkeypatch.setitem(baselines.BASELINES, "LPIPS", fake)
    monkeypatch.setattr(leakage, "weights_available", lambda files: (True, ""))
    rep = leakage_report(orig[:4], rec[:4], n_boot=50, progress=False)
    assert rep.baselines == ["PSNR", "SSIM", "LPIPS"] and not any("LPIPS" in n for n in rep.notes)
    want = np.abs(orig[:4].astype(np.float32) - rec[:4]).reshape(4, -1).mean(1) / 255
    np.testing.assert_allclose([r.baselines["LPIPS"] for r in rep.rows], want, rtol=1e-5)
    assert "<th>LPIPS</th>" in render_html(rep, histogram=b"")


# -- the page and the command ---------------------------------------------------------------------------------

_EXTERNAL = re.compile(r"""(?:src|href|action|srcset)\s*=\s*["']?\s*(?:https?:|//|file:)""", re.IGNORECASE)


def test_the_command_writes_a_self_contained_page_a_figure_and_json(tmp_path, folder_report, capsys):
    from semsim_metric.cli import main

    out = tmp_path / "report.html"
    assert (
        main(
            [
                "report",
                str(ORIGINALS),
                str(RECONSTRUCTIONS),
                "--out",
                str(out),
                "--json",
                str(tmp_path / "r.json"),
                "--bootstrap",
                "500",
            ]
        )
        == 0
    )
    text = out.read_text()
    assert folder_report.sentence() in capsys.readouterr().out
    assert not _EXTERNAL.search(text) and "<script" not in text.lower() and "<link" not in text.lower()
    assert "http://" not in text and "https://" not in text and "url(" not in text
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert text.count('class="px rec"') == 12 and text.count('class="px orig"') == 12
    assert f"<b>{folder_report.sentence()}</b>" in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert "human" not in text.lower()  # the calibration's annotators are model judges
    assert "vision-language-model judges" in text
    assert text.count('<tr class="flag">') == sum(folder_report.disagreements.values())
    with Image.open(tmp_path / "report.png") as img:
        assert img.info.get("Software") == GENERATOR and img.size[0] > 400
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["sentence"] == folder_report.sentence() and len(data["rows"]) == 12
    assert data["interval"] == list(folder_report.interval)
    # a second run replaces its own files; someone else's file is refused
    assert main(["report", str(ORIGINALS), str(RECONSTRUCTIONS), "--out", str(out), "--bootstrap", "50"]) == 0
    other = tmp_path / "notes.html"
    other.write_text("<p>mine</p>")
    assert main(["report", str(ORIGINALS), str(RECONSTRUCTIONS), "--out", str(other)]) == 2
    assert (
        "was not written by a leakage report" in capsys.readouterr().err
        and other.read_text() == "<p>mine</p>"
    )


def test_a_long_report_shows_the_ends_and_lists_everything(folder_report):
    text = render_html(folder_report, gallery_limit=4, histogram=b"")
    assert text.count('class="px rec"') == 4
    assert "8 reconstructions with p between" in text
    assert text.count("<tr") == 12 + 1  # every row in the table


def test_report_help_imports_neither_torch_nor_transformers():
    code = (
        "from semsim_metric.cli import main\ntry:\n    main(['report', '--help'])\nexcept SystemExit:\n    pass\n"
        "import sys; print('MODULES:', *sorted(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = set(next(ln for ln in out.stdout.splitlines() if ln.startswith("MODULES:")).split()[1:])
    assert "torch" not in loaded and "transformers" not in loaded
    assert "--out" in out.stdout


@pytest.mark.slow
def test_the_page_opens_in_headless_chromium(tmp_path, monkeypatch):
    from tests.helpers import chromium_path

    chromium = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.chdir(ROOT)  # the page names its inputs as given: as in the docs' command
    report = leakage_report("examples/originals", "examples/reconstructions", progress=False)
    html_path, _ = write_leakage_report(report, tmp_path / "report.html")
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1350})
            page.on("request", lambda req: requests.append(req.url))
            page.goto(html_path.as_uri())
            page.wait_for_function(
                "() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
            )
            assert page.inner_text("#rate") == report.sentence()
            assert page.locator("img.rec").count() == report.n == 12
            assert page.locator("img.orig").count() == 12
            widths = page.eval_on_selector_all(
                "img.rec", "els => els.map(e => e.getBoundingClientRect().width)"
            )
            assert min(widths) > 28 * 2  # upscaled from 28 px
            rendering = page.eval_on_selector("img.rec", "e => getComputedStyle(e).imageRendering")
            assert rendering == "pixelated"
            assert page.locator("tr.flag").count() == sum(report.disagreements.values())
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "leakage-report.png"))
            if os.environ.get("SEMSIM_DOCS_SCREENSHOTS"):  # refresh the docs' picture
                page.screenshot(path=str(ROOT / "docs" / "img" / "leakage-report.png"))
        finally:
            browser.close()
    assert requests == [html_path.as_uri()]  # nothing but the page itself was fetched


@pytest.mark.filterwarnings("ignore::semsim_metric.domain.OutOfDomainWarning")
def test_images_unlike_the_training_data_get_a_note_in_every_report():
    noise = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for _ in range(2):  # the Python warning comes once per process; the report's note every time
        rep = leakage_report(noise, noise.clone(), n_boot=50, progress=False)
        assert any("out of the model's training domain (content)" in n for n in rep.notes), rep.notes
    big = torch.rand(2, 1, 40, 40)
    rep = leakage_report(big, big.clone(), n_boot=50, progress=False)
    assert any("(size): the originals are 40x40" in n for n in rep.notes), rep.notes
