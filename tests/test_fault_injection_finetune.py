"""finetune under bad input and in several processes (issue 17): one whole line on stderr, exit 2, no
traceback, nothing written; and the README's own flat-layout example (two-class multiclass tasks) trains."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from finetune import launch, train
from finetune.config import load_config
from finetune.metrics import roc_auc, task_metrics
from test_finetune_config import write_config
from test_finetune_train import read, synthetic_config, write_synthetic

ROOT = Path(__file__).resolve().parent.parent


def snapshot(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def refused(cli, models_dir: Path, argv: list[str]) -> str:
    """Run ``finetune.train`` in process; assert exit 2, one line, nothing written; return the line."""
    before = snapshot(models_dir)
    code, out, err = cli(train.main, argv)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and out == ""
    assert snapshot(models_dir) == before
    return err.strip()


# ---- 1. a refusal every process of a launch reaches is written once, whole -----------------

@launch.exits_once_on_user_error
def refusing_main() -> int:
    raise train.UserError("this launch is refused; run it the other way")


def test_local_rank_0_writes_the_refusal_in_one_write(monkeypatch, capfd):
    writes = []
    real_write = os.write
    monkeypatch.setattr(launch.os, "write", lambda fd, data: writes.append((fd, data)) or real_write(fd, data))
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit) as exit_:
        refusing_main()
    assert exit_.value.code == 2
    assert writes == [(sys.stderr.fileno(), b"error: this launch is refused; run it the other way\n")]
    assert capfd.readouterr().err == "error: this launch is refused; run it the other way\n"


class StoppedByLauncher(BaseException):
    """What the launcher's SIGTERM does to a waiting process: it ends there."""


def test_other_local_ranks_write_nothing_and_wait_for_the_launcher(monkeypatch, capfd):
    waited = []

    def stopped(timeout_s=launch.REPORT_FALLBACK_S):
        waited.append(timeout_s)
        raise StoppedByLauncher

    monkeypatch.setattr(launch, "wait_to_be_stopped", stopped)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(StoppedByLauncher):
        refusing_main()
    assert waited == [launch.REPORT_FALLBACK_S]
    assert capfd.readouterr().err == ""
    # were rank 0 never to reach the same error (its input differed), the line is not lost
    monkeypatch.setattr(launch, "wait_to_be_stopped", lambda timeout_s=0: None)
    with pytest.raises(SystemExit) as exit_:
        refusing_main()
    assert exit_.value.code == 2
    assert capfd.readouterr().err == "error: this launch is refused; run it the other way\n"


def test_a_single_process_reports_at_once_whatever_its_local_rank(monkeypatch, capfd):
    monkeypatch.setattr(launch, "wait_to_be_stopped", lambda timeout_s=0: pytest.fail("no launcher to wait for"))
    monkeypatch.setenv("LOCAL_RANK", "3")  # e.g. left in the environment by a job script
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(SystemExit):
        refusing_main()
    assert capfd.readouterr().err == "error: this launch is refused; run it the other way\n"


# ---- 2. a two-class multiclass task (the README's flat example) -----------------------------

def test_two_class_multiclass_roc_auc_is_the_binary_auc_of_class_1():
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    p1 = np.array([0.2, 0.9, 0.4, 0.45, 0.7, 0.1, 0.8, 0.4])
    p = np.column_stack([1 - p1, p1])
    expected = roc_auc_score(y, p[:, 1])
    assert 0 < expected < 1 and expected != 0.5
    assert roc_auc(y, p) == pytest.approx(expected, abs=1e-12)
    assert roc_auc(y, p[:, ::-1]) == pytest.approx(1 - expected, abs=1e-12)  # column 1 is the positive class
    metrics = task_metrics("multiclass", ["no", "yes"], y, p)
    assert metrics["roc_auc"] == pytest.approx(expected, abs=1e-12) and "notes" not in metrics
    weights = np.array([1, 2, 0.5, 1, 1, 3, 1, 2])
    assert roc_auc(y, p, sample_weight=weights) == pytest.approx(roc_auc_score(y, p1, sample_weight=weights))


def test_flat_layout_with_a_two_class_multiclass_task_trains_and_reports_roc_auc(models_dir, tiny_dir, tmp_path):
    """``flat: {group_sizes: [2, 3]}`` with the default head type: task0 is a two-class multiclass task."""
    write_synthetic(tmp_path)
    config = load_config(synthetic_config(
        tmp_path, output_name="tiny-flat-two-class", tasks=[], max_steps=4, eval_steps=2, batch_size=8,
        max_train_examples=60, max_eval_examples=30,
        flat={"dataset": "sentences", "label_column": "flat", "group_sizes": [2, 3]}))
    assert [(t.name, t.type, len(t.labels)) for t in config.tasks] == [("task0", "multiclass", 2),
                                                                       ("task1", "multiclass", 3)]
    folder = train.run(config, overwrite=True)
    metrics = read(folder, "metrics.json")
    for stage in ("initial", "final"):
        for name in ("task0", "task1"):
            value = metrics[stage]["tasks"][name]["roc_auc"]
            assert value is not None and 0 <= value <= 1 and math.isfinite(value), (stage, name, value)
    assert metrics["training"]["steps"] == 4


# ---- 3. TOML configs -------------------------------------------------------------------------

def toml_twin(yaml_path: Path) -> Path:
    """The TOML spelling of ``write_config``'s YAML (written by hand: tomllib only reads)."""
    raw = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    task = raw["tasks"][0]
    path = yaml_path.with_suffix(".toml")
    path.write_text(f"""# the same config as {yaml_path.name}
output_name = "{raw['output_name']}"
base_model = "{raw['base_model']}"
objective = "multitask"
max_steps = 1

[datasets.d]
validation_fraction = 0.5
language_column = "language"

[datasets.d.train]
path = "{raw['datasets']['d']['train']['path']}"

[[tasks]]
name = "{task['name']}"
type = "{task['type']}"
dataset = "d"
label_column = "label"
labels = ["neg", "pos"]
""", encoding="utf-8")
    return path


def test_a_toml_config_reads_as_the_same_yaml_config(tmp_path):
    yaml_path = write_config(tmp_path)
    toml_path = toml_twin(yaml_path)
    assert load_config(toml_path).to_dict() == load_config(yaml_path).to_dict()
    overrides = {"learning_rate": 1e-3, "tasks.0.loss_weight": 2}
    assert load_config(toml_path, dict(overrides)).to_dict() == load_config(yaml_path, dict(overrides)).to_dict()


def test_a_bad_toml_config_is_one_line(tmp_path, models_dir, cli):
    path = toml_twin(write_config(tmp_path))
    path.write_text(path.read_text(encoding="utf-8") + "num_train_epochs = 3\n", encoding="utf-8")
    line = refused(cli, models_dir, ["--config", str(path)])
    assert "unknown config key 'tasks.0.num_train_epochs'" in line  # read as TOML: the key sits in [[tasks]]
    path.write_text("output_name = [\n", encoding="utf-8")
    assert "not valid TOML" in refused(cli, models_dir, ["--config", str(path)])


# ---- 4. "did you mean" for names other tools use ---------------------------------------------

@pytest.mark.parametrize("where, key, expected", [
    ("task", "weight", "unknown config key 'tasks.0.weight'; did you mean 'weight_column'"),
    ("top", "num_train_epochs", "unknown config key 'num_train_epochs'; did you mean 'epochs'?"),
    ("top", "per_device_train_batch_size", "did you mean 'batch_size'"),
    ("top", "learnig_rate", "did you mean 'learning_rate'?"),  # no alias: the closest spelling
])
def test_unknown_keys_suggest_the_key_meant(tmp_path, models_dir, cli, where, key, expected):
    path = write_config(tmp_path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    (raw["tasks"][0] if where == "task" else raw)[key] = 2
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    line = refused(cli, models_dir, ["--config", str(path)])
    assert expected in line
    assert "'loss_weight'?" not in line and "'max_train_examples'?" not in line


# ---- 5. what is not a config -----------------------------------------------------------------

NOT_UTF8 = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # a PNG header, then every byte value


@pytest.mark.parametrize("case, expected", [
    ("random bytes", "is not a text file (not UTF-8)"),
    ("a .png", "is not a text file (not UTF-8)"),
    ("empty", "is empty; a config needs at least output_name and datasets"),
    ("comments only", "is empty"),
    ("a YAML list", "expected a mapping of config keys at the top level (key: value lines), got a list"),
    ("a YAML scalar", "got a single value"),
    ("a folder", "is a folder; give a config file, e.g. --config finetune/configs/english.yaml"),
    ("a missing file", "not found; shipped configs:"),
    ("a NUL byte", "not valid YAML"),
])
def test_what_is_not_a_config_is_one_line(tmp_path, models_dir, cli, case, expected):
    path = tmp_path / ("picture.png" if case == "a .png" else "config.yaml")
    content = {"random bytes": NOT_UTF8, "a .png": NOT_UTF8, "empty": b"", "comments only": b"# nothing\n",
               "a YAML list": b"- output_name: x\n- datasets: {}\n", "a YAML scalar": b"just some text\n",
               "a NUL byte": b"output_name: x\x00\n"}.get(case)
    if content is not None:
        path.write_bytes(content)
    elif case == "a folder":
        path.mkdir()
    line = refused(cli, models_dir, ["--config", str(path)])
    assert expected in line


def test_a_binary_config_is_one_line_from_the_command(tmp_path, models_dir):
    """The whole command, not just main: no traceback reaches the terminal."""
    path = tmp_path / "weights.bin"
    path.write_bytes(NOT_UTF8)
    before = snapshot(models_dir)
    result = subprocess.run([sys.executable, "-m", "finetune.train", "--config", str(path)], cwd=ROOT,
                            env={**os.environ, "STEREOPROBE_MODELS_DIR": str(models_dir), "HF_HUB_OFFLINE": "1"},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr == (f"error: {path} is not a text file (not UTF-8); --config takes a YAML (or .toml) "
                             f"config such as finetune/configs/english.yaml\n")
    assert result.stdout == "" and snapshot(models_dir) == before
