"""Errors for problems a user can fix: each message names what was wrong and what to do.

One hierarchy: every error the package raises to its users derives from ``SemSimError``, and also from the
built-in exception a caller would expect (``ValueError``, ``TypeError``, ``FileExistsError``, ...), so
``except ValueError`` keeps working; the ``semsim`` command prints any ``SemSimError`` as one line without a
traceback (exit code 2), and lets every other exception (a bug) through with its traceback. A few classes are also
importable from the module that raises them (``semsim_metric.hub.DefaultModelMissingError``, ...).

This module imports nothing: model folders carry a copy of it as remote code.
"""

from __future__ import annotations

__all__ = [
    "AnnotationError",
    "CLIError",
    "ConversionError",
    "DefaultModelMissingError",
    "ImageFileError",
    "ImageInputError",
    "ImageSourceError",
    "IncompleteOutputError",
    "InvalidInputError",
    "InvalidInputTypeError",
    "InvalidModelError",
    "ItemProblem",
    "LeakageInputError",
    "MissingExtraError",
    "MissingFileError",
    "ModelArgumentError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "OutputFolderError",
    "SemSimError",
    "UnreadableWeightsError",
    "UnsafeFileError",
    "UnsupportedVictimError",
]


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


class InvalidInputError(SemSimError, ValueError):
    """An argument or input value a function cannot use (out of range, malformed, inconsistent with another); the
    message names the argument and what it accepts."""


class InvalidInputTypeError(SemSimError, TypeError):
    """An argument or input of a type a function does not take; the message names the argument and the types it
    accepts."""


class MissingExtraError(SemSimError, ModuleNotFoundError):
    """An optional dependency is not installed; the message names the ``pip install`` that fixes it."""


class DefaultModelMissingError(SemSimError, OSError):
    """The default model is requested but neither bundled nor downloadable."""


class ImageFileError(SemSimError, OSError):
    """An image file given to ``semsim``, ``SemSim`` or ``SemSimLoss`` that cannot be read or decoded (missing,
    not an image, over PIL's decompression-bomb limit); the message names the file."""


class ImageInputError(SemSimError, TypeError, ValueError):
    """Images that cannot be scored as given: files or PIL images (a list holding something else, pairs whose
    counts or sizes differ, pixels without a defined meaning), or an input the image processor or the ``semsim``
    pipeline cannot read as images (a type it does not know, a tensor or array of the wrong rank); the message
    names the image and the fix. Problems with the pixels of tensors (channels, dtype, range, NaN) are the input
    gate's ``InvalidInputTypeError`` / ``InvalidInputError``."""


class ModelArgumentError(SemSimError, TypeError, ValueError):
    """An argument of ``from_pretrained`` / ``save_pretrained`` that a SemSim model cannot honour (an unknown one, a
    non-floating dtype, a device map over several devices, pickled formats, ...): refused with a message instead of
    being ignored. Also a ``TypeError`` and a ``ValueError``, as these refusals always were."""


class ConversionError(SemSimError, ValueError):
    """A dataset conversion that stops: in strict mode at the first problem, or when nothing could be converted."""


class ItemProblem(SemSimError, ValueError):
    """An input item cannot be converted; the message is the reason the report gives (it names files, never
    what they contain). Converters report it and go on (or, in strict mode, stop with a ``ConversionError``)."""


class LeakageInputError(SemSimError, ValueError):
    """Inputs of a leakage report that cannot be used as they are; the message names the file or argument, what
    was found (e.g. the shape) and how to fix it."""


class AnnotationError(SemSimError, ValueError):
    """A request the campaign refuses; ``status`` is the HTTP status the app answers with.

    Nothing is written when it is raised.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class UnsupportedVictimError(SemSimError, ValueError):
    """A victim network an attack cannot run on as asked (the message names the victim and the alternative)."""


class CLIError(SemSimError):
    """An error of a ``semsim`` command reported to the user without a traceback (exit code 2): a bad argument or a
    combination of them."""


class UnreadableWeightsError(InvalidModelError, OSError):
    """A weights file that cannot be read as safetensors (truncated, not safetensors, unreadable); also an
    ``OSError``, as it always was."""


class MissingFileError(SemSimError, FileNotFoundError):
    """A file or folder the call needs that is not there (the message names where it was looked for and how to
    provide it)."""
