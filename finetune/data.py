"""Data for fine-tuning: read, check labels, tokenise, mask, and sample tasks.

* ``read_source`` reads one split from a local csv/tsv/jsonl/txt/parquet file (or a file inside the
  gensim package, ``gensim:<file>``) or from a hub data set; every problem is a one-line
  :class:`~probing.errors.UserError` naming the file and the config key.
* ``read_examples`` checks every label (before any model is loaded); ``tokenize`` turns the
  examples into features: token ids plus, per task, a label or ``None`` (missing: that example is
  left out of the task's loss).
* ``Collator`` pads a batch and masks it for the masked-LM loss with transformers'
  ``DataCollatorForLanguageModeling``; each example's mask is drawn from a generator seeded by
  (seed, example, draw), so masks do not depend on batching, world size or resumption.
* ``TaskSampler`` plans the training steps of an epoch: every optimisation step is a batch of
  one task, drawn by the sampling strategy (``sampling_probabilities``), filled with the next
  examples labelled for that task; only that task's loss is taken at that step.
"""

from __future__ import annotations

import importlib.util
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from finetune.config import DatasetConfig, DataSource, TaskConfig, TrainConfig
from finetune.losses import IGNORE_INDEX
from probing.errors import UserError
from probing.manifest import PROJECT_ROOT, sha256_file
from probing.models import hub_endpoint, hub_reachable

GENSIM_PREFIX = "gensim:"
GENSIM_INSTALL = "pip install --no-deps gensim==4.4.0"
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt", ".cor": "txt",
              ".parquet": "parquet"}
TRAIN_SALT, EVAL_SALT = 0, 1
NONE_LABEL = "none"  # a multilabel cell meaning "labelled, with no label"


# ---- reading -------------------------------------------------------------------------------

def gensim_data_dir() -> Path:
    """The gensim package folder (its test data holds real English text); gensim is never imported."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"gensim's data files are not installed; run `{GENSIM_INSTALL}`")
    return Path(list(spec.submodule_search_locations)[0])


def resolve_path(text: str, key: str) -> Path:
    """A config path: ``gensim:<file>``, absolute, relative to the current folder, else to the project."""
    if text.startswith(GENSIM_PREFIX):
        path = gensim_data_dir() / text[len(GENSIM_PREFIX):]
    else:
        path = Path(text).expanduser()
        if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
            path = PROJECT_ROOT / path
    if not path.is_file():
        raise UserError(f"{key}.path: file {text!r} not found" + (f" (looked at {path})" if str(path) != text else ""))
    return path.resolve()


@dataclass
class Table:
    """One split as a data frame, and where it came from."""

    frame: pd.DataFrame
    origin: str  # the file or hub id, for messages
    provenance: dict


def read_file(path: Path, fmt: str, key: str, encoding: str = "utf-8") -> pd.DataFrame:
    try:
        if fmt == "txt":
            lines = [line.strip() for line in path.read_text(encoding=encoding).splitlines()]
            return pd.DataFrame({"text": [line for line in lines if line]})
        if fmt in ("csv", "tsv"):
            # Only an empty cell is missing; "NA" or "None" stay text.
            return pd.read_csv(path, sep="," if fmt == "csv" else "\t", keep_default_na=False, na_values=[""],
                               dtype=object, encoding=encoding)
        if fmt == "jsonl":
            rows = []
            with open(path, encoding=encoding) as handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as error:
                            raise UserError(f"{path}: line {number} is not JSON ({error.msg})") from None
                        if not isinstance(rows[-1], dict):
                            raise UserError(f"{path}: line {number} is not a JSON object")
            return pd.DataFrame.from_records(rows)
        return pd.read_parquet(path)
    except UserError:
        raise
    except UnicodeDecodeError as error:
        raise UserError(f"{key}: {path} is not {encoding} text ({error.reason} at byte {error.start}); set "
                        f"{key}.encoding, e.g. latin-1") from None
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise UserError(f"{key}: cannot read {path} as {fmt}: {str(error).splitlines()[0]}") from None


def read_source(source: DataSource, key: str) -> Table:
    """Read one split; ``key`` is its config key (``datasets.demo.train``), named in errors."""
    if source.path is not None:
        path = resolve_path(source.path, key)
        fmt = source.format or EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            raise UserError(f"{key}.path: cannot tell the format of {path.name}; set {key}.format to one of "
                            f"csv, tsv, jsonl, txt, parquet")
        frame = read_file(path, fmt, key, source.encoding)
        provenance = {"path": str(path), "format": fmt, "sha256": sha256_file(path), "rows": len(frame)}
        table = Table(frame, str(path), provenance)
    else:
        table = _read_hub(source, key)
    if len(table.frame) == 0:
        raise UserError(f"{key}: {table.origin} is empty (no rows)")
    return table


def _read_hub(source: DataSource, key: str) -> Table:
    import datasets

    if not datasets.config.HF_HUB_OFFLINE and not hub_reachable():
        raise UserError(f"{key}.hub: cannot reach the Hugging Face hub at {hub_endpoint()} to load {source.hub!r}; "
                        f"download it elsewhere (`hf download {source.hub} --repo-type dataset --local-dir PATH`) "
                        f"and set {key}.path to a file in PATH, or set HF_HUB_OFFLINE=1 to use the local "
                        f"Hugging Face cache")
    datasets.disable_progress_bars()
    try:
        data = datasets.load_dataset(source.hub, source.config, split=source.split, revision=source.revision)
    except Exception as error:  # the hub client raises many types; all mean "cannot load this"
        raise UserError(f"{key}.hub: cannot load {source.hub!r} (config {source.config!r}, split "
                        f"{source.split!r}): {str(error).splitlines()[0]}") from None
    frame = data.to_pandas()
    provenance = {"hub": source.hub, "config": source.config, "split": source.split, "revision": source.revision,
                  "fingerprint": getattr(data, "_fingerprint", None), "rows": len(frame)}
    return Table(frame, f"{source.hub} ({source.config or 'default'}, {source.split})", provenance)


def require_column(table: Table, column: str, key: str) -> None:
    if column not in table.frame.columns:
        raise UserError(f"{table.origin}: no column {column!r} (config key {key}); columns are: "
                        f"{', '.join(map(str, table.frame.columns))}")


# ---- cells ---------------------------------------------------------------------------------

def is_missing(value) -> bool:
    """An empty cell: ``None`` (JSON null), ``pd.NA``, NaN, or blank text."""
    if value is None or value is pd.NA:
        return True
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def marks_missing_label(value, labels: list[str]) -> bool:
    """Whether a label cell (or one tag of a token task) means "no label": empty, null or ``-1``.

    ``-1`` (the number, or the text ``"-1"``) is a real label when ``"-1"`` is one of the task's
    label names (e.g. sentiment labels ``[-1, 0, 1]``).

    >>> [marks_missing_label(v, ["neg", "pos"]) for v in ["", None, -1, -1.0, "-1", 0, "neg"]]
    [True, True, True, True, True, False, False]
    >>> marks_missing_label(-1, ["-1", "0", "1"])
    False
    """
    if is_missing(value):
        return True
    if "-1" in labels or isinstance(value, bool):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return value == -1
    return isinstance(value, str) and value.strip() == "-1"


def _as_list(value, what: str):
    """A list cell: a real list (jsonl, parquet, hub) or a JSON list in a csv cell."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{value!r} is not a JSON list") from None
        if isinstance(parsed, list):
            return parsed
    raise ValueError(f"expected a list of {what}, got {value!r}")


def words_of(value) -> list[str]:
    """A tokens cell: a list of words, a JSON list, or a whitespace-separated string."""
    if isinstance(value, str) and not value.strip().startswith("["):
        return value.split()
    return [str(w) for w in _as_list(value, "words")]


def _class_index(value, labels: list[str]) -> int:
    """A label name, else its index; a number and its text read alike (``1`` and ``"1"``).

    >>> _class_index(1, ["-1", "0", "1"]), _class_index("2", ["neg", "neu", "pos"])
    (2, 2)
    """
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    text = str(value).strip()
    if text in labels:
        return labels.index(text)
    if isinstance(value, (int, np.integer)):
        index = int(value)
    else:
        if not text.lstrip("-").isdigit():
            raise ValueError(f"label {text!r} is not one of {labels}")
        index = int(text)
    if not 0 <= index < len(labels):
        raise ValueError(f"label {index} is out of range 0..{len(labels) - 1} (labels {labels})")
    return index


def parse_label(value, task: TaskConfig):
    """One cell as the task's label, ``None`` when missing; ``ValueError`` says what is wrong.

    multiclass: class index; binary: 0.0 or 1.0; multilabel: a multi-hot list of floats;
    token: a list of tag indices (one per word; ``None`` for a word whose tag is missing).
    A cell (or, in the flat layout, a list element) that is empty, null or ``-1`` is missing
    (:func:`marks_missing_label`), for every task type.
    """
    labels = task.labels
    if task.label_index is not None and not marks_missing_label(value, labels):
        items = _as_list(value, "labels (flat layout)")
        if task.label_index >= len(items):
            raise ValueError(f"the list {items} has no element {task.label_index} (task {task.name!r})")
        value = items[task.label_index]
    if marks_missing_label(value, labels):
        return None
    if task.type == "multiclass":
        return _class_index(value, labels)
    if task.type == "binary":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return float(value.strip().lower() == "true")
        return float(_class_index(value, labels))
    if task.type == "multilabel":
        if isinstance(value, str) and not value.strip().startswith("["):
            names = [] if value.strip().lower() == NONE_LABEL else [v.strip() for v in value.split("|")]
            items = names
        else:
            items = _as_list(value, "label names or a multi-hot vector")
        if items and all(isinstance(v, (int, np.integer, float)) and not isinstance(v, bool) for v in items):
            if len(items) != len(labels) or any(v not in (0, 1) for v in items):
                raise ValueError(f"a multi-hot vector needs {len(labels)} zeros and ones, got {items}")
            return [float(v) for v in items]
        hot = [0.0] * len(labels)
        for name in items:
            if str(name) not in labels:
                raise ValueError(f"label {name!r} is not one of {labels}")
            hot[labels.index(str(name))] = 1.0
        return hot
    # token: a missing tag leaves its word out of the loss and the metrics
    tags = [None if marks_missing_label(v, labels) else _class_index(v, labels) for v in _as_list(value, "tags")]
    return None if all(t is None for t in tags) else tags


def _is_list_cell(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) or (isinstance(value, str) and value.strip().startswith("["))


def parse_weight(value, position: int = 0, readers: list[str] | None = None) -> float:
    """A sample-weight cell as task ``readers[position]``'s weight (empty or null = 1).

    The cell is one number for every task that reads the column, or a list with one weight per
    such task in config order (training-wizard's ``"weight": [1.0, 2.0, 1.5]``); ``readers``
    names those tasks. ``ValueError`` for a list of another length (both lengths named), or a
    weight that is not a finite number >= 0.

    >>> parse_weight("2"), parse_weight("[1.0, 2.0, 1.5]", 1, ["a", "b", "c"]), parse_weight("")
    (2.0, 2.0, 1.0)
    """
    readers = readers or ["this task"]
    if _is_list_cell(value):
        try:
            items = _as_list(value, "weights")
        except ValueError as error:
            raise ValueError(f"weight {error}") from None
        if len(items) != len(readers):
            raise ValueError(f"the weight list has {len(items)} entries but {len(readers)} task(s) read this "
                             f"column ({', '.join(readers)}); give one weight per task, or one number for all")
        value = items[position]
    if is_missing(value):
        return 1.0
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"weight {value!r} is not a number") from None
    if not weight >= 0 or math.isinf(weight):
        raise ValueError(f"weight {value!r} must be a finite number >= 0")
    return weight


# ---- splits and features -------------------------------------------------------------------

@dataclass
class Split:
    """One data set's rows for training or validation."""

    dataset: str
    table: Table
    rows: np.ndarray  # row positions in table.frame


@dataclass
class Example:
    """One row before tokenisation: its text (or words), labels per task (``None`` = missing)."""

    text: str | list[str]
    dataset: str
    language: str | None = None
    labels: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)


@dataclass
class Examples:
    """The examples of one split, and counts for the manifest."""

    items: list[Example]
    counts: dict = field(default_factory=dict)


def load_splits(config: TrainConfig) -> tuple[list[Split], list[Split], dict]:
    """Train and validation rows of every data set, and their provenance."""
    train_splits, eval_splits, provenance = [], [], {}
    for name, spec in config.datasets.items():
        key = f"datasets.{name}"
        train = read_source(spec.train, f"{key}.train")
        _check_columns(train, spec, name, config)
        if spec.validation is not None:
            validation = read_source(spec.validation, f"{key}.validation")
            _check_columns(validation, spec, name, config)
            train_rows, eval_rows = np.arange(len(train.frame)), np.arange(len(validation.frame))
            eval_provenance = validation.provenance
        else:
            n = len(train.frame)
            if n < 2:
                raise UserError(f"{key}.train: {train.origin} has {n} row; a validation split needs at least 2 "
                                f"(or give {key}.validation)")
            order = np.random.default_rng(config.split_seed).permutation(n)
            n_eval = min(n - 1, max(1, round(spec.validation_fraction * n)))
            eval_rows, train_rows = np.sort(order[:n_eval]), np.sort(order[n_eval:])
            validation = train
            eval_provenance = {"split_from_train": spec.validation_fraction, "split_seed": config.split_seed}
        if config.max_train_examples is not None:
            train_rows = train_rows[: config.max_train_examples]
        if config.max_eval_examples is not None:
            eval_rows = eval_rows[: config.max_eval_examples]
        train_splits.append(Split(name, train, train_rows))
        eval_splits.append(Split(name, validation, eval_rows))
        provenance[name] = {"train": train.provenance, "validation": eval_provenance,
                            "rows": {"train": int(len(train_rows)), "validation": int(len(eval_rows))}}
    return train_splits, eval_splits, provenance


def _check_columns(table: Table, spec: DatasetConfig, name: str, config: TrainConfig) -> None:
    key = f"datasets.{name}"
    if spec.tokens_column is not None:
        require_column(table, spec.tokens_column, f"{key}.tokens_column")
    else:
        require_column(table, spec.text_column, f"{key}.text_column")
    if spec.language_column is not None:
        require_column(table, spec.language_column, f"{key}.language_column")
    for i, task in enumerate(config.tasks):
        if name in task.dataset_names:
            require_column(table, task.label_column, f"tasks.{i}.label_column")
            if task.weight_column is not None:
                require_column(table, task.weight_column, f"tasks.{i}.weight_column")


def _texts(split: Split, spec: DatasetConfig) -> tuple[list, list[int]]:
    """The split's texts (or word lists) and the row positions that have one."""
    column = spec.tokens_column or spec.text_column
    texts, kept = [], []
    for position in split.rows:
        value = split.table.frame[column].iat[position]
        if is_missing(value):
            continue
        if spec.tokens_column is not None:
            try:
                words = words_of(value)
            except ValueError as error:
                raise UserError(f"{split.table.origin}: row {position + 1}: column {column!r}: {error}") from None
            if not words:
                continue
            texts.append(words)
        else:
            texts.append(str(value))
        kept.append(int(position))
    return texts, kept


def read_examples(splits: list[Split], config: TrainConfig) -> Examples:
    """Texts and checked labels of every split (no tokenizer needed, so bad data fails early).

    Masked-LM: every row with text. Multi-task: every row with text and a label for at least one
    task of its data set (rows without any label are dropped and counted).
    """
    items, counts = [], {}
    for split in splits:
        spec = config.datasets[split.dataset]
        texts, kept = _texts(split, spec)
        if not texts:
            raise UserError(f"{split.table.origin}: no text in the selected rows (column "
                            f"{spec.tokens_column or spec.text_column!r}); the data set is empty")
        tasks = [(i, t) for i, t in enumerate(config.tasks) if split.dataset in t.dataset_names]
        readers: dict[str, list[str]] = {}  # weight column -> the tasks reading it, in config order
        for _, task in tasks:
            if task.weight_column is not None:
                readers.setdefault(task.weight_column, []).append(task.name)
        frame = split.table.frame
        n_unlabelled = 0
        for text, position in zip(texts, kept):
            labels, weights = {}, {}
            for i, task in tasks:
                column = task.label_column
                try:
                    label = parse_label(frame[column].iat[position], task)
                    weight = 1.0
                    if task.weight_column is not None:
                        column, names = task.weight_column, readers[task.weight_column]
                        weight = parse_weight(frame[column].iat[position], names.index(task.name), names)
                except ValueError as error:
                    raise UserError(f"{split.table.origin}: row {position + 1}: column {column!r} "
                                    f"(tasks.{i}, {task.name!r}): {error}") from None
                if label is not None and task.type == "token" and len(label) != len(text):
                    raise UserError(f"{split.table.origin}: row {position + 1}: column {task.label_column!r} "
                                    f"(tasks.{i}, {task.name!r}): {len(label)} tags for {len(text)} words")
                labels[task.name] = label
                weights[task.name] = weight if label is not None else 0.0
            if tasks and all(v is None for v in labels.values()):
                n_unlabelled += 1
                continue
            language = spec.language
            if spec.language_column is not None:
                value = frame[spec.language_column].iat[position]
                language = None if is_missing(value) else str(value)
            items.append(Example(text, split.dataset, language, labels, weights))
        counts[split.dataset] = {"rows": int(len(split.rows)), "dropped_without_text": len(split.rows) - len(kept),
                                 "dropped_without_labels": n_unlabelled}
    return Examples(items, counts)


def tokenize(examples: Examples, config: TrainConfig, tokenizer) -> list[dict]:
    """Features: token ids, special-token mask, and labels (token-task tags aligned to sub-words).

    Masked-LM texts longer than ``max_length`` are cut into several pieces; multi-task texts are
    truncated (a token task's words past the cut lose their tags).
    """
    features = []
    by_kind: dict[bool, list[int]] = {False: [], True: []}
    for i, example in enumerate(examples.items):
        by_kind[isinstance(example.text, list)].append(i)
    for words, indices in by_kind.items():
        if not indices:
            continue
        batch = [examples.items[i].text for i in indices]
        if config.objective == "mlm":
            encoded = tokenizer(batch, truncation=True, max_length=config.max_length, return_overflowing_tokens=True,
                                return_special_tokens_mask=True, is_split_into_words=words)
            for ids, special in zip(encoded["input_ids"], encoded["special_tokens_mask"]):
                if len(ids) > sum(special):
                    features.append({"input_ids": ids, "special_tokens_mask": special, "language": None,
                                     "labels": {}, "weights": {}})
            continue
        encoded = tokenizer(batch, truncation=True, max_length=config.max_length, return_special_tokens_mask=True,
                            is_split_into_words=words)
        token_tasks = [t.name for t in config.tasks if t.type == "token"]
        for j, i in enumerate(indices):
            example = examples.items[i]
            labels = dict(example.labels)
            for name in token_tasks:
                if labels.get(name) is not None:
                    labels[name] = align_word_labels(encoded.word_ids(j), labels[name])
            features.append({"input_ids": encoded["input_ids"][j],
                             "special_tokens_mask": encoded["special_tokens_mask"][j],
                             "language": example.language, "labels": labels, "weights": example.weights})
    return features


def align_word_labels(word_ids: list[int | None], tags: list[int | None]) -> list[int]:
    """Per-sub-word labels: a word's tag on its first sub-word, ``-100`` elsewhere (and for a missing tag).

    >>> align_word_labels([None, 0, 0, 1, 2, None], [3, 5, None])
    [-100, 3, -100, 5, -100, -100]
    """
    aligned, previous = [], None
    for word in word_ids:
        tag = tags[word] if word is not None and word != previous else None
        aligned.append(IGNORE_INDEX if tag is None else tag)
        previous = word
    return aligned


def check_task_counts(examples: Examples, config: TrainConfig, what: str) -> dict[str, int]:
    """Labelled examples per task; a task with none is an error."""
    counts = {task.name: 0 for task in config.tasks}
    for example in examples.items:
        for name, label in example.labels.items():
            counts[name] += label is not None
    for i, task in enumerate(config.tasks):
        if counts[task.name] == 0:
            raise UserError(f"task {task.name!r} (tasks.{i}) has no labelled {what} examples in column "
                            f"{task.label_column!r} of data set(s) {', '.join(task.dataset_names)}")
    return counts


# ---- batching ------------------------------------------------------------------------------

class FeatureDataset:
    """Map-style dataset of features; a key names an example, its draw and the task it is drawn for.

    With ``tasks`` (training), key ``k = (draw * n_tasks + task) * n + example``; the item then
    carries ``task``, the name of the task whose loss it enters. Without (validation), key ``k``
    is example ``k % n`` at draw ``k // n``, for every task. ``salt`` tells training from
    validation examples apart in the masking seed, so validation masks are fixed for a run while
    training masks change at every draw.
    """

    def __init__(self, rows: list[dict], *, salt: int = TRAIN_SALT, tasks: list[str] | None = None):
        self.rows = rows
        self.salt = salt
        self.tasks = list(tasks or [])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int) -> dict:
        n = len(self.rows)
        index, rest = key % n, key // n
        if not self.tasks:
            return {**self.rows[index], "index": index, "draw": rest, "salt": self.salt}
        return {**self.rows[index], "index": index, "draw": rest // len(self.tasks), "salt": self.salt,
                "task": self.tasks[rest % len(self.tasks)]}


def mask_seed(seed: int, salt: int, index: int, draw: int) -> int:
    """A 64-bit seed for one example's mask, from (run seed, train/eval, example, draw)."""
    return int(np.random.SeedSequence([seed, salt, index, draw]).generate_state(1, dtype=np.uint64)[0])


class Collator:
    """Pad a batch, mask a copy for the masked-LM loss, and stack each task's labels.

    Output keys: ``input_ids``, ``attention_mask`` (clean text); ``mlm_input_ids``,
    ``mlm_labels`` (masked copy; ``-100`` wherever no loss is taken, including padding) when
    masking; ``task_labels`` and ``task_weights`` (0 when the label is missing; a labelled row
    may also weigh 0 by its sample weight) per task; ``example_index``.
    """

    def __init__(self, tokenizer, tasks: list[TaskConfig], *, mlm_probability: float | None, seed: int):
        from transformers import DataCollatorForLanguageModeling

        self.tokenizer = tokenizer
        self.tasks = tasks
        self.seed = seed
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.masker = None
        if mlm_probability is not None:
            self.masker = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=mlm_probability)

    def mask(self, ids: list[int], special: list[int], key: tuple[int, int, int]):
        """(masked ids, labels) of one example; ``key`` = (salt, index, draw) seeds its generator."""
        import torch

        self.masker.generator = torch.Generator().manual_seed(mask_seed(self.seed, *key))
        inputs = torch.tensor([ids], dtype=torch.long)
        masked, labels = self.masker.torch_mask_tokens(inputs, special_tokens_mask=torch.tensor([special]))
        return masked[0], labels[0]

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        n, width = len(rows), max(len(r["input_ids"]) for r in rows)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        for i, row in enumerate(rows):
            length = len(row["input_ids"])
            input_ids[i, :length] = torch.tensor(row["input_ids"])
            attention[i, :length] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention,
                 "example_index": torch.tensor([r["index"] for r in rows], dtype=torch.long)}
        if self.masker is not None:
            mlm_ids = input_ids.clone()
            mlm_labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
            for i, row in enumerate(rows):
                key = (row.get("salt", TRAIN_SALT), row["index"], row["draw"])
                masked, labels = self.mask(row["input_ids"], row["special_tokens_mask"], key)
                mlm_ids[i, : len(masked)] = masked
                mlm_labels[i, : len(labels)] = labels
            batch["mlm_input_ids"], batch["mlm_labels"] = mlm_ids, mlm_labels
        if self.tasks:
            # A training row drawn for one task enters that task's loss only; validation rows all.
            drawn = {r["task"] for r in rows if "task" in r}
            batch["task_labels"], batch["task_weights"] = {}, {}
            for task in self.tasks:
                if drawn and task.name not in drawn:
                    continue
                values = [r["labels"].get(task.name) for r in rows]
                weights = [r["weights"].get(task.name, 0.0) if r.get("task", task.name) == task.name else 0.0
                           for r in rows]
                batch["task_weights"][task.name] = torch.tensor(weights, dtype=torch.float)
                batch["task_labels"][task.name] = stack_labels(values, task, width)
        return batch


def stack_labels(values: list, task: TaskConfig, width: int):
    """One task's labels as a tensor; missing labels become a placeholder the weight of 0 hides."""
    import torch

    if task.type == "multiclass":
        return torch.tensor([0 if v is None else v for v in values], dtype=torch.long)
    if task.type == "binary":
        return torch.tensor([0.0 if v is None else v for v in values], dtype=torch.float)
    if task.type == "multilabel":
        k = len(task.labels)
        return torch.tensor([[0.0] * k if v is None else v for v in values], dtype=torch.float)
    out = torch.full((len(values), width), IGNORE_INDEX, dtype=torch.long)
    for i, v in enumerate(values):
        if v is not None:
            out[i, : len(v)] = torch.tensor(v, dtype=torch.long)
    return out


def sampling_probabilities(sizes: list[int], strategy: str, temperature: float = 1.0) -> np.ndarray:
    """Probability of drawing each task, from its number of labelled training examples ``n_t``.

    proportional and proportional_draws: ``p_t = n_t / sum_s n_s``; uniform: ``p_t = 1 / T``;
    temperature: ``p_t = n_t^(1/temperature) / sum_s n_s^(1/temperature)`` (1 = proportional, large
    = uniform).

    >>> sampling_probabilities([100, 25], "temperature", 2.0).round(3).tolist()
    [0.667, 0.333]
    """
    n = np.asarray(sizes, dtype=float)
    if strategy == "uniform":
        weights = np.ones_like(n)
    elif strategy in ("proportional", "proportional_draws"):
        weights = n
    elif strategy == "temperature":
        weights = n ** (1.0 / temperature)
    else:
        raise ValueError(f"unknown sampling strategy {strategy!r}")
    return weights / weights.sum()


class TaskSampler:
    """The training order: every optimisation step is a batch of one task (MT-DNN style).

    ``batch`` is the global batch of one optimisation step (examples per device x gradient
    accumulation steps x processes); the sampler yields its keys in step order, so each step's
    micro-batches, on every process, hold examples of the same task. An *epoch* is

        S = sum_t ceil(n_t / batch)

    steps, ``n_t`` being the number of training examples labelled for task ``t``: the number of
    steps that shows every labelled (example, task) pair once.

    * ``proportional``: the epoch has exactly ``ceil(n_t / batch)`` steps of task ``t``, in a
      shuffled order (its share of the data, up to the rounding of its last batch), and visits
      every labelled example of every task.
    * ``proportional_draws``, ``uniform`` and ``temperature``: each step's task is drawn
      independently with probability ``p_t`` (:func:`sampling_probabilities`), so task ``t`` gets
      ``Binomial(S, p_t)`` steps (``proportional_draws``: ``p_t = n_t / sum_s n_s``, DeepPavlov's
      way).

    ``steps_per_epoch`` replaces ``S`` (a single-task baseline is given the steps its task gets in
    the multi-task epoch, :func:`finetune.train.matched_steps`); under ``proportional`` it must
    equal the sum of the quotas, with one pool it is that pool's number of steps.

    Each task walks through a fresh permutation of its labelled examples at the start of every
    epoch, reshuffled when used up (so the last batch of a task under ``proportional`` is
    filled up from the next permutation). The order depends only on (seed, epoch); the Trainer
    calls :meth:`set_epoch`. Each task's permutations come from a generator of its own, seeded by
    (seed, epoch, task name): the k-th batch of a task in an epoch holds the same examples whatever
    the other tasks are (a single-task baseline trains on the multi-task model's batches of its
    task, in the same order). With one pool (the masked-LM objective) an epoch is one
    permutation of the data, its last batch filled up the same way.
    """

    def __init__(self, pools: list[np.ndarray], probabilities: np.ndarray, *, strategy: str, batch: int,
                 n_examples: int, seed: int, names: list[str] | None = None, steps_per_epoch: int | None = None):
        self.pools = [np.asarray(p, dtype=np.int64) for p in pools]
        self.probabilities = np.asarray(probabilities, dtype=float)
        self.strategy = strategy
        self.batch = int(batch)
        self.n_examples = n_examples
        self.seed = seed
        self.epoch = 0
        self.names = list(names) if names is not None else [f"task{i}" for i in range(len(self.pools))]
        self.quotas = [math.ceil(len(p) / self.batch) for p in self.pools]
        self.steps_per_epoch = sum(self.quotas) if steps_per_epoch is None else int(steps_per_epoch)
        if self.steps_per_epoch < 1 or (strategy == "proportional" and len(self.pools) > 1
                                        and self.steps_per_epoch != sum(self.quotas)):
            raise ValueError(f"steps_per_epoch {steps_per_epoch} does not fit the quotas {self.quotas}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.steps_per_epoch * self.batch

    def plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(task of each step, shape (S,); example of each position, shape (S * batch,)) of ``epoch``."""
        rng = np.random.default_rng([self.seed, epoch])
        if len(self.pools) == 1:
            tasks = np.zeros(self.steps_per_epoch, dtype=np.int64)
        elif self.strategy == "proportional":
            tasks = rng.permutation(np.repeat(np.arange(len(self.pools)), self.quotas))
        else:
            tasks = rng.choice(len(self.pools), size=self.steps_per_epoch, p=self.probabilities)
        examples = np.empty((self.steps_per_epoch, self.batch), dtype=np.int64)
        for task, pool in enumerate(self.pools):
            steps = np.flatnonzero(tasks == task)
            need = len(steps) * self.batch
            if need:
                own = np.random.default_rng([self.seed, epoch, zlib.crc32(self.names[task].encode("utf-8"))])
                stream = np.concatenate([own.permutation(pool) for _ in range(math.ceil(need / len(pool)))])
                examples[steps] = stream[:need].reshape(len(steps), self.batch)
        return tasks, examples.reshape(-1)

    def __iter__(self):
        tasks, examples = self.plan(self.epoch)
        n_tasks, base = len(self.pools), self.epoch * len(self)
        for position, index in enumerate(examples):
            task = tasks[position // self.batch]
            yield int(((base + position) * n_tasks + task) * self.n_examples + index)

    def trained(self, steps: int) -> list[dict]:
        """Per pool, what the first ``steps`` optimisation steps trained on.

        ``steps`` (optimisation steps of that task), ``examples`` (examples fed, ``steps x batch``)
        and ``distinct_examples`` (different examples among them).
        """
        counts = np.zeros(len(self.pools), dtype=np.int64)
        seen = [set() for _ in self.pools]
        epoch = 0
        while steps > 0:
            tasks, examples = self.plan(epoch)
            taken = min(steps, self.steps_per_epoch)
            for step, task in enumerate(tasks[:taken]):
                counts[task] += 1
                seen[task].update(examples[step * self.batch:(step + 1) * self.batch].tolist())
            steps -= taken
            epoch += 1
        return [{"steps": int(c), "examples": int(c) * self.batch, "distinct_examples": len(s)}
                for c, s in zip(counts, seen)]
