"""A bounded load test of the annotation app: N annotators answer as fast as they can for a fixed time.

It starts the real app (uvicorn) on 127.0.0.1 with a campaign of synthetic images, lets ``--annotators``
threads join and answer (with the odd undo and duplicate submission) for ``--seconds``, then stops by
itself and checks, against the campaign file:

- every answer the server acknowledged is stored, and nothing else (no answer lost, none invented);
- no item has more answers than its target, and no annotator answered an item twice.

    python benchmarks/annotate_load.py --annotators 20 --seconds 30

Only loopback addresses are ever contacted.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import socket
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _synthetic_items(n: int, seed: int = 0) -> list[tuple[str, str, bytes]]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8), mode="L").save(out, format="PNG")
        items.append(("reconstruction", f"r{i:05d}", out.getvalue()))
    return items


class _Server:
    """uvicorn in a thread, serving ``app`` on 127.0.0.1 until ``stop()``."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("the annotation app did not start within 30 s")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def run_load(
    campaign_path: Path,
    *,
    annotators: int = 20,
    seconds: float = 30.0,
    items: int = 900,
    votes_per_item: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Create a campaign at ``campaign_path``, serve it, load it for ``seconds`` and check it; returns the numbers."""
    import httpx

    from semsim_metric.annotate.server import create_app
    from semsim_metric.annotate.storage import create_campaign

    campaign = create_campaign(
        campaign_path,
        dataset="synthetic",
        fingerprint="synthetic",
        class_names=[f"class {k}" for k in range(10)],
        items=_synthetic_items(items, seed),
        votes_per_item=votes_per_item,
    )
    acknowledged: dict[tuple[str, int], int] = {}
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    stop = time.time() + seconds

    def annotate(k: int, base: str) -> None:
        rng = random.Random(seed * 1000 + k)
        name = f"load-{k:02d}"
        with httpx.Client(base_url=base, timeout=60) as http:
            assert http.post("/api/join", json={"name": name}).status_code == 200
            while time.time() < stop:
                r = http.post("/api/next", json={"name": name})
                with lock:
                    statuses[r.status_code] += 1
                item = r.json()
                if item.get("done"):
                    break
                body = {
                    "name": name,
                    "item_id": item["item_id"],
                    "ticket": item["ticket"],
                    "answer": rng.randrange(-1, 10),
                }
                r = http.post("/api/answer", json=body)
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code == 200:
                        acknowledged[(name, item["item_id"])] = body["answer"]
                roll = rng.random()
                if roll < 0.03:  # a double click: the same answer again must be refused
                    r = http.post("/api/answer", json=body)
                    with lock:
                        statuses[r.status_code] += 1
                    assert r.status_code == 409, r.text
                elif roll < 0.08:  # undo, then answer the same item again
                    r = http.post("/api/undo", json={"name": name})
                    with lock:
                        statuses[r.status_code] += 1
                        if r.status_code == 200:
                            del acknowledged[(name, r.json()["item_id"])]

    with _Server(create_app(campaign, leases_per_client=None)) as base:
        assert base.startswith("http://127.0.0.1:")
        started = time.time()
        threads = [threading.Thread(target=annotate, args=(k, base)) for k in range(annotators)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - started
    stored = {(a["annotator"], a["item_id"]): a["answer"] for a in campaign.answers()}
    per_item = Counter(item for _, item in stored)
    return {
        "annotators": annotators,
        "seconds": round(elapsed, 1),
        "requests": sum(statuses.values()),
        "answers_acknowledged": len(acknowledged),
        "answers_stored": len(stored),
        "answers_per_second": round(len(stored) / elapsed, 1),
        "statuses": dict(statuses),
        "lost": len(set(acknowledged.items()) - set(stored.items())),
        "unacknowledged_stored": len(set(stored.items()) - set(acknowledged.items())),
        "max_answers_per_item": max(per_item.values(), default=0),
        "votes_per_item": votes_per_item,
        "retracted": len(campaign.retracted()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--items", type=int, default=900)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_load(
            Path(tmp) / "load.sqlite", annotators=args.annotators, seconds=args.seconds, items=args.items
        )
    print(json.dumps(result, indent=2))
    ok = (
        result["lost"] == 0
        and result["unacknowledged_stored"] == 0
        and result["max_answers_per_item"] <= result["votes_per_item"]
    )
    print("no answer lost, none beyond the target" if ok else "FAILED: see lost / max_answers_per_item")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
