"""transformers and the Hub, as their users expect (issue 22): registration on import, model folders that load with
trust_remote_code where the package is absent, an image processor and a pipeline that reproduce SemSim's scores,
transformers 5's dtype / device_map / output_loading_info habits, and cards with Hub metadata and results."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "hub"
DEFAULT = HUB / "semsim-resnet18-fmnist-judged"
BUNDLED = ROOT / "src" / "semsim_metric" / "_bundled" / "semsim-resnet18-fmnist-judged"
MODEL_FOLDERS = sorted(p for p in HUB.iterdir() if (p / "model.safetensors").is_file())


def _python(code: str, *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> dict:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore", **(env or {})}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- import semsim_metric registers with the Auto classes, lazily ------------------------------------------------------


@pytest.mark.slow
def test_import_semsim_metric_registers_the_auto_classes_without_importing_torch():
    result = _python("""
        import json, sys
        import semsim_metric
        heavy_after_import = sorted(m for m in ("torch", "transformers") if m in sys.modules)
        import transformers
        from transformers import AutoConfig, AutoModel
        config = AutoConfig.for_model("semsim", base_width=2)
        model_code_after_auto = "semsim_metric.models.modeling_semsim" in sys.modules
        from_config = AutoModel.from_config(config)
        model = AutoModel.from_pretrained("hub/semsim-resnet18-fmnist-judged")
        from semsim_metric.models.registration import LazySemSimModel
        print(json.dumps({"heavy": heavy_after_import, "config": type(config).__module__,
                          "model_code_after_auto": model_code_after_auto, "from_config": type(from_config).__name__,
                          "model": type(model).__module__, "lazy_isinstance": isinstance(model, LazySemSimModel)}))
    """)
    assert result["heavy"] == []  # import semsim_metric stays cheap: neither torch nor transformers
    assert result["config"] == "semsim_metric.models.configuration_semsim"
    assert result["model_code_after_auto"] is False  # AutoModel holds a stand-in until a model is built
    assert result["from_config"] == "SemSimModel"
    assert (
        result["model"] == "semsim_metric.models.modeling_semsim"
    )  # the package's class, no trust_remote_code
    assert result["lazy_isinstance"] is True


@pytest.mark.slow
def test_registration_also_happens_when_transformers_was_imported_first():
    result = _python("""
        import json
        from transformers import AutoImageProcessor, AutoModel, pipeline
        import semsim_metric
        model = AutoModel.from_pretrained("hub/semsim-resnet18-fmnist-judged")
        processor = AutoImageProcessor.from_pretrained("hub/semsim-resnet18-fmnist-judged")
        print(json.dumps({"model": type(model).__name__, "processor": type(processor).__module__}))
    """)
    assert result == {"model": "SemSimModel", "processor": "semsim_metric.models.image_processing_semsim"}


def test_call_after_import_runs_at_once_for_an_imported_module_and_never_breaks_an_import():
    from semsim_metric._lazy import call_after_import

    seen = []
    call_after_import("json", lambda module: seen.append(module.__name__))
    assert seen == ["json"]
    with pytest.warns(RuntimeWarning, match="could not hook into json"):
        call_after_import("json", lambda module: 1 / 0)
    with pytest.raises(TypeError, match="callable"):
        call_after_import("json", "not a function")  # type: ignore[arg-type]


# -- the folders under hub/ are what their Hub repositories hold -------------------------------------------------------


def _without_version(text: str) -> str:
    return re.sub(r"^# Exported from semsim-metric \S+", "# Exported from semsim-metric", text)


@pytest.mark.parametrize("folder", MODEL_FOLDERS, ids=lambda p: p.name)
def test_every_hub_model_folder_carries_the_current_remote_code(folder):
    from semsim_metric.models.modeling_semsim import read_weights_header
    from semsim_metric.models.remote_code import AUTO_MAP, CUSTOM_PIPELINES, exported_code

    for name, text in exported_code().items():
        assert (folder / name).is_file(), (
            f"{folder.name} lacks {name}: run python scripts/default_model.py folders"
        )
        assert _without_version((folder / name).read_text()) == _without_version(text), (
            f"{folder.name}/{name} is stale: run python scripts/default_model.py folders"
        )
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == AUTO_MAP and config["custom_pipelines"] == CUSTOM_PIPELINES
    floating = {"F16": "float16", "BF16": "bfloat16", "F32": "float32"}
    stored = {
        floating[d] for d, _ in read_weights_header(folder / "model.safetensors").values() if d in floating
    }
    assert stored == {config["dtype"]}  # the dtype the weights are stored in, for dtype="auto"
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    assert {k: processor[k] for k in ("image_size", "image_mean", "image_std")} == {
        k: config[k] for k in ("image_size", "image_mean", "image_std")
    }
    assert "image_processor_type" not in processor  # the class comes from config.json's auto_map


def test_the_package_bundles_the_default_folder_file_for_file():
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "README.md"):
        assert (BUNDLED / name).read_bytes() == (DEFAULT / name).read_bytes(), name


WITHOUT_PACKAGE = """
import sys
sys.modules["semsim_metric"] = None  # any import of the package fails here
sys.path = [p for p in sys.path if not p.rstrip("/").endswith("src")]
import json, torch
try:
    import semsim_metric  # noqa: F401
    raise SystemExit("the package is importable: the test proves nothing")
except ImportError:
    pass
from transformers import AutoImageProcessor, AutoModel, pipeline

original, reconstruction, x, y = sys.argv[1], sys.argv[2], *torch.load(sys.argv[3], weights_only=True)
out = {}
for folder in sys.argv[4:]:
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
    with torch.no_grad():
        batch = processor(x, y)
        distance = model.distance(batch["reconstruction_pixel_values"], batch["pixel_values"])
    scorer = pipeline("semsim", model=folder, trust_remote_code=True, dtype=torch.float32)
    features = pipeline("image-feature-extraction", model=folder, trust_remote_code=True, dtype=torch.float32)
    out[folder] = {"classes": [type(model).__module__, type(processor).__module__, type(scorer).__module__],
                   "tensor_distance": distance.tolist(), "files": scorer(original, reconstruction),
                   "features": len(features(original)[0])}
print(json.dumps(out))
"""


@pytest.fixture
def png_pair(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, (28, 28)), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "o.png")
    Image.fromarray(b).save(tmp_path / "r.png")
    return tmp_path / "o.png", tmp_path / "r.png"


@pytest.mark.slow
def test_every_hub_model_folder_scores_like_the_package_where_the_package_is_absent(tmp_path, png_pair):
    from semsim_metric import SemSimModel, semsim
    from semsim_metric.image_io import load_image

    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 1, 28, 28, generator=g)
    y = (x + 0.2 * torch.rand(2, 1, 28, 28, generator=g)).clamp(0, 1)
    torch.save((x, y), tmp_path / "xy.pt")
    copies = []
    for folder in MODEL_FOLDERS:  # a copy, so that nothing is written into the repository
        shutil.copytree(folder, tmp_path / folder.name)
        copies.append(str(tmp_path / folder.name))
    env = {"HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = _python(
        WITHOUT_PACKAGE, *map(str, png_pair), str(tmp_path / "xy.pt"), *copies, env=env, cwd=tmp_path
    )
    o, r = (load_image(p)[None] for p in png_pair)
    for folder, copy in zip(MODEL_FOLDERS, copies):
        got = result[copy]
        assert all(c.startswith("transformers_modules") for c in got["classes"]), got["classes"]
        model = SemSimModel.from_pretrained(folder)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the domain check of semsim() (random images)
            expected = semsim(y, x, model=model, reduction="none")
            files_d = float(semsim(r, o, model=model, data_range=255))
            files_p = float(semsim(r, o, model=model, data_range=255, output="probability"))
        torch.testing.assert_close(torch.tensor(got["tensor_distance"]), expected.detach(), atol=1e-5, rtol=0)
        assert got["files"]["distance"] == pytest.approx(files_d, abs=1e-5)
        assert got["files"]["probability"] == pytest.approx(files_p, abs=1e-5)
        assert got["features"] == model.config.embedding_dim


# -- the image processor is the input gate ------------------------------------------------------------------------------


def test_the_image_processor_gives_the_gates_model_input(tiny_model):
    from semsim_metric.models import SemSimImageProcessor
    from semsim_metric.preprocessing import to_model_input

    cfg = tiny_model.config
    processor = SemSimImageProcessor.from_model_config(cfg)
    gate = {"image_size": cfg.image_size, "mean": cfg.image_mean, "std": cfg.image_std}
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(3, 1, 40, 24, generator=g)
    torch.testing.assert_close(
        processor(grey)["pixel_values"], to_model_input(grey, data_range=1.0, **gate), atol=0, rtol=0
    )
    u8 = (torch.rand(3, 28, 28, generator=g) * 255).to(torch.uint8)  # one (C, H, W) image
    torch.testing.assert_close(
        processor(u8)["pixel_values"], to_model_input(u8[None], data_range=255, **gate), atol=0, rtol=0
    )
    as_numpy = processor(u8.permute(1, 2, 0).numpy())["pixel_values"]  # numpy is channels last, like PIL
    torch.testing.assert_close(as_numpy, processor(u8)["pixel_values"], atol=0, rtol=0)
    scaled = processor(grey * 255, data_range=255)["pixel_values"]
    torch.testing.assert_close(scaled, to_model_input(grey * 255, data_range=255, **gate), atol=0, rtol=0)
    assert processor(grey, return_tensors="np")["pixel_values"].shape == (
        3,
        3,
        cfg.image_size,
        cfg.image_size,
    )


def test_the_image_processor_refuses_what_the_gate_refuses(tiny_model):
    from semsim_metric.errors import SemSimError
    from semsim_metric.models import SemSimImageProcessor

    processor = SemSimImageProcessor.from_model_config(tiny_model.config)
    with pytest.raises(ValueError, match="below 0"):
        processor(torch.rand(1, 3, 8, 8) - 1)
    with pytest.raises(ValueError, match="same height and width"):
        processor(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 9, 8))
    with pytest.raises(SemSimError, match="not an image"):
        processor(object())
    with pytest.raises(SemSimError, match="does not take"):
        processor(torch.rand(1, 3, 8, 8), size={"height": 64, "width": 64})
    with pytest.raises(ValueError, match="not settings"):
        SemSimImageProcessor(preprocess=1)  # an untrusted preprocessor_config.json cannot replace a method
    with pytest.raises(ValueError, match="image_size"):
        SemSimImageProcessor(image_size=10**6)


# -- the semsim pipeline returns SemSim's distance and probability ---------------------------------------------------


@pytest.fixture
def calibrated_folder(tmp_path, tiny_model):
    tiny_model.config.calibration = {"intercept": 2.0, "slope": -4.0, "fitted_on": "a test"}
    tiny_model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_the_semsim_pipeline_returns_semsims_distance_and_probability(calibrated_folder, png_pair):
    from transformers import pipeline

    from semsim_metric import SemSimModel, semsim
    from semsim_metric.image_io import load_image

    model = SemSimModel.from_pretrained(calibrated_folder)
    scorer = pipeline("semsim", model=str(calibrated_folder))
    g = torch.Generator().manual_seed(1)
    originals = torch.rand(3, 3, 28, 28, generator=g)
    reconstructions = (originals + 0.3 * torch.rand(3, 3, 28, 28, generator=g)).clamp(0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = semsim(reconstructions, originals, model=model, reduction="none")
        p = semsim(reconstructions, originals, model=model, reduction="none", output="probability")
    one = scorer(originals[0], reconstructions[0])
    assert one["distance"] == pytest.approx(float(d[0]), abs=1e-5)
    assert one["probability"] == pytest.approx(float(p[0]), abs=1e-5)
    listed = scorer(list(originals), list(reconstructions))
    batched = scorer(originals, reconstructions)
    for out in (
        listed,
        batched,
        [scorer({"original": o, "reconstruction": r}) for o, r in zip(originals, reconstructions)],
    ):
        assert [s["distance"] for s in out] == pytest.approx(d.tolist(), abs=1e-5)
        assert [s["probability"] for s in out] == pytest.approx(p.tolist(), abs=1e-5)
    o, r = (load_image(path)[None] for path in png_pair)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_files = float(semsim(r, o, model=model, data_range=255))
    assert scorer(str(png_pair[0]), str(png_pair[1]))["distance"] == pytest.approx(from_files, abs=1e-5)
    scaled = scorer(originals[0] * 255, reconstructions[0] * 255, data_range=255)["distance"]
    assert scaled == pytest.approx(float(d[0]), abs=1e-5)


def test_the_semsim_pipeline_refuses_unpaired_inputs_and_a_foreign_processor(calibrated_folder):
    from transformers import pipeline

    from semsim_metric.errors import SemSimError
    from semsim_metric.models import SemSimImageProcessor

    scorer = pipeline("semsim", model=str(calibrated_folder))
    with pytest.raises(SemSimError, match="scores pairs"):
        scorer(torch.rand(3, 8, 8))
    with pytest.raises(SemSimError, match="2 originals but 1"):
        scorer([torch.rand(3, 8, 8)] * 2, [torch.rand(3, 8, 8)])
    with pytest.raises(SemSimError, match="does not prepare images as the model expects"):
        pipeline("semsim", model=str(calibrated_folder), image_processor=SemSimImageProcessor(image_size=64))


def test_the_image_feature_extraction_pipeline_embeds_through_the_gate(calibrated_folder, png_pair):
    from PIL import Image
    from transformers import pipeline

    from semsim_metric import SemSimModel
    from semsim_metric.image_io import load_image
    from semsim_metric.preprocessing import to_model_input

    model = SemSimModel.from_pretrained(calibrated_folder)
    features = pipeline("image-feature-extraction", model=str(calibrated_folder))
    got = torch.tensor(features(Image.open(png_pair[0])))
    cfg = model.config
    pixels = to_model_input(
        load_image(png_pair[0])[None],
        data_range=255,
        image_size=cfg.image_size,
        mean=cfg.image_mean,
        std=cfg.image_std,
    )
    torch.testing.assert_close(got, model.embed(pixels).detach(), atol=1e-5, rtol=0)


# -- dtype, device_map, output_loading_info as in transformers 5 ------------------------------------------------------


def test_the_stored_dtype_is_recorded_and_dtype_auto_loads_it(tmp_path, random_model):
    from transformers import AutoModel

    from semsim_metric import SemSimModel

    random_model.save_pretrained(tmp_path, dtype=torch.float16)
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "float16"
    assert random_model.config.dtype == torch.float32  # the model itself still runs in float32
    assert SemSimModel.from_pretrained(tmp_path, dtype="auto").dtype == torch.float16
    assert SemSimModel.from_pretrained(tmp_path, torch_dtype="auto").dtype == torch.float16
    assert AutoModel.from_pretrained(tmp_path, dtype="auto").dtype == torch.float16
    default = SemSimModel.from_pretrained(tmp_path)  # SemSim's default: float32 whatever the storage
    assert default.dtype == torch.float32 and default.config.dtype == torch.float32
    assert SemSimModel.from_pretrained(tmp_path, dtype="bfloat16").config.dtype == torch.bfloat16
    config = json.loads((tmp_path / "config.json").read_text())
    del config["dtype"]  # a folder written before the dtype was recorded: "auto" reads the weights' dtype
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert SemSimModel.from_pretrained(tmp_path, dtype="auto").dtype == torch.float16
    default.save_pretrained(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "config.json").read_text())["dtype"] == "float32"


def test_dtypes_that_are_not_floating_point_are_refused(tmp_path, random_model):
    from semsim_metric import SemSimModel
    from semsim_metric.errors import InvalidModelError, SemSimError

    random_model.save_pretrained(tmp_path)
    for dtype in (torch.int8, "int64", "nonsense", {"": "float16"}):
        with pytest.raises(SemSimError, match="dtype"):
            SemSimModel.from_pretrained(tmp_path, dtype=dtype)
    with pytest.raises(ValueError, match="dtype"):
        random_model.save_pretrained(tmp_path / "x", dtype=torch.int32)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "dtype": "__class__"}))
    with pytest.raises(InvalidModelError, match="dtype must be one of"):
        SemSimModel.from_pretrained(tmp_path)


def test_device_map_for_one_device_and_loading_info(tmp_path, random_model):
    from transformers import AutoModel

    from semsim_metric import SemSimModel
    from semsim_metric.errors import SemSimError

    random_model.save_pretrained(tmp_path)
    for device_map in ({"": "cpu"}, {"backbone.conv1": "cpu", "backbone.layer1": torch.device("cpu")}, "cpu"):
        assert SemSimModel.from_pretrained(tmp_path, device_map=device_map).device == torch.device("cpu")
    for device_map, message in (
        ({"backbone.conv1": "cpu", "backbone.layer1": 0}, "onto 2 devices"),
        ("auto", "lives on one device"),
        ({"": "disk"}, "disk"),
        ({}, "onto 0 devices"),
    ):
        with pytest.raises(SemSimError, match=message):
            SemSimModel.from_pretrained(tmp_path, device_map=device_map)
    _, info = SemSimModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info == {
        "missing_keys": set(),
        "unexpected_keys": set(),
        "mismatched_keys": set(),
        "error_msgs": [],
    }
    auto_model, auto_info = AutoModel.from_pretrained(
        tmp_path, output_loading_info=True, device_map={"": "cpu"}
    )
    assert isinstance(auto_model, SemSimModel) and auto_info == info
    with pytest.raises(TypeError, match="cannot honour"):  # still refused, and a SemSimError
        SemSimModel.from_pretrained(tmp_path, variant="fp16")


# -- cards --------------------------------------------------------------------------------------------------------------


def test_the_default_card_has_a_model_index_with_the_published_held_out_numbers():
    from huggingface_hub import ModelCard

    card = ModelCard.load(DEFAULT / "README.md")
    recipe = json.loads((DEFAULT / "training_info.json").read_text())["recipe"]["name"]
    published = [
        s
        for s in json.loads((ROOT / "docs" / "heldout" / "heldout_summary.json").read_text())
        if s["recipe"] == recipe
    ]
    assert published and card.data.eval_results
    aucs = {r.metric_name: r.metric_value for r in card.data.eval_results if r.metric_type == "roc_auc"}
    for row in published:
        name = next(n for n in aucs if f"held out: {row['protocol']}," in n)
        assert aucs[name] == round(row["semsim_auc"], 4)
    assert all(r.dataset_type == "semsim-metric/semsim-judged-v3" for r in card.data.eval_results)
    assert card.data.license == "apache-2.0" and card.data.datasets == ["semsim-metric/semsim-judged-v3"]


@pytest.mark.parametrize("folder", MODEL_FOLDERS, ids=lambda p: p.name)
def test_every_hub_card_names_hub_datasets_not_local_paths(folder):
    from huggingface_hub import ModelCard

    data = ModelCard.load(folder / "README.md").data
    assert data.datasets and all(d.startswith("semsim-metric/") for d in data.datasets), data.datasets
    assert data.pipeline_tag == "image-feature-extraction" and data.license == "apache-2.0"
    assert data.eval_results  # the Hub shows evaluation results


def test_a_local_path_to_a_project_dataset_is_named_by_its_hub_id():
    from semsim_metric.models.card import hub_dataset_id

    assert hub_dataset_id(str(HUB / "fmnist-judged-v1")) == "semsim-metric/fmnist-judged-v1"
    assert hub_dataset_id("./hub/fmnist-judged-v1") == "semsim-metric/fmnist-judged-v1"
    assert hub_dataset_id(str(ROOT / "runs")) is None  # a folder elsewhere is not on the Hub


@pytest.mark.slow
def test_push_to_hub_writes_the_training_cards_metadata(tmp_path, tiny_model_dir, monkeypatch):
    """The card of a user's model carries the licence, the training dataset's Hub id and its ROC-AUCs."""
    import importlib

    import huggingface_hub.constants as hf_constants
    from huggingface_hub import ModelCard

    from semsim_metric import SemSimModel
    from tests.hub_server import make_server

    folder = tmp_path / "trained"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "training_info.json").write_text(
        json.dumps(
            {"dataset": "hub/fmnist-judged-v1", "validation": {"roc_auc": 0.71}, "test": {"roc_auc": 0.62}}
        )
    )
    model = SemSimModel.from_pretrained(folder)
    server, _ = make_server({}, upload_root=tmp_path / "server")
    try:
        for key, value in {
            "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
            "HF_HUB_OFFLINE": "0",
            "HF_HUB_DISABLE_XET": "1",
            "HF_HOME": str(tmp_path / "hf"),
        }.items():
            monkeypatch.setenv(key, value)
        importlib.reload(hf_constants)
        model.push_to_hub("me/semsim-trained", token="test-token")
    finally:
        server.shutdown()
        monkeypatch.undo()
        importlib.reload(hf_constants)
    card = ModelCard.load(tmp_path / "server" / "me--semsim-trained" / "README.md")
    assert card.data.license == "apache-2.0" and card.data.datasets == ["semsim-metric/fmnist-judged-v1"]
    assert {(r.dataset_split, r.metric_value) for r in card.data.eval_results} == {
        ("validation", 0.71),
        ("test", 0.62),
    }
    assert 'pipeline("semsim", model="me/semsim-trained", trust_remote_code=True)' in card.text


def test_the_remote_code_export_refuses_a_module_it_does_not_carry():
    from semsim_metric.models.remote_code import _flatten_imports

    assert _flatten_imports("from ..hub import X\nfrom .blocks import Y\n", "m.py") == (
        "from .hub import X\nfrom .blocks import Y\n"
    )
    with pytest.raises(RuntimeError, match="does not export"):
        _flatten_imports("    from ..metric import SemSim\n", "m.py")
