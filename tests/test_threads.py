"""Intra-op threads from the CPUs available to the process (affinity, cgroup quota, local workers), never
overriding the user's own choice; the CLI chooses once before a command runs."""

from __future__ import annotations

import os

import pytest
import torch

from semsim_metric import _threads
from semsim_metric.errors import InvalidInputError

_VARS = ("SEMSIM_NUM_THREADS", "OMP_NUM_THREADS", "LOCAL_WORLD_SIZE", "TORCHELASTIC_RUN_ID", _threads._MARKER)


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A fake machine: 8 CPUs in the affinity mask, no cgroup quota, no thread variables, no other process busy;
    torch's count restored."""
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(_threads, "_CGROUP_V2", tmp_path / "cpu.max")
    monkeypatch.setattr(_threads, "_CGROUP_V1", (tmp_path / "quota", tmp_path / "period"))
    monkeypatch.setattr(_threads, "_applied", None)
    monkeypatch.setattr(_threads, "_last_load", None)
    (tmp_path / "stat").write_text("cpu0 100 0 100 800 0 0 0 0\n")  # never changes: nothing busy elsewhere
    monkeypatch.setattr(_threads, "_PROC_STAT", tmp_path / "stat")
    before = torch.get_num_threads()
    torch.set_num_threads(8)  # PyTorch's start value on this fake machine
    yield tmp_path
    torch.set_num_threads(before)


def test_affinity_alone(machine):
    assert _threads.available_cpus() == 8
    assert _threads.pick_threads() == 8


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("200000 100000", 2),
        ("150000 100000", 2),
        ("max 100000", 8),
        ("50000 100000", 1),
        ("1600000 100000", 8),
    ],
)
def test_cgroup_v2_quota_caps_the_affinity(machine, cpu_max, expected):
    (machine / "cpu.max").write_text(cpu_max + "\n")
    assert _threads.pick_threads() == expected


def test_cgroup_v1_quota(machine):
    (machine / "quota").write_text("300000\n")
    (machine / "period").write_text("100000\n")
    assert _threads.cgroup_cpu_limit(machine / "missing", (machine / "quota", machine / "period")) == 3.0
    assert _threads.pick_threads() == 3
    (machine / "quota").write_text("-1\n")
    assert _threads.pick_threads() == 8


def test_local_workers_divide_the_cores(machine, monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert _threads.pick_threads() == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert _threads.pick_threads() == 1  # never zero
    (machine / "cpu.max").write_text("400000 100000")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert _threads.pick_threads() == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "zero")
    with pytest.raises(InvalidInputError, match="LOCAL_WORLD_SIZE"):
        _threads.pick_threads()


def test_explicit_omp_num_threads_is_never_overridden(machine, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert _threads.pick_threads() == 3
    assert _threads.configure_threads() == 3
    assert torch.get_num_threads() == 8  # left as the user's environment made it
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    with pytest.raises(InvalidInputError, match="OMP_NUM_THREADS"):
        _threads.pick_threads()


def test_torchrun_default_of_one_thread_is_replaced(machine, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "abc")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert _threads.pick_threads() == 4


def test_semsim_num_threads_wins_and_is_applied(machine, monkeypatch):
    monkeypatch.setenv("SEMSIM_NUM_THREADS", "5")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert _threads.configure_threads() == 5
    assert torch.get_num_threads() == 5


def test_users_set_num_threads_is_kept(machine):
    torch.set_num_threads(3)  # the user's own call, before an entry point
    assert _threads.configure_threads() == 3
    assert torch.get_num_threads() == 3


def test_configure_sets_torch_and_is_idempotent(machine, monkeypatch):
    (machine / "cpu.max").write_text("200000 100000")
    assert _threads.configure_threads() == 2
    assert torch.get_num_threads() == 2
    assert _threads.configure_threads() == 2  # its own setting is not taken for the user's
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert _threads.configure_threads() == 1
    assert torch.get_num_threads() == 1


def test_before_torch_is_imported_the_choice_goes_to_the_environment(machine, monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "torch")
    (machine / "cpu.max").write_text("300000 100000")
    assert _threads.configure_threads() == 3
    assert os.environ["OMP_NUM_THREADS"] == "3"
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")  # a worker started later: the marked value is not the user's
    assert _threads.pick_threads() == 1


def test_cli_main_configures_threads_before_the_command(monkeypatch):
    from semsim_metric import cli

    calls = []
    monkeypatch.setattr(_threads, "configure_threads", lambda workers=None: calls.append("threads") or 1)
    parser = cli.build_parser()
    args = parser.parse_args(["score", "a.png", "b.png"])
    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {"parse_args": lambda self, argv: args})())
    args.func = lambda a: calls.append("command") or 0
    assert cli.main(["score", "a.png", "b.png"]) == 0
    assert calls == ["threads", "command"]


def _fake_proc_stat(machine, monkeypatch, busy_ticks_per_cpu: list[int], own_cpu_seconds: float = 0.0):
    """``/proc/stat`` of 8 CPUs, each 100 ticks further after, of which ``busy_ticks_per_cpu`` busy, while
    ``busy_cpus_elsewhere`` sleeps; this process itself uses ``own_cpu_seconds`` meanwhile."""
    stat = machine / "stat"

    def write(busy: list[int], elapsed: int) -> None:
        stat.write_text("".join(f"cpu{i} {b} 0 0 {1000 + elapsed - b} 0 0 0 0\n" for i, b in enumerate(busy)))

    write([0] * 8, 0)
    clock = iter([0.0, own_cpu_seconds])
    monkeypatch.setattr(_threads.time, "process_time", lambda: next(clock))
    monkeypatch.setattr(_threads.time, "sleep", lambda seconds: write(busy_ticks_per_cpu, 100))


def test_cpus_busy_elsewhere_are_measured_from_proc_stat(machine, monkeypatch):
    """Two CPUs fully busy and one half busy over the sample: 2.5 CPUs busy elsewhere."""
    _fake_proc_stat(machine, monkeypatch, [100, 100, 50, 0, 0, 0, 0, 0])
    assert _threads.busy_cpus_elsewhere(1.0) == pytest.approx(2.5)


def test_this_processs_own_cpu_time_is_not_counted_as_elsewhere(machine, monkeypatch):
    _fake_proc_stat(machine, monkeypatch, [100, 100, 0, 0, 0, 0, 0, 0], own_cpu_seconds=1.0)
    assert _threads.busy_cpus_elsewhere(1.0) == pytest.approx(1.0)


def test_cores_busy_elsewhere_are_left_free(machine, monkeypatch):
    """A single worker leaves the CPUs other processes keep busy (rounded); never fewer than one thread."""
    assert _threads.pick_threads(busy_elsewhere=2.6) == 5
    assert _threads.pick_threads(busy_elsewhere=0.4) == 8
    assert _threads.pick_threads(busy_elsewhere=8.0) == 1
    _fake_proc_stat(machine, monkeypatch, [100, 100, 100, 0, 0, 0, 0, 0])
    assert _threads.pick_threads() == 5


def test_a_quota_below_the_free_cpus_still_caps(machine):
    """A container limited to 2 CPUs on a host with 5 of its 8 CPUs busy still gets 2 threads (3 are free)."""
    (machine / "cpu.max").write_text("200000 100000\n")
    assert _threads.pick_threads(busy_elsewhere=5.0) == 2
    assert _threads.pick_threads(busy_elsewhere=7.0) == 1


def test_several_local_workers_divide_the_cores_without_measuring_the_load(machine, monkeypatch):
    """Workers of one run keep each other busy: they share the cores by their count, not by the load they see."""
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(_threads, "busy_cpus_elsewhere", lambda *a: pytest.fail("measured the load"))
    assert _threads.pick_threads() == 4


def test_the_load_is_measured_once_and_reused(machine, monkeypatch):
    calls = []
    monkeypatch.setattr(_threads, "busy_cpus_elsewhere", lambda *a: calls.append(1) or 3.0)
    assert _threads.pick_threads() == _threads.pick_threads() == 5
    assert len(calls) == 1
    monkeypatch.setattr(_threads, "_last_load", (-1e9, 3.0))  # an old measurement is taken again
    _threads.pick_threads()
    assert len(calls) == 2


def test_a_real_busy_process_is_seen(monkeypatch):
    """On this machine: a child process spinning on one CPU counts as (about) one CPU busy elsewhere."""
    import subprocess
    import sys
    import time

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # started and spinning
        assert _threads.busy_cpus_elsewhere(0.3) >= 0.6
    finally:
        spinner.kill()
        spinner.wait()
