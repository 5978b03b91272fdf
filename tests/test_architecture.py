"""The package's shape: one direction of dependencies, no import cycles, a light and fast start.

Layers, lowest first (each may import only from itself and the layers below it):

    core        _deps, preprocessing, image_io, pairing, hub, models/, functional, metric, loss
    data        data/
    api         semsim_metric/__init__.py (the public names, imported lazily; load_annotations is data's)
    generate    generate/      (generate, training and annotate are siblings: none imports another)
    training    training/
    annotate    annotate/
    evaluation  evaluation/
    cli         cli/
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "semsim_metric"
RANK = {
    "core": 0,
    "data": 1,
    "api": 2,
    "generate": 3,
    "training": 3,
    "annotate": 3,
    "evaluation": 4,
    "cli": 5,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(module: str) -> str:
    if module == "semsim_metric":
        return "api"
    second = module.split(".")[1]
    return second if second in ("data", "generate", "training", "annotate", "evaluation", "cli") else "core"


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def project_imports() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its file (also inside functions)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, path.name == "__init__.py", node)
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in files and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in files and name != mod:
                    targets.add(name)
        graph[mod] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_import_graph_sees_imports_inside_functions():
    graph = project_imports()
    assert (
        "semsim_metric.training.stages.classes" in graph["semsim_metric.training.run"]
    )  # a function-level import
    assert "semsim_metric.hub" in graph["semsim_metric.models.modeling_semsim"]


def test_no_import_cycles():
    cycle = find_cycle(project_imports())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_follow_the_layers():
    wrong = []
    for mod, targets in project_imports().items():
        for target in targets:
            a, b = layer(mod), layer(target)
            if a != b and RANK[b] >= RANK[a]:
                wrong.append(f"{mod} ({a}) imports {target} ({b})")
    assert not wrong, "imports against the layer direction:\n" + "\n".join(sorted(wrong))


def test_the_converters_stay_small_enough_to_read():
    """data/convert/ is one module per converter around a shared tree walker: no module over 300 lines, no
    function over 60 (issue 24)."""
    paths = sorted((PACKAGE / "data" / "convert").glob("*.py"))
    assert len(paths) > 1
    too_long = []
    for path in paths:
        text = path.read_text()
        if len(text.splitlines()) > 300:
            too_long.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.end_lineno - node.lineno >= 60
            ):
                too_long.append(f"{path.name}: {node.name}() has {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, "split these into named steps:\n" + "\n".join(too_long)


def test_a_cycle_is_detected():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('MODULES:', *sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=SRC.parent,
    )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("MODULES:"))
    return set(line.split()[1:])


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["train", "--help"],
        ["evaluate", "--help"],
        ["generate", "--help"],
        ["score", "--help"],
        ["convert", "--help"],
        ["votes", "import", "--help"],
        ["annotate", "serve", "--help"],
        ["annotate", "export", "--help"],
    ],
)
def test_help_imports_neither_torch_nor_transformers(argv):
    loaded = _modules_after(
        f"from semsim_metric.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    )
    assert "torch" not in loaded and "transformers" not in loaded


def test_importing_the_package_loads_no_training_evaluation_or_generation():
    loaded = _modules_after(
        "import semsim_metric\nsemsim_metric.SemSim, semsim_metric.semsim, semsim_metric.SemSimModel"
    )
    heavy = {
        m
        for m in loaded
        if m.startswith(
            (
                "semsim_metric.training",
                "semsim_metric.evaluation",
                "semsim_metric.generate",
                "semsim_metric.data",
                "semsim_metric.cli",
                "semsim_metric.annotate",
            )
        )
    }
    assert not heavy, heavy
    assert (
        not {"datasets", "sklearn", "piq"} & loaded
    )  # (scipy, matplotlib, accelerate: imported by transformers/torchmetrics themselves when installed)


def test_public_api_is_unchanged():
    import semsim_metric

    for name in ("SemSim", "SemSimLoss", "semsim", "SemSimConfig", "SemSimModel", "load_annotations"):
        assert callable(getattr(semsim_metric, name)), name


STDLIB = set(sys.stdlib_module_names)
#: import name -> distribution name, where they differ
DIST = {
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "huggingface_hub": "huggingface-hub",
}


def _declared() -> set[str]:
    import re
    import tomllib

    meta = tomllib.loads((SRC.parent / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"]) + [r for extra in meta["optional-dependencies"].values() for r in extra]
    return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in reqs}


def test_every_imported_package_is_declared():
    imported: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "require"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                imported.add(node.args[0].value.split(".")[0])  # optional imports through _deps.require()
    third_party = {m for m in imported - STDLIB if m not in ("semsim_metric", "__future__")}
    missing = {DIST.get(m, m) for m in third_party} - _declared()
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


def test_a_missing_extra_names_the_pip_install(monkeypatch):
    from semsim_metric._deps import MissingExtraError, require

    for name in ("sklearn", "sklearn.metrics", "sklearn.linear_model"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail as if not installed
    with pytest.raises(MissingExtraError, match=r'pip install "semsim-metric\[train\]"'):
        require("sklearn.metrics", "ROC-AUC")
    from semsim_metric.training.calibration import fit_calibration

    with pytest.raises(ModuleNotFoundError, match="scikit-learn"):
        fit_calibration([0.1, 0.9], [1, 0], fitted_on="x")


#: exception classes that never reach a user: caught inside the module that raises them
PRIVATE_EXCEPTIONS = {"_BuildTooLarge", "_UndefinedPixels"}
#: exception classes still to be moved into semsim_metric.errors (none left)
PENDING_EXCEPTIONS: set[tuple[str, str]] = set()


def _exception_classes() -> list[tuple[str, str, list[str]]]:
    """(module, class, base names) of every class in the package whose name or bases say it is an exception."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if "_bundled" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases]
                if node.name.endswith(("Error", "Problem")) or any(
                    b.endswith(("Error", "Exception")) for b in bases
                ):
                    found.append((module_name(path), node.name, bases))
    return found


def test_every_error_raised_to_users_is_a_semsim_error():
    import importlib

    from semsim_metric.errors import SemSimError

    outside = []
    for mod, name, _ in _exception_classes():
        if name in PRIVATE_EXCEPTIONS or (mod, name) in PENDING_EXCEPTIONS:
            continue
        try:
            cls = getattr(importlib.import_module(mod), name)
        except ImportError:  # an optional extra that is not installed: judged from the source alone
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException) and not issubclass(cls, SemSimError):
            outside.append(f"{mod}.{name}")
    assert not outside, (
        f"exception classes outside SemSimError (define them in semsim_metric.errors): {outside}"
    )


def test_user_facing_errors_are_defined_in_errors_py():
    defined_elsewhere = [
        f"{mod}.{name}"
        for mod, name, _ in _exception_classes()
        if mod != "semsim_metric.errors"
        and name not in PRIVATE_EXCEPTIONS
        and (mod, name) not in PENDING_EXCEPTIONS
    ]
    assert not defined_elsewhere, defined_elsewhere


def test_cli_modules_import_no_private_names():
    private = []
    for path in (PACKAGE / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                private += [
                    f"{path.name}: from {'.' * node.level}{node.module or ''} import {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.endswith("__")
                ]
    assert not private, private


def test_old_import_paths_of_errors_still_work():
    from semsim_metric import errors
    from semsim_metric._deps import MissingExtraError
    from semsim_metric.cli.errors import CLIError
    from semsim_metric.data.convert.rows import ItemProblem
    from semsim_metric.data.report import ConversionError
    from semsim_metric.hub import DefaultModelMissingError

    assert MissingExtraError is errors.MissingExtraError and issubclass(
        MissingExtraError, ModuleNotFoundError
    )
    assert issubclass(DefaultModelMissingError, OSError) and issubclass(ConversionError, ValueError)
    assert issubclass(ItemProblem, ValueError) and issubclass(CLIError, errors.SemSimError)
    assert issubclass(errors.InvalidInputError, ValueError) and issubclass(
        errors.InvalidInputTypeError, TypeError
    )


TESTS = Path(__file__).resolve().parent


def _test_modules_imported(source: str) -> list[str]:
    """The test modules (``tests/test_*.py``) that ``source`` imports, at any depth, in any spelling."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names = [f"{base}.{alias.name}" if node.module else base + alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.lstrip(".").split(".")
            if parts[0] == "tests" and len(parts) > 1:  # tests is a package: tests.test_x
                parts = parts[1:]
            elif not (name.startswith(".") or parts[0].startswith("test_")):
                continue  # another package's module
            if parts[0].startswith("test_") and parts[0] not in found:
                found.append(parts[0])
    return found


def test_the_test_import_check_sees_every_spelling():
    code = (
        "import tests.test_a\nfrom tests.test_b import X\nfrom tests import test_c\nfrom .test_d import Y\n"
        "from . import test_e\nimport test_f\ndef f():\n    from tests.test_g import Z\n"
        "from tests.helpers import ROOT, test_like_name\nfrom tests import conftest\nimport torch.testing\n"
    )
    assert _test_modules_imported(code) == [f"test_{c}" for c in "abcdefg"]


def test_no_test_module_imports_another():
    """Shared constants and helpers live in tests/helpers.py (or another module not named test_*), fixtures in
    tests/conftest.py: a test module is never imported by another."""
    offenders = {
        path.name: imported
        for path in sorted(TESTS.glob("test_*.py"))
        if (imported := _test_modules_imported(path.read_text()))
    }
    assert offenders == {}


def _code_lines(func: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body after its docstring."""
    body = func.body
    first = body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        if len(body) == 1:
            return 0
        first = body[1]
    return func.end_lineno - first.lineno + 1


def test_functions_fit_in_a_readers_head():
    """No function of the package has more than 60 lines of code (its docstring not counted). Exempt: the
    command-line ``register`` functions, flat lists of argparse declarations."""
    src = Path(__file__).resolve().parents[1] / "src" / "semsim_metric"
    long = []
    for path in sorted(src.rglob("*.py")):
        if "_bundled" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node) > 60:
                if path.parent.name == "cli" and node.name == "register":
                    continue
                long.append(f"{path.relative_to(src)}:{node.lineno} {node.name} ({_code_lines(node)} lines)")
    assert not long, "functions over 60 lines of code:\n" + "\n".join(long)
