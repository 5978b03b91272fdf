"""A ``LeakageReport`` as one self-contained HTML page and a PNG figure (``semsim report``).

The page holds everything itself - images as ``data:`` URIs, CSS inline, no scripts, and a
Content-Security-Policy that forbids any other source - so it can be mailed, archived or opened offline and
shows the same thing everywhere. Its parts: the leak rate and its interval in words; the reconstructions
beside their originals, most likely recognised first; the distribution of distances; the per-image table
with the baselines and the disagreements highlighted; how to read it (model, revision, calibration).
The figure (``report.png``) shows the most and the least recognisable reconstructions with their originals.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np

from .._deps import require
from .._progress import logger
from ..errors import OutputFolderError
from .leakage import LeakageReport, LeakageRow

__all__ = [
    "GENERATOR",
    "check_report_outputs",
    "distance_histogram_png",
    "render_html",
    "write_figure",
    "write_leakage_report",
]

#: What the page's ``<meta name="generator">`` and the figure's PNG ``Software`` field say (files with it are
#: replaced by a new report without ``overwrite``; other files are refused).
GENERATOR = "semsim-metric leakage report"
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_FLAG_WORDS = {
    "semsim_only": "SemSim only: SemSim says recognised, the pixel metrics rank it low",
    "pixels_only": "pixels only: the pixel metrics rank it high, SemSim says not recognised",
}
_UNITS = {"PSNR": "PSNR (dB)", "SSIM": "SSIM"}
_MORE_IS_CLOSER = {
    "PSNR": "higher = more similar",
    "SSIM": "higher = more similar",
    "LPIPS": "lower = more similar",
    "DISTS": "lower = more similar",
    "MSE": "lower = more similar",
}


def _ours(path: Path) -> bool:
    """Whether ``path`` is a file a leakage report wrote (its generator mark)."""
    try:
        if path.suffix.lower() == ".png":
            from PIL import Image

            with Image.open(path) as img:
                return img.info.get("Software") == GENERATOR
        with path.open("rb") as f:
            return f'content="{GENERATOR}"'.encode() in f.read(4000)
    except OSError:
        return False


def check_report_outputs(
    html_path: str | Path, figure_path: str | Path | None = None, *, overwrite: bool = False
) -> None:
    """Refuse output paths that cannot be written or that hold files a leakage report did not write.

    Raises:
        OutputFolderError: a path is a folder, or an existing file that is not a report (without ``overwrite``),
            or its folder cannot be written.
    """
    for path in [Path(html_path)] + ([Path(figure_path)] if figure_path is not None else []):
        if path.is_dir():
            raise OutputFolderError(f"{path} is a folder; give a file name (e.g. report.html).")
        if path.exists() and not overwrite and not _ours(path):
            raise OutputFolderError(
                f"{path} exists and was not written by a leakage report; choose another name or "
                "pass overwrite=True (--overwrite)."
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            probe = path.with_name(f".{path.name}.probe")
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise OutputFolderError(
                f"{path} cannot be written ({err.strerror or err}); choose a writable location."
            ) from err


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _fmt(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _pct(v: float) -> str:
    if math.isnan(v):
        return "n/a"
    text = f"{100 * v:.1f}"
    return text.removesuffix(".0") + "%"


def _who(report: LeakageReport) -> str:
    """Who the calibration's annotators were, in words (never "human" unless the record says so)."""
    from ..hub import DEFAULT_MODEL_ID

    fitted = str(report.calibration.get("fitted_on", ""))
    if "model-judge" in fitted:
        if report.model_name.startswith(DEFAULT_MODEL_ID):
            return (
                "five vision-language-model judges per reconstruction, shown only the reconstruction (the "
                "judged data semsim-judged-v3) - not people"
            )
        return "vision-language-model judges shown only the reconstruction - not people"
    if "annotator_kind: human" in fitted:
        return "people (annotator_kind: human)"
    return "the annotators named in the model's card (see its calibration record below)"


def distance_histogram_png(report: LeakageReport) -> bytes:
    """The distribution of SemSim distances (recognised vs not) with the calibration curve, as PNG bytes."""
    matplotlib = require("matplotlib", "the leakage report's plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = np.array([r.distance for r in report.rows])
    rec = np.array([r.recognised for r in report.rows])
    top = max(1.0, float(d.max()) * 1.05)
    bins = np.linspace(0, top, 31)
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    ax.hist(
        [d[rec], d[~rec]],
        bins=bins,
        stacked=True,
        color=["#c0392b", "#7f8c8d"],
        label=[
            f"recognised (p > {report.threshold:g}): {int(rec.sum())}",
            f"not recognised: {int((~rec).sum())}",
        ],
    )
    ax.axvline(report.distance_threshold, color="black", ls="--", lw=1)
    ax.text(
        report.distance_threshold,
        ax.get_ylim()[1] * 0.95,
        f"  p = {report.threshold:g} at d = {report.distance_threshold:.3f}",
        va="top",
        fontsize=8,
    )
    ax.set_xlabel("SemSim distance (0 = semantically identical = most leakage)")
    ax.set_ylabel("reconstructions")
    ax.set_xlim(0, top)
    ax2 = ax.twinx()
    grid = np.linspace(0, top, 200)
    cal = report.calibration
    ax2.plot(
        grid,
        1 / (1 + np.exp(-(cal["intercept"] + cal["slope"] * grid))),
        color="#2c3e50",
        lw=1.2,
        label="p_recognised(d)",
    )
    ax2.set_ylim(0, 1.02)
    ax2.set_ylabel("p_recognised", fontsize=8)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": GENERATOR})
    plt.close(fig)
    return buf.getvalue()


def _image_array(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L" if img.mode in ("L", "1", "I;16") else "RGB"))


def write_figure(report: LeakageReport, path: str | Path, *, per_side: int = 6) -> Path:
    """``path`` (PNG): the ``per_side`` most and least recognisable reconstructions over their originals, with
    their probabilities.

    Returns:
        ``path``.
    """
    matplotlib = require("matplotlib", "the leakage report's figure")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    rows = report.sorted_rows()
    k = min(per_side, math.ceil(len(rows) / 2))
    blocks = [("most likely recognised", rows[:k])]
    rest = rows[k:]
    if rest:
        blocks.append(("least likely recognised", rest[-min(k, len(rest)) :]))
    fig, axes = plt.subplots(
        2 * len(blocks), k, figsize=(1.45 * k + 0.9, 3.0 * len(blocks) + 0.6), squeeze=False
    )
    for b, (title, block) in enumerate(blocks):
        for j in range(k):
            ax_o, ax_r = axes[2 * b, j], axes[2 * b + 1, j]
            for ax in (ax_o, ax_r):
                ax.set_xticks([])
                ax.set_yticks([])
            if j >= len(block):
                ax_o.axis("off")
                ax_r.axis("off")
                continue
            row = block[j]
            for ax, data in (
                (ax_o, report.original_thumbnails[row.original_id]),
                (ax_r, report.reconstruction_thumbnails[row.id]),
            ):
                arr = _image_array(data)
                ax.imshow(
                    arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest"
                )
            colour = "#c0392b" if row.recognised else "#34495e"
            ax_r.set_title(f"p = {row.p_recognised:.2f}", fontsize=8, color=colour, pad=2)
            ax_r.set_xlabel(_short(row.id, 16), fontsize=6)
        axes[2 * b, 0].set_ylabel("original", fontsize=8)
        axes[2 * b + 1, 0].set_ylabel("reconstruction", fontsize=8)
        axes[2 * b, 0].set_title(title, fontsize=9, loc="left", pad=4, fontweight="bold")
    fig.suptitle(report.sentence(), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": GENERATOR})
    plt.close(fig)
    return path


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3) :]


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2327;margin:0;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px} h2{font-size:1.2em;margin:28px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}
.muted{color:#5b6770;font-size:.9em} code{font-size:.85em;background:#eef0f3;padding:0 3px;border-radius:3px}
.headline{background:#fff;border-left:6px solid #c0392b;padding:14px 18px;margin:16px 0;font-size:1.25em}
.headline b{font-size:1.1em}
.notes{background:#fff8e1;border:1px solid #f0d98c;padding:8px 14px;border-radius:4px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(205px,1fr));gap:10px}
.pair{background:#fff;border:1px solid #dde;border-radius:6px;margin:0;padding:8px;font-size:.82em}
.pair.recognised{border-top:4px solid #c0392b} .pair.not{border-top:4px solid #95a5a6}
.pair.flag{outline:3px solid #e67e22}
.imgs{display:flex;gap:6px;justify-content:center}
.imgs div{text-align:center;font-size:.8em;color:#5b6770}
img.px{width:88px;height:auto;image-rendering:crisp-edges;image-rendering:pixelated;display:block;
background:#000;border:1px solid #ccd}
.bar{display:inline-block;width:80px;height:8px;background:#e5e8eb;border-radius:4px;vertical-align:middle}
.bar span{display:block;height:8px;background:#c0392b;border-radius:4px}
.id{word-break:break-all;color:#5b6770}
.skip{grid-column:1/-1;text-align:center;padding:10px;background:#eef0f3;border-radius:6px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.86em}
th,td{border:1px solid #dde;padding:3px 6px;text-align:right} th{background:#eef0f3;position:sticky;top:0}
td.t{text-align:left;white-space:nowrap} td.f{text-align:left;min-width:16em}
.scroll{overflow-x:auto}
tr.flag td{background:#fdebd0} tr.flag td.f{font-weight:600;color:#a04000}
.yes{color:#c0392b;font-weight:600}
figure.plot{margin:0;background:#fff;border:1px solid #dde;padding:6px;text-align:center}
figure.plot img{max-width:100%}
dl dt{font-weight:600;margin-top:8px} dl dd{margin-left:18px}
"""


def _card(report: LeakageReport, row: LeakageRow, rank: int) -> str:
    e = html.escape
    o = _png_uri(report.original_thumbnails[row.original_id])
    r = _png_uri(report.reconstruction_thumbnails[row.id])
    metrics = " &middot; ".join(
        f"{e(name)} {_fmt(v, 1 if name == 'PSNR' else 3)}" for name, v in row.baselines.items()
    )
    flag = (
        f'<br><span class="yes">&#9873; {e(_FLAG_WORDS[row.disagreement])}</span>' if row.disagreement else ""
    )
    cls = ("recognised" if row.recognised else "not") + (" flag" if row.disagreement else "")
    return (
        f'<figure class="pair {cls}" data-p="{row.p_recognised:.6f}">'
        f'<div class="imgs"><div><img class="px orig" src="{o}" alt="original {e(row.original_id)}">original</div>'
        f'<div><img class="px rec" src="{r}" alt="reconstruction {e(row.id)}">reconstruction</div></div>'
        f'<figcaption>#{rank} <b>p = {row.p_recognised:.2f}</b> <span class="bar"><span style="width:'
        f'{100 * row.p_recognised:.0f}%"></span></span><br>distance {row.distance:.3f}'
        f'{" &middot; " + metrics if metrics else ""}<br><span class="id">{e(row.id)}</span>{flag}</figcaption>'
        "</figure>"
    )


def render_html(report: LeakageReport, *, gallery_limit: int = 200, histogram: bytes | None = None) -> str:
    """The report as one self-contained HTML page (no scripts, no external references).

    Args:
        report: a ``LeakageReport``.
        gallery_limit: the most reconstructions shown as images (the most and the least recognisable halves of
            that number when there are more; the table always lists every one).
        histogram: the distance histogram as PNG bytes (default: ``distance_histogram_png(report)``).

    Returns:
        The HTML text.
    """
    e = html.escape
    rows = report.sorted_rows()
    hist = histogram if histogram is not None else distance_histogram_png(report)
    head = report.sentence()
    revision = e(report.model_revision or "not pinned (a folder or a model object)")
    body = "\n".join(
        [
            _intro_html(report, head, revision),
            _gallery_html(report, rows, gallery_limit, hist),
            _comparison_html(report, rows),
            _how_to_read_html(report, revision),
        ]
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f'<meta name="generator" content="{GENERATOR}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Leakage report: {e(head)}</title><style>{_CSS}</style></head>\n<body>{body}</body></html>\n"
    )


def _intro_html(report: LeakageReport, head: str, revision: str) -> str:
    """The page's title, inputs, model, the leak rate in words, how it is counted, and the notes."""
    e = html.escape
    lo, hi = report.interval
    notes = "".join(f"<li>{e(n)}</li>" for n in report.notes)
    return f"""<main>
<h1>Leakage report</h1>
<div class="muted">{e(report.source)} &middot; {report.n} reconstructions of {report.n_originals} originals &middot;
SemSim model <code>{e(report.model_name)}</code> revision <code>{revision}</code></div>
<p class="headline" id="rate"><b>{e(head)}</b></p>
<p>A reconstruction counts as <em>recognised</em> when its calibrated probability <code>p_recognised</code> is above
{report.threshold:g}, i.e. its SemSim distance is below {report.distance_threshold:.3f}. The 95% interval
({_pct(lo)}-{_pct(hi)}) is a percentile bootstrap over the {report.n_originals} originals ({report.n_boot:,} resamples,
seed {report.seed}): the reconstructions of one original are resampled together, because they are not independent
evidence.</p>
{f'<div class="notes"><b>Notes</b><ul>{notes}</ul></div>' if notes else ""}"""


def _gallery_cards(report: LeakageReport, rows: list[LeakageRow], gallery_limit: int) -> list[str]:
    """The gallery's cards: every row, or the two ends of ``rows`` around a note of how many are not shown."""
    cards = []
    limit = max(2, gallery_limit)
    if len(rows) <= limit:
        shown = list(enumerate(rows, 1))
        cut = None
    else:
        top, bottom = limit - limit // 2, limit // 2
        shown = list(enumerate(rows[:top], 1)) + list(enumerate(rows[-bottom:], len(rows) - bottom + 1))
        cut = top
    for i, (rank, row) in enumerate(shown):
        if cut is not None and i == cut:
            hidden = rows[cut : len(rows) - limit // 2]
            cards.append(
                f'<div class="skip">{len(hidden)} reconstructions with p between '
                f"{hidden[-1].p_recognised:.2f} and {hidden[0].p_recognised:.2f} are not shown here; the "
                "table below lists every one.</div>"
            )
        cards.append(_card(report, row, rank))
    return cards


def _gallery_html(report: LeakageReport, rows: list[LeakageRow], gallery_limit: int, hist: bytes) -> str:
    """The gallery of reconstructions beside their originals, and the distance histogram."""
    cards = _gallery_cards(report, rows, gallery_limit)
    return f"""<h2 id="gallery">Reconstructions beside their originals, most likely recognised first</h2>
<div class="gallery">{"".join(cards)}</div>
<h2 id="distribution">Distribution of distances</h2>
<figure class="plot"><img src="{_png_uri(hist)}" alt="histogram of SemSim distances, recognised and not, with the
calibration curve"><figcaption class="muted">Stacked histogram of SemSim distances (red: p_recognised &gt;
{report.threshold:g}); the curve is the calibration p_recognised(d); the dashed line is where it crosses
{report.threshold:g}.</figcaption></figure>"""


def _table_rows(report: LeakageReport, rows: list[LeakageRow]) -> str:
    """The table's rows, one per reconstruction, disagreements highlighted."""
    e = html.escape
    trs = []
    for rank, row in enumerate(rows, 1):
        tds = "".join(
            f"<td>{_fmt(row.baselines.get(b, math.nan), 2 if b == 'PSNR' else 4)}</td>"
            for b in report.baselines
        )
        verdict = '<span class="yes">yes</span>' if row.recognised else "no"
        flag = e(_FLAG_WORDS.get(row.disagreement, ""))
        trs.append(
            f'<tr class="{"flag" if row.disagreement else ""}"><td>{rank}</td><td class="t">{e(row.id)}</td>'
            f'<td class="t">{e(row.original_id)}</td><td>{row.distance:.4f}</td><td>{row.p_recognised:.3f}</td>'
            f'<td>{verdict}</td>{tds}<td class="f">{flag}</td></tr>'
        )
    return "".join(trs)


def _comparison_html(report: LeakageReport, rows: list[LeakageRow]) -> str:
    """The disagreements with the pixel metrics, their rule and summary, and the table of every reconstruction."""
    e = html.escape
    th = "".join(f"<th>{e(_UNITS.get(b, b))}</th>" for b in report.baselines)
    summary = "".join(
        f"<li>{e(b)}: Spearman rank correlation with SemSim {_fmt(s['spearman'])} (both oriented so that higher = more "
        f"leakage); its matched-count verdict agrees with SemSim's on {_pct(s['agreement'])} of the reconstructions"
        "</li>"
        for b, s in report.baseline_summary.items()
    )
    n_flag = sum(report.disagreements.values())
    return f"""<h2 id="disagreements">SemSim and the pixel metrics</h2>
<p><b>{n_flag}</b> disagreement(s): {report.disagreements.get("semsim_only", 0)} where SemSim says recognised but
{e(" and ".join(report.rule_baselines) or "the pixel metrics")} rank the reconstruction low, and
{report.disagreements.get("pixels_only", 0)} the other way round (highlighted below).</p>
<p class="muted">Rule: {e(report.disagreement_rule)}</p>
<ul>{summary}</ul>
<h2 id="table">Every reconstruction</h2>
<div class="scroll"><table><thead><tr><th>#</th><th>reconstruction</th><th>original</th><th>SemSim distance</th><th>p_recognised</th>
<th>recognised</th>{th}<th>disagreement</th></tr></thead><tbody>
{_table_rows(report, rows)}
</tbody></table></div>"""


def _how_to_read_html(report: LeakageReport, revision: str) -> str:
    """How to read the page: the measures, the model and its calibration, the interval, the baselines, the limits."""
    from .. import __version__

    e = html.escape
    cal = report.calibration
    lpips_word = (
        "" if "LPIPS" in report.baselines else " LPIPS is shown only when its weights are on this machine."
    )
    return f"""<h2 id="how-to-read">How to read this</h2>
<dl>
<dt>SemSim distance</dt><dd>A learned distance between a reconstruction and its original: 0 = semantically
identical (the attack leaked what an annotator recognises), up to 2; lower = more leakage.</dd>
<dt>p_recognised</dt><dd>The model's calibrated probability that the reconstruction is recognised: that the
annotators its calibration was fitted on would name the original's class from the reconstruction alone. For this
model they were {e(_who(report))}. Read p as how often such annotators would recognise it; it is not a statement
about what a particular person sees.</dd>
<dt>Model</dt><dd><code>{e(report.model_name)}</code>, revision <code>{revision}</code>; calibration
p = sigmoid({_fmt(cal.get("intercept"))} + ({_fmt(cal.get("slope"))}) &times; distance), fitted on:
{e(str(cal.get("fitted_on", "not recorded")))}.</dd>
<dt>Leak rate and interval</dt><dd>The share of reconstructions with p above {report.threshold:g}. The interval says
how much that share would move with other originals of the same kind: it resamples originals, not single
reconstructions.</dd>
<dt>PSNR, SSIM{", LPIPS" if "LPIPS" in report.baselines else ""}</dt><dd>Pixel metrics on the same images
({e("; ".join(f"{b}: {_MORE_IS_CLOSER.get(b, '')}" for b in report.baselines))}). They have no calibrated
threshold; a disagreement marks a reconstruction that SemSim and the pixel metrics judge on opposite sides (rule
above): worth looking at, whichever is right.{lpips_word}</dd>
<dt>Limits</dt><dd>The calibration holds for images like those the model was trained on (see its card and any
out-of-domain note above); elsewhere read the distances as a ranking. Reconstructions of originals the model was
trained on score in-sample.</dd>
</dl>
<p class="muted">Made by semsim-metric {e(__version__)} (<code>semsim report</code>). This page is self-contained:
no scripts, no network; images are embedded.</p>
</main>"""


def write_leakage_report(
    report: LeakageReport,
    path: str | Path,
    *,
    figure: str | Path | bool = True,
    overwrite: bool = False,
    gallery_limit: int = 200,
) -> tuple[Path, Path | None]:
    """Write the HTML page ``path`` and, beside it, the figure (``report.html`` -> ``report.png``).

    Args:
        report: a ``LeakageReport`` (``leakage_report(...)``).
        path: the HTML file.
        figure: ``True`` = ``path`` with ``.png``; a path; ``False`` = no figure.
        overwrite: replace files that a leakage report did not write.
        gallery_limit: see ``render_html``.

    Returns:
        ``(html_path, figure_path or None)``.

    Raises:
        OutputFolderError: see ``check_report_outputs``.

    Examples:
        >>> import tempfile, pathlib, torch
        >>> from semsim_metric.evaluation.leakage import leakage_report
        >>> x = torch.rand(2, 3, 32, 32)
        >>> rep = leakage_report(x, x.clone(), n_boot=50, progress=False)
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
        >>> [p.name for p in write_leakage_report(rep, out)]
        ['report.html', 'report.png']
    """
    from ..outputs import atomic_write_text

    path = Path(path)
    fig_path = None if figure is False else (path.with_suffix(".png") if figure is True else Path(figure))
    if fig_path is not None and fig_path.resolve() == path.resolve():
        raise OutputFolderError(f"the figure and the page would both be {path}; give the page a .html name.")
    check_report_outputs(path, fig_path, overwrite=overwrite)
    logger.info("drawing the distance histogram")
    text = render_html(report, gallery_limit=gallery_limit, histogram=distance_histogram_png(report))
    atomic_write_text(path, text)
    logger.info("page written to %s (%.1f MB)", path, len(text) / 1e6)
    if fig_path is not None:
        import os
        import uuid

        tmp = fig_path.with_name(f".{fig_path.stem}.{uuid.uuid4().hex[:8]}.png")
        try:
            write_figure(report, tmp)
            os.replace(tmp, fig_path)
        finally:
            tmp.unlink(missing_ok=True)
        logger.info("figure written to %s", fig_path)
    return path, fig_path
