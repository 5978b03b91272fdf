"""Build the default dataset folders from the judged data in ../shared/data (model-judge votes, not human).

    python scripts/build_default_dataset.py                 # hub/fmnist-judged-v2: v1 + v2 combined (the default)
    python scripts/build_default_dataset.py --version v1    # hub/fmnist-judged-v1 (kept for reproduction)

Uses the project's manifest converter; the rule is the one the data's READMEs recommend (at least 3 of 5
votes equal the judges' majority reading of the original). Splits by original (an original that appears
in both releases goes to one split): 70% train, 10% validation, 20% test, seed 0. Reconstruction ids are
prefixed with the release (``v1-00042``), because both releases number from 00000.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semsim_metric.data import DatasetCard, RecognitionRule, convert_manifest, split_by_original, write_dataset_folder

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
RULE = RecognitionRule(min_votes=3, reference="original_consensus")
FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}
SEED = 0

V1_SUMMARY = ("4,800 gradient-inversion reconstructions of 400 Fashion-MNIST test images (12 victim x attack "
              "settings each), each with 5 votes from vision-language-model judges.")
V2_SUMMARY = ("1,600 reconstructions of 200 Fashion-MNIST test images (8 settings: DLG, iDLG and GradInversion-style "
              "attacks, a CIFAR-style ResNet-20 victim, crop/flip augmentation, gradient noise and gradient pruning "
              "during training), each with 5 votes from vision-language-model judges.")
PROTOCOL = (" **These are NOT human annotations.** The judges followed the SemSim study's protocol: each saw only the "
            "reconstructions and named the Fashion-MNIST class or answered -1 (cannot recognise).")


def convert(release: str) -> tuple[list[dict], str]:
    rows, report = convert_manifest(SHARED / f"fmnist_judged_{release}" / "manifest.csv", rule=RULE, strict=True,
                                    expected_votes=5)
    for row in rows:
        row["reconstruction_id"] = f"{release}-{row['reconstruction_id']}"
    return rows, f"{release}: " + report.summary().replace("\n", "; ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", choices=["v1", "v2"], default="v2")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    releases = ["v1"] if args.version == "v1" else ["v1", "v2"]
    rows, reports = [], []
    for release in releases:
        part, summary = convert(release)
        rows += part
        reports.append(summary)
    if args.version == "v1":  # the v1 folder keeps its original ids
        for row in rows:
            row["reconstruction_id"] = row["reconstruction_id"].removeprefix("v1-")
    splits, notes = split_by_original(rows, fractions=FRACTIONS, seed=SEED)
    originals = len({r["original_id"] for r in rows})
    title = ("fmnist-judged-v1: judged gradient-inversion reconstructions of Fashion-MNIST" if args.version == "v1" else
             "fmnist-judged-v2: judged gradient-inversion reconstructions of Fashion-MNIST (releases v1 + v2)")
    summary = (V1_SUMMARY if args.version == "v1" else
               f"{len(rows):,} reconstructions of {originals} Fashion-MNIST test images: release v1 ({V1_SUMMARY}) "
               f"and release v2 ({V2_SUMMARY})") + PROTOCOL
    attacks = ("inverting_gradients (1 - cosine + TV, 200 or 1,500 iterations) and l2_gradient_matching (L2 + TV, 300 or "
               "1,000 iterations) against lenet_sigmoid and conv_relu victims trained 0, 1 or 4 epochs")
    if args.version == "v2":
        attacks += ("; v2: dlg and idlg (300 iterations), gradinversion (500), inverting_gradients (200-800) against "
                    "lenet_sigmoid, conv_relu and resnet20 victims, some trained with crop_flip augmentation or with "
                    "gradient noise (noise:1e-3) or gradient pruning (prune:70)")
    card = DatasetCard(
        title=title, summary=summary,
        source="Fashion-MNIST test split (Zalando Research, MIT licence), 28x28 greyscale", licence="mit",
        attacks=attacks,
        annotators=("five independent vision-language-model judges per reconstruction (annotator_kind='model-judge'); "
                    "originals judged by five further judge contexts (original_votes)"),
        rule=RULE, notes=notes + reports, source_datasets=["zalando-datasets/fashion_mnist"])
    out = args.out or ROOT / "hub" / f"fmnist-judged-{args.version}"
    write_dataset_folder(splits, out, card, overwrite=True, command="build-default-dataset")
    print("\n".join(reports))
    print({k: len(v) for k, v in splits.items()}, "->", out)


if __name__ == "__main__":
    main()
