"""Load test of the real annotation server on 127.0.0.1: 20 annotators answering as fast as they can for 30 s."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from annotate_load import run_load


@pytest.mark.slow
def test_twenty_annotators_for_thirty_seconds_lose_nothing_and_never_exceed_the_target(tmp_path):
    result = run_load(tmp_path / "load.sqlite", annotators=20, seconds=30, items=900, votes_per_item=5)
    assert result["answers_stored"] > 500, result  # it really was under load
    assert result["lost"] == 0 and result["unacknowledged_stored"] == 0, result
    assert result["max_answers_per_item"] <= 5, result
    assert set(result["statuses"]) <= {200, 409}, result  # refused duplicates only, never a server error
    assert result["retracted"] > 0  # undos happened under load too
