"""The folder a converter reads: every read stays inside it, and every entry under it is accounted for.

A file that is a symbolic link is read only when it resolves to a file under the folder; links to folders are
never followed. ``account_for_tree`` lists every entry that is not a real folder (files, links of any kind,
special files) as an item, a supporting file or ignored with its reason, so the report adds up. Reasons name
paths relative to the folder, never where a link points.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from ...image_io import IMAGE_SUFFIXES
from ..report import ConversionError, ConversionReport

__all__ = [
    "Tree",
    "account_for_tree",
    "check_exists",
    "images_in",
    "is_image",
    "refuse_linked_folder",
    "subfolders",
    "through_linked_folder",
    "tree_entries",
]


@dataclass(frozen=True)
class Tree:
    """The folder a converter was given (``root``, as passed) and that folder with its links resolved."""

    root: Path
    boundary: Path

    @classmethod
    def of(cls, root: Path) -> Tree:
        """The tree under ``root``."""
        return cls(root, root.resolve())

    def rel(self, path: Path) -> str:
        """``path`` relative to the root (how reports name files).

        Examples:
            >>> Tree.of(Path("/data/release")).rel(Path("/data/release/img/v/3_72_rec.png"))
            'img/v/3_72_rec.png'
        """
        if path.is_relative_to(self.root):
            return path.relative_to(self.root).as_posix()
        return str(path)

    def outside(self, path: Path) -> bool:
        """True when ``path``, with every link resolved, is not under the root (a loop counts as outside)."""
        try:
            return not path.resolve().is_relative_to(self.boundary)
        except (OSError, RuntimeError):  # the file system reports a link loop
            return True

    def refusal(self, path: Path) -> str | None:
        """Why ``path`` is not read - a symbolic link to somewhere outside the root, or a link loop (the reason
        names the path, not its target) - else ``None``."""
        if self.outside(path):
            return f"symbolic link to outside the input folder, not read: {self.rel(path)}"
        return None

    def link_reason(self, path: Path) -> str | None:
        """Why a link (or another entry that is not a regular file) under the root is not read, else ``None``."""
        if path.is_symlink():
            if not path.exists():
                return "broken symbolic link (not read)"
            if self.outside(path):
                return "symbolic link to outside the input folder (not read)"
            if path.is_dir():
                return "symbolic link to a folder (links to folders are not followed)"
        if path.is_dir():
            return "folder that cannot be listed (not read)"
        if not path.is_file():
            return "not a regular file (not read)"
        return None


def tree_entries(root: Path) -> list[Path]:
    """Every entry under ``root`` that is not a real folder: files, links (to files, to folders, broken) and
    special files; real folders are descended into, links to folders never are.

    Raises:
        OSError: ``root`` itself cannot be listed (a sub-folder that cannot be listed is an entry instead).
    """
    out: list[Path] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:  # a folder that cannot be listed is itself an entry, listed with its reason
            if folder != root:
                out.append(folder)
                continue
            raise
        for entry in entries:
            path = folder / entry.name
            if entry.is_dir(follow_symlinks=False):
                stack.append(path)
            else:
                out.append(path)
    return sorted(out)


def through_linked_folder(root: Path, path: Path) -> bool:
    """True when a folder between ``root`` and ``path`` is a symbolic link."""
    return any(
        parent.is_symlink() for parent in path.parents if parent != root and parent.is_relative_to(root)
    )


def subfolders(folder: Path) -> list[Path]:
    """Real folders directly in ``folder`` (links to folders are not followed; the tree's accounting lists them)."""
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.is_symlink())


def refuse_linked_folder(folder: Path, what: str) -> None:
    """Refuse a layout folder (``what``: its name in messages) that is a symbolic link.

    Raises:
        ConversionError: ``folder`` is a symbolic link.
    """
    if folder.is_symlink():
        raise ConversionError(
            f"{folder} is a symbolic link to a folder; links to folders are not followed (a converter reads only "
            f"files under the folder it is given). Replace the link with the {what} folder itself, or pass the "
            "folder it points to."
        )


def check_exists(root: Path) -> None:
    """Refuse a root of the official release that does not exist or is a file.

    Raises:
        ConversionError: ``root`` does not exist or is not a folder (the message says where to get the release).
    """
    if not root.exists():
        raise ConversionError(
            f"{root} does not exist. The official release is described in docs/datasets.md "
            "(where to get it and which folder to pass)."
        )
    if not root.is_dir():
        raise ConversionError(f"{root} is a file; pass the folder of the official release.")


def is_image(path: Path) -> bool:
    """True for a file (or a link to one) with an image suffix in any case (``.png``, ``.PNG``, ``.jpg``, ...)."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def images_in(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (any case of any image suffix: ``.png``, ``.PNG``, ``.jpg``, ...)."""
    return sorted(p for p in folder.iterdir() if is_image(p)) if folder.is_dir() else []


def account_for_tree(
    tree: Tree,
    report: ConversionReport,
    items: Collection[Path],
    supporting: Collection[Path],
    why_ignored: Callable[[Path], str],
) -> None:
    """Count every entry under the tree that is not a real folder (files, links, special files); list each one
    that is neither an item nor used by one, with a reason (links the converter did not follow first, then
    ``why_ignored`` of the entry's path relative to the root).

    Paths are compared as the converter found them (not resolved), so two links to one file are two entries,
    each accounted for.

    Raises:
        OSError: the root cannot be listed.
    """
    entries = tree_entries(tree.root)
    report.files = len(entries)
    items = set(items)
    used = set(supporting) - items
    report.supporting = sum(1 for p in entries if p in used)
    for p in entries:
        if p not in items and p not in used:
            rel = p.relative_to(tree.root)
            report.ignore(rel.as_posix(), tree.link_reason(p) or why_ignored(rel))
