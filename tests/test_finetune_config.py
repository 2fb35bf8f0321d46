"""finetune configs and bad input: one line naming the key or file, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from finetune import train
from finetune.config import TrainConfig, load_config, parse_overrides
from probing.errors import UserError

CONFIGS = Path(__file__).resolve().parent.parent / "finetune" / "configs"


def write_config(folder: Path, **changes) -> Path:
    """A small multitask config on a csv in ``folder``; ``changes`` replace top-level keys."""
    data = folder / "data.csv"
    if not data.exists():
        data.write_text("text,label,language\nhello there,pos,en\nawful day,neg,en\nbonjour,pos,fr\n"
                        "quel jour horrible,neg,fr\n", encoding="utf-8")
    config = {
        "output_name": "bad-input-model", "base_model": "tiny-xlmr", "objective": "multitask",
        "datasets": {"d": {"train": {"path": str(data)}, "validation_fraction": 0.5, "language_column": "language"}},
        "tasks": [{"name": "sentiment", "type": "multiclass", "dataset": "d", "label_column": "label",
                   "labels": ["neg", "pos"]}],
        "max_steps": 1,
    }
    config.update(changes)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def snapshot(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


@pytest.mark.parametrize("name", ["english", "french", "spanish", "greek", "multitask"])
def test_shipped_configs_load(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config.output_name == name
    assert config.base_model == "FacebookAI/xlm-roberta-base"
    assert config.objective == ("multitask" if name == "multitask" else "mlm")
    if name == "multitask":
        assert {t.type for t in config.tasks} == {"binary", "multiclass", "multilabel", "token"}


@pytest.mark.parametrize("name", ["hub_toxicity_sentiment", "hub_toxicity_entities"])
def test_hub_example_configs_load(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert all(len(t.dataset_names) == 3 for t in config.tasks)
    assert all(d.train.hub and d.language in ("en", "fr", "es") for d in config.datasets.values())


def test_one_task_over_several_data_sets(tmp_path):
    from finetune.data import load_splits, read_examples

    (tmp_path / "en.csv").write_text("text,toxic\nyou idiot,1\nnice day,0\nthanks,0\n", encoding="utf-8")
    (tmp_path / "fr.csv").write_text("text,toxic\nidiot,1\nbonne journée,0\nmerci,\n", encoding="utf-8")
    path = write_config(tmp_path, datasets={
        "en": {"train": {"path": str(tmp_path / "en.csv")}, "language": "en", "validation_fraction": 0.3},
        "fr": {"train": {"path": str(tmp_path / "fr.csv")}, "language": "fr", "validation_fraction": 0.3}},
        tasks=[{"name": "toxicity", "type": "binary", "dataset": ["en", "fr"], "label_column": "toxic"}])
    config = load_config(path)
    train_splits, _, _ = load_splits(config)
    examples = read_examples(train_splits, config).items
    assert {e.language for e in examples} == {"en", "fr"}
    assert all(e.labels["toxicity"] in (0.0, 1.0) for e in examples)


def test_overrides_are_typed_and_dotted(tmp_path):
    path = write_config(tmp_path)
    overrides = parse_overrides(["--learning_rate", "1e-4", "--tasks.0.loss_weight=2", "--pooling", "max",
                                 "--datasets.d.validation_fraction", "0.25", "--keep_checkpoints", "true"])
    config = load_config(path, overrides)
    assert config.learning_rate == 1e-4 and config.tasks[0].loss_weight == 2.0 and config.pooling == "max"
    assert config.datasets["d"].validation_fraction == 0.25 and config.keep_checkpoints is True


def test_flat_layout_expands_into_tasks(tmp_path):
    path = write_config(tmp_path, tasks=[], flat={"dataset": "d", "label_column": "label", "group_sizes": [3, 2, 4],
                                                   "names": ["a", "b", "c"], "types": ["multiclass", "binary",
                                                                                       "multiclass"]})
    config = load_config(path)
    assert [(t.name, t.type, len(t.labels), t.label_index) for t in config.tasks] == \
        [("a", "multiclass", 3, 0), ("b", "binary", 2, 1), ("c", "multiclass", 4, 2)]
    assert config.to_dict()["tasks"] == []  # re-derived from 'flat' on load


@pytest.mark.parametrize("changes, overrides, expected", [
    ({"learnig_rate": 0.1}, [], "unknown config key 'learnig_rate'; did you mean 'learning_rate'?"),
    ({}, ["--batchsize", "4"], "--batchsize: unknown config key 'batchsize'; did you mean 'batch_size'?"),
    ({}, ["--tasks.0.type", "regression"], "unknown task type 'regression' for task 'sentiment'"),
    ({}, ["--tasks.0.labels", "[neg]"], "tasks.0.labels: give at least two labels"),
    ({}, ["--pooling", "attention"], "pooling: unknown value 'attention'; expected one of cls, mean, max"),
    ({}, ["--learning_rate", "fast"], "learning_rate: expected float, got 'fast'"),
    ({}, ["--tasks.0.dataset", "other"], "tasks.0.dataset: unknown data set 'other'"),
    ({"objective": "mlm"}, [], "tasks: the mlm objective has no tasks"),
    ({"output_name": "../escape"}, [], "output_name: '../escape' must be a plain folder name"),
])
def test_bad_configs_name_the_key(tmp_path, changes, overrides, expected):
    path = write_config(tmp_path, **changes)
    with pytest.raises(UserError) as error:
        load_config(path, parse_overrides(overrides))
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_required_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("objective: mlm\n", encoding="utf-8")
    with pytest.raises(UserError, match="missing config key 'output_name'"):
        load_config(path)


def bad_data_cases(tmp_path: Path):
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label,language\n", encoding="utf-8")
    out_of_range = tmp_path / "range.csv"
    out_of_range.write_text("text,label,language\nhi,pos,en\nho,2,en\nha,neg,en\n", encoding="utf-8")
    return [
        (["--tasks.0.label_column", "stars"], "no column 'stars' (config key tasks.0.label_column)"),
        (["--datasets.d.train.path", str(out_of_range)], "row 2: column 'label' (tasks.0, 'sentiment'): label 2 "
                                                         "is out of range 0..1"),
        (["--datasets.d.train.path", str(empty)], "is empty (no rows)"),
        (["--datasets.d.train.path", str(tmp_path / "nope.csv")], "datasets.d.train.path: file"),
        (["--datasets.d.language_column", "lang"], "no column 'lang' (config key datasets.d.language_column)"),
        (["--max_length", "4096"], "max_length: 4096 exceeds the 512 positions"),
        (["--mixed_precision", "fp16"], "mixed_precision: fp16 needs a CUDA GPU"),
        (["--not_a_key", "1"], "--not_a_key: unknown config key 'not_a_key'"),
        (["--base_model", str(tmp_path)], "has no config.json"),
    ]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, models_dir, tiny_dir, cli):
    path = write_config(tmp_path)
    before = snapshot(models_dir)
    for overrides, expected in bad_data_cases(tmp_path):
        code, out, err = cli(train.main, ["--config", str(path), *overrides])
        assert code == 2, (overrides, err)
        assert err.count("\n") == 1 and err.startswith("error: "), err
        assert expected in err, err
        assert "Traceback" not in err
        assert snapshot(models_dir) == before, overrides


def test_wrong_flags_and_missing_config(tmp_path, cli):
    code, _, err = cli(train.main, ["--config", str(tmp_path / "missing.yaml")])
    assert code == 2 and "config file" in err and "english.yaml" in err
    code, _, err = cli(train.main, [])
    assert code == 2 and "--config" in err and err.count("\n") == 1
    path = write_config(tmp_path)
    code, _, err = cli(train.main, ["--config", str(path), "--max_steps"])
    assert code == 2 and "--max_steps needs a value" in err


def test_help_lists_keys_and_ends_with_examples(cli):
    code, out, _ = cli(train.main, ["--help"])
    assert code == 0
    assert "config keys (top level):" in out and "learning_rate" in out and "group_sizes" in out
    tail = out.strip().split("examples:")[-1]
    assert "python -m finetune.train --config finetune/configs/english.yaml" in tail
    assert "accelerate launch" in tail


def test_existing_model_needs_overwrite(tmp_path, models_dir, cli):
    (models_dir / "already-there").mkdir(exist_ok=True)
    (models_dir / "already-there" / "config.json").write_text("{}", encoding="utf-8")
    path = write_config(tmp_path, output_name="already-there")
    code, _, err = cli(train.main, ["--config", str(path)])
    assert code == 2 and "already exists; pass --overwrite" in err


def test_gensim_missing_names_the_install(monkeypatch):
    import finetune.data as data

    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="pip install --no-deps gensim==4.4.0"):
        data.resolve_path("gensim:test/test_data/lee.cor", "datasets.text.train")


def test_checkpoints_of_another_config_are_refused(tmp_path):
    folder = tmp_path / ".m.checkpoints"
    folder.mkdir()
    (folder / train.RUN_CONFIG_FILE).write_text(json.dumps({"learning_rate": 0.1, "seed": 0}), encoding="utf-8")
    with pytest.raises(UserError, match=r"learning_rate: 0.1 -> 0.2"):
        train.prepare_checkpoints(folder, {"learning_rate": 0.2, "seed": 0}, overwrite=False, is_main=True)
    assert train.prepare_checkpoints(folder, {"learning_rate": 0.2, "seed": 0}, overwrite=True, is_main=True) is None
    assert not folder.exists()


def test_config_dataclass_validates_directly():
    with pytest.raises(UserError, match="objective"):
        TrainConfig(output_name="x", datasets={}, objective="clm")
