"""The transformers ``Trainer``, taught to sample tasks, evaluate every task, and save our folders.

Distribution, mixed precision, gradient accumulation, checkpoints and their resumption are the
Trainer's (and accelerate's): ``accelerate launch -m finetune.train ...`` runs the same code on
several GPUs. What this module adds:

* the training order comes from :class:`finetune.data.TaskSampler` (one task per step);
* ``evaluate`` computes every task's metrics (:mod:`finetune.metrics`), their aggregate, a
  per-language breakdown, and the validation losses as means over the whole split (see
  :meth:`FinetuneTrainer.compute_metrics_nested`), whatever the batch size and process count;
* the logged learning rate is the one the optimizer applied at that step;
* checkpoints and the best model are saved as our folders (masked LM + heads,
  :meth:`MultiTaskModel.save`) and loaded back the same way;
* :class:`ReduceLROnPlateauCallback` scales the schedule (warm-up and linear decay, or a constant
  rate) down when the selection metric stalls, optionally restoring the best checkpoint first;
  its state is saved in checkpoints like ``EarlyStoppingCallback``'s.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState

from finetune import metrics as task_metrics
from finetune.losses import IGNORE_INDEX, example_loss_terms
from finetune.model import MultiTaskModel, task_predictions


class ReduceLROnPlateauCallback(TrainerCallback, ExportableState):
    """Multiply the learning rate by ``factor`` after ``patience`` evaluations without improvement.

    The factor scales the scheduler's base rates, so warm-up and linear decay (or a constant rate)
    continue from the lowered level. ``patience = 0`` turns it off; after ``max_reductions`` cuts
    (``None``: no limit) the rate is left alone.

    ``restore_best``: before a cut, load the best checkpoint's weights (``MultiTaskModel.load_weights``)
    and its optimizer state (AdamW's moments), as DeepPavlov's ``load_before_drop`` reloads its best
    saved model before dividing the rate; the rate itself goes on from the current one, cut. The best
    checkpoint is the Trainer's (``state.best_model_checkpoint``, never rotated away), an earlier
    evaluation's: the current one did not improve.
    """

    def __init__(self, patience: int = 1, factor: float = 0.5, metric: str = "eval_loss",
                 greater_is_better: bool = False, max_reductions: int | None = None, restore_best: bool = False):
        self.patience = patience
        self.factor = factor
        self.metric = metric
        self.greater_is_better = greater_is_better
        self.max_reductions = max_reductions
        self.restore_best = restore_best
        self.best = None
        self.bad_evaluations = 0
        self.reductions = 0
        self.restored: list[int] = []  # the step of the checkpoint restored before each cut

    def on_evaluate(self, args, state, control, metrics=None, optimizer=None, lr_scheduler=None, model=None,
                    **kwargs):
        if self.patience == 0 or not metrics or self.metric not in metrics or lr_scheduler is None:
            return
        value = metrics[self.metric]
        if value is None or math.isnan(value):
            return
        improved = self.best is None or (value > self.best if self.greater_is_better else value < self.best)
        if improved:
            self.best, self.bad_evaluations = value, 0
            return
        self.bad_evaluations += 1
        if self.max_reductions is not None and self.reductions >= self.max_reductions:
            return
        if self.bad_evaluations >= self.patience:
            rates = [group["lr"] for group in optimizer.param_groups] if optimizer is not None else []
            if self.restore_best and state.best_model_checkpoint:
                self._restore(Path(state.best_model_checkpoint), model, optimizer)
            lr_scheduler.base_lrs = [lr * self.factor for lr in lr_scheduler.base_lrs]
            if optimizer is not None:
                for group, rate in zip(optimizer.param_groups, rates):
                    group["lr"] = rate * self.factor
            self.bad_evaluations = 0
            self.reductions += 1

    def _restore(self, folder: Path, model, optimizer) -> None:
        model.load_weights(folder)
        state_file = folder / "optimizer.pt"
        if optimizer is not None and state_file.is_file():
            optimizer.load_state_dict(torch.load(state_file, map_location="cpu", weights_only=True))
        tail = folder.name.split("-")[-1]
        self.restored.append(int(tail) if tail.isdigit() else -1)

    def state(self) -> dict:
        return {"args": {"patience": self.patience, "factor": self.factor, "metric": self.metric,
                         "greater_is_better": self.greater_is_better, "max_reductions": self.max_reductions,
                         "restore_best": self.restore_best},
                "attributes": {"best": self.best, "bad_evaluations": self.bad_evaluations,
                               "reductions": self.reductions, "restored": self.restored}}


class SamplerEpochCallback(TrainerCallback):
    """Tell the task sampler which epoch starts (also after resuming on several processes)."""

    def __init__(self, sampler):
        self.sampler = sampler

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.sampler.set_epoch(int(math.floor((state.epoch or 0.0) + 1e-9)))


class AppliedLearningRate(TrainerCallback):
    """The rate the optimizer applied in the last update (read between its step and the scheduler's)."""

    def __init__(self):
        self.rate: float | None = None

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.rate = float(optimizer.param_groups[0]["lr"])


class FinetuneTrainer(Trainer):
    """``Trainer`` for :class:`MultiTaskModel` (see the module docstring)."""

    def __init__(self, *args, task_sampler=None, eval_languages=None, weighted_metrics=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.task_sampler = task_sampler
        self.eval_languages = eval_languages or {}
        self.weighted_metrics = set(weighted_metrics)  # tasks that also get weighted_<metric>
        self.last_metrics: dict = {}
        self.applied_rate = AppliedLearningRate()
        self.add_callback(self.applied_rate)

    # ---- data ----

    def _get_train_sampler(self, train_dataset=None):
        return self.task_sampler if self.task_sampler is not None else super()._get_train_sampler(train_dataset)

    def _get_learning_rate(self) -> float:
        # The rate of the last update, not the scheduler's last rate: that one misses a cut made by
        # ReduceLROnPlateauCallback until the scheduler's next step, and is the next update's rate
        # when read after it (as the log at the end of an epoch does).
        if self.applied_rate.rate is None:
            return super()._get_learning_rate()
        return self.applied_rate.rate

    # ---- evaluation ----

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        nested = self.compute_metrics_nested(eval_dataset)
        self.last_metrics = nested
        flat = flatten_metrics(nested, metric_key_prefix)
        self.log(flat)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, flat)
        return flat

    @torch.no_grad()
    def compute_metrics_nested(self, eval_dataset=None) -> dict:
        """Metrics of the model on the validation set, as a nested dict (see :func:`flatten_metrics`).

        Losses are means over the whole validation split, each example counted once (the copies
        a distributed sampler pads with are dropped by example index): a task's loss is
        ``L_t = sum_i s_i / sum_i c_i`` over the examples labelled for it
        (:func:`finetune.losses.example_loss_terms`: a per-example mean, per-token for token
        tasks, unweighted by sample weights), the masked-LM loss the mean cross-entropy over all
        masked validation tokens (the masks are fixed per example), and ``loss`` is
        ``sum_t lambda_t L_t + lambda_mlm L_mlm`` (the masked-LM loss alone for objective mlm).
        """
        from accelerate.utils import gather_object

        model: MultiTaskModel = self.accelerator.unwrap_model(self.model)
        loader = self.get_eval_dataloader(eval_dataset)
        features = (eval_dataset if eval_dataset is not None else self.eval_dataset).rows
        was_training = model.training
        model.eval()
        rows: list[tuple] = []  # (example index, {task: (truth, prediction, sample weight)})
        terms: list[tuple] = []  # (example index, {task or "mlm": (loss sum, count)})
        for batch in loader:
            batch = self._prepare_inputs(batch)
            with self.autocast_smart_context_manager():
                out = model(**batch)
            batch_rows, batch_terms = _batch_records(model, batch, out, features)
            rows.extend(batch_rows)
            terms.extend(batch_terms)
        model.train(was_training)
        all_rows, all_terms = {}, {}
        for part_rows, part_terms in gather_object([(rows, terms)]):
            all_rows.update({index: values for index, values in part_rows})  # drops padding duplicates
            all_terms.update({index: values for index, values in part_terms})
        losses = {}
        for name in [t.name for t in model.tasks] + ["mlm"]:
            pairs = [values[name] for values in all_terms.values() if name in values]
            count = sum(c for _, c in pairs)
            if count:
                losses[name] = math.fsum(s for s, _ in pairs) / count
        mlm_loss = losses.pop("mlm", None)
        loss = math.fsum(t.loss_weight * losses[t.name] for t in model.tasks if t.name in losses)
        if mlm_loss is not None and model.tasks:
            loss += model.mlm_weight * mlm_loss
        nested = summarise(model, all_rows, self.eval_languages, loss, mlm_loss,
                           weighted=self.weighted_metrics)
        for name, value in losses.items():
            nested.get("tasks", {}).get(name, {})["loss"] = value
        return nested

    # ---- saving and loading our folders ----

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        self.accelerator.unwrap_model(self.model).save(Path(output_dir))
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        model = self.accelerator.unwrap_model(model if model is not None else self.model)
        model.load_weights(Path(resume_from_checkpoint))

    def _load_best_model(self) -> None:
        self._load_from_checkpoint(self.state.best_model_checkpoint)


def _batch_records(model: MultiTaskModel, batch: dict, out: dict, features: list[dict]) -> tuple[list, list]:
    """``(rows, terms)`` of one validation batch, each a list of ``(example index, {...})``.

    ``rows``: {task: (truth, prediction, sample weight)} for every task the example has a label
    for; ``terms``: {task: (loss sum, count)} for the same tasks (see
    :func:`finetune.losses.example_loss_terms`) and "mlm" for its masked tokens. Whether a row is
    labelled comes from its features (label not ``None``), not from its sample weight: a
    validation row of weight 0 is still scored, and its loss still counts.
    """
    indices = batch["example_index"].tolist()
    rows, terms = [dict() for _ in indices], [dict() for _ in indices]
    for task in model.tasks:
        labelled = [i for i, index in enumerate(indices) if features[index]["labels"].get(task.name) is not None]
        logits, labels = out["logits"][task.name], batch["task_labels"][task.name]
        sums, counts = example_loss_terms(task.type, logits, labels, label_smoothing=task.label_smoothing)
        sums, counts = sums.double().cpu().tolist(), counts.cpu().tolist()
        labels, predictions = labels.cpu(), task_predictions(task, logits).cpu()
        for i in labelled:
            if task.type == "token":
                keep = labels[i] != IGNORE_INDEX
                truth, prediction = labels[i][keep].tolist(), predictions[i][keep].tolist()
            else:
                truth, prediction = labels[i].numpy(), predictions[i].numpy()
            rows[i][task.name] = (truth, prediction, features[indices[i]]["weights"].get(task.name, 1.0))
            terms[i][task.name] = (sums[i], counts[i])
    if "mlm_example_loss_sums" in out:
        sums = out["mlm_example_loss_sums"].double().cpu().tolist()
        counts = out["mlm_example_counts"].cpu().tolist()
        for i, (loss_sum, count) in enumerate(zip(sums, counts)):
            terms[i]["mlm"] = (loss_sum, count)
    return list(zip(indices, rows)), list(zip(indices, terms))


def summarise(model: MultiTaskModel, rows: dict, languages: dict, loss: float, mlm_loss: float | None, *,
              weighted=()) -> dict:
    """Nested metrics: loss, masked-LM loss and perplexity, per task, aggregate, per language.

    The tasks named in ``weighted`` also get their sample-weighted metrics (``weighted_<metric>``).
    """
    out: dict = {"loss": loss, "n_examples": len(rows)}
    if mlm_loss is not None:
        out["mlm_loss"] = mlm_loss
        out["perplexity"] = math.exp(min(mlm_loss, 700.0))
        if not model.tasks:
            out["loss"] = mlm_loss
    if not model.tasks:
        return out

    def metrics_for(selected: dict) -> dict:
        per_task = {}
        for task in model.tasks:
            pairs = [values[task.name] for values in selected.values() if task.name in values]
            if not pairs:
                continue
            truth = [p[0] for p in pairs]
            prediction = [p[1] for p in pairs]
            weights = [p[2] for p in pairs] if task.name in weighted else None
            per_task[task.name] = task_metrics.task_metrics(task.type, task.labels, truth, prediction,
                                                            sample_weight=weights)
        return {"tasks": per_task, "aggregate": task_metrics.aggregate(per_task)} if per_task else {}

    out.update(metrics_for(rows))
    by_language = {}
    with warnings.catch_warnings():  # small per-language subsets often lack a class: nan, expected
        warnings.simplefilter("ignore", task_metrics.UndefinedMetricWarning)
        for language in sorted({v for v in languages.values() if v is not None}):
            subset = {i: values for i, values in rows.items() if languages.get(i) == language}
            if subset:
                by_language[language] = metrics_for(subset)
    if by_language:
        out["by_language"] = by_language
    return out


def flatten_metrics(nested: dict, prefix: str = "eval") -> dict[str, float]:
    """Flat ``{prefix}_{name}`` floats for the Trainer's logs and metric selection.

    ``eval_loss``, ``eval_mlm_loss``, ``eval_perplexity``, ``eval_mean_score``, ``eval_std_score``,
    ``eval_mean_<metric>``, ``eval_<task>_<metric>`` and ``eval_<language>_mean_score``.
    """
    flat = {}
    for key in ("loss", "mlm_loss", "perplexity"):
        if key in nested:
            flat[f"{prefix}_{key}"] = float(nested[key])
    for key, value in nested.get("aggregate", {}).items():
        flat[f"{prefix}_{key}"] = float(value)
    for task, values in nested.get("tasks", {}).items():
        for key, value in values.items():
            if key not in ("primary", "notes"):
                flat[f"{prefix}_{task}_{key}"] = float(value)
    for language, values in nested.get("by_language", {}).items():
        if "aggregate" in values:
            flat[f"{prefix}_{language}_mean_score"] = float(values["aggregate"]["mean_score"])
    return flat
