"""Label new texts with a multi-task model written by ``finetune.train``.

    python -m finetune.predict --model tiny-multitask --input finetune/demo_data/multitask.csv

writes one row per input row: its columns, then per task

* multiclass: ``<task>_prediction`` (the most probable label) and ``<task>_p_<label>`` for every
  label;
* binary: ``<task>_prediction`` (the positive label if P >= 0.5) and ``<task>_p`` = P(positive);
* multilabel: ``<task>_prediction`` (labels with P >= 0.5 joined by ``|``, or ``none``) and
  ``<task>_p_<label>``;
* token: ``<task>_prediction``, one tag per word (space-separated in csv, a list in jsonl); words
  are the input's tokens column if given, else the text split on white space.

The output is csv, or jsonl when ``--output`` ends in ``.jsonl``; default
``results/predictions/<model>/<input name>.csv``, one folder per model. Its manifest,
``<file>.manifest.json`` beside it, names the model (:func:`model_record`: name, folder, base model,
revision, random weights, sha256 of its config and weights). A file is replaced only with
``--overwrite``, only if this command wrote it unchanged, and never when another model wrote it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from finetune.config import FORMATS
from finetune.data import EXTENSIONS, is_missing, read_file, words_of
from probing import models
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error
from probing.manifest import (PROJECT_ROOT, SCHEMA_VERSION, add_overwrite_option, claim_output_file, environment,
                              now_utc, sha256_file, sidecar_manifest, write_file_with_sidecar)

PREDICTIONS_DIR = PROJECT_ROOT / "results" / "predictions"
DEFAULT_MAX_LENGTH = 128  # tokens per text when the model folder does not say what it was trained with

EXAMPLES = """examples:
  python -m finetune.predict --model tiny-multitask --input finetune/demo_data/multitask.csv
  python -m finetune.predict --model multitask --input comments.jsonl --output labelled.jsonl
  python -m finetune.predict --model multitask --input sentences.txt --batch_size 64
  python -m finetune.predict --model multitask --input ner.jsonl --tokens_column tokens
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m finetune.predict",
        description="Write per-task predictions of a multi-task model for new texts.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
    )
    add = parser.add_argument
    add("--model", required=True, help="a name in results/models/ or a folder written by finetune.train")
    add("--input", required=True, help="a .csv/.tsv/.jsonl/.txt/.parquet file, one text per row")
    add("--output", default=None, help="a .csv or .jsonl file (default: results/predictions/<model>/<input>.csv); "
                                       "its manifest goes beside it as <file>.manifest.json")
    add_overwrite_option(parser, "an earlier, unchanged prediction file of this command")
    add("--text_column", default="text", help="column with the text (default: text)")
    add("--tokens_column", default=None, help="column with a list of words, for token tasks")
    add("--format", default=None, choices=FORMATS, help="input format when the extension does not say")
    add("--max_length", type=int, default=None, help="tokens per text (default: the model's training max_length)")
    add("--batch_size", type=int, default=32, help="texts per forward pass (default: 32)")
    add("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    return parser


def model_folder(name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_dir():
        folder = path
    else:
        folder = models.models_dir() / name
    if not (folder / "config.json").is_file():
        raise UserError(f"unknown model {name!r}: no {folder}/config.json; available: "
                        f"{', '.join(models.available_models())}")
    if not (folder / "tasks.json").is_file():
        raise UserError(f"{folder} has no task heads (tasks.json); predict needs a model trained with "
                        f"objective: multitask")
    return folder


def trained_max_length(folder: Path) -> int:
    """The ``max_length`` the model in ``folder`` was trained with (its ``train_config.yaml``), else
    :data:`DEFAULT_MAX_LENGTH` (a hub id or a plain masked-LM folder)."""
    config_file = Path(folder) / "train_config.yaml"
    saved = yaml.safe_load(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    return int((saved or {}).get("max_length", DEFAULT_MAX_LENGTH))


def model_record(folder: Path) -> dict:
    """What names a fine-tuned model in a result's manifest: its name (folder name), folder, base
    model and revision, whether the base weights were random (from the ``manifest.json`` that
    ``finetune.train`` wrote, ``None`` where it is missing), its tasks, and the sha256 of its config
    and weight files (``config.json``, ``train_config.yaml``, ``tasks.json``, ``*.safetensors``), so
    that two models with the same name can be told apart."""
    folder = Path(folder)
    try:
        trained = json.loads((folder / models.REGISTRY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        trained = {}
    trained = trained if isinstance(trained, dict) else {}
    base = trained.get("base_model") if isinstance(trained.get("base_model"), dict) else {}
    names = ["config.json", "train_config.yaml", "tasks.json",
             *sorted(p.name for p in folder.glob("*.safetensors"))]
    return {"name": folder.name, "folder": str(folder.resolve()), "base_model": base.get("name"),
            "base_source": base.get("source"), "revision": base.get("revision"),
            "random_weights": trained.get("random_weights"),
            "tasks": [{"name": t.get("name"), "type": t.get("type")} for t in trained.get("tasks") or []
                      if isinstance(t, dict)],
            "sha256": {name: sha256_file(folder / name) for name in names if (folder / name).is_file()}}


def check_same_model(output: Path, folder: Path) -> None:
    """Refuse to replace ``output`` if its sidecar manifest says another model folder wrote it: one
    model's predictions never replace another's, even with ``--overwrite``."""
    try:
        earlier = json.loads(sidecar_manifest(output).read_text(encoding="utf-8"))["model"]["folder"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # no readable sidecar: claim_output_file decides
    if Path(str(earlier)) != folder.resolve():
        raise UserError(f"{output} holds the predictions of model {earlier}, not of {folder.resolve()}; nothing "
                        f"there is replaced: pass --output with a new file name")


def read_input(args) -> tuple[object, list]:
    """(data frame, one text or word list per row)."""
    path = Path(args.input).expanduser()
    if not path.is_file():
        raise UserError(f"--input: file {args.input!r} not found")
    fmt = args.format or EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"--input: cannot tell the format of {path.name}; pass --format ({', '.join(FORMATS)})")
    frame = read_file(path, fmt, "--input")
    if len(frame) == 0:
        raise UserError(f"--input: {path} is empty (no rows)")
    column = args.tokens_column or args.text_column
    if column not in frame.columns:
        flag = "--tokens_column" if args.tokens_column else "--text_column"
        raise UserError(f"{path}: no column {column!r} ({flag}); columns are: {', '.join(map(str, frame.columns))}")
    inputs = []
    for number, value in enumerate(frame[column], start=1):
        if is_missing(value):
            raise UserError(f"{path}: row {number} has no text in column {column!r}")
        try:
            inputs.append(words_of(value) if args.tokens_column else str(value))
        except ValueError as error:
            raise UserError(f"{path}: row {number}: column {column!r}: {error}") from None
    return frame, inputs


def predict(model, tokenizer, inputs: list, *, max_length: int, batch_size: int, device) -> list[dict]:
    """One dict per input: ``{task: label(s)}`` plus probabilities (see the module docstring)."""
    import torch

    from finetune.model import task_predictions

    has_token_task = any(t.type == "token" for t in model.tasks)
    as_words = has_token_task or (inputs and isinstance(inputs[0], list))
    rows = []
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start:start + batch_size]
        if as_words:
            chunk = [c if isinstance(c, list) else c.split() for c in chunk]
        encoded = tokenizer(chunk, truncation=True, max_length=max_length, padding=True, return_tensors="pt",
                            is_split_into_words=as_words)
        with torch.no_grad():
            logits = model.task_logits(encoded["input_ids"].to(device), encoded["attention_mask"].to(device))
        outputs = {t.name: task_predictions(t, logits[t.name]).cpu() for t in model.tasks}
        for i in range(len(chunk)):
            row = {}
            for task in model.tasks:
                values = outputs[task.name][i]
                if task.type == "multiclass":
                    row[f"{task.name}_prediction"] = task.labels[int(values.argmax())]
                    row.update({f"{task.name}_p_{label}": float(p) for label, p in zip(task.labels, values)})
                elif task.type == "binary":
                    row[f"{task.name}_prediction"] = task.labels[int(values >= 0.5)]
                    row[f"{task.name}_p"] = float(values)
                elif task.type == "multilabel":
                    chosen = [label for label, p in zip(task.labels, values) if p >= 0.5]
                    row[f"{task.name}_prediction"] = "|".join(chosen) if chosen else "none"
                    row.update({f"{task.name}_p_{label}": float(p) for label, p in zip(task.labels, values)})
                else:
                    word_ids, tags, previous = encoded.word_ids(i), [], None
                    for position, word in enumerate(word_ids):
                        if word is not None and word != previous:
                            tags.append(task.labels[int(values[position])])
                        previous = word
                    row[f"{task.name}_prediction"] = tags  # words cut off by max_length get no tag
            rows.append(row)
    return rows


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {args.batch_size}")
    folder = model_folder(args.model)
    frame, inputs = read_input(args)
    output = Path(args.output) if args.output else PREDICTIONS_DIR / folder.name / f"{Path(args.input).stem}.csv"
    if output.suffix.lower() not in (".csv", ".jsonl"):
        raise UserError(f"--output must end in .csv or .jsonl, got {output.name}")
    check_same_model(output, folder)
    claim_output_file(output, "finetune.predict", overwrite=args.overwrite)
    max_length = args.max_length if args.max_length is not None else trained_max_length(folder)

    import transformers

    from finetune.model import load_multitask
    from probing.engine import resolve_device

    transformers.logging.disable_progress_bar()
    device = resolve_device(args.device)
    model, tokenizer = load_multitask(folder)
    model.to(device)
    rows = predict(model, tokenizer, inputs, max_length=max_length, batch_size=args.batch_size, device=device)

    import pandas as pd

    table = pd.concat([frame.reset_index(drop=True), pd.DataFrame(rows)], axis=1)

    def write(tmp: Path) -> None:
        if output.suffix.lower() == ".jsonl":
            with open(tmp, "w", encoding="utf-8") as handle:
                for record in table.to_dict(orient="records"):
                    handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        else:
            for task in model.tasks:
                if task.type == "token":
                    column = f"{task.name}_prediction"
                    table[column] = table[column].map(" ".join)
            table.to_csv(tmp, index=False)

    input_path = Path(args.input).expanduser()
    write_file_with_sidecar(output, write, lambda tmp: {
        "schema_version": SCHEMA_VERSION, "created": now_utc(),
        "command": ["python", "-m", "finetune.predict", *(argv if argv is not None else sys.argv[1:])],
        "model": {**model_record(folder), "max_length": max_length},
        "parameters": vars(args),
        "inputs": [{"path": str(input_path.resolve()), "sha256": sha256_file(input_path), "rows": len(rows)}],
        "env": environment(),
        "outputs": {output.name: {"rows": len(rows), "sha256": sha256_file(tmp)}},
    })
    print(f"wrote predictions for {len(rows)} rows and {len(model.tasks)} tasks to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
