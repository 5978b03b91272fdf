# Exported from semsim-metric 0.1.0 (semsim_metric/models/pipeline_semsim.py) by semsim_metric.models.remote_code.export_remote_code; edit the package, not this copy.
"""The ``semsim`` pipeline: the SemSim distance and probability of an (original, reconstruction) pair.

    from transformers import pipeline

    scorer = pipeline("semsim", model="semsim-metric/semsim-resnet18-fmnist-judged", trust_remote_code=True)
    scorer(original, reconstruction)             # {"distance": 0.31, "probability": 0.79}
    scorer([o1, o2], [r1, r2])                    # a list of such dicts, one per pair

Every SemSim model folder published by semsim-metric names this pipeline in its ``config.json``
(``custom_pipelines``) and carries its code, so the call works where semsim-metric is not installed. Where it is
installed, ``import semsim_metric`` also registers the task, so a folder without ``custom_pipelines`` (one written by
``save_pretrained``) works without ``trust_remote_code``.

The images go through ``SemSimImageProcessor`` (the input gate, ``check_image_pair`` and ``to_model_input``) and the
model's own ``distance`` and ``probability``, in the model's dtype: the scores are ``semsim_metric.semsim``'s for the
same model (``output="distance"`` / ``"probability"``). Load the model in float32 (``dtype=torch.float32``) to get
the package's default scores: the pipeline's ``dtype="auto"`` loads the dtype the weights are stored in, float16
for the project's published models. The training-domain check of ``semsim`` (``OutOfDomainWarning``) is not run here.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Pipeline

from .image_processing_semsim import ImageInputError, SemSimImageProcessor

__all__ = ["SemSimPipeline"]


def _pairs(originals: Any, reconstructions: Any) -> Any:
    """The pipeline's inputs: one ``{"original", "reconstruction"}`` dict, or a list of them for lists of images."""
    if reconstructions is None:
        if isinstance(originals, dict) or (
            isinstance(originals, list) and all(isinstance(p, dict) for p in originals)
        ):
            return originals
        raise ImageInputError(
            "the semsim pipeline scores pairs: call it as pipe(original, reconstruction), "
            "pipe([originals], [reconstructions]) or pipe({'original': ..., 'reconstruction': ...})."
        )
    if isinstance(originals, list) and isinstance(reconstructions, list):
        if len(originals) != len(reconstructions):
            raise ImageInputError(
                f"{len(originals)} originals but {len(reconstructions)} reconstructions: pair each "
                "reconstruction with its original."
            )
        return [{"original": o, "reconstruction": r} for o, r in zip(originals, reconstructions)]
    return {"original": originals, "reconstruction": reconstructions}


class SemSimPipeline(Pipeline):
    """SemSim distance (0 = semantically identical = most leakage, up to 2) and calibrated probability that the
    reconstruction is recognised, for (original, reconstruction) pairs.

    Call it with ``(original, reconstruction)``, two lists of images, a ``{"original", "reconstruction"}`` dict or a
    list of such dicts; each image is anything ``SemSimImageProcessor`` reads (tensors ``(C, H, W)``, numpy arrays
    ``(H, W, C)``, PIL images, image files). ``data_range`` (a call or construction argument) is the maximum value of
    floating-point pixels (1.0 by default; ``uint8`` pixels use 255). A pair returns ``{"distance": float,
    "probability": float or None}`` (``None`` when the model has no calibration); a batched tensor pair
    ``(N, C, H, W)`` returns a list of ``N`` such dicts.

    Raises:
        ImageInputError: (from a call) inputs that are not pairs of images, or arguments it does not take; (when
            built) an image processor whose settings are not the model's.
    """

    _load_image_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_processor = False
    _load_video_processor = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.image_processor is None:
            self.image_processor = SemSimImageProcessor.from_model_config(self.model.config)
        elif not hasattr(self.image_processor, "matches") or not self.image_processor.matches(
            self.model.config
        ):
            raise ImageInputError(
                f"the image processor ({type(self.image_processor).__name__}) does not prepare images as the model "
                f"expects (config.json: image_size {self.model.config.image_size}, image_mean "
                f"{list(self.model.config.image_mean)}, image_std {list(self.model.config.image_std)}); its scores would "
                "not be SemSim's. Fix preprocessor_config.json (SemSimModel.save_pretrained writes it) or pass "
                "image_processor=SemSimImageProcessor.from_model_config(model.config)."
            )

    def __call__(self, originals: Any, reconstructions: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        """Score ``(original, reconstruction)``; see the class docstring for the accepted forms."""
        return super().__call__(_pairs(originals, reconstructions), **kwargs)

    def _sanitize_parameters(
        self, data_range: float | None = None, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        unknown = sorted(k for k, v in kwargs.items() if v is not None)
        if unknown:
            raise ImageInputError(f"the semsim pipeline does not take {unknown} (it takes data_range).")
        return ({} if data_range is None else {"data_range": data_range}), {}, {}

    def preprocess(self, inputs: Any, data_range: float | None = None) -> dict[str, torch.Tensor]:  # type: ignore[override]
        if isinstance(inputs, (tuple, list)) and len(inputs) == 2:
            inputs = {"original": inputs[0], "reconstruction": inputs[1]}
        if not isinstance(inputs, dict) or set(inputs) != {"original", "reconstruction"}:
            raise ImageInputError(
                "each input of the semsim pipeline is a pair {'original': ..., 'reconstruction': "
                "...} (or a 2-tuple in that order)."
            )
        batch = self.image_processor(
            inputs["original"], inputs["reconstruction"], data_range=data_range, dtype=self.model.dtype
        )
        return {"original": batch["pixel_values"], "reconstruction": batch["reconstruction_pixel_values"]}

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, Any]:  # type: ignore[override]
        distance = self.model.distance(model_inputs["reconstruction"], model_inputs["original"])
        probability = None
        if self.model.config.calibration:
            probability = self.model.probability(
                distance if distance.dtype == torch.float64 else distance.float()
            )
        return {"distance": distance, "probability": probability}

    def postprocess(self, model_outputs: dict[str, Any]) -> Any:  # type: ignore[override]
        distances = model_outputs["distance"].tolist()
        probabilities = model_outputs["probability"]
        probabilities = probabilities.tolist() if probabilities is not None else [None] * len(distances)
        scores = [{"distance": d, "probability": p} for d, p in zip(distances, probabilities)]
        return scores[0] if len(scores) == 1 else scores
