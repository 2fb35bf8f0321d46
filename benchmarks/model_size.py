"""Memory of one multi-task model against the single-task models it replaces, at xlm-roberta-base size.

Run with ``make bench``, or::

    .venv/bin/python benchmarks/model_size.py [--config finetune/configs/multitask.yaml] [--no-check]

What it does
------------
* Reads the tasks and heads of ``--config`` (default: the shipped ``multitask.yaml``; only the
  config is read, not its data).
* Builds, on PyTorch's ``meta`` device (shapes only, no memory, no download), the multi-task model
  of :mod:`finetune.model` on an ``XLMRobertaForMaskedLM`` with xlm-roberta-base's exact shape
  (12 layers, width 768, FFN 3072, vocabulary 250002), and for each task the single-task model
  it replaces: the same masked LM with that task's head only. Every model keeps the LM head, as
  every model ``finetune.train`` writes does, so each one can be probed.
* Parameters are counted once per tensor (XLM-R's LM decoder shares the embedding matrix).
  On-disk size is computed, not measured: the bytes of the unique tensors of the state dicts in
  float32 (what ``model.safetensors`` + ``heads.safetensors`` hold), plus safetensors' JSON header,
  whose exact length is computed the way safetensors writes it. Writing 1 GB files per model
  would measure the same numbers slowly.
* ``--check`` (on by default) validates that arithmetic: it builds the same models at tiny-xlmr's
  shape (width 32), saves them with :meth:`MultiTaskModel.save` in a temp dir, and compares the
  files' real sizes with the computed ones (exit status 1 if they differ).

Output: one line per model (parameters, MB = 10^6 bytes), the sum over the single-task models,
and the multi-task model's share of it.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from finetune.config import load_config  # noqa: E402
from finetune.model import MultiTaskModel  # noqa: E402
from finetune.train import task_specs  # noqa: E402

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "finetune" / "configs" / "multitask.yaml"
DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def xlmr_config(width: int = 768, layers: int = 12, heads: int = 12, ffn: int = 3072):
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(vocab_size=250002, hidden_size=width, num_hidden_layers=layers,
                            num_attention_heads=heads, intermediate_size=ffn, max_position_embeddings=514,
                            type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)


def build(config, tasks, *, pooling: str, device: str) -> MultiTaskModel:
    from transformers import XLMRobertaForMaskedLM

    with torch.device(device):
        lm = XLMRobertaForMaskedLM(config)
        return MultiTaskModel(lm, tasks, pooling=pooling, mlm_weight=0.0)


def unique_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State-dict entries, each shared tensor once (the first key), as ``save_pretrained`` stores them."""
    seen, out = set(), {}
    for key, tensor in module.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:
            seen.add(id(tensor))
            out[key] = tensor
    return out


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> int:
    """Size of a safetensors file: 8-byte length + JSON header (padded to 8 bytes) + tensor bytes."""
    header, offset = {}, 0
    for key in sorted(tensors):
        tensor = tensors[key]
        size = tensor.numel() * tensor.element_size()
        header[key] = {"dtype": DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape),
                       "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(struct.pack("<Q", 0)) + len(text) + offset


def sizes(model: MultiTaskModel) -> dict:
    """Parameters and computed on-disk bytes of what :meth:`MultiTaskModel.save` writes."""
    lm = unique_tensors(model.lm)
    heads = unique_tensors(model.heads)
    n_parameters = sum(p.numel() for p in model.parameters())
    disk = safetensors_bytes(lm, {"format": "pt"}) + (safetensors_bytes(heads, {"format": "pt"}) if heads else 0)
    return {"parameters": n_parameters, "bytes": disk,
            "head_parameters": sum(p.numel() for p in model.heads.parameters())}


def compare(config, tasks, pooling: str) -> list[tuple[str, dict]]:
    rows = [(f"multi-task ({len(tasks)} heads)", sizes(build(config, tasks, pooling=pooling, device="meta")))]
    for task in tasks:
        rows.append((f"single-task: {task.name}", sizes(build(config, [task], pooling=pooling, device="meta"))))
    return rows


def check_on_disk(tasks, pooling: str) -> list[str]:
    """Save tiny-shaped models and compare real file sizes with the computed ones; returns problems."""
    problems = []
    config = xlmr_config(width=32, layers=2, heads=2, ffn=64)
    torch.manual_seed(0)
    for subset in (tasks, tasks[:1]):
        model = build(config, subset, pooling=pooling, device="cpu")
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp))
            files = [Path(tmp) / "model.safetensors"] + ([Path(tmp) / "heads.safetensors"] if subset else [])
            measured = sum(f.stat().st_size for f in files)
        computed = sizes(model)["bytes"]
        status = "ok" if measured == computed else "MISMATCH"
        heads = f"{len(subset)} head{'s' if len(subset) != 1 else ''}"
        print(f"check (tiny shape, {heads}): computed {computed:,} bytes, saved {measured:,} bytes: {status}")
        if measured != computed:
            problems.append(f"{len(subset)} heads: computed {computed} != saved {measured}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="a multitask config (default: the shipped one)")
    parser.add_argument("--no-check", dest="check", action="store_false", help="skip the on-disk check")
    args = parser.parse_args(argv)
    import transformers

    transformers.logging.disable_progress_bar()
    config = load_config(args.config)
    if config.objective != "multitask":
        parser.error(f"{args.config} is not a multitask config")
    tasks = task_specs(config)
    print(f"xlm-roberta-base shape, float32, LM head kept in every model; tasks from {args.config}")
    rows = compare(xlmr_config(), tasks, config.pooling)
    width = max(len(name) for name, _ in rows) + 2
    print(f"{'model':<{width}}{'parameters':>15}{'head params':>13}{'on disk (MB)':>15}")
    for name, row in rows:
        print(f"{name:<{width}}{row['parameters']:>15,}{row['head_parameters']:>13,}{row['bytes'] / 1e6:>15.1f}")
    single = rows[1:]
    total_parameters = sum(r["parameters"] for _, r in single)
    total_bytes = sum(r["bytes"] for _, r in single)
    print(f"{f'{len(single)} single-task models':<{width}}{total_parameters:>15,}{'':>13}{total_bytes / 1e6:>15.1f}")
    multi = rows[0][1]
    print(f"multi-task / single-task total: parameters {multi['parameters'] / total_parameters:.3f}, "
          f"disk {multi['bytes'] / total_bytes:.3f} (saves {(total_bytes - multi['bytes']) / 1e6:,.1f} MB)")
    if args.check:
        problems = check_on_disk(tasks, config.pooling)
        if problems:
            print("on-disk check failed: " + "; ".join(problems), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
