"""Lazy public names for a package, and callbacks that run when another package's module is first imported.

``lazy_exports`` gives the package facades (``semsim_metric``, ``models``, ``data``, ``training``,
``evaluation``) a ``__getattr__``/``__dir__`` that import a name's module on first use, so importing a package
costs nothing until one of its names is needed.

``call_after_import`` runs a callback once a module of *another* package has been imported (at once if it
already is). ``semsim_metric`` uses it to register its model with transformers' Auto classes at the moment
transformers' own registry is imported, so ``import semsim_metric`` never imports transformers or torch itself.
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from importlib import import_module
from types import ModuleType
from typing import Any

__all__ = ["call_after_import", "lazy_exports"]


def lazy_exports(
    package: str, names: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose public ``names`` map to relative module paths.

    Raises:
        AttributeError: (from ``__getattr__``) a name that is not one of ``names``.

    Examples:
        >>> getattr_, dir_ = lazy_exports("json", {"dumps": "."}, {})
        >>> getattr_("dumps")("x"), dir_()
        ('"x"', ['dumps'])
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(import_module(names[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__


#: module name -> callbacks still waiting for its first import
_PENDING: dict[str, list[Callable[[ModuleType], None]]] = {}
_LOCK = threading.RLock()


def _run(callbacks: list[Callable[[ModuleType], None]], module: ModuleType) -> None:
    """Run the callbacks for ``module``; a failing one becomes a warning (it must never break that import)."""
    for callback in callbacks:
        try:
            callback(module)
        except Exception as err:
            warnings.warn(
                f"semsim-metric could not hook into {module.__name__} ({type(err).__name__}: {err}); "
                "its transformers integration is unavailable in this process.",
                RuntimeWarning,
                stacklevel=2,
            )


class _AfterImportLoader:
    """Wraps the real loader of a watched module: executes the module, then its callbacks. (Neither this class nor the
    finder derives from ``importlib.abc``, which imports ``importlib.resources``, ``tempfile`` and ``shutil``: the
    import system only needs the methods.)"""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        with _LOCK:
            callbacks = _PENDING.pop(self._name, [])
            if not _PENDING:
                _uninstall()
        _run(callbacks, module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, is_package, get_resource_reader, ...
        return getattr(self._loader, name)


class _AfterImportFinder:
    """Finds nothing itself: for a watched module it asks the other finders and wraps the loader they return."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _PENDING:
            return None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _AfterImportLoader(spec.loader, fullname)
        return spec


_FINDER = _AfterImportFinder()


def _uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def call_after_import(module_name: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(module)`` once ``module_name`` has been imported - now, if it already is.

    Nothing is imported here: the callback runs right after the first import of the module, wherever that import
    happens (a watched module is found by the other import finders as usual; only its loader is wrapped). A callback
    that raises becomes a ``RuntimeWarning``, so that the import itself never fails because of it.

    Raises:
        TypeError: ``callback`` is not callable.

    Examples:
        >>> seen = []
        >>> call_after_import("json", lambda module: seen.append(module.__name__))
        >>> seen
        ['json']
    """
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}.")
    module = sys.modules.get(module_name)
    spec = getattr(module, "__spec__", None)
    if module is not None and not getattr(spec, "_initializing", False):
        _run([callback], module)
        return
    with _LOCK:
        _PENDING.setdefault(module_name, []).append(callback)
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)
