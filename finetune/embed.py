"""Sentence embeddings from an encoder: a multi-task model of ``finetune.train``, a masked LM, or a hub model.

    python -m finetune.embed --model tiny-xlmr --input sentences.csv --pooling mean --normalize l2

For every input row the encoder's last hidden states ``h_1 .. h_L`` (attention mask ``m``) are
pooled into one vector (:func:`finetune.losses.pool`, the pooling the task heads use):

* ``cls``: ``p = h_1`` (the first token, ``<s>`` in XLM-R);
* ``mean``: ``p = sum_j m_j h_j / sum_j m_j``;
* ``max``: ``p_k = max_{j: m_j = 1} h_jk``;

then, for a multi-task model trained with ``embedding_size`` (and ``--projection`` not ``off``),
projected, ``e = W p + b``, as its sentence heads see it; then normalised
(:func:`normalize`): ``none``, ``l1`` (``e / ||e||_1``) or ``l2`` (``e / ||e||_2``).

A folder with ``tasks.json`` is loaded with :func:`finetune.model.load_multitask`, anything else
(``tiny-xlmr``, ``base``, a ``finetune.train`` masked-LM folder, a hub id) with transformers'
``AutoModel`` (the encoder without its LM head). The output is a Parquet file, one row per input
row: ``row`` (0-based position in the input), ``id`` (with ``--id_column``), ``language`` (when the
input has the ``--language_column``), ``embedding`` (a fixed-size list of float32); its manifest
(``<file>.manifest.json``) names the model and the pooling, normalisation and projection used.
Default output: ``results/embeddings/<model>/<input name>.parquet``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune.config import FORMATS, POOLINGS
from finetune.data import EXTENSIONS, is_missing, read_file
from finetune.predict import DEFAULT_MAX_LENGTH, trained_max_length
from probing import models
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error
from probing.manifest import (PROJECT_ROOT, SCHEMA_VERSION, add_overwrite_option, claim_output_file, environment,
                              now_utc, sha256_file, write_file_with_sidecar)

EMBEDDINGS_DIR = PROJECT_ROOT / "results" / "embeddings"
NORMALIZATIONS = ("none", "l1", "l2")
PROJECTIONS = ("auto", "on", "off")
DEFAULT_POOLING = "mean"  # for encoders without task heads: the usual choice for sentence embeddings

EXAMPLES = """examples:
  python -m finetune.embed --model tiny-xlmr --input finetune/demo_data/multitask.csv
  python -m finetune.embed --model multitask --input texts.csv --pooling cls --normalize l2
  python -m finetune.embed --model multitask --input texts.csv --projection off --output raw.parquet
"""


def check_embedding_options(pooling: str | None, normalization: str) -> None:
    """Refuse an unknown pooling or normalisation with one line naming the choices."""
    if pooling is not None and pooling not in POOLINGS:
        raise UserError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    if normalization not in NORMALIZATIONS:
        raise UserError(f"unknown normalisation {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")


def normalize(vectors, how: str):
    """Each row ``v`` of ``vectors`` (a torch tensor, shape (n, d)) normalised.

    ``none``: ``v``; ``l1``: ``v / max(sum_k |v_k|, 1e-12)``; ``l2``: ``v / max(sqrt(sum_k v_k^2), 1e-12)``
    (``torch.nn.functional.normalize``).

    >>> import torch
    >>> normalize(torch.tensor([[3., -4.]]), "l1").tolist(), normalize(torch.tensor([[3., -4.]]), "l2").tolist()
    ([[0.4285714328289032, -0.5714285969734192]], [[0.6000000238418579, -0.800000011920929]])
    """
    import torch.nn.functional as F

    if how == "none":
        return vectors
    if how in ("l1", "l2"):
        return F.normalize(vectors, p=1.0 if how == "l1" else 2.0, dim=-1)
    raise ValueError(f"unknown normalisation {how!r}; expected one of {', '.join(NORMALIZATIONS)}")


@dataclass
class Encoder:
    """A loaded encoder and what the manifest says about it."""

    name: str
    source: str
    revision: str | None
    random_weights: bool
    module: object  # a MultiTaskModel, or a transformers AutoModel
    tokenizer: object
    multitask: bool
    trained_pooling: str | None  # the pooling the task heads were trained on (multi-task models)
    projection: object | None  # the embedding_size projection (torch Linear), if the model has one
    max_length: int

    def hidden(self, input_ids, attention_mask):
        if self.multitask:
            return self.module.encode(input_ids, attention_mask)
        return self.module(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def record(self) -> dict:
        return {"name": self.name, "source": self.source, "revision": self.revision,
                "random_weights": self.random_weights, "multitask": self.multitask,
                "class": type(self.module).__name__ if not self.multitask else type(self.module.lm).__name__,
                "trained_pooling": self.trained_pooling,
                "embedding_size": None if self.projection is None else int(self.projection.out_features),
                "max_length": self.max_length}


def model_source(name: str) -> tuple[str, str]:
    """``(display name, folder or hub id)``: an existing folder, ``tiny-xlmr``, ``base``, a name in
    ``results/models/``, or a hub id (``owner/name``)."""
    if Path(name).expanduser().exists() or "/" in name:
        return models.resolve_model(model=name)
    return models.resolve_model(finetuned_model=name)


def has_projection(source: str) -> bool:
    """Whether ``source`` is a multi-task folder trained with ``embedding_size`` (read from ``tasks.json``)."""
    from finetune.model import read_task_specs

    spec = read_task_specs(Path(source)) if Path(source).is_dir() else None
    return bool(spec and spec.get("embedding_size"))


def check_projection(choice: str, name: str, source: str) -> bool:
    """Whether to apply the projection: ``auto`` = when the model has one; ``on`` refuses a model without."""
    if choice not in PROJECTIONS:
        raise UserError(f"unknown --projection {choice!r}; choose one of {', '.join(PROJECTIONS)}")
    present = has_projection(source)
    if choice == "on" and not present:
        raise UserError(f"--projection on: {name} has no projection (it was not trained with embedding_size); "
                        f"pass --projection off or auto")
    return present and choice != "off"


def load_encoder(name: str, source: str, *, max_length: int | None = None) -> Encoder:
    """The encoder of ``source`` in eval mode (see the module docstring for which class loads it)."""
    import transformers

    from finetune.model import TASKS_FILE, load_multitask

    transformers.logging.set_verbosity_error()  # AutoModel on a masked-LM checkpoint: "pooler not initialised"
    transformers.logging.disable_progress_bar()
    registry = models._read_registry(source)
    if (Path(source) / TASKS_FILE).is_file():
        model, tokenizer = load_multitask(Path(source))
        return Encoder(name, source, getattr(model.lm.config, "_commit_hash", None),
                       bool(registry.get("random_weights", False)), model, tokenizer, True, model.pooling,
                       model.projection, max_length or trained_max_length(source))

    from transformers import AutoModel

    def load(local_files_only: bool):
        kwargs = {"local_files_only": local_files_only}
        return models.load_tokenizer(source, **kwargs), AutoModel.from_pretrained(source, **kwargs)

    if Path(source).exists():
        try:
            tokenizer, module = load(local_files_only=True)
        except (OSError, ValueError) as error:
            raise UserError(f"cannot load an encoder from {source}: {str(error).splitlines()[0]}") from None
    else:
        tokenizer, module = models._load_from_hub(source, load)
    return Encoder(name, source, getattr(module.config, "_commit_hash", None),
                   bool(registry.get("random_weights", False)), module.eval(), tokenizer, False, None, None,
                   max_length or trained_max_length(source))


def embed_texts(encoder: Encoder, texts: list[str], *, pooling: str, normalization: str, project: bool,
                batch_size: int = 32, device="cpu") -> np.ndarray:
    """Sentence embeddings of ``texts``, float32 of shape (len(texts), d) (see the module docstring).

    Texts are cut at ``encoder.max_length`` tokens. ``project`` applies the model's
    ``embedding_size`` projection (it must have one).
    """
    import torch

    from finetune.losses import pool

    check_embedding_options(pooling, normalization)
    if project and encoder.projection is None:
        raise UserError(f"{encoder.name} has no projection (it was not trained with embedding_size)")
    encoder.module.to(device)
    parts = []
    for start in range(0, len(texts), batch_size):
        encoded = encoder.tokenizer(list(texts[start:start + batch_size]), truncation=True,
                                    max_length=encoder.max_length, padding=True, return_tensors="pt")
        ids, mask = encoded["input_ids"].to(device), encoded["attention_mask"].to(device)
        with torch.no_grad():
            vectors = pool(encoder.hidden(ids, mask), mask, pooling)
            if project:
                vectors = encoder.projection(vectors)
            vectors = normalize(vectors.float(), normalization)
        parts.append(vectors.cpu().numpy().astype(np.float32))
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


# ---- command line ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m finetune.embed",
        description="Write sentence embeddings (pooled, optionally projected and normalised encoder states) "
                    "of a model for the texts of a file, as Parquet.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
    )
    add = parser.add_argument
    add("--model", required=True, help="a name in results/models/, tiny-xlmr, base, a model folder or a hub id")
    add("--input", required=True, help="a .csv/.tsv/.jsonl/.txt/.parquet file, one text per row")
    add("--output", default=None, help="a .parquet file (default: results/embeddings/<model>/<input>.parquet); "
                                       "its manifest goes beside it as <file>.manifest.json")
    add_overwrite_option(parser, "an earlier, unchanged embedding file of this command")
    add("--text_column", default="text", help="column with the text (default: text)")
    add("--id_column", default=None, help="a column copied to the output as id (default: none)")
    add("--language_column", default="language", help="copied to the output as language when the input has it "
                                                       "(default: language)")
    add("--format", default=None, choices=FORMATS, help="input format when the extension does not say")
    add("--pooling", default=None, choices=POOLINGS,
        help=f"default: the pooling a multi-task model was trained with, else {DEFAULT_POOLING}")
    add("--normalize", default="none", choices=NORMALIZATIONS, help="none | l1 | l2 (default: none)")
    add("--projection", default="auto", choices=PROJECTIONS,
        help="apply the model's embedding_size projection: auto (when it has one; default), on, off")
    add("--max_length", type=int, default=None, help="tokens per text (default: the model's training max_length, "
                                                     f"else {DEFAULT_MAX_LENGTH})")
    add("--batch_size", type=int, default=32, help="texts per forward pass (default: 32)")
    add("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    return parser


def read_texts(args) -> tuple[object, list[str]]:
    """(data frame, its texts); every row needs a text."""
    path = Path(args.input).expanduser()
    if not path.is_file():
        raise UserError(f"--input: file {args.input!r} not found")
    fmt = args.format or EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"--input: cannot tell the format of {path.name}; pass --format ({', '.join(FORMATS)})")
    frame = read_file(path, fmt, "--input")
    if len(frame) == 0:
        raise UserError(f"--input: {path} is empty (no rows)")
    for flag, column in (("--text_column", args.text_column), ("--id_column", args.id_column)):
        if column is not None and column not in frame.columns:
            raise UserError(f"{path}: no column {column!r} ({flag}); columns are: {', '.join(map(str, frame.columns))}")
    texts = []
    for number, value in enumerate(frame[args.text_column], start=1):
        if is_missing(value):
            raise UserError(f"{path}: row {number} has no text in column {args.text_column!r}")
        texts.append(str(value))
    return frame.reset_index(drop=True), texts


def embedding_table(frame, vectors: np.ndarray, *, id_column: str | None, language_column: str | None):
    """The output as a pyarrow table: row, [id], [language], embedding (fixed-size list of float32)."""
    import pyarrow as pa

    columns = {"row": pa.array(np.arange(len(frame), dtype=np.int64))}
    if id_column is not None:
        columns["id"] = pa.array(frame[id_column].astype(str).tolist())
    if language_column is not None and language_column in frame.columns:
        columns["language"] = pa.array(frame[language_column].astype(str).tolist())
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    columns["embedding"] = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
    return pa.table(columns)


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {args.batch_size}")
    if args.max_length is not None and args.max_length < 2:
        raise UserError(f"--max_length must be at least 2, got {args.max_length}")
    check_embedding_options(args.pooling, args.normalize)
    name, source = model_source(args.model)
    project = check_projection(args.projection, name, source)
    frame, texts = read_texts(args)
    output = Path(args.output) if args.output else EMBEDDINGS_DIR / name / f"{Path(args.input).stem}.parquet"
    if output.suffix.lower() != ".parquet":
        raise UserError(f"--output must end in .parquet, got {output.name}")
    claim_output_file(output, "finetune.embed", overwrite=args.overwrite)

    import pyarrow.parquet as pq

    from probing.engine import resolve_device

    device = resolve_device(args.device)
    encoder = load_encoder(name, source, max_length=args.max_length)
    pooling = args.pooling or encoder.trained_pooling or DEFAULT_POOLING
    vectors = embed_texts(encoder, texts, pooling=pooling, normalization=args.normalize, project=project,
                          batch_size=args.batch_size, device=device)
    table = embedding_table(frame, vectors, id_column=args.id_column, language_column=args.language_column)
    input_path = Path(args.input).expanduser()
    write_file_with_sidecar(output, lambda tmp: pq.write_table(table, tmp), lambda tmp: {
        "schema_version": SCHEMA_VERSION, "created": now_utc(),
        "command": ["python", "-m", "finetune.embed", *(argv if argv is not None else sys.argv[1:])],
        "model": encoder.record(),
        "embedding": {"pooling": pooling, "normalize": args.normalize, "projection": project,
                      "dimension": int(vectors.shape[1]), "dtype": "float32"},
        "parameters": vars(args),
        "inputs": [{"path": str(input_path.resolve()), "sha256": sha256_file(input_path), "rows": len(texts)}],
        "env": environment(),
        "outputs": {output.name: {"rows": len(texts), "sha256": sha256_file(tmp)}},
    })
    print(f"wrote {len(texts)} embeddings of dimension {vectors.shape[1]} ({pooling} pooling, normalize "
          f"{args.normalize}{', projected' if project else ''}) to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
