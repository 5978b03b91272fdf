"""How many attacks to run at once: the batch is chosen from the memory there is.

The working memory of a batch of attacks grows linearly with the batch (every original has its own dummy,
its own per-sample gradients and its own second-order graph) and does not grow with the iterations
(each iteration's graph is freed before the next). The engine therefore splits the originals into chunks
of ``chunk_size(...)`` attacks, each run to the end before the next starts; attacks are independent, so
the result is the same whatever the chunk size.

The budget is ``min(cap, share x available)``:

* ``cap``: the ``max_memory`` argument, else ``$SEMSIM_ATTACK_MEMORY`` (bytes, or with a ``K``/``M``/``G``
  suffix, e.g. ``1.5G``), else ``DEFAULT_CAP`` (1 GiB on the CPU: larger batches are no faster there -
  see ``docs/benchmarks.md`` - and a generation shard stays well under 2 GB resident; no cap on a GPU);
* ``available``: on a GPU its free memory (``torch.cuda.mem_get_info``); on the CPU the least of
  ``MemAvailable`` (``/proc/meminfo``), the room left under the cgroup limit (v2 ``memory.max`` -
  ``memory.current``, or v1 ``memory.limit_in_bytes`` - ``memory.usage_in_bytes``) and under
  ``RLIMIT_DATA``; ``share`` is ``AVAILABLE_SHARE``.

The bytes one attack takes are estimated from the victim: its activations for one image and its number of
parameters (an attack holds several per-sample copies of each), with factors measured on every victim
architecture (``benchmarks/bench_attacks.py`` prints the measured peak resident memory).
"""

from __future__ import annotations

import math
import os
import re
import resource
from pathlib import Path

import torch
from torch import nn

from ...errors import InvalidInputError

__all__ = [
    "AVAILABLE_SHARE",
    "DEFAULT_CAP",
    "MEMORY_ENV",
    "available_memory",
    "bytes_per_attack",
    "chunk_size",
    "parse_memory",
]

MEMORY_ENV = "SEMSIM_ATTACK_MEMORY"
DEFAULT_CAP = 1 << 30
AVAILABLE_SHARE = 0.5
# bytes per attack = 4 x (ACTIVATION_COPIES x activation elements + PARAMETER_COPIES x parameters) x
# ENGINE_FACTOR[engine]; calibrated so that the measured growth of peak resident memory per original
# (benchmarks/bench_attacks.py, every victim architecture) stays below the estimate
ACTIVATION_COPIES = 8
PARAMETER_COPIES = 5
ENGINE_FACTOR = {"layerwise": 1.0, "vmap": 2.0}
CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMINFO = Path("/proc/meminfo")


def parse_memory(text: str) -> int:
    """``"1073741824"``, ``"512M"``, ``"1.5G"``, ``"800K"`` (powers of 1024) -> bytes.

    Raises:
        InvalidInputError: (a ``ValueError``) the text is not a positive number with an optional K, M, G or T
            suffix.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)i?B?\s*", text, flags=re.IGNORECASE)
    if not match:
        raise InvalidInputError(f"memory {text!r}: write bytes or a number with K, M, G or T (e.g. 1.5G).")
    value = float(match.group(1)) * 1024 ** "_KMGT".index(match.group(2).upper() or "_")
    if value < 1:
        raise InvalidInputError(f"memory {text!r} must be at least 1 byte.")
    return int(value)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (no limit) -> None


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2 or v1), or ``None`` without a limit."""
    base = CGROUP_ROOT
    for limit_name, usage_name in (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        limit, usage = _read_int(base / limit_name), _read_int(base / usage_name)
        if limit is not None and usage is not None and limit < (1 << 60):
            return max(0, limit - usage)
    return None


def _meminfo_available() -> int | None:
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _rlimit_room() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        rss_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, soft - rss_pages * os.sysconf("SC_PAGE_SIZE"))


def available_memory(device: torch.device) -> int | None:
    """Bytes this process can still use on ``device``; ``None`` when it cannot be told.

    On a CUDA device: its free memory. On the CPU: the least of ``MemAvailable``, the room under the
    cgroup limit and under ``RLIMIT_DATA``.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    known = [v for v in (_meminfo_available(), _cgroup_room(), _rlimit_room()) if v is not None]
    return min(known) if known else None


def bytes_per_attack(victim: nn.Module, image_shape: tuple[int, ...], engine: str) -> int:
    """Estimated working memory of one attack (one original) on ``victim``, in bytes.

    Args:
        victim: the attacked classifier (run once on a zero image to count its activations).
        image_shape: ``(C, H, W)`` of one original.
        engine: ``"layerwise"`` or ``"vmap"`` (the fallback takes about twice as much).

    Raises:
        InvalidInputError: (a ``ValueError``) an unknown engine.
    """
    if engine not in ENGINE_FACTOR:
        raise InvalidInputError(f"engine must be one of {sorted(ENGINE_FACTOR)}, got {engine!r}.")
    activations = [math.prod(image_shape)]

    def count(module: nn.Module, inputs: tuple, output: object) -> None:
        if isinstance(output, torch.Tensor):
            activations.append(output.numel())

    handles = [m.register_forward_hook(count) for m in victim.modules() if not list(m.children())]
    param = next(victim.parameters(), None)
    was_training = victim.training
    try:
        victim.eval()
        with torch.no_grad():
            victim(torch.zeros((1, *image_shape), device=param.device if param is not None else None))
    finally:
        victim.train(was_training)
        for h in handles:
            h.remove()
    parameters = sum(p.numel() for p in victim.parameters())
    elements = ACTIVATION_COPIES * sum(activations) + PARAMETER_COPIES * parameters
    return int(4 * elements * ENGINE_FACTOR[engine])


def chunk_size(
    n: int, per_attack: int, device: torch.device, max_memory: int | None = None
) -> tuple[int, int]:
    """How many of ``n`` attacks to run at once, and the budget it was chosen for (bytes).

    Args:
        n: attacks to run.
        per_attack: estimated bytes of one attack (``bytes_per_attack``).
        device: where they run.
        max_memory: cap in bytes (default: ``$SEMSIM_ATTACK_MEMORY``, else ``DEFAULT_CAP`` on the CPU and no
            cap on a GPU).

    Returns:
        ``(chunk, budget)``: at least 1 and at most ``n`` attacks whose estimated memory fits the budget
        (1 when even one does not: the attack is tried rather than refused).

    Raises:
        InvalidInputError: (a ``ValueError``) ``max_memory`` below 1, or ``$SEMSIM_ATTACK_MEMORY`` unreadable.
    """
    if max_memory is None and os.environ.get(MEMORY_ENV):
        max_memory = parse_memory(os.environ[MEMORY_ENV])
    if max_memory is not None and max_memory < 1:
        raise InvalidInputError(f"max_memory must be at least 1 byte, got {max_memory}.")
    cap = max_memory if max_memory is not None else (DEFAULT_CAP if device.type != "cuda" else None)
    available = available_memory(device)
    limits = [
        v for v in (cap, int(AVAILABLE_SHARE * available) if available is not None else None) if v is not None
    ]
    budget = min(limits) if limits else DEFAULT_CAP
    return max(1, min(n, budget // max(1, per_attack))), budget
