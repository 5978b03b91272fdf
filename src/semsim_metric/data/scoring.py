"""Scoring every (reconstruction, original) pair of a dataset split, in batches: the one loop that
training validation, evaluation and model cards share.

A *scorer* is any function ``scorer(preds, target) -> (N,)`` on float images in ``[0, 1]``; SemSim
models become scorers through ``semsim_scorer`` (they go through the input gate like every other
input). Images are decoded batch by batch, so a split never has to fit in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._progress import bar_disabled
from ..functional import _semsim_update, scoring_copy
from ..image_io import decode_image, stack_images
from ..models import SemSimModel

__all__ = ["Scorer", "iter_pair_batches", "score_pairs", "semsim_scorer"]

Scorer = Callable[[Tensor, Tensor], Tensor]


def iter_pair_batches(ds: Any, batch_size: int = 256) -> Iterator[tuple[Tensor, Tensor]]:
    """``(reconstructions, originals)`` float batches in ``[0, 1]`` over the rows of a schema split, in order.

    Rows of several image domains (sizes or channel counts) come in consecutive batches of one shape each,
    so every pair keeps its own size, as when it is scored alone."""
    import itertools

    cols = ds.select_columns(["original", "reconstruction"])
    for start in range(0, len(ds), batch_size):
        chunk = cols[start : start + batch_size]
        pairs = [
            (decode_image(r), decode_image(o)) for r, o in zip(chunk["reconstruction"], chunk["original"])
        ]
        for _, run in itertools.groupby(pairs, key=lambda p: (tuple(p[0].shape), tuple(p[1].shape))):
            both = stack_images([v for pair in run for v in pair]).float() / 255
            yield both[0::2], both[1::2]


def semsim_scorer(model: SemSimModel) -> Scorer:
    """The SemSim distance of ``model`` as a scorer: float images in ``[0, 1]`` in, distances in ``[0, 2]``
    out (lower = more leakage); inputs are moved to the model's device."""
    device = next(model.parameters()).device
    model = scoring_copy(model)  # folded BatchNorms, channels-last weights on a CPU: faster, the same numbers

    def score(preds: Tensor, target: Tensor) -> Tensor:
        return _semsim_update(preds.to(device), target.to(device), model, data_range=1.0, dedup_target=True)

    return score


def score_pairs(
    ds: Any,
    scorers: dict[str, Scorer],
    *,
    batch_size: int = 256,
    failed: dict[str, str] | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Per-row values of each scorer on a split in the SemSim schema.

    Args:
        ds: a ``datasets.Dataset`` with ``original`` and ``reconstruction`` columns.
        scorers: name -> scorer.
        batch_size: pairs per batch.
        failed: when given, a scorer that raises is dropped and its error recorded here
            (``name -> reason``) instead of stopping the whole run.
        progress: show a progress bar.

    Examples:
        >>> import datasets, numpy as np
        >>> from PIL import Image
        >>> img = Image.fromarray(np.zeros((8, 8), dtype=np.uint8))
        >>> ds = datasets.Dataset.from_dict({"original": [img], "reconstruction": [img]},
        ...     features=datasets.Features({"original": datasets.Image(), "reconstruction": datasets.Image()}))
        >>> score_pairs(ds, {"MSE": lambda p, t: (p - t).pow(2).flatten(1).mean(1)})["MSE"].tolist()
        [0.0]
    """
    from tqdm.auto import tqdm

    active = dict(scorers)
    out: dict[str, list[np.ndarray]] = {name: [] for name in active}
    batches = iter_pair_batches(ds, batch_size)
    total = -(-len(ds) // batch_size)
    with torch.inference_mode():
        for preds, target in tqdm(
            batches, total=total, desc="scoring pairs", unit="batch", disable=bar_disabled(progress)
        ):
            for name, fn in list(active.items()):
                try:
                    values = fn(preds, target)
                except Exception as err:
                    if failed is None:
                        raise
                    failed[name] = f"failed: {type(err).__name__}: {err}"
                    del active[name]
                    out.pop(name)
                    continue
                out[name].append(values.detach().float().reshape(-1).cpu().numpy())
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}
