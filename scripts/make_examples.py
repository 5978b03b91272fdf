"""Write the committed example pairs (examples/) from the default dataset's held-out test split.

    python scripts/make_examples.py

Six test originals, each with one reconstruction the judges recognised and one they did not, named so
that `semsim score examples/originals examples/reconstructions` pairs them
(`<original_id>.png` and `<original_id>__<reconstruction_id>.png`).
"""

from pathlib import Path

from semsim_metric.data.loading import load_folder_or_hub

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ds = load_folder_or_hub(str(ROOT / "hub" / "fmnist-judged-v1"), split="test")
    out_o, out_r = ROOT / "examples" / "originals", ROOT / "examples" / "reconstructions"
    out_o.mkdir(parents=True, exist_ok=True)
    out_r.mkdir(parents=True, exist_ok=True)
    by_orig: dict[str, dict[bool, int]] = {}
    for i, (oid, rec) in enumerate(zip(ds["original_id"], ds["recognized"])):
        by_orig.setdefault(oid, {}).setdefault(bool(rec), i)
    chosen = [oid for oid, d in sorted(by_orig.items()) if len(d) == 2][:6]
    lines = [
        "| original | reconstruction | victim | attack | judges' votes | recognised |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for oid in chosen:
        for rec in (True, False):
            row = ds[by_orig[oid][rec]]
            row["original"].save(out_o / f"{oid}.png")
            name = f"{oid}__{row['reconstruction_id']}.png"
            row["reconstruction"].save(out_r / name)
            lines.append(
                f"| {oid}.png | {name} | {row['victim']} | {row['attack']} {row['attack_iterations']} | "
                f"{row['votes']} (class {row['class_label']} {row['class_name']}) | {rec} |"
            )
            others = [v for v in row["votes"] if v not in (-1, row["class_label"])]
            if not rec and len(others) > len(row["votes"]) // 2:
                notes.append(
                    f"- `{name}` is *not recognised* although it may look like a good copy: the judges "
                    f"saw an object, but named another class ({sorted(set(others))}) than the original's "
                    f"({row['class_label']}, {row['class_name']}); the study's rule counts a reconstruction "
                    "as recognised only when at least 3 of 5 name the original's class. SemSim, trained on "
                    "such labels, can still score it as close."
                )
    (ROOT / "examples" / "README.md").write_text(
        "# Example pairs\n\nFrom the held-out test split of `hub/fmnist-judged-v1` (Fashion-MNIST, MIT licence). "
        "Votes are from vision-language-model judges, not people. Regenerate with `python scripts/make_examples.py`.\n\n"
        + "\n".join(lines)
        + "\n"
        + ("\n" + "\n".join(notes) + "\n" if notes else "")
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
