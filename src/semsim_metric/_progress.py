"""Progress bars and log messages that behave in a terminal and in a piped log alike.

Bars are drawn only when stderr is a terminal (a piped or redirected log gets no carriage-return noise);
``progress=False`` turns them off everywhere. Steps without a bar log a line through ``logging``
(logger ``semsim_metric``); the ``semsim`` command shows them (``--quiet`` hides them, ``--verbose`` adds
debug detail). ``Progress`` / ``track`` give a long loop both: the bar in a terminal, and in a piped log a line at
most every ``LOG_EVERY_S`` seconds with the count, the time so far and an estimate of the time left.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

__all__ = [
    "LOG_EVERY_S",
    "Progress",
    "bar_disabled",
    "configure_cli_logging",
    "format_duration",
    "logger",
    "quiet_datasets_bars",
    "show_bars",
    "track",
]

logger = logging.getLogger("semsim_metric")

#: seconds between two progress lines of one loop in a piped log (no bar there)
LOG_EVERY_S = 10.0

_T = TypeVar("_T")


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"``, ``"5 h 24 min"``: a duration as a person reads it.

    Examples:
        >>> format_duration(44.6), format_duration(700), format_duration(5 * 3600 + 24 * 60)
        ('45 s', '12 min', '5 h 24 min')
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min"


class Progress:
    """Progress of a loop of ``total`` steps: a tqdm bar where bars are drawn (``show_bars``), else log lines.

    In a piped log a line ``DESC: DONE of TOTAL UNIT (P%), T so far, about T left`` is logged (logger
    ``semsim_metric``, level INFO) at most every ``LOG_EVERY_S`` seconds, and once at the end of a loop that logged
    any; ``progress=False`` shows nothing.

    Examples:
        >>> with Progress(3, "scoring", unit="pair", progress=False) as bar:
        ...     bar.update(3)
        >>> bar.done
        3
    """

    def __init__(
        self, total: int | None, desc: str, *, unit: str = "it", progress: bool = True, leave: bool = True
    ) -> None:
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self._log = bool(progress) and not show_bars(progress)
        self._start = self._last = time.perf_counter()
        self._logged_at: int | None = None  # the count at the last line logged
        self._bar: Any = None
        if show_bars(progress):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._log and time.perf_counter() - self._last >= LOG_EVERY_S:
            self._line()

    def _line(self) -> None:
        now = time.perf_counter()
        spent = now - self._start
        self._last, self._logged_at = now, self.done
        if self.total:
            left = spent / self.done * (self.total - self.done) if self.done else None
            logger.info(
                "%s: %d of %d %s (%.0f%%), %s so far%s",
                self.desc,
                self.done,
                self.total,
                self.unit,
                100 * self.done / self.total,
                format_duration(spent),
                f", about {format_duration(left)} left"
                if left is not None and self.done < self.total
                else "",
            )
        else:
            logger.info("%s: %d %s, %s so far", self.desc, self.done, self.unit, format_duration(spent))

    def close(self) -> None:
        """Close the bar, or log the last line of a loop that logged any."""
        if self._bar is not None:
            self._bar.close()
        elif self._logged_at is not None and self._logged_at != self.done:
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(
    iterable: Iterable[_T],
    desc: str,
    *,
    total: int | None = None,
    unit: str = "it",
    progress: bool = True,
    leave: bool = True,
) -> Iterator[_T]:
    """Iterate over ``iterable`` with a ``Progress`` (a bar in a terminal, log lines in a piped log).

    Examples:
        >>> list(track(range(3), "steps", progress=False))
        [0, 1, 2]
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total, desc, unit=unit, progress=progress, leave=leave) as bar:
        for item in iterable:
            yield item
            bar.update()


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


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler that writes to ``sys.stderr`` as it is at each message (redirected or captured included), not to
    the stream that was ``sys.stderr`` when the first command configured logging."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_cli_logging(verbosity: int) -> None:
    """``semsim`` command logging: -1 = quiet (warnings only), 0 = steps (info), 1 = debug."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    logger.setLevel(level)
    for old in [
        h for h in logger.handlers if getattr(h, "_semsim", False) and not isinstance(h, _StderrHandler)
    ]:
        logger.removeHandler(old)  # one made by an earlier version, bound to the stderr of its time
    if not any(getattr(h, "_semsim", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("semsim: %(message)s"))
        handler._semsim = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
