"""Decoding never amplifies memory: a large file is reduced while it is read, wide pixels are converted in
narrow integers, and `semsim score` holds one decoded file at a time, however many files it scores.

Peak memory is measured in a fresh subprocess (``ru_maxrss``), because a process's high-water mark never
goes down. Importing torch alone takes about 0.5 GB here, so the bounds are on the increase over what the
imports took.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semsim_metric.image_io import load_image, load_image_for_model, read_side
from semsim_metric.preprocessing import stack_at_model_size

#: the largest difference in SemSim distance between reading a file reduced and reading it whole (both
#: through the same input gate), measured <= 0.0015 for PNG and <= 0.0041 for JPEG (docs/benchmarks.md)
SCORE_TOLERANCE = 0.005

_PEAK = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
)


def _peak_mb(stderr: str) -> float:
    return int(next(line.split()[1] for line in stderr.splitlines() if line.startswith("PEAK_KB"))) / 1024


def _run(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-c", _PEAK + code, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _sixteen_bit_png(path: Path, side: int = 9000) -> None:
    """A 16-bit greyscale PNG of ``side`` x ``side`` that compresses to under a megabyte (the reproducer)."""
    a = np.zeros((side, side), dtype=np.uint16)
    a[::7, :] = 40000
    a[:, ::13] = 1234
    a[side // 3 : 2 * side // 3, side // 4 : side // 2] = 65535
    Image.fromarray(a).save(path, compress_level=1)


def test_a_9000_px_16_bit_png_is_decoded_without_amplifying_memory_and_scores_as_before(tmp_path):
    """Issue 21: a 16-bit 9000x9000 PNG took 2.7 GB (int64 and float64 copies of every pixel)."""
    path = tmp_path / "wide.png"
    _sixteen_bit_png(path)
    code = textwrap.dedent("""
        import json, resource, sys
        import torch
        from semsim_metric.functional import get_model
        from semsim_metric.functional import semsim
        from semsim_metric.image_io import load_image, load_image_for_model
        from semsim_metric.preprocessing import stack_at_model_size
        model = get_model(None)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        read = load_image_for_model(sys.argv[1], model.config.image_size)
        reduced_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
        full = load_image(sys.argv[1])
        full_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
        # afterwards (memory no longer measured): the gate on the whole file, as every version before read it
        size = model.config.image_size
        a = stack_at_model_size([read.pixels], data_range=255, image_size=size)
        del read
        b = stack_at_model_size([full], data_range=255, image_size=size)
        dist = float(semsim(a, b, model=model, data_range=1.0, check_domain=False))
        print(json.dumps({"reduced_mb": reduced_mb, "full_mb": full_mb, "dist": dist,
                          "pixels": float((a - b).abs().max()) * 255, "full_shape": list(full.shape)}))
    """)
    result = json.loads(_run(code, str(path)).stdout.strip().splitlines()[-1])
    assert result["full_shape"] == [1, 9000, 9000]
    # the decoded file is 162 MB (2 bytes a pixel) and its 8-bit copy 81 MB; before: 2,160 MB more
    assert result["reduced_mb"] < 300, result
    assert result["full_mb"] < 400, result
    assert result["dist"] <= SCORE_TOLERANCE and result["pixels"] < 2, result


def _big_pairs(folder: Path, n: int, side: int = 2000) -> tuple[Path, Path]:
    """``n`` pairs of ``side`` x ``side`` RGB PNGs (two distinct images, copied)."""
    o, r = folder / f"o{n}", folder / f"r{n}"
    o.mkdir()
    r.mkdir()
    src = folder / "src"
    if not src.exists():
        src.mkdir()
        rng = np.random.default_rng(0)
        for k in range(2):
            a = np.zeros((side, side, 3), dtype=np.uint8)
            a[..., k] = 200
            a[side // 4 : side // 2, side // 3 :] = rng.integers(0, 256, 3)
            Image.fromarray(a).save(src / f"o{k}.png", compress_level=1)
            Image.fromarray(255 - a).save(src / f"r{k}.png", compress_level=1)
    for i in range(n):
        shutil.copyfile(src / f"o{i % 2}.png", o / f"{i:03d}.png")
        shutil.copyfile(src / f"r{i % 2}.png", r / f"{i:03d}.png")
    return o, r


def test_semsim_score_peak_memory_is_flat_in_the_number_of_files(tmp_path, tiny_model_dir):
    """Issue 21: `semsim score` decoded a whole batch at full size before resizing (3.8 GB for 16 pairs)."""
    code = "from semsim_metric.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    peaks = {}
    for n in (2, 16):
        o, r = _big_pairs(tmp_path, n)
        out = _run(
            code, "score", str(o), str(r), "--model", str(tiny_model_dir), "--quiet", "--no-domain-check"
        )
        assert f"mean SemSim over {n} pairs" in out.stdout
        peaks[n] = _peak_mb(out.stderr)
    # one 2000x2000 RGB file decodes to 16 MB; 14 more pairs decoded at once would add over 1 GB
    assert peaks[16] - peaks[2] < 100, peaks
    assert peaks[16] < 1.15 * peaks[2], peaks


def test_a_file_is_reduced_while_read_and_keeps_its_own_shape(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (1000, 4000, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "wide.png", compress_level=1)
    read = load_image_for_model(tmp_path / "wide.png", 32)
    assert read.shape == (3, 1000, 4000)
    # 4000 = 7 x 572 (the largest whole factor that keeps 512); 1000 < 2 x 512 stays
    assert read.pixels.dtype == torch.uint8 and tuple(read.pixels.shape) == (3, 1000, 572)
    assert read_side(32) == 512 and read_side(300) == 1200
    small = rng.integers(0, 256, (600, 1000), dtype=np.uint8)  # both sides below 2 x 512: read exactly
    Image.fromarray(small).save(tmp_path / "small.png")
    assert torch.equal(
        load_image_for_model(tmp_path / "small.png", 32).pixels, load_image(tmp_path / "small.png")
    )
    with pytest.raises(ValueError, match="image_size"):
        load_image_for_model(tmp_path / "small.png", 0)


def _gate(x: torch.Tensor) -> torch.Tensor:
    return stack_at_model_size([x], data_range=255, image_size=32)


def _scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients, flat rectangles and mild noise (what images look like, roughly)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    a = np.stack([np.sin(6 * xx + 1), np.cos(5 * yy), np.sin(27 * xx * yy)], -1) * 127 + 128
    for _ in range(20):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        s = rng.integers(min(h, w) // 20, min(h, w) // 4)
        a[y0 : y0 + s, x0 : x0 + s] = rng.integers(0, 256, 3)
    return np.clip(a + rng.normal(0, 10, a.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_reduced_reading_scores_as_reading_the_whole_file(tmp_path, fmt):
    from semsim_metric import semsim
    from semsim_metric.functional import get_model

    path = tmp_path / f"scene.{fmt}"
    Image.fromarray(_scene(1100, 1300)).save(path, quality=95)
    read, whole = load_image_for_model(path, 32), load_image(path)
    assert read.shape == tuple(whole.shape) and read.pixels.shape[1:] == (550, 650)  # JPEG: in the decoder
    a, b = _gate(read.pixels), _gate(whole)
    dist = float(semsim(a, b, model=get_model(None), data_range=1.0, check_domain=False))
    assert dist <= SCORE_TOLERANCE and float((a - b).abs().max()) < 3 / 255


def test_exif_orientation_is_applied_to_a_reduced_image(tmp_path):
    arr = np.zeros((1100, 2200), dtype=np.uint8)
    arr[:550, :1100] = 255  # the top-left quarter is white
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    img.save(tmp_path / "rotated.png", exif=exif)
    read = load_image_for_model(tmp_path / "rotated.png", 32)
    whole = load_image(tmp_path / "rotated.png")
    assert read.shape == tuple(whole.shape) == (1, 2200, 1100)
    assert float((_gate(read.pixels) - _gate(whole)).abs().max()) < 2 / 255


def test_the_pixel_rules_hold_for_the_whole_file_when_it_is_reduced(tmp_path, monkeypatch):
    wide = np.full((1100, 1100), 1000, dtype=np.int32)
    wide[5, 5] = 70000  # one pixel outside 0..65535: averaging must not hide it
    Image.fromarray(wide, mode="I").save(tmp_path / "wide.tif")
    with pytest.raises(ValueError, match="outside 0..65535"):
        load_image_for_model(tmp_path / "wide.tif", 32)
    rgba = np.full((1100, 1100, 4), 255, dtype=np.uint8)
    rgba[7, 7, 3] = 0  # one transparent pixel
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    with pytest.raises(ValueError, match="transparent pixels"):
        load_image_for_model(tmp_path / "alpha.png", 32)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # 1100 x 1100 > 2 x 100,000: a bomb here
    Image.new("L", (1100, 1100)).save(tmp_path / "bomb.png")
    with pytest.raises(OSError, match="bomb.png.*refused to protect memory"):
        load_image_for_model(tmp_path / "bomb.png", 32)


def test_semsim_score_compares_the_files_sizes_not_the_reduced_ones(tmp_path, tiny_model_dir, capsys):
    from semsim_metric.cli import main

    o, r = tmp_path / "o", tmp_path / "r"
    o.mkdir()
    r.mkdir()
    Image.new("L", (4088, 40), 100).save(o / "a.png")
    Image.new("L", (4087, 40), 100).save(r / "a.png")  # both are read as 584 x 40: the files still differ
    assert (
        load_image_for_model(o / "a.png", 32).pixels.shape
        == load_image_for_model(r / "a.png", 32).pixels.shape
    )
    assert main(["score", str(o), str(r), "--model", str(tiny_model_dir), "--quiet"]) == 2
    assert "size mismatch" in capsys.readouterr().err


def test_semsim_score_warns_with_the_files_size_not_the_reduced_one(tmp_path, tiny_model_dir, capsys):
    from semsim_metric.cli import main

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["training_domain"] = {"description": "test", "n": 2, "channels": [1], "image_sizes": [[28, 28]]}
    (model / "config.json").write_text(json.dumps(cfg))
    o, r = tmp_path / "o", tmp_path / "r"
    o.mkdir()
    r.mkdir()
    Image.fromarray(_scene(1100, 1200)).save(o / "a.png")
    Image.fromarray(_scene(1100, 1200, seed=1)).save(r / "a.png")
    assert main(["score", str(o), str(r), "--model", str(model), "--quiet"]) == 0
    messages = capsys.readouterr().err  # the command prints each warning as one line
    assert "1100x1200" in messages and "colour" in messages


def test_semsim_score_still_compares_the_originals_content_with_the_training_domain(
    score_folders, tmp_path, tiny_model_dir, capsys
):
    from semsim_metric.cli import main
    from semsim_metric.models import SemSimModel

    dim = SemSimModel.from_pretrained(tiny_model_dir).embed(torch.zeros(1, 3, 32, 32)).shape[1]
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["training_domain"] = {
        "description": "test",
        "n": 2,
        "channels": [1],
        "image_sizes": [[28, 28]],
        "embedding_mean": [1.0] + [0.0] * (dim - 1),
        "similarity_q01": 0.9999,
        "similarity_median": 1.0,
    }
    (model / "config.json").write_text(json.dumps(cfg))
    assert main(["score", *map(str, score_folders), "--model", str(model), "--quiet"]) == 0
    messages = capsys.readouterr().err  # the command prints each warning as one line
    assert "look unlike test" in messages and "28x28" not in messages  # the files are 28x28: in the domain
