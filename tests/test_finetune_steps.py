"""finetune on tiny-xlmr: one task per step, validation losses as per-example means, learning-rate cuts,
and data parallelism on two CPU processes (and the launches that would not be)."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from scipy.stats import binom
from transformers import TrainerCallback

from finetune import train
from finetune.config import load_config
from test_finetune_train import read, synthetic_config, write_synthetic

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "finetune" / "configs"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("steps-data")
    write_synthetic(folder)
    return folder


def labelled_counts(folder: Path) -> dict:
    return read(folder, "manifest.json")["data"]["labelled_train_examples"]


# ---- point 1: each optimisation step trains one task ---------------------------------------

def test_proportional_epoch_trains_each_task_its_share_and_visits_every_example(models_dir, tiny_dir, data_dir):
    batch = 16
    probe = train.Prepared(load_config(synthetic_config(data_dir)))
    steps_per_epoch = sum(math.ceil(n / batch) for n in probe.task_counts.values())
    assert steps_per_epoch <= 40
    folder = train.run(load_config(synthetic_config(
        data_dir, output_name="tiny-proportional", task_sampling="proportional", batch_size=batch,
        max_steps=steps_per_epoch, eval_steps=steps_per_epoch)), overwrite=True)
    training = read(folder, "metrics.json")["training"]
    counts = labelled_counts(folder)
    assert training["global_batch"] == batch and training["steps_per_epoch"] == steps_per_epoch
    for name, n in counts.items():
        trained = training["tasks"][name]
        assert trained["steps"] == math.ceil(n / batch)  # n_t / sum_s n_s of the steps, up to rounding
        assert trained["examples"] == batch * trained["steps"]
        assert trained["distinct_examples"] == n  # one epoch shows every labelled example
    assert sum(t["steps"] for t in training["tasks"].values()) == training["steps"] == steps_per_epoch
    assert training["epochs"] == pytest.approx(1.0)  # the Trainer's epoch is the README's


def test_uniform_gives_each_of_four_tasks_a_quarter_of_the_steps(models_dir, tiny_dir, data_dir):
    folder = train.run(load_config(synthetic_config(
        data_dir, output_name="tiny-uniform", task_sampling="uniform", batch_size=8, max_steps=40,
        eval_steps=40)), overwrite=True)
    training = read(folder, "metrics.json")["training"]
    steps = [t["steps"] for t in training["tasks"].values()]
    assert len(steps) == 4 and sum(steps) == 40
    # Each count is Binomial(40, 1/4): within the two-sided 99.9% interval (Bonferroni over 4 tasks).
    low, high = binom.interval(1 - 0.001 / 4, 40, 0.25)
    assert all(low <= k <= high for k in steps), steps
    assert all(t["examples"] == 8 * t["steps"] for t in training["tasks"].values())


def test_micro_batches_of_an_accumulated_step_share_its_task(models_dir, tiny_dir, data_dir):
    config = load_config(synthetic_config(data_dir, batch_size=4, gradient_accumulation_steps=3))
    prepared = train.Prepared(config)
    trainer = train.build_trainer(config, prepared, train.training_arguments(config, models_dir / ".unused"))
    batches = [sorted(batch["task_labels"]) for batch in trainer.get_train_dataloader()]
    steps = [batches[i:i + 3] for i in range(0, len(batches), 3)]
    assert len(steps) == sum(math.ceil(n / 12) for n in prepared.task_counts.values())
    assert all(len(batch) == 1 and batch == step[0] for step in steps for batch in step)


# ---- point 3: validation loss per example, whatever the batch ------------------------------

def oracle_losses(trainer, prepared, config) -> float:
    """The validation loss from one example at a time, by hand: sum_t lambda_t L_t + lambda_mlm L_mlm."""
    from finetune.data import EVAL_SALT, FeatureDataset

    model = trainer.model.eval()
    dataset = FeatureDataset(prepared.eval_features, salt=EVAL_SALT)
    sums = {t.name: [0.0, 0] for t in config.tasks}
    mlm = [0.0, 0]
    with torch.no_grad():
        for i in range(len(dataset)):
            batch = trainer.data_collator([dataset[i]])
            out = model(**{k: v for k, v in batch.items() if k != "example_index"})
            for task in config.tasks:
                if batch["task_weights"][task.name][0] > 0:
                    labels = batch["task_labels"][task.name]
                    units = int((labels != -100).sum()) if task.type == "token" else 1
                    sums[task.name][0] += float(out["task_losses"][task.name]) * units
                    sums[task.name][1] += units
            if "mlm_labels" in batch:
                logits = model.lm(input_ids=batch["mlm_input_ids"], attention_mask=batch["attention_mask"]).logits
                labels = batch["mlm_labels"][0]
                mlm[0] += float(torch.nn.functional.cross_entropy(logits[0][labels != -100], labels[labels != -100],
                                                                  reduction="sum"))
                mlm[1] += int((labels != -100).sum())
    loss = sum(t.loss_weight * sums[t.name][0] / sums[t.name][1] for t in config.tasks)
    if config.tasks:
        return loss + config.auxiliary_mlm_weight * mlm[0] / mlm[1]
    return mlm[0] / mlm[1]


class RepeatsAtTheEnd:
    """A dataset followed by its first ``extra`` keys again, as DistributedSampler pads a split."""

    def __init__(self, dataset, extra: int):
        self.dataset, self.extra = dataset, extra
        self.rows = dataset.rows  # the features by example index, which the evaluation reads labels from

    def __len__(self) -> int:
        return len(self.dataset) + self.extra

    def __getitem__(self, key: int) -> dict:
        return self.dataset[key % len(self.dataset)]


@pytest.mark.parametrize("objective", ["multitask", "mlm"])
def test_validation_loss_is_a_per_example_mean_whatever_the_eval_batch(models_dir, tiny_dir, data_dir, objective):
    if objective == "multitask":
        config = load_config(synthetic_config(data_dir, auxiliary_mlm_weight=0.5))
    else:
        config = load_config(CONFIGS / "english.yaml", {"base_model": "tiny-xlmr", "max_length": 32,
                                                        "max_train_examples": 4, "max_eval_examples": 6})
    prepared = train.Prepared(config)
    losses = []
    for eval_batch in (1, 5, 64):
        config.eval_batch_size = eval_batch
        args = train.training_arguments(config, models_dir / ".loss-check")
        trainer = train.build_trainer(config, prepared, args)
        nested = trainer.compute_metrics_nested()
        losses.append(nested["loss"])
        assert nested["n_examples"] == len(prepared.eval_features)
    assert max(losses) - min(losses) <= 1e-6, losses
    assert losses[0] == pytest.approx(oracle_losses(trainer, prepared, config), rel=1e-5)
    # the copies a distributed sampler pads with (same key, so same example and mask) are not counted
    padded = trainer.compute_metrics_nested(RepeatsAtTheEnd(trainer.eval_dataset, 3))
    assert abs(padded["loss"] - nested["loss"]) <= 1e-6 and padded["n_examples"] == nested["n_examples"]
    if objective == "multitask":
        assert {"loss"} <= set(nested["tasks"]["color"]) and nested["mlm_loss"] > 0


# ---- point 5: learning-rate cuts, the logged rate, the DeepPavlov recipe --------------------

def test_deeppavlov_config_is_the_recipe():
    config = load_config(CONFIGS / "multitask_deeppavlov.yaml")
    assert config.output_name == "multitask_deeppavlov" and config.objective == "multitask"
    assert (config.learning_rate, config.adam_beta1, config.adam_beta2, config.batch_size) == (2e-5, 0.9, 0.99, 32)
    assert (config.lr_reduce_patience, config.max_lr_reductions, config.lr_reduce_factor) == (2, 2, 0.5)
    assert (config.early_stopping_patience, config.selection) == (3, "mean_accuracy")
    assert (config.lr_schedule, config.restore_best_on_lr_cut, config.task_sampling) == (
        "constant", True, "proportional_draws")
    args = train.training_arguments(config, Path("unused"))
    assert (args.adam_beta1, args.adam_beta2, args.metric_for_best_model) == (0.9, 0.99, "eval_mean_accuracy")
    assert args.greater_is_better is True


class AppliedRates(TrainerCallback):
    """The rate the optimizer used at each update (read between optimizer.step() and the scheduler's step)."""

    def __init__(self):
        self.rates = {}

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.rates[state.global_step + 1] = optimizer.param_groups[0]["lr"]


def test_learning_rate_cuts_are_capped_and_logged_as_applied(models_dir, tiny_dir):
    """The recipe's config with cuts after every bad evaluation: two cuts at most, then early stopping."""
    config = load_config(CONFIGS / "multitask_deeppavlov.yaml", {
        "base_model": "tiny-xlmr", "output_name": "tiny-deeppavlov", "max_steps": 40, "eval_steps": 2,
        "batch_size": 8, "max_length": 32, "max_train_examples": 60, "max_eval_examples": 20, "logging_steps": 1,
        "lr_reduce_patience": 1, "early_stopping_patience": 6, "learning_rate": 1e-3})
    rates = AppliedRates()
    folder = train.run(config, overwrite=True, callbacks=[rates])
    metrics = read(folder, "metrics.json")
    history = metrics["history"]
    logged = {e["step"]: e["learning_rate"] for e in history if "learning_rate" in e}
    assert logged and all(logged[step] == pytest.approx(rates.rates[step], rel=1e-12) for step in logged)
    # the plateau and early-stopping rules replayed on the logged mean accuracies
    best, bad, cuts, stale, stop = None, 0, [], 0, None
    for entry in (e for e in history if "eval_mean_accuracy" in e):
        value = entry["eval_mean_accuracy"]
        if best is None or value > best:
            best, bad, stale = value, 0, 0
            continue
        bad, stale = bad + 1, stale + 1
        if len(cuts) < 2 and bad >= 1:
            cuts.append(entry["step"])
            bad = 0
        if stale >= 6:
            stop = entry["step"]
            break
    assert len(cuts) == 2, "the test needs more than two bad evaluations; change its settings"
    assert metrics["training"]["learning_rate_reductions"] == 2
    assert metrics["training"]["steps"] == (stop or 40)
    # every update applied peak x schedule x 1/2 per cut made before it: the recipe's constant rate;
    # linear warm-up and decay when lr_schedule is linear
    warmup = train.training_arguments(config, Path("unused")).get_warmup_steps(40)
    for step, rate in rates.rates.items():
        k = step - 1  # the scheduler's count of steps taken before this update
        if k < warmup:
            schedule = k / max(1, warmup)
        else:
            schedule = 1.0 if config.lr_schedule == "constant" else max(0.0, (40 - k) / max(1, 40 - warmup))
        halvings = sum(cut < step for cut in cuts)
        assert rate == pytest.approx(1e-3 * schedule * 0.5 ** halvings, rel=1e-9, abs=1e-15), step


# ---- point 9: two CPU processes, and the launches that would train independent copies -------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(command: list[str], models_dir: Path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "STEREOPROBE_MODELS_DIR": str(models_dir), "HF_HUB_OFFLINE": "1",
                   "OMP_NUM_THREADS": "1", **env}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "ACCELERATE_USE_CPU"):
        if key not in env:
            environment.pop(key, None)
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]


@pytest.fixture(scope="module")
def no_dropout_tiny(tiny_dir, tmp_path_factory):
    """tiny-xlmr without dropout: one process and two then draw the same computation."""
    folder = tmp_path_factory.mktemp("tiny-no-dropout") / "tiny-no-dropout"
    shutil.copytree(tiny_dir, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def two_task_config(data_dir: Path, base: Path, **changes) -> Path:
    """Two sentence tasks, no dropout, no auxiliary loss: a step's loss is a plain mean over its batch."""
    tasks = [{"name": "polarity", "type": "binary", "dataset": "sentences", "label_column": "polarity"},
             {"name": "color", "type": "multiclass", "dataset": "sentences", "label_column": "color",
              "labels": ["red", "green", "blue"]}]
    config = dict(base_model=str(base), tasks=tasks, head_dropout=0.0, max_steps=8, eval_steps=4,
                  max_train_examples=120, max_eval_examples=25, logging_steps=2, task_sampling="uniform")
    config.update(changes)
    path = synthetic_config(data_dir, **config)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    del raw["datasets"]["entities"]
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_two_cpu_processes_train_like_one_on_the_same_global_batch(models_dir, data_dir, no_dropout_tiny,
                                                                  monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")  # the one process on CPUs too, on a host with a GPU
    one = train.run(load_config(two_task_config(data_dir, no_dropout_tiny, output_name="tiny-one", batch_size=8)),
                    overwrite=True)
    path = two_task_config(data_dir, no_dropout_tiny, output_name="tiny-two", batch_size=4)
    before = {p.name for p in models_dir.iterdir()}
    result = launch([*TORCHRUN, "-m", "finetune.train", "--config", str(path), "--overwrite"],
                    models_dir, ACCELERATE_USE_CPU="true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p.name for p in models_dir.iterdir()} - before == {"tiny-two"}  # no leftovers of rank 1
    a, b = read(one, "metrics.json"), read(models_dir / "tiny-two", "metrics.json")
    assert a["training"]["world_size"] == 1 and b["training"]["world_size"] == 2
    assert a["training"]["global_batch"] == b["training"]["global_batch"] == 8
    assert a["training"]["tasks"] == b["training"]["tasks"]
    # 25 validation rows per data set split over 2 processes: the sampler pads with a duplicate
    assert a["initial"]["n_examples"] == b["initial"]["n_examples"] and a["initial"]["n_examples"] % 2 == 1
    assert abs(a["initial"]["loss"] - b["initial"]["loss"]) <= 1e-6
    for name in ("polarity", "color"):
        assert a["final"]["tasks"][name]["accuracy"] == b["final"]["tasks"][name]["accuracy"]
        assert a["final"]["tasks"][name]["loss"] == pytest.approx(b["final"]["tasks"][name]["loss"], rel=1e-4)
    train_a = [e["loss"] for e in a["history"] if "loss" in e]
    train_b = [e["loss"] for e in b["history"] if "loss" in e]
    assert len(train_a) == 4 and train_a == pytest.approx(train_b, rel=1e-4)


LAUNCHES = {  # the command, and the launcher environment check_launch sees in each process
    "torchrun without ACCELERATE_USE_CPU": (TORCHRUN, {"WORLD_SIZE": "2"}),
    "accelerate --cpu --num_processes 2": ([*ACCELERATE, "--cpu", "--num_processes", "2"],
                                           {"MASTER_ADDR": "127.0.0.1", "ACCELERATE_DYNAMO_BACKEND": "no"}),
    "accelerate --multi_gpu without GPUs": ([*ACCELERATE, "--multi_gpu", "--num_processes", "2"],
                                            {"WORLD_SIZE": "2"}),
}


def refusal(launcher_env: dict) -> str:
    with pytest.raises(train.UserError) as caught:
        train.check_launch(1, launcher_env)
    return f"error: {caught.value}"


@pytest.mark.parametrize("how", list(LAUNCHES))
def test_launches_that_would_train_separate_copies_are_refused(models_dir, tiny_dir, how):
    """Only what does not depend on how the processes are scheduled: the launcher's stderr holds the
    refusal once, as a whole line (local rank 0 writes it in one write; other ranks write nothing),
    the launch fails, and nothing is written. Text of other processes may come before it on its line,
    so the line is looked for with its newline in the whole output, not at the start of a line."""
    if not how.startswith("accelerate --cpu") and torch.cuda.is_available():
        pytest.skip("on a host with GPUs these launches use them")
    prefix, launcher_env = LAUNCHES[how]
    if how.startswith("accelerate --multi_gpu"):
        prefix = [*prefix, "--main_process_port", str(free_port())]
    before = {p.name for p in models_dir.iterdir()}
    result = launch([*prefix, "-m", "finetune.train", "--config", str(CONFIGS / "english.yaml"),
                     "--base_model", "tiny-xlmr", "--output_name", "tiny-mislaunched", "--max_steps", "2"], models_dir)
    assert result.returncode != 0
    line = refusal(launcher_env)
    assert "ACCELERATE_USE_CPU=true torchrun --nproc_per_node" in line
    # accelerate's one-process launcher repeats its child's last stderr line in its own failure report
    ours = result.stderr.replace(f"RuntimeError: {line}\n", "")
    assert ours.count(line + "\n") == 1, result.stderr[-3000:]
    assert ours.count("error: ") == 1, result.stderr[-3000:]  # no other refusal, no second copy
    assert "UserError" not in result.stderr  # no traceback of ours (the launcher adds its own report)
    assert {p.name for p in models_dir.iterdir()} == before


def test_launch_check_reads_the_launcher_environment():
    train.check_launch(1, {})
    train.check_launch(2, {"WORLD_SIZE": "2", "RANK": "1"})
    with pytest.raises(train.UserError, match="started 2 processes that would each train a separate copy"):
        train.check_launch(1, {"WORLD_SIZE": "2", "RANK": "0"})
    with pytest.raises(train.UserError, match="accelerate launch started one process"):
        train.check_launch(1, {"MASTER_ADDR": "127.0.0.1", "ACCELERATE_DYNAMO_BACKEND": "no"})


@pytest.mark.parametrize("overrides, expected", [
    (["--max_lr_reductions", "-1"], "--max_lr_reductions: must be >= 0 (or null for no limit)"),
    (["--max_lr_reductions", "two"], "--max_lr_reductions: expected int, got 'two'"),
    (["--selection_metric", "mean_f1"], "--selection_metric: unknown value 'mean_f1'; expected one of loss, "
                                        "mean_score, mean_accuracy"),
    (["--adam_beta2", "1.5"], "--adam_beta2: must lie in [0, 1)"),
])
def test_bad_training_settings_are_one_line_exit_2_and_write_nothing(models_dir, tiny_dir, cli, overrides,
                                                                     expected):
    before = {p.name for p in models_dir.iterdir()}
    code, _, err = cli(train.main, ["--config", str(CONFIGS / "multitask_deeppavlov.yaml"), "--base_model",
                                    "tiny-xlmr", *overrides])
    assert code == 2 and err.count("\n") == 1 and expected in err, err
    assert {p.name for p in models_dir.iterdir()} == before
