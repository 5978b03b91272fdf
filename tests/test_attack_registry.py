"""The attack registry as a specification: discovery happens once whatever was registered first, and a second,
different attack under a taken name is announced rather than silently replacing the first."""

from __future__ import annotations

import importlib
import sys
import warnings
from dataclasses import replace

import pytest

from semsim_metric.generate.attacks import engine


@pytest.fixture
def fresh_registry(monkeypatch):
    """An empty registry that has not discovered the package's attacks yet (restored afterwards)."""
    monkeypatch.setattr(engine, "ATTACKS", {})
    monkeypatch.setattr(engine, "_discovered", False)
    for name in [
        m for m in sys.modules if m.startswith("semsim_metric.generate.attacks.") and m != engine.__name__
    ]:
        monkeypatch.delitem(
            sys.modules, name
        )  # as in a fresh process: discovery imports (and registers) them
    return engine


def _mine(name: str = "my_attack") -> engine.AttackDefinition:
    return engine.AttackDefinition(
        name=name, gradient_distance=engine.l2_gradient_distance, labels="known", paper={"iterations": 10}
    )


def test_registering_your_own_attack_first_does_not_turn_discovery_off(fresh_registry):
    fresh_registry.register_attack(_mine())
    names = fresh_registry.attack_names()
    assert "my_attack" in names and "inverting_gradients" in names and "dlg" in names


def test_a_different_attack_under_a_taken_name_warns_and_replace_true_says_it_is_meant(fresh_registry):
    first = fresh_registry.register_attack(_mine())
    other = replace(first, labels="inferred")
    with pytest.warns(engine.DuplicateAttackWarning, match="already registered"):
        fresh_registry.register_attack(other)
    assert fresh_registry.ATTACKS["my_attack"] is other
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh_registry.register_attack(first, replace=True)
    assert fresh_registry.ATTACKS["my_attack"] is first


def test_importing_an_attack_module_again_registers_it_again_without_a_warning():
    module = importlib.import_module("semsim_metric.generate.attacks.dlg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(module)
    assert engine.ATTACKS["dlg"].name == "dlg"
