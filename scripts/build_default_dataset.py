"""Build the default dataset folders from the judged data in ../shared/data (model-judge votes, not human).

    python scripts/build_default_dataset.py                 # hub/semsim-judged-v3: Fashion-MNIST v1 + v2 + emoji scenes
    python scripts/build_default_dataset.py --version v2    # hub/fmnist-judged-v2: Fashion-MNIST v1 + v2 (the v5 default's data)
    python scripts/build_default_dataset.py --version v1    # hub/fmnist-judged-v1 (kept for reproduction)

Uses the project's manifest converter; the rule is the one the data's READMEs recommend (at least 3 of 5
votes equal the judges' majority reading of the original). Splits by original (an original that appears
in both releases goes to one split): 70% train, 10% validation, 20% test, seed 0. Reconstruction ids are
prefixed with the release (``v1-00042``, ``emoji-v1-00042``), because every release numbers from 00000.

v3 is the first version with two image domains. The column ``source_dataset`` names each row's domain
(``fashion_mnist``: 28x28 greyscale; ``emoji_scenes``: 32x32 colour); ``class_label`` is the class index
*within* that domain (Fashion-MNIST's 10 classes, emoji scenes' 40), so the column is a plain integer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semsim_metric.data import (
    DatasetCard,
    RecognitionRule,
    convert_manifest,
    split_by_original,
    write_dataset_folder,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
RULE = RecognitionRule(min_votes=3, reference="original_consensus")
FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}
SEED = 0

V1_SUMMARY = (
    "4,800 gradient-inversion reconstructions of 400 Fashion-MNIST test images (12 victim x attack "
    "settings each), each with 5 votes from vision-language-model judges."
)
V2_SUMMARY = (
    "1,600 reconstructions of 200 Fashion-MNIST test images (8 settings: DLG, iDLG and GradInversion-style "
    "attacks, a CIFAR-style ResNet-20 victim, crop/flip augmentation, gradient noise and gradient pruning "
    "during training), each with 5 votes from vision-language-model judges."
)
EMOJI_SUMMARY = (
    "1,400 gradient-inversion reconstructions of 200 colour 32x32 emoji-scenes test images (7 victim x "
    "attack settings: sigmoid LeNet with inverting_gradients, DLG, iDLG and gradient noise, ReLU ConvNet "
    "with inverting_gradients and GradInversion, ResNet-20 with inverting_gradients), each with 5 votes "
    "from vision-language-model judges."
)
EMOJI_LICENCE = (
    "emoji scenes (`../shared/data/emoji_scenes`): CC-BY-SA 4.0 as a whole. Emoji drawings: Twemoji (c) "
    "Twitter, Inc and other contributors, CC-BY 4.0; Noto Emoji (c) Google, Apache-2.0; OpenMoji, the "
    "open-source emoji and icon project, CC-BY-SA 4.0. Backgrounds: scikit-image sample photographs "
    "(astronaut, coffee, chelsea, rocket, immunohistochemistry; public domain / CC0), gradients, flat "
    "colours"
)
FMNIST_LICENCE = "Fashion-MNIST test split (Zalando Research, MIT licence), 28x28 greyscale"
PROTOCOL = (
    " **These are NOT human annotations.** The judges followed the SemSim study's protocol: each saw only the "
    "reconstructions and named the Fashion-MNIST class or answered -1 (cannot recognise)."
)


#: release -> (folder under ../shared/data, prefix of its reconstruction ids)
RELEASES = {
    "v1": ("fmnist_judged_v1", "v1"),
    "v2": ("fmnist_judged_v2", "v2"),
    "emoji-v1": ("emoji_judged_v1", "emoji-v1"),
}


def convert(release: str) -> tuple[list[dict], str]:
    folder, prefix = RELEASES[release]
    rows, report = convert_manifest(
        SHARED / folder / "manifest.csv", rule=RULE, strict=True, expected_votes=5
    )
    for row in rows:
        row["reconstruction_id"] = f"{prefix}-{row['reconstruction_id']}"
    return rows, f"{release}: " + report.summary().replace("\n", "; ")


def domain_table(splits: dict[str, list[dict]]) -> list[str]:
    """A Markdown section: rows, originals and recognised share per image domain and split."""
    lines = [
        "## Image domains",
        "",
        "`source_dataset` names each row's image domain; `class_label` counts classes "
        "within the domain. One domain: `ds.filter(lambda r: r['source_dataset'] == 'emoji_scenes')`.",
        "",
        "| domain | split | rows | originals | recognised | victims x attacks |",
        "|---|---|---|---|---|---|",
    ]
    for domain in sorted({r["source_dataset"] for rows in splits.values() for r in rows}):
        for name, rows in splits.items():
            part = [r for r in rows if r["source_dataset"] == domain]
            if part:
                rec = sum(bool(r["recognized"]) for r in part) / len(part)
                settings = len({(r["victim"], r["attack"], r["attack_iterations"]) for r in part})
                lines.append(
                    f"| {domain} | {name} | {len(part)} | {len({r['original_id'] for r in part})} | "
                    f"{rec:.1%} | {settings} |"
                )
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", choices=["v1", "v2", "v3"], default="v3")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    releases = {"v1": ["v1"], "v2": ["v1", "v2"], "v3": ["v1", "v2", "emoji-v1"]}[args.version]
    rows, reports = [], []
    for release in releases:
        part, summary = convert(release)
        rows += part
        reports.append(summary)
    if args.version == "v1":  # the v1 folder keeps its original ids
        for row in rows:
            row["reconstruction_id"] = row["reconstruction_id"].removeprefix("v1-")
    splits, notes = split_by_original(rows, fractions=FRACTIONS, seed=SEED)
    fmnist_originals = len({r["original_id"] for r in rows if r["source_dataset"] == "fashion_mnist"})
    fmnist_rows = sum(r["source_dataset"] == "fashion_mnist" for r in rows)
    fmnist = (
        f"{fmnist_rows:,} reconstructions of {fmnist_originals} Fashion-MNIST test images: release v1 ({V1_SUMMARY}) "
        f"and release v2 ({V2_SUMMARY})"
    )
    attacks = (
        "inverting_gradients (1 - cosine + TV, 200 or 1,500 iterations) and l2_gradient_matching (L2 + TV, 300 or "
        "1,000 iterations) against lenet_sigmoid and conv_relu victims trained 0, 1 or 4 epochs"
    )
    if args.version != "v1":
        attacks += (
            "; v2: dlg and idlg (300 iterations), gradinversion (500), inverting_gradients (200-800) against "
            "lenet_sigmoid, conv_relu and resnet20 victims, some trained with crop_flip augmentation or with "
            "gradient noise (noise:1e-3) or gradient pruning (prune:70)"
        )
    annotators = (
        "five independent vision-language-model judges per reconstruction (annotator_kind='model-judge'); "
        "originals judged by five further judge contexts (original_votes)"
    )
    if args.version == "v3":
        attacks += (
            "; emoji scenes: inverting_gradients (200-800), dlg, idlg (300) and gradinversion (500) against "
            "lenet_sigmoid (0 or 2 epochs, one with gradient noise 1e-3), conv_relu (0 or 2 epochs with "
            "crop_flip) and resnet20 victims trained on the emoji-scenes train split"
        )
        card = DatasetCard(
            title="semsim-judged-v3: judged gradient-inversion reconstructions in two image domains "
            "(Fashion-MNIST greyscale, emoji scenes colour)",
            summary=(
                f"{len(rows):,} reconstructions of {len({r['original_id'] for r in rows})} originals. {fmnist}. "
                f"Colour: release emoji-v1 ({EMOJI_SUMMARY})"
            )
            + PROTOCOL.replace("Fashion-MNIST class", "class"),
            source=f"{FMNIST_LICENCE}; {EMOJI_LICENCE}",
            licence="cc-by-sa-4.0",
            attacks=attacks,
            annotators=annotators,
            rule=RULE,
            notes=notes
            + reports
            + [
                "Licence: CC-BY-SA 4.0 as a whole (the most restrictive source licence); the "
                "Fashion-MNIST rows alone are MIT. Republishing images must keep the emoji "
                "attributions listed under Source images."
            ],
            source_datasets=["zalando-datasets/fashion_mnist"],
            extra_sections=domain_table(splits),
        )
    else:
        title = (
            "fmnist-judged-v1: judged gradient-inversion reconstructions of Fashion-MNIST"
            if args.version == "v1"
            else "fmnist-judged-v2: judged gradient-inversion reconstructions of Fashion-MNIST (releases v1 + v2)"
        )
        summary = (V1_SUMMARY if args.version == "v1" else fmnist) + PROTOCOL
        card = DatasetCard(
            title=title,
            summary=summary,
            source=FMNIST_LICENCE,
            licence="mit",
            attacks=attacks,
            annotators=annotators,
            rule=RULE,
            notes=notes + reports,
            source_datasets=["zalando-datasets/fashion_mnist"],
        )
    out = args.out or ROOT / "hub" / (
        "semsim-judged-v3" if args.version == "v3" else f"fmnist-judged-{args.version}"
    )
    write_dataset_folder(splits, out, card, overwrite=True, command="build-default-dataset")
    print("\n".join(reports))
    print({k: len(v) for k, v in splits.items()}, "->", out)


if __name__ == "__main__":
    main()
