"""What a SemSim model was trained on, and a warning when inputs fall far outside it.

A trained model records ``config.training_domain``: the channel counts and sizes of its annotated
training originals and a summary of their embeddings (the mean direction and how similar 99% of the
originals are to it). The metric, the loss, ``semsim_metric.semsim`` and ``semsim score`` compare
each batch of originals with it and warn once (``OutOfDomainWarning``), naming what differs, when:

* the originals have a channel count or a size that no training original had, or
* the median similarity of their embeddings to the training mean is below what 99% of the training
  originals reach - the images look unlike anything the model learnt from.

Scores are still computed; the calibration (``output="probability"``) is least trustworthy there.
Silence the check with ``check_domain=False`` (``semsim score --no-domain-check``) or with
``warnings.filterwarnings("ignore", category=OutOfDomainWarning)``. The warning names the line of the caller's
code that scored (not a line of this package or of torchmetrics), and its last sentence names the switch of where
it came from: ``check_domain=False`` in Python, ``--no-domain-check`` on the ``semsim`` command line
(``OutOfDomainWarning.problem`` holds the difference alone, ``out_of_domain_message`` words it).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from ._warnings import warn_at_caller

__all__ = [
    "PYTHON_SWITCH",
    "OutOfDomainWarning",
    "check_domain",
    "domain_problems",
    "image_fingerprint",
    "out_of_domain_message",
    "seen_originals",
    "summarise_domain",
]

#: how the warning says to silence it in Python (the ``semsim`` command names its own flag instead)
PYTHON_SWITCH = "check_domain=False"

#: (id of a model's config, kind) for every warning given; an entry leaves with its config (``_remember``), so a new
#: config that Python gives the id of a collected one still gets its warnings
_WARNED: set[tuple[int, str]] = set()
_KINDS = ("channels", "size", "content")


def _remember(config: Any, key: tuple[int, str]) -> None:
    """Record a warning given for ``config``, until ``config`` is collected (ids are reused after that)."""
    _WARNED.add(key)
    weakref.finalize(config, _WARNED.discard, key)


class OutOfDomainWarning(UserWarning):
    """Inputs differ from what the SemSim model was trained on (scores may not mean what they say).

    Attributes:
        problem: what differs, without advice (``None`` for a warning made from a message alone); the
            ``semsim`` command words it again with its own switch (``out_of_domain_message``).
    """

    def __init__(self, message: str = "", problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem


def out_of_domain_message(problem: str, switch: str = PYTHON_SWITCH) -> str:
    """The ``OutOfDomainWarning`` message for ``problem``, naming ``switch`` as the way to silence it.

    Examples:
        >>> out_of_domain_message("the originals are colour", "--no-domain-check").split(". ")[-1]
        'Silence with --no-domain-check.'
    """
    return (
        f"SemSim inputs outside the training domain: {problem}. Scores (and above all "
        f"output='probability') may not mean what they say here. Silence with {switch}."
    )


def image_fingerprint(image: Tensor, *, form: Literal["domain", "pretrain-cache"] = "domain") -> str:
    """A content hash of a decoded image ``(C, H, W)`` (its shape and pixels), the same whatever file format or
    dataset it came from: the package's one image hasher.

    Two persisted forms, kept as they were written so that existing records and caches stay valid:
    ``"domain"`` (the ``original_fingerprints`` of a model's ``training_domain``): 16 hex digits of the image as
    uint8; ``"pretrain-cache"`` (stage 1's leakage guard and its cache key): the full SHA-1 of the pixels as
    stored (no dtype cast) followed by the shape (also the leakage report's grouping of identical originals).

    Examples:
        >>> image_fingerprint(torch.zeros(1, 2, 2, dtype=torch.uint8))
        '75442c17e2e284c5'
        >>> len(image_fingerprint(torch.zeros(1, 2, 2, dtype=torch.uint8), form="pretrain-cache"))
        40
    """
    import hashlib

    if form == "pretrain-cache":
        arr = image.detach().cpu().contiguous()
        return hashlib.sha1(arr.numpy().tobytes() + str(tuple(arr.shape)).encode()).hexdigest()
    if form != "domain":
        raise ValueError(f"form must be 'domain' or 'pretrain-cache', got {form!r}")
    arr = image.detach().cpu().to(torch.uint8).contiguous()
    head = ",".join(str(int(v)) for v in arr.shape).encode()
    return hashlib.sha1(head + b":" + arr.numpy().tobytes()).hexdigest()[:16]


def seen_originals(config: Any, images: Sequence[Tensor]) -> int:
    """How many of ``images`` (decoded uint8 originals) the model was trained on, from the fingerprints in
    ``config.training_domain`` (0 for models without them)."""
    domain = getattr(config, "training_domain", None) or {}
    known = set(domain.get("original_fingerprints") or ())
    return sum(image_fingerprint(img) in known for img in images) if known else 0


def summarise_domain(
    images: Sequence[Tensor], embeddings: Tensor, *, description: str = ""
) -> dict[str, Any]:
    """The ``training_domain`` record of a model from its training originals.

    Args:
        images: the originals as ``(C, H, W)`` tensors (their channel counts and sizes are recorded).
        embeddings: their L2-normalised embeddings ``(N, D)``.
        description: what the images are (e.g. the dataset name), kept for messages.

    Examples:
        >>> emb = torch.nn.functional.normalize(torch.randn(50, 8) + 3, dim=1)
        >>> d = summarise_domain([torch.zeros(1, 28, 28)] * 50, emb, description="toy")
        >>> d["channels"], d["image_sizes"], len(d["embedding_mean"])
        ([1], [[28, 28]], 8)
    """
    emb = embeddings.detach().float().cpu()
    mean = torch.nn.functional.normalize(emb.mean(0), dim=0)
    sim = emb @ mean
    return {
        "description": description,
        "n": len(images),
        "channels": sorted({int(i.shape[0]) for i in images}),
        "image_sizes": [list(s) for s in sorted({(int(i.shape[1]), int(i.shape[2])) for i in images})],
        "embedding_mean": [round(float(v), 6) for v in mean],
        "similarity_q01": float(torch.quantile(sim, 0.01)),
        "similarity_median": float(sim.median()),
        # which originals it saw: evaluation refuses in-sample numbers unless asked (see seen_originals)
        "original_fingerprints": sorted(image_fingerprint(i) for i in images if i.dtype == torch.uint8),
    }


def domain_problems(
    domain: dict[str, Any], originals: Tensor, embeddings: Tensor | None = None
) -> list[tuple[str, str]]:
    """``(kind, message)`` for each way a batch of originals ``(N, C, H, W)`` differs from ``domain``."""
    problems = []
    what = domain.get("description") or "its training images"
    channels = [int(c) for c in domain.get("channels", [])]
    if channels and int(originals.shape[1]) not in channels:
        kinds = {1: "greyscale", 3: "colour"}
        problems.append(
            (
                "channels",
                f"the originals are {kinds.get(int(originals.shape[1]), originals.shape[1])} "
                f"but the model was trained on {'/'.join(kinds.get(c, str(c)) for c in channels)} "
                f"images ({what})",
            )
        )
    sizes = [tuple(s) for s in domain.get("image_sizes", [])]
    size = (int(originals.shape[2]), int(originals.shape[3]))
    if sizes and size not in sizes:
        problems.append(
            (
                "size",
                f"the originals are {size[0]}x{size[1]} but the model was trained on "
                f"{', '.join(f'{h}x{w}' for h, w in sizes)} images ({what})",
            )
        )
    if embeddings is not None and domain.get("embedding_mean"):
        mean = torch.tensor(domain["embedding_mean"], dtype=torch.float32, device=embeddings.device)
        # the record summarises the network's part of the embedding (its leading values): a model with a layout part
        # (config.layout_weight) has more, and the layout says nothing about what kind of image this is
        if mean.numel() <= embeddings.shape[1]:
            median = float((embeddings[:, : mean.numel()].detach().float() @ mean).median())
            if median < domain["similarity_q01"]:
                problems.append(
                    (
                        "content",
                        f"the originals look unlike {what}: the median similarity of their "
                        f"embeddings to the training mean is {median:.4f}, while 99% of the "
                        f"training originals reach {domain['similarity_q01']:.4f}",
                    )
                )
    return problems


def check_domain(config: Any, originals: Tensor, embeddings: Tensor | None = None) -> None:
    """Warn once per model and kind of difference (``OutOfDomainWarning``) when ``originals`` fall
    outside ``config.training_domain``; models without a record are not checked."""
    domain = getattr(config, "training_domain", None)
    if not domain:
        return
    if all((id(config), kind) in _WARNED for kind in _KINDS):
        return  # every kind has been reported for this model: nothing left to compute on the hot path
    if embeddings is not None and (id(config), "content") in _WARNED:
        embeddings = None  # the content check reads the embeddings (a GPU sync): only until it has warned
    for kind, message in domain_problems(domain, originals, embeddings):
        key = (id(config), kind)
        if key in _WARNED:
            continue
        _remember(config, key)
        # attributed to the caller's line, however many frames (torchmetrics' forward, nn.Module) lie between
        warn_at_caller(OutOfDomainWarning(out_of_domain_message(message), problem=message))
