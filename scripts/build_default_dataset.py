"""Convert ../shared/data/fmnist_judged_v1 (model-judge votes) into the default dataset folder hub/fmnist-judged-v1.

    python scripts/build_default_dataset.py [--source ../shared/data/fmnist_judged_v1] [--out hub/fmnist-judged-v1]

Uses the project's manifest converter; the rule is the one the data's README recommends (at least 3 of 5
votes equal the judges' majority reading of the original). Splits by original: 70% train, 10% validation,
20% test, seed 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semsim_metric.data import DatasetCard, RecognitionRule, convert_manifest, split_by_original, write_dataset_folder

RULE = RecognitionRule(min_votes=3, reference="original_consensus")
FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}
SEED = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fmnist_judged_v1")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "hub" / "fmnist-judged-v1")
    args = parser.parse_args()
    rows, report = convert_manifest(args.source / "manifest.csv", rule=RULE, strict=True, expected_votes=5)
    splits, notes = split_by_original(rows, fractions=FRACTIONS, seed=SEED)
    card = DatasetCard(
        title="fmnist-judged-v1: judged gradient-inversion reconstructions of Fashion-MNIST",
        summary=("4,800 gradient-inversion reconstructions of 400 Fashion-MNIST test images (12 victim x attack "
                 "settings each), each with 5 votes from vision-language-model judges. **These are NOT human "
                 "annotations.** The judges followed the SemSim study's protocol: each saw only the "
                 "reconstructions and named the Fashion-MNIST class or answered -1 (cannot recognise)."),
        source="Fashion-MNIST test split (Zalando Research, MIT licence), 28x28 greyscale",
        licence="mit",
        attacks=("inverting_gradients (1 - cosine + TV, 200 or 1,500 iterations) and l2_gradient_matching "
                 "(L2 + TV, 300 or 1,000 iterations) against lenet_sigmoid and conv_relu victims trained 0, 1 or 4 epochs"),
        annotators=("five independent vision-language-model judges per reconstruction (annotator_kind='model-judge'); "
                    "originals judged by five further judge contexts (original_votes)"),
        rule=RULE,
        notes=notes + [report.summary().replace("\n", "; ")],
    )
    write_dataset_folder(splits, args.out, card, overwrite=True)
    print(report.summary())
    print({k: len(v) for k, v in splits.items()}, "->", args.out)


if __name__ == "__main__":
    main()
