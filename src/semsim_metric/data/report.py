"""Conversion reports: every input item is accounted for (converted or skipped with a reason)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ConversionError", "ConversionReport"]


class ConversionError(ValueError):
    """Raised in strict mode at the first problem, or when nothing could be converted."""


@dataclass
class ConversionReport:
    """What a converter did with each input item.

    ``inputs == converted + skipped`` always holds; :meth:`check_totals` verifies it.
    """

    source: str
    converter: str
    strict: bool
    inputs: int = 0
    converted: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.problems)

    def ok(self) -> None:
        self.inputs += 1
        self.converted += 1

    def problem(self, item: str, reason: str) -> None:
        """Record a problem with ``item``; in strict mode this raises :class:`ConversionError`."""
        self.inputs += 1
        self.problems.append({"item": item, "reason": reason})
        if self.strict:
            raise ConversionError(
                f"{self.converter}: {item}: {reason}. (Strict mode stops at the first problem; pass "
                "strict=False / --lenient to skip bad items and list them in the report.)"
            )

    def check_totals(self) -> None:
        if self.inputs != self.converted + self.skipped:
            raise AssertionError(f"report does not add up: {self.inputs} != {self.converted} + {self.skipped}")

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "converter": self.converter, "strict": self.strict,
                "inputs": self.inputs, "converted": self.converted, "skipped": self.skipped,
                "problems": self.problems, "notes": self.notes}

    def summary(self) -> str:
        lines = [f"{self.converter}: {self.inputs} input item(s): {self.converted} converted, {self.skipped} skipped"]
        reasons: dict[str, int] = {}
        for p in self.problems:
            key = p["reason"].split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
        lines += [f"  {n} x {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def write(self, folder: str | Path) -> Path:
        """Write ``conversion_report.json`` and ``conversion_report.md`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "conversion_report.json").write_text(json.dumps(self.to_dict(), indent=2))
        md = ["# Conversion report", "", f"- source: `{self.source}`", f"- converter: {self.converter}",
              f"- mode: {'strict' if self.strict else 'lenient'}", f"- input items: {self.inputs}",
              f"- converted: {self.converted}", f"- skipped: {self.skipped}", ""]
        if self.notes:
            md += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        if self.problems:
            md += ["## Problems", "", "| item | reason |", "|---|---|"]
            md += [f"| `{p['item']}` | {p['reason']} |" for p in self.problems]
        (folder / "conversion_report.md").write_text("\n".join(md) + "\n")
        return folder / "conversion_report.json"
