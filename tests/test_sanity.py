"""The shipped default model behaves as any person would in four image domains (Fashion-MNIST, emoji scenes,
colour and greyscale photographs never used in training, synthetic shapes and letters), each image at its own
size through the input gate: noise is never a leak, an identical copy is distance 0, a lightly noised copy
is recognised, and another class lies farther than that copy."""

from __future__ import annotations

import pytest

from semsim_metric.evaluation.sanity import TARGETS, run_sanity

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results():
    return {r.domain: r for r in run_sanity(None, n=200, seed=1)}


@pytest.mark.parametrize("domain", ["fashion-mnist", "emoji-scenes", "photos", "synthetic"])
@pytest.mark.parametrize("check", list(TARGETS))
def test_default_model_is_sane(results, domain, check):
    share = results[domain].shares[check]
    assert share >= TARGETS[check], (
        f"{domain}: {check} holds for {share:.1%} of pairs (target {TARGETS[check]:.0%})"
    )
