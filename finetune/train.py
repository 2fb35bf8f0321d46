"""Fine-tune a masked LM on one language's text, or train one multi-task model, and register it.

    python -m finetune.train --config finetune/configs/english.yaml --base_model tiny-xlmr --max_steps 30

The steps are: read the config (:mod:`finetune.config`), load the base model and the data
(:mod:`finetune.data`), build the model (:mod:`finetune.model`), train with the transformers
``Trainer`` (:mod:`finetune.trainer`), and write ``results/models/<output_name>/`` all at once:
the masked LM and tokenizer (so ``python -m probing.run --finetuned_model <output_name>`` loads
it), the task heads, ``train_config.yaml``, ``metrics.json`` and ``manifest.json``.

Checkpoints go to ``results/models/.<output_name>.checkpoints/``; running the same command again
after an interruption resumes from the last complete one. Bad input stops the run before anything
is written, with one line naming the key or file.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml

from finetune.config import TrainConfig, config_keys_help, load_config, parse_overrides
from finetune.data import (EVAL_SALT, TRAIN_SALT, Collator, FeatureDataset, TaskSampler, check_task_counts,
                           load_splits, read_examples, sampling_probabilities, tokenize)
from finetune.launch import exits_once_on_user_error, local_rank, write_line
from probing import models
from probing.errors import INTERRUPTED_EXIT_CODE, OneLineArgumentParser, UserError
from probing.manifest import SCHEMA_VERSION, AtomicFolder, claim_output, environment, now_utc, write_json

COMMAND = "finetune.train"  # the module named in its manifests' command: the writer whose folders it may replace

RUN_CONFIG_FILE = "run_config.json"
INITIAL_METRICS_FILE = "initial_metrics.json"
HEAD_TRAINED = "trained masked-LM head (fine-tuned with the encoder)"
HEAD_AUXILIARY = "auxiliary masked-LM head (trained with weight {weight} alongside the tasks)"
HEAD_BASE = "base model's LM head (untrained with the encoder{tied})"

EXAMPLES = """examples:
  # masked-LM on real English news text (gensim's Lee corpus) with the tiny offline model:
  python -m finetune.train --config finetune/configs/english.yaml --base_model tiny-xlmr \\
      --output_name tiny-english --max_steps 30 --eval_steps 10 --max_length 64 --batch_size 8
  python -m probing.run --finetuned_model tiny-english

  # a real per-language run (xlm-roberta-base and Wikipedia from the hub):
  python -m finetune.train --config finetune/configs/french.yaml

  # multi-task on the demo data, with an auxiliary masked-LM loss so the result can be probed:
  python -m finetune.train --config finetune/configs/multitask.yaml --base_model tiny-xlmr \\
      --auxiliary_mlm_weight 0.5 --output_name tiny-multitask
  python -m finetune.predict --model tiny-multitask --input finetune/demo_data/multitask.csv

  # its single-task baseline: the same config, rows, split and seed, toxicity only, given the
  # toxicity updates of the multi-task run (README, Fine-tuning: single-task baselines):
  python -m finetune.train --config finetune/configs/multitask.yaml --base_model tiny-xlmr \\
      --tasks toxicity --output_name tiny-toxicity

  # the DeepPavlov multi-task recipe (lr 2e-5, betas (0.9, 0.99), batch 32, constant rate halved at
  # most twice with the best checkpoint restored first, each step's task drawn at random):
  python -m finetune.train --config finetune/configs/multitask_deeppavlov.yaml

  # data parallel on 4 GPUs with mixed precision (batch_size is per process):
  accelerate launch --multi_gpu --num_processes 4 -m finetune.train \\
      --config finetune/configs/multitask.yaml --mixed_precision bf16
  # data parallel on 2 CPU processes (gloo); without ACCELERATE_USE_CPU=true the launch is refused:
  ACCELERATE_USE_CPU=true torchrun --standalone --nproc_per_node 2 -m finetune.train \\
      --config finetune/configs/multitask.yaml --base_model tiny-xlmr --max_steps 40

  # nested keys are dotted, list items numbered:
  python -m finetune.train --config finetune/configs/multitask.yaml --tasks.0.loss_weight 2 \\
      --datasets.demo.train.path my_data.csv

  Rerunning an interrupted command resumes from its last checkpoint in
  results/models/.<output_name>.checkpoints/ (delete that folder to start afresh); --overwrite
  replaces an earlier results/models/<output_name>/ of finetune.train when the run ends.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m finetune.train",
        description="Fine-tune a masked LM (objective mlm) or train a multi-task model (objective multitask). "
                    "Any config key can be overridden with --key value.",
        epilog=config_keys_help() + "\n\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--config", required=True, help="a YAML (or .toml) config, e.g. finetune/configs/english.yaml")
    parser.add_argument("--tasks", metavar="NAMES",
                        help="train only these tasks of the config, comma-separated (the config key only_tasks): "
                             "e.g. --tasks toxicity gives the single-task baseline of a multi-task config")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier results/models/<output_name>/ of finetune.train (never a folder "
                             "holding anything else), and discard checkpoints of a different config")
    return parser


# ---- set-up --------------------------------------------------------------------------------

def resolve_base(name: str) -> tuple[str, str]:
    """(display name, folder or hub id) of the base model: a registered name, a folder or a hub id."""
    registered = models.NAME_PATTERN.match(name) and (models.models_dir() / name / "config.json").is_file()
    if name in ("base", models.TINY_MODEL_NAME) or registered:
        return models.resolve_model(finetuned_model=name)
    return models.resolve_model(model=name)


def check_precision(config: TrainConfig) -> None:
    import torch

    if config.mixed_precision != "no" and not torch.cuda.is_available():
        raise UserError(f"mixed_precision: {config.mixed_precision} needs a CUDA GPU and none is visible; "
                        f"use --mixed_precision no")


CPU_LAUNCH = "ACCELERATE_USE_CPU=true torchrun --nproc_per_node {n} -m finetune.train --config ..."


def check_launch(world_size: int, env=None) -> None:
    """Refuse a launch whose processes would each train (and write) a copy of the model of their own.

    ``WORLD_SIZE`` is what the launcher (torchrun, accelerate) started; ``world_size`` what the
    Trainer joined into one data-parallel job. They differ for ``accelerate launch --multi_gpu`` on
    a host without GPUs and for plain ``torchrun`` on CPUs (transformers then runs each process
    alone). accelerate's own launcher runs one process on CPUs whatever ``--num_processes`` says;
    it then sets ``MASTER_ADDR`` but no ``WORLD_SIZE``.
    """
    env = os.environ if env is None else env
    launched = int(env.get("WORLD_SIZE") or 1)
    if launched > 1 and world_size != launched:
        raise UserError(f"this launch started {launched} processes that would each train a separate copy of the "
                        f"model (no CUDA GPU for each and ACCELERATE_USE_CPU unset); on CPUs run "
                        f"`{CPU_LAUNCH.format(n=launched)}`, on GPUs make {launched} GPUs visible")
    if "WORLD_SIZE" not in env and "MASTER_ADDR" in env and "ACCELERATE_DYNAMO_BACKEND" in env:
        raise UserError(f"accelerate launch started one process although several were asked for (it needs "
                        f"GPUs, or MPI on CPUs); on CPUs run `{CPU_LAUNCH.format(n='N')}`, or drop --num_processes")


def check_max_length(config: TrainConfig, model) -> None:
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and getattr(model.config, "model_type", "") in ("xlm-roberta", "roberta", "camembert"):
        limit -= 2  # positions start after the padding index
    if limit is not None and config.max_length > limit:
        raise UserError(f"max_length: {config.max_length} exceeds the {limit} positions of {config.base_model}")


def task_specs(config: TrainConfig):
    from finetune.model import TaskSpec

    return [TaskSpec(name=t.name, type=t.type, labels=list(t.labels), loss_weight=t.loss_weight,
                     label_smoothing=t.label_smoothing) for t in config.tasks]


def lm_head_description(config: TrainConfig, lm) -> str:
    from finetune.model import tied_to_encoder

    if config.objective == "mlm":
        return HEAD_TRAINED
    if config.auxiliary_mlm_weight > 0:
        return HEAD_AUXILIARY.format(weight=config.auxiliary_mlm_weight)
    tied = "; its decoder is tied to the fine-tuned input embeddings" if tied_to_encoder(lm) else ""
    return HEAD_BASE.format(tied=tied)


def first_difference(old, new, key: str = "") -> str | None:
    """The first dotted key whose value differs between two nested configs."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in list(old) + [k for k in new if k not in old]:
            found = first_difference(old.get(k), new.get(k), f"{key}.{k}" if key else str(k))
            if found:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            found = first_difference(a, b, f"{key}.{i}")
            if found:
                return found
        return None
    return None if old == new else f"{key}: {old!r} -> {new!r}"


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest ``checkpoint-N`` whose ``trainer_state.json`` was written (written last)."""
    complete = [p for p in folder.glob("checkpoint-*")
                if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return max(complete, key=lambda p: int(p.name.split("-")[-1])) if complete else None


def prepare_checkpoints(folder: Path, run_config: dict, *, overwrite: bool, is_main: bool) -> Path | None:
    """The checkpoint to resume from, or ``None`` for a fresh run.

    Checkpoints of the same config are resumed (with or without ``--overwrite``); checkpoints of
    another config are an error, or discarded with ``--overwrite``.
    """
    import json

    record = folder / RUN_CONFIG_FILE
    previous = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
    difference = first_difference(previous, run_config) if previous is not None else None
    if previous is None or difference:
        if difference and not overwrite:
            raise UserError(f"{folder} holds checkpoints of a different config ({difference}); rerun with "
                            f"--overwrite to discard them")
        if is_main and folder.exists():
            shutil.rmtree(folder)
        return None
    return last_complete_checkpoint(folder)


def training_arguments(config: TrainConfig, folder: Path):
    import torch
    from transformers import TrainingArguments

    by_steps = config.eval_steps > 0
    return TrainingArguments(
        output_dir=str(folder),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size or config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        adam_beta1=config.adam_beta1,
        adam_beta2=config.adam_beta2,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup if config.warmup < 1 else int(config.warmup),
        lr_scheduler_type="linear" if config.lr_schedule == "linear" else "constant_with_warmup",
        max_grad_norm=config.max_grad_norm,
        eval_strategy="steps" if by_steps else "epoch",
        save_strategy="steps" if by_steps else "epoch",
        eval_steps=config.eval_steps if by_steps else None,
        save_steps=config.eval_steps if by_steps else 500,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model=selection_metric(config),
        greater_is_better=config.selection != "loss",
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        report_to="none",
        seed=config.seed,
        data_seed=config.seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        fp16=config.mixed_precision == "fp16",
        bf16=config.mixed_precision == "bf16",
        restore_callback_states_from_checkpoint=True,
        ddp_find_unused_parameters=True,  # a step trains one task's head: the others get no gradient
        label_names=[],
    )


# ---- the run -------------------------------------------------------------------------------

class Prepared:
    """Everything loaded and checked before training: data, base model, tokenised features."""

    def __init__(self, config: TrainConfig):
        train_splits, eval_splits, self.provenance = load_splits(config)
        self.train_examples = read_examples(train_splits, config)
        self.eval_examples = read_examples(eval_splits, config)
        for what, examples in (("training", self.train_examples), ("validation", self.eval_examples)):
            if not examples.items:
                raise UserError(f"no {what} examples left after dropping rows without text or labels "
                                f"({examples.counts}); check the data sets' columns")
        self.task_counts = check_task_counts(self.train_examples, config, "training") if config.tasks else {}
        self.full_task_counts = None  # with only_tasks: labelled training examples of every task of the config
        if config.subset is not None:
            full = config.full_config()
            full_train, _, _ = load_splits(full)
            self.full_task_counts = check_task_counts(read_examples(full_train, full), full, "training")
        base_name, base_source = resolve_base(config.base_model)
        self.base = models.load_masked_lm(base_name, base_source, revision=config.revision)
        check_max_length(config, self.base.model)
        self.train_features = tokenize(self.train_examples, config, self.base.tokenizer)
        self.eval_features = tokenize(self.eval_examples, config, self.base.tokenizer)

    def sampler(self, config: TrainConfig, world_size: int) -> TaskSampler:
        """Task pools (examples labelled for each task; all examples for the masked-LM objective),
        one task per optimisation step of ``batch_size x gradient_accumulation_steps x world_size``."""
        rows = self.train_features
        if config.tasks:
            pools = [np.array([i for i, r in enumerate(rows) if r["labels"].get(t.name) is not None])
                     for t in config.tasks]
        else:
            pools = [np.arange(len(rows))]
        temperature = config.sampling_temperature if config.task_sampling == "temperature" else 1.0
        self.probabilities = sampling_probabilities([len(p) for p in pools], config.task_sampling, temperature)
        batch = config.batch_size * config.gradient_accumulation_steps * world_size
        self.matched = None
        if self.full_task_counts is not None:
            self.matched = matched_steps(self.full_task_counts, config.subset["kept_tasks"], config.task_sampling,
                                         temperature, batch)
        return TaskSampler(pools, self.probabilities, strategy=config.task_sampling, batch=batch,
                           n_examples=len(rows), seed=config.seed, names=[t.name for t in config.tasks] or ["mlm"],
                           steps_per_epoch=self.matched["steps_per_epoch"] if self.matched else None)

    def data_summary(self, config: TrainConfig) -> dict:
        names = [t.name for t in config.tasks] or ["mlm"]
        return {"datasets": self.provenance, "train": self.train_examples.counts,
                "validation": self.eval_examples.counts, "train_examples": len(self.train_features),
                "validation_examples": len(self.eval_features), "labelled_train_examples": self.task_counts,
                "sampling_probabilities": dict(zip(names, self.probabilities.round(6).tolist()))}


def matched_steps(counts: dict[str, int], kept: list[str], strategy: str, temperature: float,
                  batch: int) -> dict:
    """The updates a task subset gets: those its tasks get in the full multi-task config.

    With ``n_t`` the labelled training examples of each task of the full config, ``G`` the
    global batch and ``S = sum_t ceil(n_t / G)`` the full epoch, the kept tasks K get per epoch

    * ``proportional`` (quotas): ``S_K = sum_{t in K} ceil(n_t / G)``, exactly what the full run gives them;
    * random draws (``proportional_draws``, ``uniform``, ``temperature``): ``S_K = round(S sum_{t in K} p_t)``,
      the full run's expected number (``p_t`` of :func:`sampling_probabilities` over all tasks).

    ``share = S_K / S`` converts every other count of updates (``max_steps``, ``eval_steps``, a
    warm-up given in updates) so the subset run evaluates, cuts its learning rate and stops at the
    same point of its tasks' training as the full run (:func:`match_arguments`).

    >>> matched_steps({"a": 100, "b": 20}, ["b"], "proportional", 1.0, 16)["steps_per_epoch"]  # ceil(20 / 16)
    2
    >>> matched_steps({"a": 100, "b": 20}, ["b"], "uniform", 1.0, 16)  # S = 7 + 2, half of it
    {'full_steps_per_epoch': 9, 'steps_per_epoch': 4, 'share': 0.444444}
    """
    names = list(counts)
    full_steps = sum(math.ceil(counts[name] / batch) for name in names)
    if strategy == "proportional":
        steps = sum(math.ceil(counts[name] / batch) for name in kept)
    else:
        p = sampling_probabilities([counts[name] for name in names], strategy, temperature)
        steps = max(1, round(full_steps * sum(p[names.index(name)] for name in kept)))
    return {"full_steps_per_epoch": full_steps, "steps_per_epoch": steps, "share": round(steps / full_steps, 6)}


def match_arguments(args, config: TrainConfig, matched: dict) -> dict:
    """Scale the counts of updates in ``args`` by ``matched['share']`` (see :func:`matched_steps`);
    returns the values set. Epochs need no scaling: the sampler's epoch is already the matched one."""
    share = matched["share"]
    scaled = {}
    if config.max_steps > 0:
        scaled["max_steps"] = max(1, round(share * config.max_steps))
    if config.eval_steps > 0:
        scaled["eval_steps"] = scaled["save_steps"] = max(1, round(share * config.eval_steps))
    if config.warmup >= 1:
        scaled["warmup_steps"] = round(share * config.warmup)
    for key, value in scaled.items():
        setattr(args, key, value)
    return scaled


def selection_metric(config: TrainConfig) -> str:
    return f"eval_{config.selection}"


def build_trainer(config: TrainConfig, prepared: Prepared, args, callbacks=()):
    from transformers import EarlyStoppingCallback, set_seed

    from finetune.model import MultiTaskModel, set_encoder_dropout
    from finetune.trainer import FinetuneTrainer, ReduceLROnPlateauCallback, SamplerEpochCallback

    set_seed(config.seed)  # before the heads are initialised
    if config.encoder_dropout is not None:
        set_encoder_dropout(prepared.base.model, config.encoder_dropout)
    model = MultiTaskModel(prepared.base.model, task_specs(config), pooling=config.pooling,
                           head_dropout=config.head_dropout, embedding_size=config.embedding_size,
                           mlm_weight=1.0 if config.objective == "mlm" else config.auxiliary_mlm_weight)
    sampler = prepared.sampler(config, args.world_size)
    all_callbacks = [SamplerEpochCallback(sampler),
                     ReduceLROnPlateauCallback(config.lr_reduce_patience, config.lr_reduce_factor,
                                               selection_metric(config), args.greater_is_better,
                                               config.max_lr_reductions,
                                               restore_best=config.restore_best_on_lr_cut), *callbacks]
    if config.early_stopping_patience > 0:
        all_callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    tokenizer = prepared.base.tokenizer
    return FinetuneTrainer(
        model=model, args=args,
        train_dataset=FeatureDataset(prepared.train_features, salt=TRAIN_SALT,
                                     tasks=[t.name for t in config.tasks]),
        eval_dataset=FeatureDataset(prepared.eval_features, salt=EVAL_SALT),
        data_collator=Collator(tokenizer, config.tasks, seed=config.seed,
                               mlm_probability=config.mlm_probability if config.uses_mlm else None),
        processing_class=tokenizer, callbacks=all_callbacks, task_sampler=sampler,
        eval_languages={i: r["language"] for i, r in enumerate(prepared.eval_features)},
        weighted_metrics=[t.name for t in config.tasks if t.weight_column] if config.weighted_metrics else (),
    )


def training_summary(trainer, config: TrainConfig, resume: Path | None) -> dict:
    from finetune.trainer import ReduceLROnPlateauCallback

    state = trainer.state
    plateau = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, ReduceLROnPlateauCallback))
    return {
        "steps": state.global_step,
        "max_steps": state.max_steps,
        "epochs": state.epoch,
        "last_train_loss": next((e["loss"] for e in reversed(state.log_history) if "loss" in e), None),
        "best_checkpoint_step": _step_of(state.best_model_checkpoint),
        "best_metric": state.best_metric,
        "selection_metric": selection_metric(config),
        "stopped_early": state.global_step < state.max_steps,
        "learning_rate_reductions": plateau.reductions,
        "restored_before_cuts": plateau.restored,
        "global_batch": trainer.task_sampler.batch,
        "steps_per_epoch": trainer.task_sampler.steps_per_epoch,
        "tasks": dict(zip([t.name for t in config.tasks] or ["mlm"],
                          trainer.task_sampler.trained(state.global_step))),
        "resumed_from": str(resume) if resume is not None else None,
        "world_size": trainer.args.world_size,
    }


def run(config: TrainConfig, *, overwrite: bool = False, callbacks=(), command: list[str] | None = None) -> Path:
    """Train and write ``results/models/<output_name>/``; returns that folder."""
    import json

    import transformers

    transformers.logging.set_verbosity_warning()
    transformers.logging.disable_progress_bar()
    target = models.models_dir() / config.output_name
    checkpoints = target.with_name(f".{config.output_name}.checkpoints")
    claim_output(target, COMMAND, overwrite=overwrite, flag="--output_name")
    check_precision(config)
    args = training_arguments(config, checkpoints)  # sets up the (distributed) state: before anything else
    check_launch(args.world_size)
    prepared = Prepared(config)  # every check of the user's input happens here, before anything is written
    matched = None
    if config.subset is not None:
        prepared.sampler(config, args.world_size)  # computes prepared.matched
        matched = {**prepared.matched, **match_arguments(args, config, prepared.matched)}
    state = args.distributed_state
    run_config = config.to_dict()
    resume = prepare_checkpoints(checkpoints, run_config, overwrite=overwrite, is_main=state.is_main_process)
    state.wait_for_everyone()
    trainer = build_trainer(config, prepared, args, callbacks)

    initial_path = checkpoints / INITIAL_METRICS_FILE
    if resume is None:
        initial = json_safe(trainer.compute_metrics_nested())
        if state.is_main_process:
            checkpoints.mkdir(parents=True, exist_ok=True)
            write_json(checkpoints / RUN_CONFIG_FILE, run_config)
            write_json(initial_path, initial)
    else:
        if state.is_main_process:
            print(f"resuming from {resume}", file=sys.stderr)
        initial = json.loads(initial_path.read_text(encoding="utf-8")) if initial_path.is_file() else {}
    state.wait_for_everyone()

    trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
    history = [e for e in trainer.state.log_history if "train_runtime" not in e]
    metrics = {"initial": initial, "final": trainer.compute_metrics_nested(),
               "training": training_summary(trainer, config, resume), "history": history}
    if matched is not None:
        metrics["training"]["matched_to_full_config"] = matched
    if state.is_main_process:
        write_model_folder(target, trainer, config, run_config, metrics, data=prepared.data_summary(config),
                           base=prepared.base, command=command, overwrite=overwrite)
        if not config.keep_checkpoints:
            shutil.rmtree(checkpoints, ignore_errors=True)
        _report(target, metrics)
    state.wait_for_everyone()
    return target


def json_safe(value):
    """``nan`` and infinities as ``null``, so the JSON files are standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _step_of(checkpoint: str | None) -> int | None:
    if not checkpoint:
        return None
    tail = Path(checkpoint).name.split("-")[-1]
    return int(tail) if tail.isdigit() else None


def write_model_folder(target: Path, trainer, config: TrainConfig, run_config: dict, metrics: dict, *,
                       data: dict, base, command: list[str] | None, overwrite: bool = False) -> None:
    """Write ``results/models/<name>/`` atomically: model, tokenizer, config, metrics, manifest."""
    from finetune.model import HEADS_FILE, TASKS_FILE

    model = trainer.accelerator.unwrap_model(trainer.model)
    env = environment()
    with AtomicFolder(target, command=COMMAND, overwrite=overwrite) as staging:
        model.save(staging)
        trainer.processing_class.save_pretrained(staging)
        (staging / "train_config.yaml").write_text(
            subset_comment(config) + yaml.safe_dump(run_config, sort_keys=False, allow_unicode=True),
            encoding="utf-8")
        write_json(staging / "metrics.json", json_safe(metrics))
        files = sorted(p.name for p in staging.iterdir())
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "created": now_utc(),
            "command": command or ["python", "-m", "finetune.train"],
            "name": config.output_name,
            "objective": config.objective,
            "language": config.language,
            "base_model": {"name": base.name, "source": base.source, "revision": base.revision,
                           "random_weights": base.random_weights},
            "random_weights": base.random_weights,
            "lm_head": lm_head_description(config, model.lm),
            "model_class": type(model.lm).__name__,
            "n_parameters": {
                "masked_lm": sum(p.numel() for p in model.lm.parameters()),
                "task_heads": sum(p.numel() for p in model.heads.parameters()),
                "projection": (sum(p.numel() for p in model.projection.parameters())
                               if model.projection is not None else 0),
            },
            "tasks": [{"name": t.name, "type": t.type, "labels": t.labels, "dataset": t.dataset,
                       "label_column": t.label_column, "loss_weight": t.loss_weight} for t in config.tasks],
            "config": run_config,
            "task_subset": task_subset_record(config, metrics["training"].get("matched_to_full_config")),
            "seed": config.seed,
            "split_seed": config.split_seed,
            "metrics": {"final": metrics["final"], "training": metrics["training"]},
            "data": data,
            "files": {"heads": HEADS_FILE if config.tasks else None, "tasks": TASKS_FILE if config.tasks else None,
                      "all": files},
            "env": env,
            "git_commit": env["git"]["commit"],
        }
        write_json(staging / models.REGISTRY_FILE, json_safe(manifest))


def task_subset_record(config: TrainConfig, matched: dict | None) -> dict | None:
    """What ``only_tasks`` removed, from which config, and the updates the kept tasks were matched to."""
    if config.subset is None:
        return None
    return {"config_file": config.config_file, **config.subset, "matched_updates": matched}


def subset_comment(config: TrainConfig) -> str:
    """A header for ``train_config.yaml`` of a task subset (comments: the file still reloads)."""
    if config.subset is None:
        return ""
    dropped = ", ".join(config.subset["dropped_tasks"]) or "none"
    datasets = ", ".join(config.subset["dropped_datasets"]) or "none"
    return (f"# only_tasks: {', '.join(config.subset['kept_tasks'])} of {config.config_file or 'a config'}; "
            f"dropped tasks: {dropped}; dropped data sets: {datasets}.\n"
            f"# Below: that config as given (with its overrides); only_tasks removes the other tasks on load.\n")


def _report(target: Path, metrics: dict) -> None:
    final, initial, training = metrics["final"], metrics["initial"], metrics["training"]
    parts = [f"wrote {target} after {training['steps']} steps"]
    if "perplexity" in final:
        before = initial.get("perplexity")
        parts.append(f"validation perplexity {before:.1f} -> {final['perplexity']:.1f}" if before is not None
                     else f"validation perplexity {final['perplexity']:.1f}")
    if "aggregate" in final:
        score = final["aggregate"]["mean_score"]
        parts.append(f"mean task score {score:.3f}" if not math.isnan(score) else "mean task score undefined")
    print("; ".join(parts))


@exits_once_on_user_error  # every process of a launch reaches the same error; rank 0 reports it
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = build_parser().parse_known_args(argv)
    overrides = parse_overrides(rest)
    if args.tasks is not None:
        if "only_tasks" in overrides:
            raise UserError("give --tasks or --only_tasks, not both")
        overrides["only_tasks"] = [name.strip() for name in args.tasks.split(",") if name.strip()]
    try:
        config = load_config(args.config, overrides)
    except UserError as error:
        if args.tasks is not None and str(error).startswith("--only_tasks:"):
            raise UserError("--tasks:" + str(error)[len("--only_tasks:"):]) from None
        raise
    try:
        run(config, overwrite=args.overwrite, command=["python", "-m", "finetune.train", *argv])
    except KeyboardInterrupt:
        checkpoints = models.models_dir() / f".{config.output_name}.checkpoints"
        if local_rank() == 0:  # every process of a launch gets the Ctrl-C: one line for all
            write_line(f"interrupted; run the same command again to resume from {checkpoints}")
        return INTERRUPTED_EXIT_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
