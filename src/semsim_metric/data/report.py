"""Conversion reports: every input item is accounted for (converted or skipped with a reason)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConversionError

if TYPE_CHECKING:
    from ..outputs import OutputFolder

__all__ = ["ConversionError", "ConversionReport"]


def _count(entries: list[dict[str, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in entries:
        out[e["reason"]] = out.get(e["reason"], 0) + 1
    return out


@dataclass
class ConversionReport:
    """What a converter did with each input item.

    ``inputs == converted + skipped`` always holds. For converters that read a folder tree, every file
    under it is also accounted for: it is an input item (a reconstruction), a supporting file that items
    used (an original, a label file), or listed in ``ignored`` with the reason; so
    ``files == inputs + supporting + len(ignored)``. ``check_totals`` verifies both.
    """

    source: str
    converter: str
    strict: bool
    inputs: int = 0
    converted: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: files found under the input tree (``None`` for converters that do not read a tree)
    files: int | None = None
    #: files that items used without being items themselves (originals, label files)
    supporting: int = 0
    ignored: list[dict[str, str]] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.problems)

    def ok(self) -> None:
        self.inputs += 1
        self.converted += 1

    def problem(self, item: str, reason: str) -> None:
        """Record a problem with ``item``; in strict mode this raises ``ConversionError``."""
        self.inputs += 1
        self.problems.append({"item": item, "reason": reason})
        if self.strict:
            raise ConversionError(
                f"{self.converter}: {item}: {reason}. (Strict mode stops at the first problem; pass "
                "strict=False / --lenient to skip bad items and list them in the report.)"
            )

    def ignore(self, item: str, reason: str) -> None:
        """List a file under the input tree that is neither an item nor used by one."""
        self.ignored.append({"item": item, "reason": reason})

    def check_totals(self) -> None:
        if self.inputs != self.converted + self.skipped:
            raise AssertionError(
                f"report does not add up: {self.inputs} != {self.converted} + {self.skipped}"
            )
        if self.files is not None and self.files != self.inputs + self.supporting + len(self.ignored):
            raise AssertionError(
                f"files do not add up: {self.files} != {self.inputs} items + {self.supporting} "
                f"supporting + {len(self.ignored)} ignored"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "converter": self.converter,
            "strict": self.strict,
            "inputs": self.inputs,
            "converted": self.converted,
            "skipped": self.skipped,
            "problems": self.problems,
            "notes": self.notes,
            "files": self.files,
            "supporting": self.supporting,
            "ignored": self.ignored,
        }

    def summary(self) -> str:
        lines = [
            f"{self.converter}: {self.inputs} input item(s): {self.converted} converted, {self.skipped} skipped"
        ]
        if self.files is not None:
            lines.append(
                f"  {self.files} file(s) under the input: {self.inputs} item(s), {self.supporting} supporting "
                f"(originals, labels), {len(self.ignored)} ignored"
            )
            for reason, n in sorted(_count(self.ignored).items(), key=lambda kv: -kv[1]):
                lines.append(f"  {n} ignored: {reason}")
        reasons: dict[str, int] = {}
        for p in self.problems:
            key = p["reason"].split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
        lines += [f"  {n} x {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def write(self, folder: str | Path | OutputFolder, *, command: str = "convert") -> Path:
        """Write ``conversion_report.json`` and ``conversion_report.md`` into ``folder`` (an output folder
        owned by ``command``: a report that someone else wrote there is never replaced)."""
        from ..outputs import OutputFolder

        out = folder if isinstance(folder, OutputFolder) else OutputFolder(folder, command=command).claim()
        json_path = out.write_text("conversion_report.json", json.dumps(self.to_dict(), indent=2))
        md = [
            "# Conversion report",
            "",
            f"- source: `{self.source}`",
            f"- converter: {self.converter}",
            f"- mode: {'strict' if self.strict else 'lenient'}",
            f"- input items: {self.inputs}",
            f"- converted: {self.converted}",
            f"- skipped: {self.skipped}",
            "",
        ]
        if self.notes:
            md += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        if self.files is not None:
            md += [
                f"- files under the input: {self.files} ({self.inputs} items, {self.supporting} supporting, "
                f"{len(self.ignored)} ignored)",
                "",
            ]
        if self.problems:
            md += ["## Problems", "", "| item | reason |", "|---|---|"]
            md += [f"| `{p['item']}` | {p['reason']} |" for p in self.problems]
            md += [""]
        if self.ignored:
            md += ["## Ignored files", "", "| file | reason |", "|---|---|"]
            md += [f"| `{p['item']}` | {p['reason']} |" for p in self.ignored]
        out.write_text("conversion_report.md", "\n".join(md) + "\n")
        return json_path
