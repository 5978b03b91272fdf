"""Issue 23: the faster scoring paths give the same scores (dedup of repeated originals) or scores within the
documented tolerance (bf16 autocast: |d - d_float32| <= 0.01)."""

from __future__ import annotations

import torch


def test_dedup_of_repeated_originals_and_bf16_scoring_stay_within_tolerance(tiny_model, tmp_path):
    """Each distinct original embedded once gives the same distances; bf16 autocast moves them by at most 0.01."""
    from PIL import Image

    from semsim_metric.functional import _semsim_update, score_file_pairs

    torch.manual_seed(0)
    originals = torch.rand(3, 3, 32, 32)
    target = originals[torch.arange(12) % 3]
    preds = (target + 0.2 * torch.randn_like(target)).clamp(0, 1)
    with torch.inference_mode():
        ref = _semsim_update(preds, target, tiny_model, check_domain=False)
        dedup = _semsim_update(preds, target, tiny_model, check_domain=False, dedup_target=True)
    torch.testing.assert_close(dedup, ref, atol=1e-5, rtol=0)
    pairs = []
    for i in range(6):
        o, r = tmp_path / f"o{i % 2}.png", tmp_path / f"r{i}.png"
        Image.fromarray((originals[i % 2].permute(1, 2, 0).numpy() * 255).astype("uint8")).save(o)
        Image.fromarray((preds[i].permute(1, 2, 0).numpy() * 255).astype("uint8")).save(r)
        pairs.append((o, r))
    exact = [row.distance for row in score_file_pairs(pairs, tiny_model, progress=False, bf16=False).rows]
    fast = [row.distance for row in score_file_pairs(pairs, tiny_model, progress=False, bf16=True).rows]
    assert max(abs(a - b) for a, b in zip(exact, fast)) <= 0.01
