"""Export the model code into a model folder, so it loads with ``trust_remote_code=True`` without the package.

``transformers`` loads a model whose ``config.json`` has an ``auto_map`` from Python files shipped beside
the weights. ``export_remote_code`` copies this package's own modules there at publish time (nothing is duplicated
in the source tree): the configuration, the model, its files' reading and writing (``weights``), its backbones and blocks, the image processor
(``SemSimImageProcessor``) and the ``semsim`` pipeline, and the small core modules they import (the input gate
``preprocessing``, the image decoder ``image_io``, Hub file resolution and the error classes), with the imports of
the parent package rewritten to the flat folder. It also writes

- ``auto_map`` (``AutoConfig``, ``AutoModel``, ``AutoImageProcessor``) and ``custom_pipelines`` (the ``semsim``
  task) into ``config.json``;
- ``preprocessor_config.json`` (from the config, if the folder has none) without an ``image_processor_type``, so
  that transformers takes the image processor from ``config.json``'s ``auto_map`` (an ``auto_map`` in
  ``preprocessor_config.json`` itself would make ``pipeline("image-feature-extraction", ...)`` ask for a video
  processor of the same name in that file and prompt for remote code it does not need).

So ``AutoModel``, ``AutoImageProcessor``, ``pipeline("image-feature-extraction", ...)`` and ``pipeline("semsim",
...)`` all work on the folder with ``trust_remote_code=True``. ``SemSimModel.push_to_hub`` does it for every upload;
``python scripts/default_model.py folders`` for the project's folders under ``hub/``.

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

__all__ = ["AUTO_MAP", "CUSTOM_PIPELINES", "EXPORTED_FILES", "export_remote_code", "exported_code"]

#: the ``auto_map`` entry of ``config.json`` that points transformers at the exported classes
AUTO_MAP = {
    "AutoConfig": "configuration_semsim.SemSimConfig",
    "AutoModel": "modeling_semsim.SemSimModel",
    "AutoImageProcessor": "image_processing_semsim.SemSimImageProcessor",
}
#: the ``custom_pipelines`` entry of ``config.json``: ``pipeline("semsim", model=folder, trust_remote_code=True)``
CUSTOM_PIPELINES = {
    "semsim": {"impl": "pipeline_semsim.SemSimPipeline", "pt": ["AutoModel"], "type": "image"}
}

_PACKAGE = Path(__file__).resolve().parent.parent
#: module in the package -> file name in the model folder
_MODULES = {
    "models/configuration_semsim.py": "configuration_semsim.py",
    "models/modeling_semsim.py": "modeling_semsim.py",
    "models/weights.py": "weights.py",
    "models/backbones.py": "backbones.py",
    "models/blocks.py": "blocks.py",
    "models/image_processing_semsim.py": "image_processing_semsim.py",
    "models/pipeline_semsim.py": "pipeline_semsim.py",
    "preprocessing.py": "preprocessing.py",
    "image_io.py": "image_io.py",
    "hub.py": "hub.py",
    "errors.py": "errors.py",
}
#: the Python files ``export_remote_code`` writes into a model folder
EXPORTED_FILES = tuple(sorted(_MODULES.values()))
_HEADER = (
    "# Exported from semsim-metric {version} (semsim_metric/{source}) by "
    "semsim_metric.models.remote_code.export_remote_code; edit the package, not this copy.\n"
)
_RELATIVE = re.compile(r"^(\s*from )\.\.?(\w+)( import)", re.MULTILINE)


def _flatten_imports(text: str, source: str) -> str:
    """``from ..hub import`` / ``from .backbones import`` -> ``from .hub import`` (every module sits in one folder).

    Raises:
        RuntimeError: ``source`` imports a module of the package that is not exported (add it to ``_MODULES``).
    """

    def flat(match: re.Match[str]) -> str:
        name = match.group(2)
        if f"{name}.py" not in EXPORTED_FILES:
            raise RuntimeError(
                f"semsim_metric/{source} imports {name!r}, which export_remote_code does not export: "
                "add it to semsim_metric.models.remote_code._MODULES."
            )
        return f"{match.group(1)}.{name}{match.group(3)}"

    return _RELATIVE.sub(flat, text)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("semsim-metric")
    except PackageNotFoundError:  # a source checkout that is not installed
        return "(source checkout)"


def exported_code() -> dict[str, str]:
    """File name -> text of every module ``export_remote_code`` writes (what a published folder must hold).

    Raises:
        RuntimeError: a module imports a module of the package that is not exported.
    """
    version = _version()
    return {
        name: _HEADER.format(version=version, source=source)
        + _flatten_imports((_PACKAGE / source).read_text(), source)
        for source, name in _MODULES.items()
    }


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def export_remote_code(folder: str | Path) -> list[Path]:
    """Write the model modules into ``folder``, ``auto_map`` and ``custom_pipelines`` into its ``config.json``, and
    ``preprocessor_config.json`` (without ``image_processor_type``, see the module's docstring); returns the Python
    files written.

    Raises:
        FileNotFoundError: ``folder`` has no ``config.json`` (save the model there first).
        ValueError: the input settings of ``config.json`` are malformed (when ``preprocessor_config.json`` is written
            from them).
        RuntimeError: a module imports a module of the package that is not exported.
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} is missing: save the model with save_pretrained({str(folder)!r}) first."
        )
    written = []
    for name, text in exported_code().items():
        (folder / name).write_text(text)
        written.append(folder / name)
    config = json.loads(config_path.read_text())
    config["auto_map"] = dict(AUTO_MAP)
    config["custom_pipelines"] = json.loads(json.dumps(CUSTOM_PIPELINES))
    _write_json(config_path, config)
    processor_path = folder / "preprocessor_config.json"
    if processor_path.is_file():
        processor = json.loads(processor_path.read_text())
    else:  # a folder saved before save_pretrained wrote one: the settings are the model's
        from .image_processing_semsim import SemSimImageProcessor

        settings = {k: config[k] for k in ("image_size", "image_mean", "image_std") if k in config}
        processor = SemSimImageProcessor(**settings).to_dict()  # absent fields: SemSimConfig's defaults
    processor.pop("image_processor_type", None)  # the class comes from config.json's auto_map
    processor.pop("auto_map", None)
    _write_json(processor_path, processor)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m semsim_metric.models.remote_code MODEL_FOLDER``: export into the folder; prints the files.

    Raises:
        FileNotFoundError: the folder has no ``config.json``.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m semsim_metric.models.remote_code MODEL_FOLDER", file=sys.stderr)
        return 2
    for path in export_remote_code(args[0]):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
