"""Writing evaluation reports to a folder: ``report.md``, ``report.json`` and the plots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .plots import plot_model_level, plot_roc
from .report import EvaluationReport

__all__ = ["write_report"]


def write_report(
    reports: Sequence[EvaluationReport],
    out: str | Path,
    *,
    values: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] | None = None,
    intro: str = "",
) -> Path:
    """Write ``report.md``, ``report.json`` and the plots for each report into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = ["# SemSim agreement report", "", intro, ""] if intro else ["# SemSim agreement report", ""]
    for k, rep in enumerate(reports):
        slug = "".join(c if c.isalnum() else "_" for c in rep.title.lower()).strip("_") or f"part{k}"
        md += [
            f"## {rep.title}",
            "",
            f"{rep.n} reconstructions, {rep.recognised_share:.1%} recognised; model level = {len(rep.per_group)} groups "
            f"by `{','.join(rep.group_by)}`. Every metric is oriented so that higher = more leakage; ROC-AUC intervals and correlation "
            "intervals are 95% bootstrap intervals over originals.",
            "",
            rep.table(),
            "",
        ]
        if rep.skipped:
            md += ["Skipped metrics:", ""] + [f"- {k2}: {v}" for k2, v in rep.skipped.items()] + [""]
        if rep.notes:
            md += ["Notes:", ""] + [f"- {k2}: {v}" for k2, v in rep.notes.items()] + [""]
        if rep.contradictions:
            top = sorted(rep.contradictions.items(), key=lambda kv: -kv[1])[:8]
            md += [
                "Metrics that contradict each other most (share of reconstruction pairs ordered oppositely):",
                "",
            ]
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
