# Exported from semsim-metric 0.1.0 (semsim_metric/errors.py) by semsim_metric.models.remote_code.export_remote_code; edit the package, not this copy.
"""Errors for problems a user can fix: each message names what was wrong and what to do.

Every class also derives from the built-in exception a caller would expect (``ValueError``,
``FileExistsError``, ...), so ``except ValueError`` keeps working; the ``semsim`` command prints any
``SemSimError`` as one line without a traceback (exit code 2).
"""

from __future__ import annotations

__all__ = ["ImageSourceError", "IncompleteOutputError", "InvalidModelError", "ModelMismatchError", "ModelNotFoundError",
           "OutputFolderError", "SemSimError", "UnsafeFileError"]


class SemSimError(Exception):
    """Base class of the errors whose message tells the user how to fix the problem."""


class UnsafeFileError(SemSimError, ValueError):
    """A file that could only be read by unpickling arbitrary objects (refused: a pickle can run code)."""


class InvalidModelError(SemSimError, ValueError):
    """A model folder whose config or weights are malformed (the message names the file and the field)."""


class ModelMismatchError(InvalidModelError, RuntimeError):
    """A model folder whose ``model.safetensors`` does not hold the network its ``config.json`` describes (tensor
    names or shapes differ, or the config describes a far larger network); found from the weights file's header,
    before the network is built. Also a ``RuntimeError``, as a mismatch always was."""


class ModelNotFoundError(SemSimError, FileNotFoundError):
    """A model name that is neither a SemSim model folder nor a Hub repository available here; the message says
    what was looked for (a local folder, the Hugging Face cache, the Hub) and how to fix it."""


class OutputFolderError(SemSimError, FileExistsError):
    """An output folder that holds files the command did not write (refused unless ``--overwrite``)."""


class IncompleteOutputError(SemSimError, RuntimeError):
    """A folder written by a command that did not finish (rerun the command to complete it)."""


class ImageSourceError(SemSimError, ValueError):
    """An image source laid out wrongly (e.g. a folder without ``train/`` and ``test/``); the message shows the
    expected layout."""
