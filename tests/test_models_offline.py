"""Without network a hub id fails in seconds, with one line naming the fix (never a non-local address)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from probing import models
from probing.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def closed_port():
    """A local port bound but not listening: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def open_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def online_env(tmp_path: Path, endpoint: str) -> dict:
    """The environment of a machine with the hub at ``endpoint``: offline flags off, empty HF cache."""
    drop = {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_CACHE", "HF_HOME",
            "TRANSFORMERS_CACHE", *PROXY_VARS, *(v.upper() for v in PROXY_VARS)}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf_home"))
    return env


def test_probe_is_false_at_once_for_a_closed_port(closed_port, no_proxy_env):
    # "at once": refused by the connection itself, not by the probe's timeout (a huge one here),
    # so the test cannot depend on how busy the machine is
    assert models.hub_reachable(f"http://127.0.0.1:{closed_port}", timeout=600) is False


def test_probe_is_true_for_a_listening_port(open_port, no_proxy_env):
    assert models.hub_reachable(f"http://127.0.0.1:{open_port}") is True


def test_probe_goes_through_the_proxy(open_port, monkeypatch, no_proxy_env):
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{open_port}")
    assert models.hub_reachable("https://hub.invalid") is True  # the proxy resolves names, not us


def test_probe_gives_up_after_its_timeout_when_resolution_hangs(monkeypatch, no_proxy_env):
    release, finished = threading.Event(), threading.Event()

    def hang(*args, **kwargs):  # like a name lookup that ignores the socket timeout: blocks until released
        release.wait(120)
        finished.set()
        raise OSError("name resolution timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    assert models.hub_reachable("https://hub.invalid", timeout=0.2) is False
    assert not finished.is_set()  # the probe returned on its own timeout, while the lookup still hung
    release.set()


def test_unreachable_hub_fails_in_seconds_with_one_line(tmp_path, closed_port):
    out_dir = tmp_path / "out"
    argv = [sys.executable, "-m", "probing.run", "--model", "no-org/no-such-model", "--languages", "en",
            "--categories", "gender", "--output_dir", str(out_dir)]
    # The endpoint refuses at once, so the command fails without waiting for any timeout (the
    # probe's own timeout is tested above, in-process; a wall-clock bound here would fail under load).
    result = subprocess.run(argv, cwd=ROOT, env=online_env(tmp_path, f"http://127.0.0.1:{closed_port}"),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot reach the Hugging Face hub")
    assert "--model" in lines[0] and "HF_HUB_OFFLINE=1" in lines[0]
    assert "download no-org/no-such-model --local-dir" in lines[0]
    assert "Traceback" not in result.stderr
    assert not out_dir.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_unreachable_hub_falls_back_to_the_local_cache(tmp_path, closed_port, tiny_dir):
    """A model already in the HF cache still loads when the hub is out of reach."""
    snapshot = tmp_path / "hf_home" / "hub" / "models--some-org--tiny" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_dir, snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40, encoding="utf-8")
    code = ("from probing.models import load_masked_lm; "
            "print(type(load_masked_lm('tiny', 'some-org/tiny').model).__name__)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=online_env(tmp_path, f"http://127.0.0.1:{closed_port}"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "XLMRobertaForMaskedLM"
    assert "loaded some-org/tiny from the local cache" in result.stderr


def test_offline_flag_names_the_fix():
    assert models.hub_offline()  # tests/conftest.py sets HF_HUB_OFFLINE=1
    with pytest.raises(UserError) as error:
        models.load_masked_lm("x", "no-org/no-such-model")
    message = str(error.value)
    assert "\n" not in message
    assert "HF_HUB_OFFLINE=1 is set" in message and "--model PATH" in message


def test_hub_data_set_fails_fast_when_the_hub_is_out_of_reach(monkeypatch, closed_port, no_proxy_env):
    import datasets
    from huggingface_hub import constants

    from finetune.config import DataSource
    from finetune.data import read_source

    def no_download(*args, **kwargs):
        raise AssertionError("load_dataset must not be called when the hub is out of reach")

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setattr(datasets, "load_dataset", no_download)
    with pytest.raises(UserError) as error:
        read_source(DataSource(hub="no-org/no-such-data"), "datasets.demo.train")
    message = str(error.value)
    assert message.startswith("datasets.demo.train.hub: cannot reach the Hugging Face hub")
    assert "HF_HUB_OFFLINE=1" in message and "datasets.demo.train.path" in message


def test_generic_tokenizer_encodes_like_the_model_class(tiny_dir):
    """load_tokenizer reads tokenizer.json with the generic fast class; it must encode every prompt
    sentence, and name every token and special token, exactly as AutoTokenizer's class does."""
    from transformers import AutoTokenizer

    from probing.models import load_tokenizer
    from probing.prompts import build_prompts, load_languages

    generic, specific = load_tokenizer(str(tiny_dir)), AutoTokenizer.from_pretrained(tiny_dir)
    assert type(generic) is not type(specific)
    sentences = [p.sentence for prompts in load_languages(None).values()
                 for p in build_prompts(prompts, mask_token=specific.mask_token)]
    assert generic(sentences)["input_ids"] == specific(sentences)["input_ids"]
    assert len(generic) == len(specific)
    everything = list(range(len(specific)))
    assert generic.convert_ids_to_tokens(everything) == specific.convert_ids_to_tokens(everything)
    for name in ("mask_token_id", "pad_token_id", "cls_token_id", "sep_token_id", "all_special_ids"):
        assert getattr(generic, name) == getattr(specific, name), name
