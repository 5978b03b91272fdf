"""Evaluation reports: the agreement table in Markdown, ``report.json`` and the plots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EvaluationReport", "fmt", "fmt_ci", "write_report"]


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
    group_by: str = "victim"
    per_group: dict[str, Any] = field(default_factory=dict)
    #: free-form facts about how the compared models were made (e.g. training time)
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "n": self.n, "recognised_share": self.recognised_share, "image_level": self.image,
                "model_level": self.model, "contradictions": self.contradictions, "skipped": self.skipped,
                "group_by": self.group_by, "per_group": self.per_group, "notes": self.notes}

    def table(self) -> str:
        """The agreement table as Markdown."""
        lines = ["| metric | ROC-AUC [95% CI] | accuracy | model-level Spearman [95% CI] | Kendall [95% CI] "
                 "| Pearson |", "|---|---|---|---|---|---|"]
        for name in sorted(self.image, key=lambda k: -self.image[k]["roc_auc"]):
            im, mo = self.image[name], self.model.get(name, {})
            lines.append(f"| {name} | {im['roc_auc']:.3f} {fmt_ci(im.get('roc_auc_ci'))} | {im['accuracy']:.3f} | "
                         f"{fmt(mo.get('spearman'))} {fmt_ci(mo.get('spearman_ci'))} | {fmt(mo.get('kendall'))} "
                         f"{fmt_ci(mo.get('kendall_ci'))} | {fmt(mo.get('pearson'))} |")
        return "\n".join(lines)


def fmt(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{v:.3f}"


def fmt_ci(ci: list[float] | None) -> str:
    return "" if not ci or ci[0] != ci[0] else f"[{ci[0]:.2f}, {ci[1]:.2f}]"



def write_report(reports: Sequence[EvaluationReport], out: str | Path, *,
                 values: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] | None = None,
                 intro: str = "") -> Path:
    """Write ``report.md``, ``report.json`` and the plots for each report into ``out``."""
    from .plots import plot_model_level, plot_roc

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = ["# SemSim agreement report", "", intro, ""] if intro else ["# SemSim agreement report", ""]
    for k, rep in enumerate(reports):
        slug = "".join(c if c.isalnum() else "_" for c in rep.title.lower()).strip("_") or f"part{k}"
        md += [f"## {rep.title}", "",
               f"{rep.n} reconstructions, {rep.recognised_share:.1%} recognised; model level = {len(rep.per_group)} groups "
               f"by `{rep.group_by}`. Every metric is oriented so that higher = more leakage; ROC-AUC intervals and correlation "
               "intervals are 95% bootstrap intervals over originals.", "", rep.table(), ""]
        if rep.skipped:
            md += ["Skipped metrics:", ""] + [f"- {k2}: {v}" for k2, v in rep.skipped.items()] + [""]
        if rep.notes:
            md += ["Notes:", ""] + [f"- {k2}: {v}" for k2, v in rep.notes.items()] + [""]
        if rep.contradictions:
            top = sorted(rep.contradictions.items(), key=lambda kv: -kv[1])[:8]
            md += ["Metrics that contradict each other most (share of reconstruction pairs ordered oppositely):", ""]
            md += [f"- {k2}: {v:.1%}" for k2, v in top] + [""]
        if len(rep.per_group) >= 3:
            plot_model_level(rep, out / f"{slug}_model_level.png")
            md += [f"![model level]({slug}_model_level.png)", ""]
        if values and rep.title in values:
            vals, y = values[rep.title]
            plot_roc({k: v for k, v in vals.items() if k in rep.image}, y, out / f"{slug}_roc.png")
            md += [f"![ROC]({slug}_roc.png)", ""]
    (out / "report.md").write_text("\n".join(md))
    (out / "report.json").write_text(json.dumps([r.to_dict() for r in reports], indent=2))
    return out / "report.md"


