"""Shared fixtures: offline hub, a session-wide tiny-xlmr, and a CLI runner."""

from __future__ import annotations

import os

# Fail in seconds, not minutes, if anything tries to reach the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """A private results/models/ for the test session (so tests never touch the real one)."""
    path = tmp_path_factory.mktemp("models")
    previous = os.environ.get("STEREOPROBE_MODELS_DIR")
    os.environ["STEREOPROBE_MODELS_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("STEREOPROBE_MODELS_DIR", None)
    else:
        os.environ["STEREOPROBE_MODELS_DIR"] = previous


@pytest.fixture(scope="session")
def tiny_dir(models_dir):
    from probing.models import ensure_tiny_xlmr

    return ensure_tiny_xlmr()


@pytest.fixture(scope="session")
def tiny(tiny_dir):
    """(model, tokenizer) of tiny-xlmr, in eval mode."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForMaskedLM.from_pretrained(tiny_dir).eval()
    return model, tokenizer


@pytest.fixture
def cli(capsys):
    """Run a CLI ``main(argv)`` in-process; returns (exit code, stdout, stderr)."""

    def invoke(main, argv):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
