"""Output folders that commands own: nothing a command did not write is deleted or overwritten.

Every command that writes a folder (``semsim generate``, ``semsim convert``, ``semsim votes import``,
dataset builders) goes through ``OutputFolder``:

* **Claim before writing.** A folder that is missing or empty is claimed by writing the record
  ``.semsim-output.json`` (command, files written, ``complete``). A non-empty folder without that record,
  or one written by another command, is refused with ``OutputFolderError``
  unless ``overwrite=True`` (``--overwrite``). A folder the same command wrote is resumed or replaced.
* **Only own files are replaced.** ``OutputFolder.write_text`` and ``OutputFolder.replace_dir``
  refuse to replace a file the record does not list (someone else's), unless ``overwrite``.
* **Atomic.** Files are written aside and renamed into place; a folder (``data/``) is built aside and
  swapped in whole, so a killed command leaves either the old or the new version, never a mix.
* **Complete or refused.** The record says ``complete: false`` until ``OutputFolder.complete``;
  the project's loaders refuse an incomplete folder with a message that says to rerun the command
  (``check_complete``).

Examples:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> out = OutputFolder(root / "out", command="example").claim()
    >>> _ = out.write_text("README.md", "hello")
    >>> out.complete()
    >>> check_complete(root / "out")
    >>> (root / "mine").mkdir(); _ = (root / "mine" / "notes.txt").write_text("keep")
    >>> OutputFolder(root / "mine", command="example").claim()
    Traceback (most recent call last):
    ...
    semsim_metric.errors.OutputFolderError: ...
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import IncompleteOutputError, OutputFolderError

__all__ = ["RECORD_NAME", "OutputFolder", "atomic_write_text", "check_complete", "read_record"]

#: the record of the command that owns a folder (hidden: ``datasets`` ignores it)
RECORD_NAME = ".semsim-output.json"


def read_record(folder: str | Path) -> dict[str, Any] | None:
    """The ownership record of ``folder``, or ``None`` when it has none (or it is unreadable)."""
    path = Path(folder) / RECORD_NAME
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "command" in record else None


def check_complete(folder: str | Path) -> None:
    """Raise ``IncompleteOutputError`` when ``folder`` was left unfinished.

    A folder is unfinished when its record says ``complete: false``, or - for folders without a record -
    when it holds generation shards or a plan but no merged ``data/`` folder.
    """
    folder = Path(folder)
    record = read_record(folder)
    if record is not None:
        if not record.get("complete", False):
            raise IncompleteOutputError(
                f"{folder} was written by `semsim {record['command']}`, which has not finished (its record "
                f"{RECORD_NAME} says complete: false). Rerun the same command to complete it."
            )
        return
    generation = (folder / "plan.json").is_file() or (folder / "shards").is_dir()
    if generation and (not (folder / "data").is_dir() or not (folder / "README.md").is_file()):
        raise IncompleteOutputError(
            f"{folder} holds generation shards but no merged dataset (data/ and README.md). Rerun "
            "`semsim generate` with the same arguments (or `--merge-only`) to finish it."
        )


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file beside it and a rename: a reader (or a killed
    writer) never sees a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


class OutputFolder:
    """A folder written by one command (see the module docstring for the rules).

    Args:
        path: the folder.
        command: the command that writes it (``"generate"``, ``"convert"``, ...).
        overwrite: allow replacing files this command did not write (``--overwrite``).
    """

    def __init__(self, path: str | Path, *, command: str, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.command = command
        self.overwrite = overwrite
        self._record: dict[str, Any] | None = None

    # ----------------------------------------------------------------- claim
    def claim(self) -> OutputFolder:
        """Take ownership of the folder (idempotent), refusing someone else's non-empty folder."""
        if self._record is not None:
            return self
        if self.path.exists() and not self.path.is_dir():
            raise OutputFolderError(f"{self.path} is a file, not a folder; choose a folder for the output.")
        record = read_record(self.path)
        others = [p.name for p in sorted(self.path.iterdir())] if self.path.is_dir() else []
        if record is None and others and not self.overwrite:
            shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
            raise OutputFolderError(
                f"{self.path} is not empty ({shown}) and was not written by `semsim {self.command}`; choose a new "
                "or empty folder, or pass --overwrite (overwrite=True) to let this command replace what it writes "
                "there."
            )
        if record is not None and record["command"] != self.command and not self.overwrite:
            raise OutputFolderError(
                f"{self.path} holds the output of `semsim {record['command']}`, not `semsim {self.command}`; choose "
                "another folder, or pass --overwrite (overwrite=True)."
            )
        self.path.mkdir(parents=True, exist_ok=True)
        own = record is not None and record["command"] == self.command
        # a folder this command finished stays loadable until the command starts to change it (reopen)
        self._record = {
            "command": self.command,
            "complete": bool(own and record.get("complete")),  # type: ignore[union-attr]
            "files": list(record.get("files", [])) if own else [],
        }  # type: ignore[union-attr]
        self._save()
        return self

    def _save(self) -> None:
        assert self._record is not None
        self._record["files"] = sorted(set(self._record["files"]))
        atomic_write_text(self.path / RECORD_NAME, json.dumps(self._record, indent=2))

    def _owned(self) -> set[str]:
        return set(self.claim()._record["files"])  # type: ignore[index]

    def _foreign(self, paths: list[Path]) -> list[str]:
        owned = self._owned()
        rel = [p.relative_to(self.path).as_posix() for p in paths]
        return [r for r in rel if r not in owned]

    # ----------------------------------------------------------------- writing
    def write_text(self, relative: str, text: str) -> Path:
        """Write one file atomically (refusing to replace a file this command did not write)."""
        target = self.path / relative
        if target.exists() and not self.overwrite and self._foreign([target]):
            raise OutputFolderError(
                f"{target} exists and was not written by `semsim {self.command}`; move it away or pass --overwrite."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
        self._record["files"].append(relative)  # type: ignore[index]
        self._save()
        return target

    def replace_dir(self, relative: str, build: Callable[[Path], None]) -> Path:
        """Build a sub-folder aside with ``build(tmp_folder)`` and swap it in whole for ``relative``.

        The previous version is removed only after the new one is in place, and only when every file in
        it was written by this command (otherwise ``OutputFolderError``, unless
        ``overwrite``).
        """
        target = self.path / relative
        if target.exists():
            foreign = (
                self._foreign([p for p in target.rglob("*") if p.is_file()])
                if target.is_dir()
                else [relative]
            )
            if foreign and not self.overwrite:
                shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
                raise OutputFolderError(
                    f"{target} holds files that `semsim {self.command}` did not write ({shown}); move them away or "
                    "pass --overwrite to replace the whole folder."
                )
        self.claim()
        tag = uuid.uuid4().hex[:8]
        tmp = self.path / f".{Path(relative).name}.{tag}.tmp"
        build(tmp)
        written = [p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file()]
        old = self.path / f".{Path(relative).name}.{tag}.old"
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        prefix = relative.rstrip("/") + "/"
        self._record["files"] = [f for f in self._record["files"] if not f.startswith(prefix)]  # type: ignore[index]
        self._record["files"] += [prefix + w for w in written]  # type: ignore[index]
        self._save()
        if old.exists():
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        return target

    def add(self, relative: str) -> None:
        """Record a file that the command wrote by other means (e.g. a checkpoint written by a library)."""
        self.claim()
        self._record["files"].append(relative)  # type: ignore[index]
        self._save()

    def complete(self) -> None:
        """Mark the folder finished: loaders accept it from now on."""
        self.claim()
        self._record["complete"] = True  # type: ignore[index]
        self._save()

    def reopen(self) -> None:
        """Mark the folder unfinished again (a command that adds to a finished folder)."""
        self.claim()
        self._record["complete"] = False  # type: ignore[index]
        self._save()
