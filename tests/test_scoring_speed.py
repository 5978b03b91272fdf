"""Issue 23: the faster scoring paths give the same scores (dedup of repeated originals) or scores within the
documented tolerance (bf16 autocast: |d - d_float32| <= 0.01)."""

from __future__ import annotations

import pytest
import torch

from semsim_metric.errors import InvalidInputError


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


def test_the_scoring_copy_folds_every_batchnorm_and_scores_the_same(tiny_model):
    """``scoring_copy`` folds the BatchNorms into their convolutions (none is left), leaves the caller's model as it
    was, and gives the same distances up to float rounding, with BatchNorm statistics far from the identity."""
    import copy

    from semsim_metric.functional import _semsim_update, scoring_copy

    model = copy.deepcopy(tiny_model)
    generator = torch.Generator().manual_seed(0)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        n = bn.num_features
        bn.running_mean.copy_(torch.randn(n, generator=generator))
        bn.running_var.copy_(torch.rand(n, generator=generator) + 0.1)
        bn.weight.data.copy_(torch.randn(n, generator=generator))
        bn.bias.data.copy_(torch.randn(n, generator=generator))
    batchnorms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    fast = scoring_copy(model)
    assert batchnorms > 10
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == batchnorms
    preds, target = torch.rand(2, 6, 3, 32, 32, generator=generator)
    with torch.inference_mode():
        ref = _semsim_update(preds, target, model, check_domain=False)
        got = _semsim_update(preds, target, fast, check_domain=False)
    assert float(ref.std()) > 1e-3  # the distances differ from pair to pair: the comparison means something
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


def test_embedding_in_chunks_gives_the_embeddings_of_the_whole_batch(tiny_model):
    """``embed_chunk_size`` splits a larger eval-mode batch into equal chunks of at most that many images without
    changing a single embedding; the scoring copy uses it, and the caller's model keeps whole batches."""
    import copy

    from semsim_metric.functional import SCORING_CHUNK_SIZE, scoring_copy

    model = copy.deepcopy(tiny_model).eval()
    x = torch.randn(10, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    calls = []
    model.backbone.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    with torch.inference_mode():
        whole = model.embed(x)
        model.embed_chunk_size = 4
        chunked = model.embed(x)
    assert calls == [10, 4, 3, 3]
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)
    assert tiny_model.embed_chunk_size is None
    assert scoring_copy(tiny_model).embed_chunk_size == SCORING_CHUNK_SIZE
    for bad in (0, -3, 2.5, True, "64"):
        with pytest.raises(InvalidInputError, match="embed_chunk_size"):
            model.embed_chunk_size = bad
