"""The result of the protocol on one set of rows, and its agreement table in Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EvaluationReport", "fmt", "fmt_ci"]


@dataclass
class EvaluationReport:
    """Results of the protocol on one set of rows."""

    title: str
    n: int
    recognised_share: float
    image: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: dict[str, dict[str, Any]] = field(default_factory=dict)
    contradictions: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    #: the columns whose values define a victim setting for the model-level protocol
    group_by: tuple[str, ...] = ("victim",)
    per_group: dict[str, Any] = field(default_factory=dict)
    #: free-form facts about how the compared models were made (e.g. training time)
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "n": self.n,
            "recognised_share": self.recognised_share,
            "image_level": self.image,
            "model_level": self.model,
            "contradictions": self.contradictions,
            "skipped": self.skipped,
            "group_by": ",".join(self.group_by),
            "per_group": self.per_group,
            "notes": self.notes,
        }

    def table(self) -> str:
        """The agreement table as Markdown."""
        lines = [
            "| metric | ROC-AUC [95% CI] | accuracy | model-level Spearman [95% CI] | Kendall [95% CI] "
            "| Pearson |",
            "|---|---|---|---|---|---|",
        ]
        for name in sorted(self.image, key=lambda k: -self.image[k]["roc_auc"]):
            im, mo = self.image[name], self.model.get(name, {})
            lines.append(
                f"| {name} | {im['roc_auc']:.3f} {fmt_ci(im.get('roc_auc_ci'))} | {im['accuracy']:.3f} | "
                f"{fmt(mo.get('spearman'))} {fmt_ci(mo.get('spearman_ci'))} | {fmt(mo.get('kendall'))} "
                f"{fmt_ci(mo.get('kendall_ci'))} | {fmt(mo.get('pearson'))} |"
            )
        return "\n".join(lines)


def fmt(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{v:.3f}"


def fmt_ci(ci: list[float] | None) -> str:
    return "" if not ci or ci[0] != ci[0] else f"[{ci[0]:.2f}, {ci[1]:.2f}]"
