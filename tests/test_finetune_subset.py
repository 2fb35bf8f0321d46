"""The single-task baseline of a multi-task config (only_tasks, --tasks): the config with the other
tasks removed, trained on the same rows, split and seed, with the updates its task gets in the full run."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from finetune import train
from finetune.config import _build, load_config, TrainConfig
from finetune.data import load_splits, sampling_probabilities

ROOT = Path(__file__).resolve().parent.parent
MULTITASK = ROOT / "finetune" / "configs" / "multitask.yaml"
TINY = {"base_model": "tiny-xlmr", "max_steps": 12, "eval_steps": 6, "batch_size": 8, "max_length": 32,
        "logging_steps": 3, "early_stopping_patience": 0}


def read(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text(encoding="utf-8"))


# ---- config level --------------------------------------------------------------------------

def test_subset_is_the_config_with_the_other_tasks_removed_by_hand():
    subset = load_config(MULTITASK, {"only_tasks": ["toxicity"]})
    raw = yaml.safe_load(MULTITASK.read_text(encoding="utf-8"))
    by_hand = copy.deepcopy(raw)
    by_hand["tasks"] = [t for t in raw["tasks"] if t["name"] == "toxicity"]
    del by_hand["datasets"]["entities"]  # no kept task reads it
    expected = _build(TrainConfig, by_hand, "")
    assert dataclasses.replace(subset, only_tasks=None) == expected  # every other key (seeds, split, mlm) equal
    assert subset.seed == expected.seed and subset.split_seed == expected.split_seed
    assert subset.auxiliary_mlm_weight == 0.5  # the auxiliary masked-LM loss stays
    assert subset.subset == {"kept_tasks": ["toxicity"], "dropped_tasks": ["sentiment", "emotion", "entities"],
                             "dropped_datasets": ["entities"]}
    assert subset.config_file == str(MULTITASK)
    assert subset.full_config() == load_config(MULTITASK)


def test_subset_config_file_reloads_to_the_same_subset(tmp_path):
    subset = load_config(MULTITASK, {"only_tasks": ["sentiment", "toxicity"]})
    assert [t.name for t in subset.tasks] == ["toxicity", "sentiment"]  # config order
    saved = tmp_path / "train_config.yaml"
    saved.write_text(train.subset_comment(subset) + yaml.safe_dump(subset.to_dict(), sort_keys=False),
                     encoding="utf-8")
    header = f"# only_tasks: toxicity, sentiment of {MULTITASK}; dropped tasks: emotion, entities;"
    assert saved.read_text(encoding="utf-8").startswith(header)
    again = load_config(saved)
    assert again == subset and again.subset == subset.subset


def test_subset_of_a_flat_layout_keeps_the_task_as_an_explicit_one(tmp_path):
    data = tmp_path / "flat.jsonl"
    data.write_text("".join(json.dumps({"text": f"t{i}", "labels": [i % 3, i % 2]}) + "\n" for i in range(10)),
                    encoding="utf-8")
    raw = {"output_name": "flat", "objective": "multitask", "datasets": {"d": {"train": {"path": str(data)}}},
           "flat": {"dataset": "d", "label_column": "labels", "group_sizes": [3, 2], "names": ["a", "b"],
                    "loss_weight": [1.0, 2.0]}}
    path = tmp_path / "flat.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    full, subset = load_config(path), load_config(path, {"only_tasks": ["b"]})
    assert subset.tasks == [full.tasks[1]] and subset.tasks[0].label_index == 1 and subset.tasks[0].loss_weight == 2
    assert subset.flat is None and subset.subset["dropped_tasks"] == ["a"]
    saved = tmp_path / "again.yaml"
    saved.write_text(yaml.safe_dump(subset.to_dict()), encoding="utf-8")
    assert load_config(saved) == subset


@pytest.mark.parametrize("argv, expected", [
    (["--tasks", "toxcity"], "--tasks: unknown task 'toxcity'; the config's tasks are: toxicity, sentiment, "
                             "emotion, entities"),
    (["--tasks", "toxicity,toxicity"], "--tasks: a task is named twice"),
    (["--only_tasks", "[]"], "--only_tasks: name at least one task; the config's tasks are: toxicity, sentiment"),
    (["--tasks", "toxicity", "--only_tasks", "[toxicity]"], "give --tasks or --only_tasks, not both"),
])
def test_bad_subset_is_one_line_exit_2_and_writes_nothing(models_dir, tiny_dir, cli, argv, expected):
    before = {p.name for p in models_dir.iterdir()}
    code, out, err = cli(train.main, ["--config", str(MULTITASK), "--base_model", "tiny-xlmr", *argv])
    assert code == 2 and err.count("\n") == 1 and expected in err, err
    assert {p.name for p in models_dir.iterdir()} == before


def test_subset_of_a_masked_lm_config_is_refused():
    with pytest.raises(Exception, match="only_tasks selects tasks of a multitask config"):
        load_config(ROOT / "finetune" / "configs" / "english.yaml", {"only_tasks": ["x"]})


# ---- the same rows, split, seed and batches ------------------------------------------------

def texts(examples, task: str) -> list:
    return [(e.text, e.language, e.labels[task]) for e in examples.items if e.labels.get(task) is not None]


@pytest.fixture(scope="module")
def prepared(models_dir, tiny_dir):
    full = load_config(MULTITASK, TINY)
    single = load_config(MULTITASK, {**TINY, "only_tasks": ["toxicity"]})
    return full, train.Prepared(full), single, train.Prepared(single)


def test_same_rows_split_and_labelled_examples(prepared):
    full, full_data, single, single_data = prepared
    full_train, full_eval, _ = load_splits(full)
    single_train, single_eval, _ = load_splits(single)
    assert [s.dataset for s in single_train] == ["demo"]
    assert np.array_equal(full_train[0].rows, single_train[0].rows)  # the same held-out rows, whatever the tasks
    assert np.array_equal(full_eval[0].rows, single_eval[0].rows)
    assert texts(full_data.train_examples, "toxicity") == texts(single_data.train_examples, "toxicity")
    assert texts(full_data.eval_examples, "toxicity") == texts(single_data.eval_examples, "toxicity")
    assert single_data.task_counts == {"toxicity": full_data.task_counts["toxicity"]}
    assert single_data.full_task_counts == full_data.task_counts


@pytest.mark.parametrize("strategy", ["temperature", "proportional"])
def test_single_task_batches_are_the_multitask_models_toxicity_batches(prepared, strategy):
    full, full_data, single, single_data = prepared
    full, single = (dataclasses.replace(c, task_sampling=strategy) for c in (full, single))
    multi_sampler, single_sampler = full_data.sampler(full, 1), single_data.sampler(single, 1)
    counts = full_data.task_counts
    batch, n = 8, list(counts.values())
    epoch = sum(math.ceil(c / batch) for c in n)
    p = sampling_probabilities(n, strategy, full.sampling_temperature)
    expected = math.ceil(n[0] / batch) if strategy == "proportional" else round(epoch * p[0])
    assert multi_sampler.steps_per_epoch == epoch and single_sampler.steps_per_epoch == expected
    assert single_data.matched == {"full_steps_per_epoch": epoch, "steps_per_epoch": expected,
                                   "share": round(expected / epoch, 6)}
    for e in (0, 1):
        tasks, examples = multi_sampler.plan(e)
        multi = [[full_data.train_features[i]["input_ids"] for i in examples[s * batch:(s + 1) * batch]]
                 for s in np.flatnonzero(tasks == 0)]
        _, examples = single_sampler.plan(e)
        mine = [[single_data.train_features[i]["input_ids"] for i in examples[s * batch:(s + 1) * batch]]
                for s in range(single_sampler.steps_per_epoch)]
        k = min(len(multi), len(mine))
        assert k >= 1 and mine[:k] == multi[:k]  # the k-th toxicity batch: the same examples in both runs
        if strategy == "proportional":
            assert len(mine) == len(multi)


# ---- training the pair ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair(models_dir, tiny_dir):
    multi = train.run(load_config(MULTITASK, {**TINY, "output_name": "tiny-pair-multi"}), overwrite=True)
    single = train.run(load_config(MULTITASK, {**TINY, "output_name": "tiny-pair-single",
                                               "only_tasks": ["toxicity"]}), overwrite=True)
    return multi, single


def test_trained_pair_shares_rows_seed_and_split_and_the_baseline_has_one_head(pair):
    import safetensors.torch

    from finetune.model import HEADS_FILE, read_task_specs

    multi, single = pair
    m, s = read(multi, "manifest.json"), read(single, "manifest.json")
    assert (m["seed"], m["split_seed"]) == (s["seed"], s["split_seed"])
    # the same validation rows; the baseline drops those without a toxicity label (scored by neither for it)
    assert m["data"]["validation"]["demo"]["rows"] == s["data"]["validation"]["demo"]["rows"]
    assert (read(multi, "metrics.json")["final"]["tasks"]["toxicity"]["n"] ==
            read(single, "metrics.json")["final"]["tasks"]["toxicity"]["n"])
    assert m["data"]["datasets"]["demo"] == s["data"]["datasets"]["demo"]  # file checksum, rows, split
    assert s["data"]["labelled_train_examples"] == {"toxicity": m["data"]["labelled_train_examples"]["toxicity"]}
    assert [t.name for t in read_task_specs(single)["tasks"]] == ["toxicity"]
    heads = safetensors.torch.load_file(str(single / HEADS_FILE))
    assert heads and {key.split(".")[0] for key in heads} == {"toxicity"}  # the toxicity head only
    assert [t["name"] for t in s["tasks"]] == ["toxicity"] and len(m["tasks"]) == 4
    record = s["task_subset"]
    assert record["config_file"] == str(MULTITASK) and record["dropped_tasks"] == ["sentiment", "emotion", "entities"]
    assert record["dropped_datasets"] == ["entities"] and m["task_subset"] is None
    matched = record["matched_updates"]
    assert matched["max_steps"] == round(matched["share"] * 12) and matched["eval_steps"] == round(matched["share"] * 6)
    training = read(single, "metrics.json")["training"]
    assert training["steps"] == matched["max_steps"] and training["steps_per_epoch"] == matched["steps_per_epoch"]
    assert s["config"]["only_tasks"] == ["toxicity"] and s["config"]["auxiliary_mlm_weight"] == 0.5
    assert load_config(single / "train_config.yaml").tasks == load_config(MULTITASK).tasks[:1]
    # the multi-task run's toxicity steps: about the share of its 12 steps (random draws under temperature)
    assert read(multi, "metrics.json")["training"]["tasks"]["toxicity"]["steps"] >= 1
