"""Warnings that point at the user's line, not at a line of this package or of the libraries it runs inside.

``warnings.warn(..., stacklevel=N)`` needs the number of frames between the warning and the user's code, and that
number changes with the way in: ``semsim()`` is one frame from the user, ``SemSim.update`` inside
``metric(preds, target)`` is five (``torchmetrics.Metric.forward`` and ``torch.nn.Module.__call__`` sit between).
A fixed ``stacklevel`` therefore points at ``torchmetrics/metric.py`` for one of them. ``warn_at_caller`` walks the
stack instead, to the first frame whose module belongs to none of ``INTERNAL_PACKAGES`` (what
``warnings.warn(skip_file_prefixes=...)`` does on Python 3.12+), so the warning names the user's script line
whichever way it was reached.
"""

from __future__ import annotations

import sys
import warnings

__all__ = ["INTERNAL_PACKAGES", "caller_stacklevel", "warn_at_caller"]

#: top-level packages whose frames a warning skips: this package and the frameworks that call into it
INTERNAL_PACKAGES = frozenset(
    {
        "semsim_metric",
        "torch",
        "torchmetrics",
        "lightning",
        "pytorch_lightning",
        "lightning_fabric",
        "lightning_utilities",
    }
)


def _internal(frame: object) -> bool:
    name = getattr(frame, "f_globals", {}).get("__name__") or ""
    return name.split(".", 1)[0] in INTERNAL_PACKAGES


def caller_stacklevel(skip: int = 1) -> int:
    """The ``stacklevel`` that makes a ``warnings.warn`` call point at the first frame outside the internal packages.

    Args:
        skip: frames between the ``warnings.warn`` call and this call's caller (1: ``warnings.warn`` is called by the
            function that calls ``caller_stacklevel``).

    Returns:
        The stacklevel to pass to ``warnings.warn`` from the caller's frame (at least 1; the outermost frame when
        every frame is internal).

    Examples:
        >>> caller_stacklevel() >= 1
        True
    """
    frame = sys._getframe(skip)
    level = 1
    while frame is not None and _internal(frame) and frame.f_back is not None:
        frame = frame.f_back
        level += 1
    return level


def warn_at_caller(message: str | Warning, category: type[Warning] | None = None) -> None:
    """``warnings.warn(message, category)`` attributed to the user's line (see the module's docstring).

    Examples:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_at_caller("careful", UserWarning)
        >>> str(caught[0].message), caught[0].category.__name__
        ('careful', 'UserWarning')
    """
    warnings.warn(message, category, stacklevel=caller_stacklevel(2) + 1)
