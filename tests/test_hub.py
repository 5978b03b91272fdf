"""Model resolution: local folders, the bundled default, real downloads from a local Hub, offline errors."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from semsim_metric import SemSim, SemSimModel
from semsim_metric import functional as functional_module
from semsim_metric import hub as hub_module
from semsim_metric.hub import resolve_model_folder
from tests.hub_server import make_server

ROOT = Path(__file__).resolve().parents[1]


def test_local_folder_resolves_to_itself(tiny_model_dir):
    assert resolve_model_folder(str(tiny_model_dir)) == tiny_model_dir


def test_folder_without_weights_says_what_is_missing(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(OSError, match="missing model.safetensors"):
        resolve_model_folder(str(tmp_path))


def test_offline_miss_explains_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(OSError, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE"):
        SemSimModel.from_pretrained("someone/semsim-missing", cache_dir=tmp_path)


def test_malformed_id_is_rejected():
    with pytest.raises(OSError, match="neither an existing folder nor a Hub model id"):
        resolve_model_folder("not/a/valid/id")


def test_default_without_bundled_weights_never_runs_on_random_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(hub_module, "_BUNDLED", tmp_path / "nothing-here")
    functional_module._load_cached.cache_clear()
    with pytest.raises(OSError, match="never scores with random weights"):
        SemSim()
    functional_module._load_cached.cache_clear()


def test_bundled_default_is_used_offline_when_present():
    if hub_module.bundled_model_path() is None:
        pytest.skip("this checkout has no bundled default model")
    metric = SemSim()
    assert metric.net.config.model_type == "semsim"


DOWNLOAD_SCRIPT = textwrap.dedent("""
    import json, os, sys, torch
    from semsim_metric import SemSimModel
    repo, revision, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        m = SemSimModel.from_pretrained(repo, revision=revision, local_files_only=(mode == "local-only"))
    except OSError as err:
        print(json.dumps({"error": str(err)})); sys.exit(0)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g)
    print(json.dumps({"embedding": m.embed(x).detach().tolist()[0][:4]}))
""")


def _run(env_extra, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, "-c", DOWNLOAD_SCRIPT, *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_download_from_a_local_hub_then_load_offline_from_the_cache(tmp_path, tiny_model_dir, tiny_model):
    commit = "0123456789abcdef0123456789abcdef01234567"
    server, log = make_server({"org/semsim-tiny": (tiny_model_dir, {"v1": commit, "main": commit})})
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        env = {
            "HF_ENDPOINT": endpoint,
            "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_OFFLINE": "0",
            "HF_HUB_DISABLE_XET": "1",
        }
        online = _run(env, "org/semsim-tiny", "v1", "online")
        assert "embedding" in online, online
        assert any("/org/semsim-tiny/resolve/v1/model.safetensors" in line for line in log)
        snapshots = list(
            (tmp_path / "hf" / "hub").glob("models--org--semsim-tiny/snapshots/*/model.safetensors")
        )
        assert snapshots and snapshots[0].parent.name == commit
        requests_before = len(log)
        offline = _run({**env, "HF_HUB_OFFLINE": "1"}, "org/semsim-tiny", "v1", "online")
        assert offline == online and len(log) == requests_before
        local_only = _run({**env, "HF_HUB_OFFLINE": "0"}, "org/semsim-tiny", "v1", "local-only")
        assert local_only == online
        missing = _run({**env, "HF_HUB_OFFLINE": "1"}, "org/semsim-tiny", "v2", "online")
        assert "not in the local Hugging Face cache" in missing["error"]
        not_found = _run(env, "org/does-not-exist", "main", "online")
        assert "error" in not_found
    finally:
        server.shutdown()
    import torch

    g = torch.Generator().manual_seed(0)
    expected = tiny_model.embed(torch.rand(2, 3, 32, 32, generator=g)).detach().tolist()[0][:4]
    assert online["embedding"] == pytest.approx(expected, abs=1e-6)


def test_the_network_is_blocked_in_tests():
    import socket

    with pytest.raises(RuntimeError, match="must not touch the network"):
        socket.create_connection(("198.51.100.7", 443), timeout=1)


@pytest.mark.slow
def test_bundled_default_reproduces_its_model_card():
    """The committed card's ROC-AUC table is recomputed from the bundled weights (scripts/default_model.py check)."""
    if hub_module.bundled_model_path() is None:
        pytest.skip("this checkout has no bundled default model")
    out = subprocess.run(
        [sys.executable, "scripts/default_model.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "the card's numbers are reproduced" in out.stdout


@pytest.mark.slow
def test_push_to_hub_then_load_back_through_the_local_endpoint(tmp_path, tiny_model, monkeypatch):
    """push_to_hub and save_pretrained(push_to_hub=True) upload to the Hub API; from_pretrained reads it back."""
    import importlib

    import huggingface_hub.constants as hf_constants
    import torch

    from semsim_metric import SemSimModel

    server, log = make_server({}, upload_root=tmp_path / "server")
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        importlib.reload(hf_constants)  # the endpoint and offline flag are read at import time
        url = tiny_model.push_to_hub("me/semsim-tiny", token="test-token", commit_message="first")
        assert "/me/semsim-tiny/commit/" in url
        assert any(line.startswith("POST /api/models/me/semsim-tiny/commit/main") for line in log)
        pushed = tmp_path / "server" / "me--semsim-tiny"
        from semsim_metric.models.remote_code import EXPORTED_FILES

        # the model, its image processor's settings, a card and the code for remote loading (model, processor,
        # pipeline and the core modules they import)
        assert {p.name for p in pushed.iterdir()} == {
            "config.json",
            "model.safetensors",
            "preprocessor_config.json",
            "README.md",
            *EXPORTED_FILES,
        }
        assert set(EXPORTED_FILES) >= {
            "configuration_semsim.py",
            "modeling_semsim.py",
            "backbones.py",
            "blocks.py",
            "hub.py",
            "errors.py",
            "image_processing_semsim.py",
            "pipeline_semsim.py",
            "preprocessing.py",
            "image_io.py",
        }
        assert 'SemSimModel.from_pretrained("me/semsim-tiny")' in (pushed / "README.md").read_text()
        back = SemSimModel.from_pretrained("me/semsim-tiny", cache_dir=tmp_path / "cache")
        x = torch.rand(2, 3, 32, 32)
        torch.testing.assert_close(back.embed(x), tiny_model.embed(x))
        tiny_model.save_pretrained(
            tmp_path / "semsim-other", push_to_hub=True, token="test-token", max_shard_size="10MB"
        )
        assert (
            tmp_path / "server" / "me--semsim-other" / "model.safetensors"
        ).is_file()  # repo named after the folder
        with pytest.raises(ValueError, match="max_shard_size"):
            tiny_model.save_pretrained(tmp_path / "x", max_shard_size="1KB")
        with pytest.raises(TypeError, match="cannot honour"):
            tiny_model.save_pretrained(tmp_path / "x", variant="fp16")
    finally:
        server.shutdown()
        monkeypatch.undo()  # the environment as before (offline, the real endpoint), then the constants again
        importlib.reload(hf_constants)


def test_from_pretrained_honours_subfolder_and_device_map_and_refuses_the_rest(tmp_path, tiny_model):
    from semsim_metric import SemSimModel

    tiny_model.save_pretrained(tmp_path / "repo" / "semsim")
    model = SemSimModel.from_pretrained(
        tmp_path / "repo", subfolder="semsim", device_map="cpu", trust_remote_code=True
    )
    assert model.config.base_width == tiny_model.config.base_width
    with pytest.raises(OSError, match="no sub-folder 'nope'"):
        SemSimModel.from_pretrained(tmp_path / "repo", subfolder="nope")
    with pytest.raises(ValueError, match="one device"):
        SemSimModel.from_pretrained(tmp_path / "repo", subfolder="semsim", device_map="auto")
    with pytest.raises(ValueError, match="safetensors only"):
        SemSimModel.from_pretrained(tmp_path / "repo", subfolder="semsim", use_safetensors=False)
    with pytest.raises(TypeError, match="cannot honour"):
        SemSimModel.from_pretrained(tmp_path / "repo", subfolder="semsim", variant="fp16")
