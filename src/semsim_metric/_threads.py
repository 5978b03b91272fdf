"""Intra-op threads that fit the machine: one choice, made at every entry point.

PyTorch starts with one intra-op thread per CPU in the process's affinity mask. That ignores a container's CPU
quota (cgroup ``cpu.max``: a pod limited to 2 CPUs on a 64-core host starts 64 threads, which the quota then
throttles), the other workers on the same machine (``torchrun --nproc-per-node 4`` starts 4 processes that would
each take every core) and other programs keeping cores busy (two threads on two cores, one of them busy with another
program, wait for each other at every operation: 6-12x slower than one thread, docs/benchmarks.md).
``configure_threads`` sets ``torch.set_num_threads`` to::

    one worker:           max(1, min(affinity CPUs, ceil(cgroup quota / period), affinity CPUs - busy elsewhere))
    LOCAL_WORLD_SIZE = k: max(1, min(affinity CPUs, ceil(cgroup quota / period)) // k)

where *affinity CPUs* is ``len(os.sched_getaffinity(0))`` and *busy elsewhere* how many of them other processes kept
busy over a tenth of a second (``busy_cpus_elsewhere``: ``/proc/stat`` less this process's own CPU time; rounded to
whole CPUs here, and measured at most every 30 seconds). Several local workers of one run keep each other busy, so
they divide the cores by their number instead of measuring the load. The choice is made once per entry point
(``semsim`` CLI ``main``, ``training.trainer.run_stage``, ``evaluation.protocol``'s evaluations, ``generate``). A
choice the user made is never overridden: ``SEMSIM_NUM_THREADS`` (this package's own switch, taken
as it is), ``OMP_NUM_THREADS`` in the environment (except ``torchrun``'s default of 1 per worker, which it sets
when the user did not: then the cores are divided), or a ``torch.set_num_threads`` call made before (seen as a
thread count other than PyTorch's start value and the one this module set last).
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

from .errors import InvalidInputError

__all__ = [
    "available_cpus",
    "busy_cpus_elsewhere",
    "cgroup_cpu_limit",
    "configure_threads",
    "distributed_rank_and_world",
    "local_workers",
    "pick_threads",
    "user_threads",
]

#: where cgroup v2 and v1 keep the CPU quota of this process's group
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))
#: marks an ``OMP_NUM_THREADS`` this module wrote (before torch was imported), so it is not taken for the user's
_MARKER = "SEMSIM_AUTO_OMP_NUM_THREADS"
#: the thread count this module set last (so a later call tells it from the user's own ``torch.set_num_threads``)
_applied: int | None = None
#: where Linux counts each CPU's time (``cpuN user nice system idle iowait irq softirq steal ...`` in clock ticks)
_PROC_STAT = Path("/proc/stat")
#: how long ``busy_cpus_elsewhere`` watches, and how long its answer is reused
_LOAD_SAMPLE_SECONDS = 0.1
_LOAD_REUSE_SECONDS = 30.0
#: the last measurement: (when, busy CPUs)
_last_load: tuple[float, float] | None = None


def cgroup_cpu_limit(v2: Path | None = None, v1: tuple[Path, Path] | None = None) -> float | None:
    """The CPUs the process's cgroup may use (``quota / period``), or ``None`` without a quota.

    Reads cgroup v2 ``cpu.max`` (``"200000 100000"`` = 2 CPUs, ``"max 100000"`` = no limit), else cgroup v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota ``-1`` = no limit). Unreadable files mean no limit.
    """
    v2 = _CGROUP_V2 if v2 is None else v2
    v1 = _CGROUP_V1 if v1 is None else v1
    try:
        quota, period = v2.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us, period_us = (int(p.read_text().strip()) for p in v1)
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def _affinity_cpus() -> int:
    """CPUs in this process's affinity mask (``os.cpu_count()`` where there is none): PyTorch's start value."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by the cgroup quota rounded up (at least 1)."""
    cpus = _affinity_cpus()
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


def _cpu_times(cpus: set[int]) -> tuple[float, float] | None:
    """(busy, total) clock ticks of ``cpus`` so far, from ``/proc/stat``; ``None`` where it cannot be read."""
    busy = total = 0.0
    try:
        lines = _PROC_STAT.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or not name[3:].isdigit() or int(name[3:]) not in cpus:
            continue
        ticks = [float(v) for v in rest.split()[:8]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0.0)  # idle + iowait
        busy += sum(ticks) - idle
        total += sum(ticks)
    return (busy, total) if total > 0 else None


def busy_cpus_elsewhere(sample_seconds: float | None = None) -> float:
    """How many of this process's CPUs (its affinity mask) other processes keep busy, watched for ``sample_seconds``
    (default a tenth of a second; this process sleeps meanwhile, and its own CPU time is subtracted). 0.0 where
    ``/proc/stat`` cannot be read (not Linux).

    Examples:
        >>> 0.0 <= busy_cpus_elsewhere(0.05) <= len(os.sched_getaffinity(0))
        True
    """
    seconds = _LOAD_SAMPLE_SECONDS if sample_seconds is None else sample_seconds
    try:
        cpus = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return 0.0
    before, own_before = _cpu_times(cpus), time.process_time()
    time.sleep(seconds)
    after, own_after = _cpu_times(cpus), time.process_time()
    if before is None or after is None or after[1] <= before[1]:
        return 0.0
    share = (after[0] - before[0]) / (after[1] - before[1])  # of all the mask's CPU time
    busy = share * len(cpus) - (own_after - own_before) / seconds
    return min(float(len(cpus)), max(0.0, busy))


def _busy_elsewhere_recently() -> float:
    """``busy_cpus_elsewhere()``, measured at most every ``_LOAD_REUSE_SECONDS``."""
    global _last_load
    now = time.monotonic()
    if _last_load is None or now - _last_load[0] > _LOAD_REUSE_SECONDS:
        _last_load = (now, busy_cpus_elsewhere())
    return _last_load[1]


def distributed_rank_and_world() -> tuple[int, int]:
    """This process's ``(RANK, WORLD_SIZE)`` as ``torchrun`` sets them, else ``(0, 1)`` (the world at least 1).

    Examples:
        >>> import os
        >>> distributed_rank_and_world() if "RANK" not in os.environ and "WORLD_SIZE" not in os.environ else (0, 1)
        (0, 1)
    """
    return int(os.environ.get("RANK", "0")), max(1, int(os.environ.get("WORLD_SIZE", "1")))


def local_workers() -> int:
    """Processes sharing this machine's cores: ``LOCAL_WORLD_SIZE`` (set by ``torchrun``), else 1.

    Raises:
        InvalidInputError: ``LOCAL_WORLD_SIZE`` is not a positive integer.
    """
    workers = _env_positive_int("LOCAL_WORLD_SIZE", "the processes on this machine")
    return 1 if workers is None else workers


def _env_threads(name: str) -> int | None:
    return _env_positive_int(name, "intra-op threads")


def _env_positive_int(name: str, meaning: str) -> int | None:
    """The positive integer in environment variable ``name`` (``None`` when unset or blank).

    Raises:
        InvalidInputError: anything else, the message saying what the variable means.
    """
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise InvalidInputError(f"{name} must be a positive integer ({meaning}), got {value!r}.")
    return number


def user_threads() -> int | None:
    """The thread count the user asked for, or ``None``: ``SEMSIM_NUM_THREADS``, else ``OMP_NUM_THREADS`` (not the
    ``1`` that ``torchrun`` sets for its workers on its own), else a ``torch.set_num_threads`` made before
    (``torch`` imported and its count neither PyTorch's start value nor the one ``configure_threads`` set).

    Raises:
        InvalidInputError: ``SEMSIM_NUM_THREADS`` or ``OMP_NUM_THREADS`` is not a positive integer.
    """
    own = _env_threads("SEMSIM_NUM_THREADS")
    if own is not None:
        return own
    omp = _env_threads("OMP_NUM_THREADS")
    torchrun_default = omp == 1 and "TORCHELASTIC_RUN_ID" in os.environ and local_workers() > 1
    ours = omp is not None and os.environ.get(_MARKER) == os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp is not None and not torchrun_default and not ours:
        return omp
    torch = sys.modules.get("torch")
    if torch is not None and (omp is None or ours):
        current = int(torch.get_num_threads())
        if current not in (_affinity_cpus(), _applied):
            return current
    return None


def pick_threads(workers: int | None = None, *, busy_elsewhere: float | None = None) -> int:
    """Intra-op threads for one of ``workers`` processes (default ``local_workers()``) sharing this process's CPUs:
    ``max(1, available_cpus() // workers)``; for a single worker also at most the affinity mask's CPUs that other
    processes leave free (``busy_elsewhere`` of them busy, default measured by ``busy_cpus_elsewhere``; rounded to
    whole CPUs); or the user's own choice (``user_threads``).

    Raises:
        InvalidInputError: ``workers`` below 1, or a malformed ``LOCAL_WORLD_SIZE`` / thread variable.
    """
    chosen = user_threads()
    if chosen is not None:
        return chosen
    workers = local_workers() if workers is None else workers
    if workers < 1:
        raise InvalidInputError(f"workers must be at least 1, got {workers}.")
    cpus = available_cpus()
    if workers == 1:
        busy = _busy_elsewhere_recently() if busy_elsewhere is None else busy_elsewhere
        # the mask's CPUs that are free, rounded to whole CPUs (a quota below them still caps)
        cpus = min(cpus, _affinity_cpus() - math.floor(busy + 0.5))
    return max(1, cpus // workers)


def configure_threads(workers: int | None = None) -> int:
    """Set PyTorch's intra-op threads to ``pick_threads(workers)`` and return it; idempotent, cheap.

    Called once at each entry point. A user's explicit choice is kept (and returned); otherwise
    ``torch.set_num_threads`` gets the CPUs available to the process divided by the local workers. Before
    ``torch`` is imported (the CLI, whose light commands never import it) the choice goes to ``OMP_NUM_THREADS``
    instead, marked as this module's so that a worker process started later makes its own choice.

    Raises:
        InvalidInputError: as ``pick_threads``.
    """
    global _applied
    explicit = user_threads()
    threads = explicit if explicit is not None else pick_threads(workers)
    torch = sys.modules.get("torch")
    if torch is None:
        if explicit is None or "SEMSIM_NUM_THREADS" in os.environ:
            os.environ["OMP_NUM_THREADS"] = os.environ[_MARKER] = str(threads)
        _applied = threads
        return threads
    if explicit is not None and "SEMSIM_NUM_THREADS" not in os.environ:
        return explicit  # the user's OMP_NUM_THREADS / torch.set_num_threads: already in effect
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    _applied = threads
    return threads
