"""Progress bars and log messages that behave in a terminal and in a piped log alike.

Bars are drawn only when stderr is a terminal (a piped or redirected log gets no carriage-return noise);
``progress=False`` turns them off everywhere. Steps without a bar log a line through ``logging``
(logger ``semsim_metric``); the ``semsim`` command shows them (``--quiet`` hides them, ``--verbose`` adds
debug detail).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

__all__ = ["bar_disabled", "configure_cli_logging", "logger", "quiet_datasets_bars", "show_bars"]

logger = logging.getLogger("semsim_metric")


def show_bars(progress: bool = True) -> bool:
    """Whether to draw progress bars: asked for, and stderr is a terminal."""
    return bool(progress) and sys.stderr.isatty()


def bar_disabled(progress: bool = True) -> bool:
    """tqdm's ``disable`` argument for ``show_bars``."""
    return not show_bars(progress)


@contextlib.contextmanager
def quiet_datasets_bars() -> Iterator[None]:
    """Hide ``datasets``' own bars ("Creating parquet from Arrow format") inside the package's steps."""
    try:
        from datasets.utils import logging as ds_logging
    except ImportError:  # the core install has no datasets
        yield
        return
    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            ds_logging.enable_progress_bar()


def configure_cli_logging(verbosity: int) -> None:
    """``semsim`` command logging: -1 = quiet (warnings only), 0 = steps (info), 1 = debug."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    logger.setLevel(level)
    if not any(getattr(h, "_semsim", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("semsim: %(message)s"))
        handler._semsim = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
