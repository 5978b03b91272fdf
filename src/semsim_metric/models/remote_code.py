"""Export the model code into a model folder, so it loads with ``trust_remote_code=True`` without the package.

``transformers`` loads a model whose ``config.json`` has an ``auto_map`` from Python files shipped beside
the weights. ``export_remote_code`` copies this package's own model modules there at publish time
(nothing is duplicated in the repository): the configuration, the model, its backbones and blocks, and
the two small core modules they import (Hub file resolution and the error classes), with the imports of
the parent package rewritten to the flat folder. ``SemSimModel.push_to_hub`` does it for every upload.

Examples:
    >>> import tempfile, pathlib
    >>> from semsim_metric import SemSimConfig, SemSimModel
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> SemSimModel(SemSimConfig(base_width=2)).save_pretrained(folder)
    >>> sorted(p.name for p in export_remote_code(folder))[:2]
    ['backbones.py', 'blocks.py']

``python -m semsim_metric.models.remote_code FOLDER`` does the same from the command line.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

__all__ = ["AUTO_MAP", "export_remote_code"]

#: the ``auto_map`` entry that points transformers at the exported classes
AUTO_MAP = {"AutoConfig": "configuration_semsim.SemSimConfig", "AutoModel": "modeling_semsim.SemSimModel"}

_PACKAGE = Path(__file__).resolve().parent.parent
#: module in the package -> file name in the model folder
_MODULES = {
    "models/configuration_semsim.py": "configuration_semsim.py",
    "models/modeling_semsim.py": "modeling_semsim.py",
    "models/backbones.py": "backbones.py",
    "models/blocks.py": "blocks.py",
    "hub.py": "hub.py",
    "errors.py": "errors.py",
}
_HEADER = ("# Exported from semsim-metric {version} (semsim_metric/{source}) by "
           "semsim_metric.models.remote_code.export_remote_code; edit the package, not this copy.\n")


def _flatten_imports(text: str) -> str:
    """``from ..hub import`` / ``from ..errors import`` -> ``from .hub import`` (every module sits in one folder)."""
    return re.sub(r"from \.\.(hub|errors) import", r"from .\1 import", text)


def export_remote_code(folder: str | Path) -> list[Path]:
    """Write the model modules into ``folder`` and an ``auto_map`` into its ``config.json``; returns the files.

    Raises:
        FileNotFoundError: ``folder`` has no ``config.json`` (save the model there first).
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("semsim-metric")
    except PackageNotFoundError:  # a source checkout that is not installed
        __version__ = "(source checkout)"
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} is missing: save the model with save_pretrained({str(folder)!r}) first.")
    written = []
    for source, name in _MODULES.items():
        text = (_PACKAGE / source).read_text()
        (folder / name).write_text(_HEADER.format(version=__version__, source=source) + _flatten_imports(text))
        written.append(folder / name)
    config = json.loads(config_path.read_text())
    config["auto_map"] = dict(AUTO_MAP)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m semsim_metric.models.remote_code MODEL_FOLDER", file=sys.stderr)
        return 2
    for path in export_remote_code(args[0]):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
