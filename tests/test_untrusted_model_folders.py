"""A model folder is untrusted input: what its config.json may make the loader do (issue 21).

Every folder here is crafted. Loading one either works or fails quickly with an error that names the file and
the field; it never allocates what the config asks for before comparing it with the weights' header, never
contacts the Hub for a local folder, and never turns a mistyped local path into a Hub download.
"""

from __future__ import annotations

import json
import math
import resource
import shutil
import socket
import struct
import time
from pathlib import Path

import pytest
import torch
from transformers import ResNetConfig, ViTConfig

from semsim_metric import SemSim, SemSimModel
from semsim_metric.errors import InvalidModelError, ModelMismatchError, ModelNotFoundError, SemSimError
from semsim_metric.models.backbones import MAX_BACKBONE_INT, MAX_NUM_LABELS
from semsim_metric.models.modeling_semsim import MAX_CONFIG_BYTES


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def folder(tmp_path, tiny_model_dir) -> Path:
    """A copy of the tiny model (base_width 4: 120 tensors, 180 KB of weights) whose config the test rewrites."""
    out = tmp_path / "model"
    shutil.copytree(tiny_model_dir, out)
    return out


def _rewrite_config(folder: Path, **changes: object) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.fixture
def never_built_for_real(monkeypatch):
    """Fail the test if the backbone is built anywhere but on the meta device (where nothing is allocated)."""
    import semsim_metric.models.modeling_semsim as modeling

    real = modeling.build_backbone

    def meta_only(config):
        if torch.get_default_device().type != "meta":
            raise AssertionError(
                "the network was built in real memory before its config was checked against the "
                "weights' header"
            )
        return real(config)

    monkeypatch.setattr(modeling, "build_backbone", meta_only)


@pytest.fixture
def hub_calls(monkeypatch) -> list[str]:
    """Every way of reaching the Hub (downloads, repository look-ups, name resolution) records itself and fails."""
    import huggingface_hub
    import huggingface_hub.file_download
    import huggingface_hub.hf_api
    import transformers.utils.hub

    calls: list[str] = []

    def tripwire(what: str):
        def refuse(*args, **kwargs):
            calls.append(f"{what}{args[:2]}")
            raise AssertionError(f"a local model folder reached the Hub: {what}{args[:2]}")

        return refuse

    for module, name in [
        (huggingface_hub, "hf_hub_download"),
        (huggingface_hub.file_download, "hf_hub_download"),
        (huggingface_hub, "snapshot_download"),
        (transformers.utils.hub, "hf_hub_download"),
        (transformers.utils.hub, "snapshot_download"),
    ]:
        monkeypatch.setattr(module, name, tripwire(f"{module.__name__}.{name}"), raising=False)
    for method in ("repo_exists", "model_info", "snapshot_download", "hf_hub_download"):
        monkeypatch.setattr(huggingface_hub.hf_api.HfApi, method, tripwire(f"HfApi.{method}"))
    monkeypatch.setattr(socket, "getaddrinfo", tripwire("socket.getaddrinfo"))
    return calls


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- sizes: compared with the header first
def test_a_terabyte_transformers_config_beside_tiny_weights_is_refused_from_the_header(
    folder, never_built_for_real
):
    # the reproducer: a ViT of width 32768 and 48 layers (217 billion values, 808 GiB) and 180 KB of weights
    vit = ViTConfig(hidden_size=32768, num_hidden_layers=48, num_attention_heads=16).to_dict()
    _rewrite_config(folder, backbone="transformers", backbone_config=vit)
    rss_before, start = _peak_rss_mib(), time.perf_counter()
    with pytest.raises(ModelMismatchError) as err:
        SemSimModel.from_pretrained(folder)
    assert time.perf_counter() - start < 20  # about 0.4 s on 2 cores
    assert _peak_rss_mib() - rss_before < 512
    message = str(err.value)
    assert "config.json" in message and "model.safetensors" in message and "GiB" in message
    assert isinstance(err.value, RuntimeError) and isinstance(err.value, SemSimError)


def test_a_config_with_sixty_thousand_layers_stops_building_early(folder, never_built_for_real):
    vit = ViTConfig(
        hidden_size=8, num_hidden_layers=60_000, num_attention_heads=2, intermediate_size=8
    ).to_dict()
    _rewrite_config(folder, backbone="transformers", backbone_config=vit)
    start = time.perf_counter()
    with pytest.raises(ModelMismatchError, match="more than .* modules, parameters and buffers.*120 tensors"):
        SemSimModel.from_pretrained(folder)
    assert time.perf_counter() - start < 20  # about 0.5 s: building all 60,000 layers takes minutes


def test_a_config_for_another_width_is_refused_before_the_network_is_built(folder, never_built_for_real):
    _rewrite_config(folder, base_width=8)
    with pytest.raises(ModelMismatchError, match="wrong shape for .* keys"):
        SemSimModel.from_pretrained(folder)


def test_weights_whose_header_claims_a_terabyte_are_refused_unread(folder):
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(
        InvalidModelError, match=r"model.safetensors: its safetensors header claims 1,099,511,627,776"
    ):
        SemSimModel.from_pretrained(folder)


def test_an_oversized_config_json_is_not_read(folder):
    with (folder / "config.json").open("r+b") as fh:
        fh.truncate(MAX_CONFIG_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(InvalidModelError, match="config.json is larger than 32 MiB"):
        SemSimModel.from_pretrained(folder)


@pytest.mark.parametrize("where", ["top", "backbone"])
def test_num_labels_is_capped_before_transformers_builds_a_label_table(folder, where):
    if where == "top":
        _rewrite_config(folder, num_labels=300_000_000)
    else:
        resnet = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]).to_dict()
        _rewrite_config(
            folder, backbone="transformers", backbone_config={**resnet, "num_labels": 300_000_000}
        )
    start = time.perf_counter()
    with pytest.raises(InvalidModelError) as err:
        SemSimModel.from_pretrained(folder)
    assert time.perf_counter() - start < 5  # the unchecked table took 25 s and 3.5 GB
    field = "num_labels" if where == "top" else "backbone_config.num_labels"
    assert "config.json" in str(err.value) and f"{field} must be an integer between 0 and 100,000" in str(
        err.value
    )


def test_an_ordinary_label_table_still_loads(folder):
    _rewrite_config(folder, num_labels=1000)
    assert SemSimModel.from_pretrained(folder).config.num_labels == 1000
    assert MAX_NUM_LABELS >= 21_843  # ImageNet-21k fits


def test_integers_no_vision_backbone_needs_are_refused_by_name(folder, never_built_for_real):
    resnet = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]).to_dict()
    resnet["depths"] = [1, 10**9]
    _rewrite_config(folder, backbone="transformers", backbone_config=resnet)
    with pytest.raises(
        InvalidModelError,
        match=rf"config.json: backbone_config.depths\[1\] = 1000000000 is larger "
        rf"than {MAX_BACKBONE_INT:,}",
    ):
        SemSimModel.from_pretrained(folder)


def test_a_real_transformers_backbone_still_loads_and_matches(tmp_path):
    cfg = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=10).to_dict()
    from semsim_metric import SemSimConfig

    model = SemSimModel(SemSimConfig(backbone="transformers", backbone_config=cfg)).eval()
    model.save_pretrained(tmp_path)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(SemSimModel.from_pretrained(tmp_path).embed(x), model.embed(x))


# --------------------------------------------------------------------------- a local folder never reaches the Hub
UPERNET = {
    "model_type": "upernet",
    "backbone": "microsoft/resnet-50",
    "backbone_config": None,
    "use_pretrained_backbone": False,
}
_RESNET = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]).to_dict()


@pytest.mark.parametrize(
    "backbone_config, field",
    [
        (
            UPERNET,
            "backbone_config.backbone",
        ),  # the reproducer: transformers asks the Hub whether the repo exists
        ({**UPERNET, "backbone": "./elsewhere"}, "backbone_config.backbone"),
        (
            {"model_type": "upernet", "backbone_config": {**_RESNET, "backbone": "someone/evil"}},
            "backbone_config.backbone_config.backbone",
        ),
        (
            {"model_type": "upernet", "backbone_config": _RESNET, "use_pretrained_backbone": True},
            "backbone_config.use_pretrained_backbone",
        ),
        ({"model_type": "detr", "use_timm_backbone": True}, "backbone_config.use_timm_backbone"),
        (
            {"model_type": "detr"},
            "backbone_config.backbone_config.backbone",
        ),  # DETR's default: timm's resnet50
        ({"model_type": "timm_wrapper", "architecture": "resnet50"}, "backbone_config.model_type"),
        ({**_RESNET, "auto_map": {"AutoModel": "someone/evil--modeling.Model"}}, "backbone_config.auto_map"),
    ],
)
def test_a_backbone_config_that_names_another_model_is_refused_without_the_hub(
    folder, hub_calls, never_built_for_real, backbone_config, field
):
    _rewrite_config(folder, backbone="transformers", backbone_config=backbone_config)
    with pytest.raises(InvalidModelError) as err:
        SemSimModel.from_pretrained(folder, local_files_only=True)
    message = str(err.value)
    assert str(folder / "config.json") in message and field in message and "Fix:" in message
    with pytest.raises(InvalidModelError, match=field.replace(".", r"\.")):
        SemSim(str(folder))
    assert hub_calls == []


# --------------------------------------------------------------------------- training_domain is validated at load
@pytest.mark.parametrize(
    "record, field",
    [
        ({"channels": "rgb"}, "training_domain.channels"),
        ({"channels": [0]}, "training_domain.channels"),
        ({"image_sizes": [[28]]}, "training_domain.image_sizes"),
        ({"image_sizes": [[28, "28"]]}, "training_domain.image_sizes"),
        ({"n": -1}, "training_domain.n"),
        ({"description": 3}, "training_domain.description"),
        (
            {"embedding_mean": [0.1] * 5, "similarity_q01": 0.5},
            "training_domain.embedding_mean must be a list of 32",
        ),
        ({"embedding_mean": [float("nan")] * 32, "similarity_q01": 0.5}, "training_domain.embedding_mean"),
        (
            {"embedding_mean": [0.25] * 32},
            "training_domain.similarity_q01",
        ),  # scoring would raise a KeyError later
        ({"embedding_mean": [0.25] * 32, "similarity_q01": 7}, "training_domain.similarity_q01"),
        ({"original_fingerprints": "0123456789abcdef"}, "training_domain.original_fingerprints"),
        ([1, 3], "training_domain must be a dictionary"),
    ],
)
def test_a_malformed_training_domain_is_refused_at_load_naming_file_and_field(folder, record, field):
    _rewrite_config(folder, training_domain=record)
    with pytest.raises(InvalidModelError) as err:
        SemSimModel.from_pretrained(folder)
    assert "config.json" in str(err.value) and field in str(err.value)


def test_partial_and_complete_training_domains_still_load(folder):
    partial = {
        "description": "test",
        "n": 2,
        "channels": [1],
        "image_sizes": [[28, 28]],
        "original_fingerprints": ["0123456789abcdef"],
        "added_by_a_newer_version": True,
    }
    _rewrite_config(folder, training_domain=partial)
    assert SemSimModel.from_pretrained(folder).config.training_domain == partial
    complete = {**partial, "embedding_mean": [0.25] * 32, "similarity_q01": 0.5, "similarity_median": 0.9}
    _rewrite_config(folder, training_domain=complete)
    assert SemSimModel.from_pretrained(folder).config.training_domain["similarity_q01"] == 0.5


def test_the_bundled_models_training_domain_passes_the_check():
    from semsim_metric.hub import bundled_model_path

    if bundled_model_path() is None:
        pytest.skip("this checkout has no bundled default model")
    config = SemSimModel.from_pretrained(bundled_model_path()).config
    domain = config.training_domain  # it summarises the network's part of the embedding (not the layout)
    assert len(domain["embedding_mean"]) == config.network_embedding_dim == 2048
    assert math.isfinite(domain["similarity_q01"])


# --------------------------------------------------------------------------- a mistyped local path is not a Hub id
def test_a_missing_folder_beside_its_existing_parent_is_never_looked_up_on_the_hub(
    tmp_path, monkeypatch, hub_calls
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()  # runs/x is shaped like a Hub id, but runs/ is right here
    with pytest.raises(ModelNotFoundError) as err:
        SemSim("runs/x")
    message = str(err.value)
    assert (
        "No model folder at 'runs/x'" in message
        and "runs/ exists here" in message
        and "hf://runs/x" in message
    )
    assert isinstance(err.value, OSError) and hub_calls == []


@pytest.mark.parametrize(
    "name",
    [
        "./runs/x",
        "runs/x/",
        "runs/x/y",
        "/nonexistent-semsim/x",
        "~/nonexistent-semsim/x",
        "..\\runs\\x",
        "no-such-model",
    ],
)
def test_path_like_names_are_local_only(tmp_path, monkeypatch, hub_calls, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError, match="No model folder at .*the Hugging Face Hub was not tried"):
        SemSimModel.from_pretrained(name)
    assert hub_calls == []


def test_a_hub_shaped_name_with_no_folder_and_no_cache_says_both_were_tried(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.chdir(tmp_path)
    real, offline_calls = huggingface_hub.hf_hub_download, []

    def cache_only(*args, **kwargs):
        offline_calls.append(kwargs["local_files_only"])
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", cache_only)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelNotFoundError) as err:
        SemSim("runs/x")
    message = str(err.value)
    assert f"no local folder runs/x ({tmp_path / 'runs' / 'x'})" in message
    assert "'runs/x' (revision main) is not in the local Hugging Face cache" in message
    assert offline_calls == [True]  # the tests run offline: only the cache was looked at


def test_hub_ids_still_reach_the_hub_and_hf_prefix_overrides_a_local_parent(
    tmp_path, monkeypatch, tiny_model_dir
):
    import huggingface_hub

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    (tmp_path / "runs").mkdir()
    calls = []

    def fake_download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename, kwargs["local_files_only"]))
        return str(tiny_model_dir / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    assert SemSimModel.from_pretrained("someone/semsim-tiny").config.base_width == 4
    assert SemSimModel.from_pretrained("hf://runs/x").config.base_width == 4
    assert calls == [
        ("someone/semsim-tiny", "config.json", False),
        ("someone/semsim-tiny", "model.safetensors", False),
        ("runs/x", "config.json", False),
        ("runs/x", "model.safetensors", False),
    ]


@pytest.fixture
def model_copy(tmp_path, tiny_model_dir):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def _edit_config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    for k, v in changes.items():
        if v is KeyError:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (folder / "config.json").write_text(json.dumps(cfg))


def _edit_weights(folder, fn):
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    key = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 4)
    state[key] = fn(state[key])
    save_file(state, str(folder / "model.safetensors"))
    return key


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": "32"}, "image_size"),
        ({"base_width": 3000}, "base_width"),
        ({"base_width": True}, "base_width"),
        ({"calibration": {"slope": -4.0}}, "intercept"),
        ({"calibration": {"intercept": float("nan"), "slope": -1.0}}, "intercept"),
        ({"image_std": [0.2, 0.2]}, "image_std"),
        ({"image_mean": [0.1, 0.2, float("inf")]}, "image_mean"),
        ({"training_domain": "fmnist"}, "training_domain"),
    ],
)
def test_malformed_config_fields_are_refused_at_load_naming_file_and_field(model_copy, changes, field):
    _edit_config(model_copy, **changes)
    with pytest.raises(InvalidModelError) as err:
        SemSimModel.from_pretrained(model_copy)
    assert "config.json" in str(err.value) and field in str(err.value)


def test_an_oversized_config_is_refused_before_anything_is_allocated(model_copy, monkeypatch):
    import semsim_metric.models.modeling_semsim as modeling

    def never(*args, **kwargs):
        raise AssertionError("the network was built from an oversized config")

    monkeypatch.setattr(modeling, "build_backbone", never)  # refused from the config alone
    _edit_config(model_copy, base_width=3000)
    with pytest.raises(InvalidModelError, match="between 1 and 256"):
        SemSimModel.from_pretrained(model_copy)


def test_a_corrupt_config_json_names_the_file(model_copy):
    (model_copy / "config.json").write_text("{not json")
    with pytest.raises(InvalidModelError, match="config.json is not a readable JSON"):
        SemSimModel.from_pretrained(model_copy)


def test_nan_weights_are_refused(model_copy):
    key = _edit_weights(model_copy, lambda t: t.clone().fill_(float("nan")))
    with pytest.raises(InvalidModelError, match=f"{key}.*NaN"):
        SemSimModel.from_pretrained(model_copy)


def test_integer_weights_are_refused(model_copy):
    key = _edit_weights(model_copy, lambda t: t.round().to(torch.int64))
    with pytest.raises(InvalidModelError, match=f"{key} has dtype torch.int64"):
        SemSimModel.from_pretrained(model_copy)


def test_half_precision_weights_still_load(model_copy):
    _edit_weights(model_copy, lambda t: t.half())
    model = SemSimModel.from_pretrained(model_copy)
    assert all(math.isfinite(float(p.abs().sum())) for p in model.parameters())
