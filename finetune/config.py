"""The training config: a YAML file (or TOML, named ``*.toml``) plus ``--key value`` overrides, read
into dataclasses.

Every key has a default except ``output_name`` and ``datasets``; unknown keys are refused with the
valid one suggested: the key a known other name stands for (``key_aliases.csv``: transformers'
``num_train_epochs`` is ``epochs``), else the closest in spelling. The shipped configs are in
``finetune/configs/``; ``python -m finetune.train --help`` lists every key.

A multi-task config names its data sets, then its tasks::

    objective: multitask
    datasets:
      demo: {train: {path: finetune/demo_data/multitask.csv}, language_column: language}
    tasks:
      - {name: toxicity, type: binary, dataset: demo, label_column: toxic}
      - {name: sentiment, type: multiclass, dataset: demo, label_column: sentiment,
         labels: [negative, neutral, positive]}

or uses the flat layout: one data set whose label column holds a list, one label per task, and
``flat: {dataset: demo, label_column: labels, group_sizes: [3, 2, 4]}`` (three multi-class tasks
with 3, 2 and 4 classes). The flat layout takes what explicit tasks take: ``weight_column`` (a
number per row, or a list with one weight per task: ``[1.0, 2.0, 1.5]``), ``loss_weight`` and
``label_smoothing`` (one value for all tasks, or a list with one per task).

A label that is empty, null or ``-1`` is missing, in every layout and for every task type (a
token task's tag list may also hold null or ``-1`` for single words); ``-1`` is a real label only
when ``"-1"`` is one of the task's label names.
"""

from __future__ import annotations

import codecs
import csv
import copy
import dataclasses
import difflib
import functools
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from probing.errors import UserError
from probing.models import BASE_MODEL_ID, TINY_MODEL_NAME

OBJECTIVES = ("mlm", "multitask")
TASK_TYPES = ("multiclass", "multilabel", "binary", "token")
POOLINGS = ("cls", "mean", "max")
SAMPLINGS = ("proportional", "proportional_draws", "uniform", "temperature")
LR_SCHEDULES = ("linear", "constant")
SELECTION_METRICS = ("loss", "mean_score", "mean_accuracy")  # eval_<name>; loss: lower is better
PRECISIONS = ("no", "fp16", "bf16")
FORMATS = ("csv", "tsv", "jsonl", "txt", "parquet")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
TASK_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _help(text: str, default=dataclasses.MISSING, factory=dataclasses.MISSING):
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


class ConfigError(UserError):
    """A bad config value; ``key`` is its dotted path (``tasks.1.type``)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(key, f"{key}: {message}")


def _choice(value: str, choices: tuple[str, ...], key: str) -> None:
    _check(value in choices, key, f"unknown value {value!r}; expected one of {', '.join(choices)}")


@dataclass
class DataSource:
    """Where one split comes from: a local file (``path``) or a hub data set (``hub``)."""

    path: str | None = _help(
        "local .csv/.tsv/.jsonl/.txt/.parquet file (relative to the current folder, else to the project); "
        "'gensim:<file>' reads a file inside the gensim package", None)
    hub: str | None = _help("hub data set id, e.g. textdetox/multilingual_toxicity_dataset", None)
    config: str | None = _help("hub data set config (subset) name", None)
    split: str = _help("hub split; slices work, e.g. 'train[:10000]'", "train")
    revision: str | None = _help("hub data set revision", None)
    format: str | None = _help("file format when the extension does not say: " + "|".join(FORMATS), None)
    encoding: str = _help("text encoding of a local csv/tsv/jsonl/txt file", "utf-8")

    def validate(self, key: str) -> None:
        _check((self.path is None) != (self.hub is None), key, "give exactly one of 'path' (a local file) or 'hub'")
        if self.format is not None:
            _choice(self.format, FORMATS, f"{key}.format")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(f"{key}.encoding", f"{key}.encoding: unknown encoding {self.encoding!r}") from None


@dataclass
class DatasetConfig:
    """One data set: its splits and columns."""

    train: DataSource = _help("the training split (a DataSource)")
    validation: DataSource | None = _help("the validation split; default: validation_fraction of train", None)
    validation_fraction: float = _help("share of train held out when there is no validation split", 0.1)
    text_column: str = _help("column with the text ('text' for .txt files)", "text")
    tokens_column: str | None = _help("column with a list of words (needed by token tasks); the text "
                                      "column is then ignored", None)
    language_column: str | None = _help("column with a language code; metrics are also reported per language",
                                        None)
    language: str | None = _help("the language of every row, when there is no language column", None)

    def validate(self, key: str) -> None:
        self.train.validate(f"{key}.train")
        if self.validation is not None:
            self.validation.validate(f"{key}.validation")
        _check(0 < self.validation_fraction < 1, f"{key}.validation_fraction", "must lie in (0, 1)")
        _check(self.language is None or self.language_column is None, f"{key}.language",
               "give either language (one for all rows) or language_column, not both")


@dataclass
class TaskConfig:
    """One task: a head on the shared encoder, its data set and labels."""

    name: str = _help("task name (letters, digits, underscores)")
    type: str = _help("|".join(TASK_TYPES))
    dataset: str | list[str] = _help("key of its data set under 'datasets', or a list of keys (e.g. one per "
                                     "language); every one needs the label column")
    label_column: str = _help("column with the labels (an empty, null or -1 cell = no label for this task)")
    labels: list[str] | None = _help(
        "label names; multiclass cells hold a name or its index, multilabel cells 'a|b' or a list, token "
        "cells a list of tags (BIO for entities); binary defaults to ['0', '1'] (index 1 = positive)", None)
    label_index: int | None = _help("flat layout: the label is element i of a list-valued label column", None)
    loss_weight: float = _help("weight of this task's loss in the total", 1.0)
    label_smoothing: float = _help("epsilon: targets (1 - eps) * onehot + eps / K", 0.0)
    weight_column: str | None = _help("column with a per-example loss weight (empty = 1): a number, or a list "
                                      "with one weight per task reading the column, in config order", None)

    @property
    def dataset_names(self) -> list[str]:
        return [self.dataset] if isinstance(self.dataset, str) else list(self.dataset)

    def validate(self, key: str) -> None:
        _check(bool(self.dataset_names), f"{key}.dataset", "name at least one data set")
        _check(bool(TASK_NAME_PATTERN.match(self.name)), f"{key}.name",
               f"{self.name!r} must start with a letter and hold only letters, digits and underscores")
        _check(self.type in TASK_TYPES, f"{key}.type",
               f"unknown task type {self.type!r} for task {self.name!r}; expected one of {', '.join(TASK_TYPES)}")
        if self.type == "binary":
            if self.labels is None:
                self.labels = ["0", "1"]
            _check(len(self.labels) == 2, f"{key}.labels", "a binary task has exactly two labels [negative, positive]")
        else:
            _check(self.labels is not None, f"{key}.labels", f"a {self.type} task needs its list of labels")
            _check(len(self.labels) >= 2, f"{key}.labels", "give at least two labels")
        _check(len(set(self.labels)) == len(self.labels), f"{key}.labels", "labels must be distinct")
        _check(self.loss_weight >= 0, f"{key}.loss_weight", "must be >= 0")
        _check(0 <= self.label_smoothing < 1, f"{key}.label_smoothing", "must lie in [0, 1)")
        if self.label_index is not None:
            _check(self.label_index >= 0, f"{key}.label_index", "must be >= 0")


@dataclass
class FlatLayout:
    """One data set with a list of labels per row, one per task, split by ``group_sizes``."""

    dataset: str = _help("key of the data set under 'datasets'")
    label_column: str = _help("column holding a list with one label per task")
    group_sizes: list[int] = _help("number of classes of each task, e.g. [3, 2, 4]")
    names: list[str] | None = _help("task names (default task0, task1, ...)", None)
    types: list[str] | None = _help("task types (default multiclass); size-2 groups may be binary", None)
    weight_column: str | None = _help("column with per-example weights: one number for every task, or a list "
                                      "with one weight per task, e.g. [1.0, 2.0, 1.5] (empty = 1)", None)
    loss_weight: float | list[float] = _help("weight of each task's loss in the total: one for all tasks, or a "
                                             "list with one per group size", 1.0)
    label_smoothing: float | list[float] = _help("epsilon of each task (see tasks[i].label_smoothing): one for "
                                                 "all tasks, or a list with one per group size", 0.0)

    def _per_task(self, name: str, n: int, key: str) -> list[float]:
        value = getattr(self, name)
        if not isinstance(value, list):
            return [value] * n
        _check(len(value) == n, f"{key}.{name}", f"a list of {len(value)} values for {n} tasks; give one per "
               f"group size, or one number for all")
        return value

    def tasks(self, key: str) -> list[TaskConfig]:
        n = len(self.group_sizes)
        _check(n >= 1, f"{key}.group_sizes", "give at least one group size")
        _check(all(size >= 2 for size in self.group_sizes), f"{key}.group_sizes", "every group needs >= 2 classes")
        names = self.names or [f"task{i}" for i in range(n)]
        kinds = self.types or ["multiclass"] * n
        _check(len(names) == n, f"{key}.names", f"give {n} names, one per group size")
        _check(len(kinds) == n, f"{key}.types", f"give {n} types, one per group size")
        loss_weights = self._per_task("loss_weight", n, key)
        smoothing = self._per_task("label_smoothing", n, key)
        _check(all(w >= 0 for w in loss_weights), f"{key}.loss_weight", "must be >= 0")
        _check(all(0 <= eps < 1 for eps in smoothing), f"{key}.label_smoothing", "must lie in [0, 1)")
        for i, kind in enumerate(kinds):
            _check(kind in ("multiclass", "binary"), f"{key}.types",
                   f"flat-layout tasks are multiclass or binary, got {kind!r}")
            if kind == "binary":
                _check(self.group_sizes[i] == 2, f"{key}.types", f"task {names[i]!r} is binary but has "
                       f"{self.group_sizes[i]} classes")
        return [TaskConfig(name=names[i], type=kinds[i], dataset=self.dataset, label_column=self.label_column,
                           labels=[str(k) for k in range(self.group_sizes[i])], label_index=i,
                           loss_weight=loss_weights[i], label_smoothing=smoothing[i],
                           weight_column=self.weight_column) for i in range(n)]


@dataclass
class TrainConfig:
    """Everything a run needs; ``python -m finetune.train --help`` prints these keys."""

    output_name: str = _help("the model is written to results/models/<output_name>/")
    datasets: dict[str, DatasetConfig] = _help("named data sets (see DatasetConfig)")
    base_model: str = _help(f"hub id, local folder, or a name in results/models/ ({TINY_MODEL_NAME} for tests)",
                            BASE_MODEL_ID)
    revision: str | None = _help("hub revision of the base model", None)
    objective: str = _help("mlm (masked-LM on the data sets' text) | multitask (one head per task)", "mlm")
    language: str | None = _help("language of the text (recorded in the manifest)", None)
    tasks: list[TaskConfig] = _help("multitask: the tasks (see TaskConfig)", factory=list)
    flat: FlatLayout | None = _help("multitask: the flat layout instead of (or besides) 'tasks'", None)
    max_length: int = _help("tokens per example; longer masked-LM texts are cut into several examples", 128)
    learning_rate: float = _help("peak learning rate (AdamW)", 5e-5)
    adam_beta1: float = _help("AdamW beta1 (decay of the gradient mean)", 0.9)
    adam_beta2: float = _help("AdamW beta2 (decay of the squared-gradient mean)", 0.999)
    batch_size: int = _help("examples per device and micro-batch; one optimisation step trains on batch_size x "
                            "gradient_accumulation_steps x processes examples of one task", 16)
    eval_batch_size: int | None = _help("default: batch_size", None)
    gradient_accumulation_steps: int = _help("steps whose gradients are summed before an update", 1)
    epochs: float = _help("epochs of sum_t ceil(n_t / global batch) steps, n_t the examples labelled for task t "
                          "(one pass over the data)", 3.0)
    max_steps: int = _help("if > 0, stop after this many updates (overrides epochs)", -1)
    warmup: float = _help("linear warm-up: a share of all updates if < 1, else a number of updates", 0.06)
    weight_decay: float = _help("AdamW weight decay (not on biases and layer norms)", 0.01)
    max_grad_norm: float = _help("gradient clipping", 1.0)
    seed: int = _help("seeds weights of new heads, data order, masking and dropout (not the validation split)", 0)
    split_seed: int = _help("seeds the validation rows held out of train (validation_fraction); kept fixed "
                            "while seed varies, so a seed sweep keeps one validation set", 0)
    eval_steps: int = _help("evaluate (and checkpoint) every N updates; 0 = once per epoch", 0)
    selection_metric: str | None = _help("validation metric that picks the best checkpoint and drives early "
                                         "stopping and learning-rate cuts: " + "|".join(SELECTION_METRICS) +
                                         " (default: mean_score for multitask, loss for mlm)", None)
    early_stopping_patience: int = _help("stop after N evaluations without improvement; 0 = never", 3)
    lr_reduce_patience: int = _help("multiply the learning rate by lr_reduce_factor after N evaluations "
                                    "without improvement; 0 = never", 1)
    lr_reduce_factor: float = _help("see lr_reduce_patience", 0.5)
    max_lr_reductions: int | None = _help("cut the learning rate at most N times (null = no limit)", None)
    restore_best_on_lr_cut: bool = _help("before each learning-rate cut, load the best checkpoint's weights and "
                                         "optimizer state (DeepPavlov's load_before_drop); the cut rate then "
                                         "applies to the restored model", False)
    lr_schedule: str = _help("|".join(LR_SCHEDULES) + " (linear: warm-up, then linear decay to 0 at the last "
                             "update; constant: warm-up, then constant); learning-rate cuts scale either",
                             "linear")
    encoder_dropout: float | None = _help("dropout inside the encoder: sets its hidden_dropout_prob and "
                                          "attention_probs_dropout_prob (null: the base model's own)", None)
    mlm_probability: float = _help("share of tokens masked (80% <mask>, 10% random, 10% kept)", 0.15)
    auxiliary_mlm_weight: float = _help("multitask: weight of a masked-LM loss on the same texts that keeps "
                                        "the LM head in step with the encoder; 0 = off", 0.0)
    pooling: str = _help("sentence representation for sequence heads: " + "|".join(POOLINGS), "cls")
    head_dropout: float = _help("dropout at the input of each head", 0.1)
    embedding_size: int | None = _help("multitask: a linear projection of the pooled sentence vector to this size "
                                       "before the sentence heads (the sentence embedding of finetune.embed); "
                                       "null = none, the heads take the pooled vector", None)
    task_sampling: str = _help("which task each optimisation step trains: " + "|".join(SAMPLINGS) +
                               " (proportional: exactly ceil(n_t / global batch) steps of task t per epoch; "
                               "the others draw each step's task at random: proportional_draws: p_t = n_t / "
                               "sum_s n_s; uniform: p_t = 1 / number of tasks; temperature: p_t ~ n_t^(1/T))",
                               "proportional")
    sampling_temperature: float = _help("temperature T: p_t ~ n_t^(1/T), n_t the examples labelled for task t",
                                        2.0)
    max_train_examples: int | None = _help("use at most N training examples per data set (smoke runs)", None)
    max_eval_examples: int | None = _help("use at most N validation examples per data set", None)
    weighted_metrics: bool = _help("multitask: tasks with a weight_column also report weighted_<metric>, each "
                                   "validation row counting its sample weight; the unweighted metrics, which "
                                   "score every labelled row alike, stay the ones training follows", False)
    mixed_precision: str = _help("|".join(PRECISIONS) + " (fp16 and bf16 need a GPU)", "no")
    logging_steps: int = _help("log the training loss every N updates", 10)
    save_total_limit: int = _help("checkpoints kept while training (the best one is always kept)", 2)
    keep_checkpoints: bool = _help("keep results/models/.<name>.checkpoints/ after a successful run", False)
    only_tasks: list[str] | None = _help(
        "multitask: train only these of the config's tasks (--tasks toxicity on the command line): the "
        "single-task baseline of a multi-task config. Data sets no kept task uses are dropped; rows, "
        "validation split and seed stay the same, and the kept tasks get the updates they get in the full "
        "config (README, Fine-tuning: single-task baselines)", None)

    config_file: typing.ClassVar[str | None] = None  # set by load_config; recorded with a task subset

    def __post_init__(self):
        _check(bool(NAME_PATTERN.match(self.output_name)), "output_name",
               f"{self.output_name!r} must be a plain folder name (letters, digits, '.', '_', '-')")
        _check(self.output_name not in ("base", TINY_MODEL_NAME), "output_name",
               f"{self.output_name!r} is reserved; choose another name")
        _choice(self.objective, OBJECTIVES, "objective")
        _check(len(self.datasets) >= 1, "datasets", "name at least one data set")
        for name, dataset in self.datasets.items():
            dataset.validate(f"datasets.{name}")
        # As given (before the flat layout's tasks join and a task subset removes any): what to_dict writes.
        self._given = {"tasks": list(self.tasks), "datasets": dict(self.datasets), "flat": self.flat}
        self.subset: dict | None = None
        if self.flat is not None:
            _check(self.flat.dataset in self.datasets, "flat.dataset",
                   f"unknown data set {self.flat.dataset!r}; datasets are: {', '.join(self.datasets)}")
            self.tasks = [*self.tasks, *self.flat.tasks("flat")]
        if self.objective == "mlm":
            _check(not self.tasks, "tasks", "the mlm objective has no tasks; use objective: multitask")
        else:
            _check(bool(self.tasks), "tasks", "the multitask objective needs at least one task")
        seen = set()
        for i, task in enumerate(self.tasks):
            task.validate(f"tasks.{i}")
            _check(task.name not in seen, f"tasks.{i}.name", f"task name {task.name!r} is used twice")
            seen.add(task.name)
            for name in task.dataset_names:
                _check(name in self.datasets, f"tasks.{i}.dataset",
                       f"unknown data set {name!r}; datasets are: {', '.join(self.datasets)}")
                if task.type == "token":
                    _check(self.datasets[name].tokens_column is not None, f"datasets.{name}.tokens_column",
                           f"token task {task.name!r} needs its data set's tokens_column (a list of words per row)")
        if self.only_tasks is not None:
            self._keep_only_tasks()
        _check(self.max_length >= 8, "max_length", "must be >= 8")
        _check(self.learning_rate > 0, "learning_rate", "must be > 0")
        _check(self.batch_size >= 1, "batch_size", "must be >= 1")
        _check(self.eval_batch_size is None or self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1")
        _check(self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "must be >= 1")
        _check(self.epochs > 0, "epochs", "must be > 0")
        _check(self.warmup >= 0, "warmup", "must be >= 0")
        _check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        _check(self.split_seed >= 0, "split_seed", "must be an integer >= 0")
        _check(self.eval_steps >= 0, "eval_steps", "must be >= 0")
        _check(self.early_stopping_patience >= 0, "early_stopping_patience", "must be >= 0")
        _check(self.lr_reduce_patience >= 0, "lr_reduce_patience", "must be >= 0")
        _check(0 < self.lr_reduce_factor < 1, "lr_reduce_factor", "must lie in (0, 1)")
        _check(self.max_lr_reductions is None or self.max_lr_reductions >= 0, "max_lr_reductions",
               "must be >= 0 (or null for no limit)")
        for key in ("adam_beta1", "adam_beta2"):
            _check(0 <= getattr(self, key) < 1, key, "must lie in [0, 1)")
        if self.selection_metric is not None:
            _choice(self.selection_metric, SELECTION_METRICS, "selection_metric")
            _check(self.objective == "multitask" or self.selection_metric == "loss", "selection_metric",
                   f"{self.selection_metric!r} needs tasks; the mlm objective selects on loss")
        _check(0 < self.mlm_probability < 1, "mlm_probability", "must lie in (0, 1)")
        _check(self.auxiliary_mlm_weight >= 0, "auxiliary_mlm_weight", "must be >= 0")
        _choice(self.pooling, POOLINGS, "pooling")
        _check(0 <= self.head_dropout < 1, "head_dropout", "must lie in [0, 1)")
        if self.embedding_size is not None:
            _check(self.embedding_size >= 1, "embedding_size", "must be >= 1 (or null for no projection)")
            _check(any(t.type != "token" for t in self.tasks), "embedding_size",
                   "projects the pooled sentence vector, so it needs objective: multitask with a sentence task "
                   "(binary, multiclass or multilabel); remove it")
        _choice(self.task_sampling, SAMPLINGS, "task_sampling")
        _choice(self.lr_schedule, LR_SCHEDULES, "lr_schedule")
        _check(self.encoder_dropout is None or 0 <= self.encoder_dropout < 1, "encoder_dropout",
               "must lie in [0, 1) (or null for the base model's own)")
        _check(self.sampling_temperature > 0, "sampling_temperature", "must be > 0")
        for key in ("max_train_examples", "max_eval_examples"):
            value = getattr(self, key)
            _check(value is None or value >= 1, key, "must be >= 1")
        _choice(self.mixed_precision, PRECISIONS, "mixed_precision")
        _check(self.logging_steps >= 1, "logging_steps", "must be >= 1")
        _check(self.save_total_limit >= 1, "save_total_limit", "must be >= 1")

    def _keep_only_tasks(self) -> None:
        """Drop every task not in ``only_tasks``, and every data set no kept task reads.

        The kept tasks keep their settings (flat-layout tasks become explicit ones); every other key
        (seeds, split, schedule, the auxiliary masked-LM loss) is left as it is. ``subset`` records
        what was dropped.
        """
        names = [t.name for t in self.tasks]
        _check(self.objective == "multitask", "only_tasks", "only_tasks selects tasks of a multitask config")
        _check(bool(self.only_tasks), "only_tasks", f"name at least one task; the config's tasks are: "
               f"{', '.join(names)}")
        unknown = [name for name in self.only_tasks if name not in names]
        _check(not unknown, "only_tasks", f"unknown task {unknown[0] if unknown else ''!r}; "
               f"the config's tasks are: {', '.join(names)}")
        _check(len(set(self.only_tasks)) == len(self.only_tasks), "only_tasks", "a task is named twice")
        kept = [t for t in self.tasks if t.name in self.only_tasks]  # in config order
        used = {name for t in kept for name in t.dataset_names}
        self.subset = {"kept_tasks": [t.name for t in kept],
                       "dropped_tasks": [t.name for t in self.tasks if t.name not in self.only_tasks],
                       "dropped_datasets": [name for name in self.datasets if name not in used]}
        self.tasks = kept
        self.datasets = {name: spec for name, spec in self.datasets.items() if name in used}
        self.flat = None

    def full_config(self) -> "TrainConfig":
        """The config without ``only_tasks``: every task and data set as given."""
        return dataclasses.replace(self, tasks=copy.deepcopy(self._given["tasks"]),
                                   datasets=copy.deepcopy(self._given["datasets"]),
                                   flat=copy.deepcopy(self._given["flat"]), only_tasks=None)

    @property
    def selection(self) -> str:
        """The selection metric's name (``selection_metric`` or the objective's default)."""
        return self.selection_metric or ("mean_score" if self.objective == "multitask" else "loss")

    @property
    def uses_mlm(self) -> bool:
        return self.objective == "mlm" or self.auxiliary_mlm_weight > 0

    def to_dict(self) -> dict:
        """The config as plain data (what ``train_config.yaml`` and the manifest hold)."""
        raw = dataclasses.asdict(self)
        # The tasks and data sets as given: the flat layout's tasks are re-derived on load, and
        # only_tasks (kept in raw) removes the others again, so the file reloads to this config.
        given = self._given
        raw["tasks"] = [dataclasses.asdict(t) for t in given["tasks"]]
        raw["datasets"] = {name: dataclasses.asdict(spec) for name, spec in given["datasets"].items()}
        raw["flat"] = dataclasses.asdict(given["flat"]) if given["flat"] is not None else None
        return raw


# ---- reading -------------------------------------------------------------------------------

def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value, tp, key: str):
    """``value`` as type ``tp`` (from a dataclass annotation), or a :class:`ConfigError`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None and len(args) < len(typing.get_args(tp)):  # the union allows None
            return None
        if value is None:
            raise ConfigError(key, f"{key}: a value is required (got null)")
        for arg in args[:-1]:  # e.g. str | list[str]: the first type that fits
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                pass
        return _coerce(value, args[-1], key)
    if value is None:
        raise ConfigError(key, f"{key}: a value is required (got null)")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(key, f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{key}.{i}") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"{key}: expected a mapping of names to entries, got {value!r}")
        _, item = typing.get_args(tp)
        return {str(k): _coerce(v, item, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
    elif tp in (int, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if tp is float:
                return float(value)
            if isinstance(value, int) or value.is_integer():  # YAML may write 10 as 10.0
                return int(value)
        if isinstance(value, str):
            try:
                return tp(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(key, f"{key}: expected {_type_name(tp)}, got {value!r}")


ALIASES_FILE = Path(__file__).with_name("key_aliases.csv")


def _sections() -> tuple[tuple[type, str], ...]:
    """Each config dataclass and how ``--help`` names its place in the config."""
    return ((TrainConfig, "top level"), (DatasetConfig, "datasets.<name>"),
            (DataSource, "datasets.<name>.train / .validation"), (TaskConfig, "tasks[i]"), (FlatLayout, "flat"))


@functools.lru_cache(maxsize=1)
def key_aliases() -> dict[str, tuple[str, str]]:
    """``{other name: (our key, note)}`` from ``key_aliases.csv``: the names transformers'
    ``TrainingArguments`` and similar tools give our keys, which spelling does not find
    (``num_train_epochs`` is closer in letters to ``max_train_examples`` than to ``epochs``)."""
    with open(ALIASES_FILE, encoding="utf-8", newline="") as handle:
        return {row["alias"]: (row["key"], row["note"] or "") for row in csv.DictReader(handle)}


def suggestion(name: str, cls) -> str:
    """``"; did you mean 'epochs'?"`` for an unknown key of section ``cls``, or ``""``.

    A known alias first (its key, here or in the sections that have it), else the closest key of
    the section by spelling (difflib ratio ``2 M / T >= 0.6``: M matching characters, T the
    lengths' sum).
    """
    fields = [f.name for f in dataclasses.fields(cls)]
    alias = key_aliases().get(name.lower().replace("-", "_"))
    if alias is not None:
        target, note = alias
        note = f" ({note})" if note else ""
        if target in fields:
            return f"; did you mean {target!r}{note}?"
        places = [("at the " if title == "top level" else "in ") + title for section, title in _sections()
                  if target in {f.name for f in dataclasses.fields(section)}]
        if places:
            return f"; did you mean {target!r} {' or '.join(places)}{note}?"
    close = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _build(cls, raw, key: str):
    """Instantiate dataclass ``cls`` from a mapping, refusing unknown and missing keys."""
    where = f"{key}: " if key else ""
    if not isinstance(raw, dict):
        raise ConfigError(key, f"{where}expected a mapping of keys to values, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in raw:
        if name not in fields:
            dotted = f"{key}.{name}" if key else str(name)
            raise ConfigError(dotted, f"unknown config key {dotted!r}{suggestion(str(name), cls)} (valid keys"
                                      f"{' in ' + key if key else ''}: {', '.join(fields)})")
    values = {}
    for name, spec in fields.items():
        dotted = f"{key}.{name}" if key else name
        if name in raw:
            values[name] = _coerce(raw[name], hints[name], dotted)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(dotted, f"missing config key {dotted!r} ({spec.metadata.get('help', '')})")
    return cls(**values)


def _set_override(raw: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(where, f"--{dotted}: {where!r} is not an item of the list (it has {len(node)})")
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            raise ConfigError(where, f"--{dotted}: {where!r} is a value, not a section")
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(dotted, f"--{dotted}: no item {last!r} in a list of {len(node)}")
        node[int(last)] = value
    else:
        node[last] = value


def parse_overrides(tokens: list[str]) -> dict[str, object]:
    """``['--lr', '1e-4', '--tasks.0.loss_weight', '2']`` -> ``{'lr': '1e-4', ...}`` (values as YAML)."""
    overrides: dict[str, object] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or len(token) == 2:
            raise UserError(f"unexpected argument {token!r}; overrides are --key value pairs (see --help)")
        key, eq, inline = token[2:].partition("=")
        if eq:
            text = inline
            i += 1
        else:
            if i + 1 >= len(tokens) or (tokens[i + 1].startswith("--") and len(tokens[i + 1]) > 2):
                raise UserError(f"--{key} needs a value (overrides are --key value pairs)")
            text = tokens[i + 1]
            i += 2
        try:
            overrides[key] = yaml.safe_load(text) if text != "" else ""
        except yaml.YAMLError:
            overrides[key] = text
    return overrides


TOML_SUFFIXES = (".toml",)


def _parse_toml(path: Path, text: str) -> dict:
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:
        try:
            import tomli as tomllib  # the same parser, for Python 3.10
        except ModuleNotFoundError:
            raise UserError(f"{path}: reading a TOML config needs Python >= 3.11 (or `pip install tomli`); "
                            f"or write it as YAML") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path}: not valid TOML: {error}") from None


def _parse_yaml(path: Path, text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        hint = "; a TOML config needs the .toml suffix" if re.search(r"^\s*\[[^\]]+\]\s*$", text, re.M) else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]  # str(error) spans lines
        raise UserError(f"{path}: not valid YAML{where}: {problem}{hint}") from None


def read_config_file(path: str | Path) -> dict:
    """The config file as plain data: TOML (``.toml``, read by ``tomllib``) or YAML (any other name).

    Both give the same mapping for the same content (TOML ``[datasets.demo.train]`` tables and
    ``[[tasks]]`` arrays are YAML's nested mappings and lists); TOML has no null, so a key left at
    its default is simply left out. Anything that is not such a file is a :class:`UserError`.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"config {path} is a folder; give a config file, e.g. --config finetune/configs/english.yaml")
    if not path.is_file():
        shipped = sorted(p.name for p in (Path(__file__).parent / "configs").glob("*.yaml"))
        raise UserError(f"config file {path} not found; shipped configs: {', '.join(shipped)} in finetune/configs/")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text file (not UTF-8); --config takes a YAML (or .toml) config such as "
                        f"finetune/configs/english.yaml") from None
    except OSError as error:
        raise UserError(f"cannot read config {path}: {error.strerror or error}") from None
    raw = _parse_toml(path, text) if path.suffix.lower() in TOML_SUFFIXES else _parse_yaml(path, text)
    if raw is None:  # an empty YAML file (or one of comments only)
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of config keys at the top level (key: value lines), got "
                        f"{'a list' if isinstance(raw, list) else 'a single value'}")
    return raw


def load_config(path: str | Path, overrides: dict[str, object] | None = None) -> TrainConfig:
    """Read a YAML or TOML config (:func:`read_config_file`), apply ``--key value`` overrides, and validate."""
    path = Path(path)
    raw = read_config_file(path)
    overrides = overrides or {}
    if not raw and not overrides:
        raise UserError(f"{path} is empty; a config needs at least output_name and datasets (see "
                        f"finetune/configs/english.yaml)")
    try:
        for key, value in overrides.items():
            _set_override(raw, key, value)
        config = _build(TrainConfig, raw, "")
        config.config_file = str(path)
        return config
    except ConfigError as error:
        message = str(error)
        if message.startswith("--"):
            raise UserError(message) from None
        origin = next((k for k in overrides if error.key == k or error.key.startswith(k + ".")
                       or k.startswith(error.key + ".")), None)
        if origin is None:
            raise UserError(f"{path}: {message}") from None
        if message.startswith(f"{error.key}: "):
            message = message[len(error.key) + 2:]
        raise UserError(f"--{error.key}: {message}") from None


def config_keys_help() -> str:
    """The config keys with defaults and help, for ``--help``."""
    lines = []
    for cls, title in ((TrainConfig, "top level"), (DatasetConfig, "datasets.<name>"),
                       (DataSource, "datasets.<name>.train / .validation"), (TaskConfig, "tasks[i]"),
                       (FlatLayout, "flat")):
        lines.append(f"config keys ({title}):")
        for spec in dataclasses.fields(cls):
            if spec.default is not dataclasses.MISSING:
                default = f" [{spec.default}]"
            elif spec.default_factory is not dataclasses.MISSING:
                default = " [[]]"
            else:
                default = " [required]" if cls is not TaskConfig or spec.name != "labels" else ""
            lines.append(f"  {spec.name}{default}: {spec.metadata.get('help', '')}")
    return "\n".join(lines)
