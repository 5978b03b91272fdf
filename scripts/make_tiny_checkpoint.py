"""Regenerate tests/fixtures/tiny_model (a width-4 SemSim checkpoint) and its golden values.

    python scripts/make_tiny_checkpoint.py

The weights are random (seed 1234) - the checkpoint exists to catch silent loading faults, not to
measure anything. Golden values are the distances of fixed inputs computed right after saving.
"""

import json
from pathlib import Path

import torch

from semsim_metric import SemSimConfig, SemSimModel, semsim

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tiny_model"


def golden_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(99)
    return torch.rand(4, 3, 32, 32, generator=g), torch.rand(4, 3, 32, 32, generator=g)


def main() -> None:
    torch.manual_seed(1234)
    model = SemSimModel(
        SemSimConfig(
            base_width=4,
            calibration={"intercept": 2.0, "slope": -4.0, "fitted_on": "synthetic (test fixture)", "n": 0},
        )
    )
    # give BatchNorm non-trivial running statistics so that loading them matters
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model.embed(torch.randn(16, 3, 32, 32))
    model.eval()
    model.save_pretrained(OUT)
    reloaded = SemSimModel.from_pretrained(OUT)
    preds, target = golden_inputs()
    values = semsim(preds, target, model=reloaded, reduction="none")
    (OUT / "golden.json").write_text(json.dumps({"distances": [float(v) for v in values]}, indent=2))
    print(values)


if __name__ == "__main__":
    main()
