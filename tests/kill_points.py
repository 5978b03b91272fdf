"""Run ``semsim generate`` and stop at a named point, announcing it, so a test can SIGKILL the process there.

``python -m tests.kill_points POINT -- <semsim generate arguments>``; POINT is ``victim`` (inside victim
training, before its checkpoint exists), ``shard`` (during the second shard's attack, after the first
shard is on disk) or ``merge`` (after the first Parquet file of the merged dataset is written). At the
point it prints ``KILL-POINT`` and sleeps until killed.
"""

from __future__ import annotations

import sys
import time


def _stop_here() -> None:
    print("KILL-POINT", flush=True)
    time.sleep(600)


def main() -> int:
    point, args = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]
    import semsim_metric.generate.pipeline as pipeline
    import semsim_metric.generate.victims as victims

    if point == "victim":
        real_train = victims.train_victim

        def train_then_stop(*a, **k):
            real_train(*a, **k)
            _stop_here()

        victims.train_victim = train_then_stop
    elif point == "shard":
        real_attack, calls = pipeline.run_attack, []

        def attack(*a, **k):
            calls.append(1)
            if len(calls) == 2:
                _stop_here()
            return real_attack(*a, **k)

        pipeline.run_attack = attack
    elif point == "merge":
        import datasets

        real_write, calls = datasets.Dataset.to_parquet, []

        def write(self, path, *a, **k):
            out = real_write(self, path, *a, **k)
            if "shards" not in str(path):
                calls.append(path)
                if len(calls) == 1:
                    _stop_here()
            return out

        datasets.Dataset.to_parquet = write
    else:
        raise SystemExit(f"unknown kill point {point!r}")
    from semsim_metric.cli import main as semsim

    return semsim(["generate", *args])


if __name__ == "__main__":
    sys.exit(main())
