"""Figure for docs/generating.md: originals beside their reconstructions from a generated dataset.

python scripts/make_generation_figure.py GENERATED_FOLDER docs/img/generation.png
"""

import sys
from pathlib import Path

import matplotlib

from semsim_metric.data.loading import load_folder_or_hub

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    rows = [r for split in load_folder_or_hub(str(folder)).values() for r in split]
    settings = sorted({(r["victim"], r["attack"], r["attack_iterations"]) for r in rows})
    originals = sorted({r["original_id"] for r in rows})[:6]
    by_key = {(r["original_id"], (r["victim"], r["attack"], r["attack_iterations"])): r for r in rows}
    fig, axes = plt.subplots(
        len(originals),
        1 + len(settings),
        figsize=(1.3 * (1 + len(settings)), 1.3 * len(originals)),
        squeeze=False,
    )
    for i, oid in enumerate(originals):
        first = next(r for r in rows if r["original_id"] == oid)
        axes[i, 0].imshow(first["original"], cmap="gray")
        for j, s in enumerate(settings, start=1):
            r = by_key.get((oid, s))
            if r is not None:
                axes[i, j].imshow(r["reconstruction"], cmap="gray")
    for j, s in enumerate(["original"] + [f"{v}\n{a} {n}" for v, a, n in settings]):
        axes[0, j].set_title(s, fontsize=6)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(out)


if __name__ == "__main__":
    main()
