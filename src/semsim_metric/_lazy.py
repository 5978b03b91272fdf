"""Lazy public names for a package: ``__getattr__``/``__dir__`` that import a name's module on first use.

Used by the package facades (``semsim_metric``, ``data``, ``training``, ``evaluation``) so that importing a
package costs nothing until one of its names is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: dict[str, str], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose public ``names`` map to relative module paths.

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
