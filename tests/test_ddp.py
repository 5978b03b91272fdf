"""Metric synchronisation across 2 gloo processes on 127.0.0.1 equals one process on all the data."""

import os
import socket
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.conftest import FIXTURES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data():
    g = torch.Generator().manual_seed(5)
    return torch.rand(10, 3, 32, 32, generator=g), torch.rand(10, 3, 32, 32, generator=g)


def _worker(rank: int, world: int, port: int, reduction: str, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    code = 1
    try:
        from semsim_metric import SemSim, SemSimModel

        metric = SemSim(SemSimModel.from_pretrained(FIXTURES / "tiny_model"), reduction=reduction)
        preds, target = _data()
        # uneven shards: rank 0 gets 6 pairs in two batches, rank 1 gets 4
        idx = list(range(6)) if rank == 0 else list(range(6, 10))
        for chunk in (idx[:3], idx[3:]):
            metric.update(preds[chunk], target[chunk])
        value = metric.compute()
        if rank == 0:
            queue.put(value.tolist())
        dist.barrier()  # both ranks are done with gloo before either tears it down
        code = 0
    except Exception as err:  # report instead of leaving the parent waiting
        traceback.print_exc()
        queue.put(f"rank {rank} failed: {err!r}")
    finally:
        dist.destroy_process_group()
        queue.close()
        queue.join_thread()  # what was put is delivered before the process ends
    # end without the interpreter's and C++ static destructors: gloo's threads can abort the process there
    # ("terminate called without an active exception", exit code -6) after a correct run
    os._exit(code)


@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_two_process_result_equals_one_process(reduction):
    from semsim_metric import SemSimModel, semsim

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, reduction, queue)) for r in range(2)]
    for p in procs:
        p.start()
    result = queue.get(timeout=240)
    assert not isinstance(result, str), result
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    preds, target = _data()
    model = SemSimModel.from_pretrained(FIXTURES / "tiny_model")
    expected = semsim(preds, target, model=model, reduction=reduction).detach()
    torch.testing.assert_close(torch.tensor(result), expected, rtol=1e-5, atol=1e-6)
