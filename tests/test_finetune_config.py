"""finetune configs and bad input: one line naming the key or file, exit 2, nothing written."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
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


def test_flat_layout_takes_weights_loss_weights_and_label_smoothing(tmp_path):
    from finetune.data import load_splits, read_examples

    data = tmp_path / "flat.jsonl"
    rows = [{"text": "a b", "labels": [0, 1, 2], "weight": [1.0, 2.0, 1.5]},
            {"text": "c d", "labels": [1, -1, 0], "weight": 3.0},
            {"text": "e f", "labels": [2, 0, None], "weight": None},
            {"text": "g h", "labels": [0, 0, 1], "weight": [0.0, 1.0, 2.0]}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    flat = {"dataset": "d", "label_column": "labels", "group_sizes": [3, 2, 3], "names": ["a", "b", "c"],
            "weight_column": "weight", "loss_weight": [1.0, 2.0, 0.5], "label_smoothing": 0.1}
    path = write_config(tmp_path, tasks=[], flat=flat,
                        datasets={"d": {"train": {"path": str(data)}, "validation_fraction": 0.25}})
    config = load_config(path)
    assert [(t.loss_weight, t.label_smoothing, t.weight_column) for t in config.tasks] == \
        [(1.0, 0.1, "weight"), (2.0, 0.1, "weight"), (0.5, 0.1, "weight")]
    every_row = dataclasses.replace(load_splits(config)[0][0], rows=np.arange(4))
    examples = read_examples([every_row], config).items
    assert [e.weights for e in examples] == [{"a": 1.0, "b": 2.0, "c": 1.5}, {"a": 3.0, "b": 0.0, "c": 3.0},
                                             {"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 0.0, "b": 1.0, "c": 2.0}]
    assert examples[1].labels["b"] is None and examples[2].labels["c"] is None  # weight 0: label missing
    smoothing = load_config(path, {"flat.label_smoothing": [0.0, 0.2, 0.1]})
    assert [t.label_smoothing for t in smoothing.tasks] == [0.0, 0.2, 0.1]


def test_empty_null_and_minus_one_are_missing_in_every_layout_and_head_type(tmp_path):
    from finetune.data import load_splits, read_examples

    sentences = [  # each row keeps one label; the others are missing in every spelling
        {"text": "a", "toxic": 1, "sentiment": None, "emotions": -1, "flat": [1, -1]},
        {"text": "b", "toxic": -1, "sentiment": "pos", "emotions": None, "flat": [None, -1]},
        {"text": "c", "toxic": None, "sentiment": -1, "emotions": "joy|anger", "flat": -1},
        {"text": "d", "toxic": "", "sentiment": "", "emotions": "", "flat": [-1, 0]},
    ]
    words = [{"tokens": ["in", "Paris"], "tags": ["O", "B-LOC"]}, {"tokens": ["x"], "tags": -1},
             {"tokens": ["y"], "tags": None}, {"tokens": ["to", "Rome", "now"], "tags": [-1, "B-LOC", None]}]
    for name, rows in (("sentences", sentences), ("words", words)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        frame = pd.DataFrame(rows)  # the csv spelling: -1 as text, null as an empty cell, lists as JSON
        for column in frame.columns:
            frame[column] = [json.dumps(v) if isinstance(v, list) else ("" if v is None else v) for v in frame[column]]
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    datasets = {f"{name}_{ext}": {"train": {"path": str(tmp_path / f"{name}.{ext}")},
                                  "validation": {"path": str(tmp_path / f"{name}.{ext}")},
                                  **({"tokens_column": "tokens"} if name == "words" else {})}
                for name in ("sentences", "words") for ext in ("jsonl", "csv")}
    sentence_sets, word_sets = ["sentences_jsonl", "sentences_csv"], ["words_jsonl", "words_csv"]
    tasks = [{"name": "toxicity", "type": "binary", "dataset": sentence_sets, "label_column": "toxic"},
             {"name": "sentiment", "type": "multiclass", "dataset": sentence_sets, "label_column": "sentiment",
              "labels": ["neg", "pos"]},
             {"name": "emotion", "type": "multilabel", "dataset": sentence_sets, "label_column": "emotions",
              "labels": ["anger", "joy"]},
             {"name": "places", "type": "token", "dataset": word_sets, "label_column": "tags",
              "labels": ["O", "B-LOC"]}]
    flat = {"dataset": "sentences_csv", "label_column": "flat", "group_sizes": [2, 2], "names": ["f0", "f1"]}
    config = load_config(write_config(tmp_path, datasets=datasets, tasks=tasks, flat=flat))
    train_splits, _, _ = load_splits(config)
    examples = read_examples(train_splits, config)
    labels = {}
    for example in examples.items:
        labels.setdefault(example.dataset, []).append({k: v for k, v in example.labels.items() if v is not None})
    sentence_labels = [{"toxicity": 1.0}, {"sentiment": 1}, {"emotion": [1.0, 1.0]}]
    assert labels["sentences_jsonl"] == sentence_labels
    assert labels["sentences_csv"] == [{"toxicity": 1.0, "f0": 1}, {"sentiment": 1}, {"emotion": [1.0, 1.0]},
                                       {"f1": 0}]
    assert labels["words_jsonl"] == labels["words_csv"] == [{"places": [0, 1]}, {"places": [None, 1, None]}]
    assert examples.counts["sentences_jsonl"]["dropped_without_labels"] == 1
    assert examples.counts["words_csv"]["dropped_without_labels"] == 2


def test_validation_rows_follow_split_seed_not_seed(tmp_path):
    from finetune.data import load_splits

    data = tmp_path / "many.csv"
    data.write_text("text,label\n" + "".join(f"text {i},{'pos' if i % 2 else 'neg'}\n" for i in range(60)),
                    encoding="utf-8")
    path = write_config(tmp_path, datasets={"d": {"train": {"path": str(data)}, "validation_fraction": 0.25}})

    def validation_rows(**overrides):
        _, eval_splits, provenance = load_splits(load_config(path, overrides))
        return eval_splits[0].rows.tolist(), provenance["d"]["validation"]

    rows, provenance = validation_rows(seed=0)
    assert len(rows) == 15 and provenance == {"split_from_train": 0.25, "split_seed": 0}
    assert validation_rows(seed=1)[0] == rows and validation_rows(seed=7)[0] == rows
    other, provenance = validation_rows(seed=0, split_seed=1)
    assert other != rows and len(other) == 15 and provenance["split_seed"] == 1


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
    ({}, ["--split_seed", "abc"], "--split_seed: expected int, got 'abc'"),
    ({}, ["--split_seed", "1.5"], "--split_seed: expected int, got 1.5"),
    ({"split_seed": -3}, [], "split_seed: must be an integer >= 0"),
    ({"tasks": [], "flat": {"dataset": "d", "label_column": "label", "group_sizes": [2, 2],
                            "loss_weight": [1.0, 2.0, 3.0]}}, [],
     "flat.loss_weight: a list of 3 values for 2 tasks; give one per group size, or one number for all"),
    ({"tasks": [], "flat": {"dataset": "d", "label_column": "label", "group_sizes": [2, 2],
                            "label_smoothing": None}}, [], "flat.label_smoothing: a value is required (got null)"),
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
    weights = tmp_path / "weights.csv"
    weights.write_text('text,label,language,w\nhi,pos,en,1\nho,neg,en,"[1.0, 2.0]"\nha,neg,en,\n'
                       'hu,pos,en,2\n', encoding="utf-8")
    return [
        (["--datasets.d.train.path", str(weights), "--tasks.0.weight_column", "w"],
         "row 2: column 'w' (tasks.0, 'sentiment'): the weight list has 2 entries but 1 task(s) read this column "
         "(sentiment)"),
        (["--split_seed", "x"], "--split_seed: expected int, got 'x'"),
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
    folder = models_dir / "already-there"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    (folder / "manifest.json").write_text(json.dumps({"command": ["python", "-m", "finetune.train"], "files": {
        "all": ["config.json"]}, "created": "2026-12-01T00:00:00+00:00"}), encoding="utf-8")
    path = write_config(tmp_path, output_name="already-there")
    code, _, err = cli(train.main, ["--config", str(path)])
    assert code == 2 and "holds an earlier result of finetune.train" in err and "pass --overwrite" in err


def test_a_model_folder_finetune_did_not_write_is_never_replaced(tmp_path, models_dir, cli):
    folder = models_dir / "downloaded"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")  # e.g. a model saved by hand: no manifest
    path = write_config(tmp_path, output_name="downloaded")
    code, _, err = cli(train.main, ["--config", str(path), "--overwrite"])
    assert code == 2 and "is not a result folder" in err and "--output_name" in err
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]


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
