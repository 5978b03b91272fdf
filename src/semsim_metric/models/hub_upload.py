"""Uploading a SemSim model to the Hugging Face Hub: what ``SemSimModel.push_to_hub`` and
``save_pretrained(..., push_to_hub=True)`` delegate to.

A folder is staged (``save_pretrained`` into a temporary folder), given a ``README.md`` (the card of
``semsim_metric.models.card``, unless one is passed or already there), completed with the model code for
``trust_remote_code`` (``semsim_metric.models.remote_code.export_remote_code``) and uploaded in one commit. This module
belongs to the package: it is not exported beside the weights, and the model code imports it only when uploading.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..hub import CONFIG_NAME, PREPROCESSOR_NAME, WEIGHTS_NAME
from .card import model_card, read_training_record
from .remote_code import export_remote_code

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from .configuration_semsim import SemSimConfig

__all__ = ["default_card", "push_model_to_hub", "push_saved_folder", "upload_model_folder"]


def push_model_to_hub(
    model: PreTrainedModel,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str | None = None,
    dtype: torch.dtype | str | None = None,
    card: str | None = None,
    dataset: str | None = None,
    license: str = "apache-2.0",
) -> str:
    """``SemSimModel.push_to_hub``: save ``model`` (a ``SemSimModel``) into a temporary folder, write ``card`` (or
    ``default_card``) as its ``README.md`` and upload it (``upload_model_folder``); returns the commit URL.

    Raises:
        ModelArgumentError: from ``save_pretrained``.
        huggingface_hub.errors.HfHubHTTPError: the Hub refused the upload.
    """
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, dtype=dtype, max_shard_size=max_shard_size)
        (Path(tmp) / "README.md").write_text(
            card
            if card is not None
            else default_card(model.config, repo_id, dataset=dataset, license=license)
        )
        return upload_model_folder(
            Path(tmp),
            repo_id,
            commit_message=commit_message,
            commit_description=commit_description,
            private=private,
            token=token,
            revision=revision,
            create_pr=create_pr,
        )


def push_saved_folder(
    folder: Path,
    config: SemSimConfig,
    *,
    repo_id: str | None = None,
    dataset: str | None = None,
    license: str = "apache-2.0",
    **upload: Any,
) -> str:
    """``save_pretrained(folder, push_to_hub=True)``: upload the folder just saved to ``repo_id`` (default: the
    folder's name), writing ``default_card`` as its ``README.md`` first when it has none; ``upload`` are the
    arguments of ``upload_model_folder``. Returns the commit URL.

    Raises:
        huggingface_hub.errors.HfHubHTTPError: the Hub refused the upload.
    """
    folder = Path(folder)
    repo_id = repo_id or folder.resolve().name
    if not (folder / "README.md").is_file():
        (folder / "README.md").write_text(
            default_card(config, repo_id, dataset=dataset, license=license, folder=folder)
        )
    return upload_model_folder(folder, repo_id, **upload)


def upload_model_folder(
    folder: Path,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
) -> str:
    """Create ``repo_id`` if needed and upload the model files of ``folder`` in one commit, with the model code
    (``export_remote_code``) so that it also loads where the package is
    not installed (``AutoModel.from_pretrained(repo_id, trust_remote_code=True)``).

    Raises:
        huggingface_hub.errors.HfHubHTTPError: the Hub refused the upload.
    """
    from huggingface_hub import HfApi

    export_remote_code(folder)
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        revision=revision,
        commit_message=commit_message or "Upload SemSim model",
        commit_description=commit_description,
        create_pr=create_pr,
        allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, PREPROCESSOR_NAME, "README.md", "*.py"],
    )
    return str(info.commit_url if hasattr(info, "commit_url") else info)


def default_card(
    config: SemSimConfig,
    repo_id: str,
    *,
    dataset: str | None = None,
    license: str = "apache-2.0",
    folder: Path | None = None,
) -> str:
    """The card ``push_to_hub`` writes: ``semsim_metric.models.card.model_card`` with the dataset and the ROC-AUCs
    of the ``training_info.json`` beside the weights the model was loaded from (``semsim train`` writes one), if any."""
    source = folder if folder is not None else Path(getattr(config, "_name_or_path", "") or ".")
    record = read_training_record(source) if source.is_dir() else {}
    return model_card(
        config,
        repo_id,
        dataset=dataset or record.get("dataset"),
        results=record.get("results"),
        license=license,
    )
