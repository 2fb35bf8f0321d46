"""finetune end to end on tiny-xlmr: masked-LM on real text, multi-task learning, probing, predict, resume."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
import torch
import yaml
from transformers import TrainerCallback

from finetune import predict, train
from finetune.config import load_config

CONFIGS = Path(__file__).resolve().parent.parent / "finetune" / "configs"
COLORS = ["red", "green", "blue"]
POLARITY = ["terrible", "excellent"]
ANIMALS = ["cat", "dog"]
FILLER = ["the", "a", "house", "car", "today", "near", "small", "big", "walks", "sits", "river", "tree"]
CITIES = [["Paris"], ["Berlin"], ["Rome"], ["New", "York"]]


def write_synthetic(folder: Path) -> None:
    """Separable tasks: a polarity word, a colour word and animal words decide the labels; a city is a LOC.

    About 30% of polarity and colour labels and 15% of animal labels are missing; the entity data
    set carries no sentence labels at all, and the sentence data set no entity labels.
    """
    rng = random.Random(0)
    rows = []
    for i in range(240):
        color, polar = rng.randrange(3), rng.randrange(2)
        animals = [a for a in ANIMALS if rng.random() < 0.5]
        words = [rng.choice(FILLER) for _ in range(4)] + [COLORS[color], POLARITY[polar]] + animals
        rng.shuffle(words)
        missing = rng.random()
        rows.append({"text": " ".join(words), "lang": "en" if i % 2 else "xx",
                     "polarity": "" if missing < 0.3 else str(polar),
                     "color": "" if 0.3 <= missing < 0.6 else COLORS[color],
                     "animals": "" if missing > 0.85 else ("|".join(animals) or "none"),
                     "flat": json.dumps([-1 if missing < 0.3 else polar, -1 if 0.3 <= missing < 0.6 else color])})
    with open(folder / "sentences.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(folder / "entities.jsonl", "w", encoding="utf-8") as handle:
        for _ in range(80):
            words, tags = [rng.choice(FILLER) for _ in range(4)], ["O"] * 4
            city, at = rng.choice(CITIES), rng.randrange(5)
            words[at:at] = city
            tags[at:at] = ["B-LOC"] + ["I-LOC"] * (len(city) - 1)
            handle.write(json.dumps({"tokens": words, "tags": tags, "lang": "en"}) + "\n")


def synthetic_config(folder: Path, **changes) -> Path:
    config = {
        "output_name": "tiny-synthetic", "base_model": "tiny-xlmr", "objective": "multitask",
        "datasets": {
            "sentences": {"train": {"path": str(folder / "sentences.csv")}, "validation_fraction": 0.2,
                          "language_column": "lang"},
            "entities": {"train": {"path": str(folder / "entities.jsonl")}, "validation_fraction": 0.25,
                         "tokens_column": "tokens", "language_column": "lang"},
        },
        "tasks": [
            {"name": "polarity", "type": "binary", "dataset": "sentences", "label_column": "polarity"},
            {"name": "color", "type": "multiclass", "dataset": "sentences", "label_column": "color",
             "labels": COLORS, "label_smoothing": 0.1},
            {"name": "animals", "type": "multilabel", "dataset": "sentences", "label_column": "animals",
             "labels": ANIMALS},
            {"name": "places", "type": "token", "dataset": "entities", "label_column": "tags",
             "labels": ["O", "B-LOC", "I-LOC"], "loss_weight": 0.5},
        ],
        "pooling": "mean", "head_dropout": 0.0, "max_length": 24, "learning_rate": 3e-3, "batch_size": 16,
        "max_steps": 100, "eval_steps": 50, "warmup": 0.1, "task_sampling": "temperature",  # 1 of 4 tasks a step
        "early_stopping_patience": 0, "lr_reduce_patience": 0, "logging_steps": 10,
    }
    config.update(changes)
    path = folder / f"{config['output_name']}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("finetune-data")
    write_synthetic(folder)
    return folder


@pytest.fixture(scope="module")
def english(models_dir, tiny_dir):
    """tiny-xlmr fine-tuned for a few steps on gensim's Lee news corpus (real English text)."""
    config = load_config(CONFIGS / "english.yaml", {
        "base_model": "tiny-xlmr", "output_name": "tiny-english", "max_steps": 16, "eval_steps": 8,
        "max_length": 32, "batch_size": 8, "learning_rate": 2e-3, "max_train_examples": 60,
        "max_eval_examples": 15, "logging_steps": 8})
    return train.run(config, overwrite=True)


@pytest.fixture(scope="module")
def synthetic(models_dir, tiny_dir, data_dir):
    return train.run(load_config(synthetic_config(data_dir)), overwrite=True)


def read(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def test_masked_lm_lowers_validation_loss_on_real_text(english):
    metrics = read(english, "metrics.json")
    before, after = metrics["initial"]["mlm_loss"], metrics["final"]["mlm_loss"]
    assert after < before - 0.05, (before, after)
    assert metrics["final"]["perplexity"] == pytest.approx(2.718281828 ** after, rel=1e-6)
    manifest = read(english, "manifest.json")
    assert manifest["objective"] == "mlm" and manifest["random_weights"] is True
    assert manifest["lm_head"] == train.HEAD_TRAINED
    assert manifest["base_model"]["name"] == "tiny-xlmr" and manifest["seed"] == 0
    train_data = manifest["data"]["datasets"]["text"]["train"]
    assert train_data["path"].endswith("lee_background.cor") and len(train_data["sha256"]) == 64
    assert manifest["config"]["max_steps"] == 16 and "git" in manifest["env"] and "git_commit" in manifest
    assert manifest["data"]["train"]["text"]["rows"] == 60 and manifest["data"]["train_examples"] > 60  # pieces
    assert (english / "train_config.yaml").is_file() and not (english / "tasks.json").exists()
    assert not english.with_name(".tiny-english.checkpoints").exists()  # removed after success


def test_finetuned_model_loads_in_probing_run(english, tmp_path, cli):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from probing import run as probe

    AutoModelForMaskedLM.from_pretrained(english)
    AutoTokenizer.from_pretrained(english)
    out = tmp_path / "profiles"
    code, stdout, err = cli(probe.main, ["--finetuned_model", "tiny-english", "--languages", "en", "--categories",
                                         "gender", "--top_k", "10", "--output_dir", str(out), "--quiet"])
    assert code == 0, err
    model = read(out, "manifest.json")["model"]
    assert model["name"] == "tiny-english" and model["head"] == train.HEAD_TRAINED and model["random_weights"]


def test_multitask_learns_separable_tasks_with_missing_labels(synthetic):
    metrics = read(synthetic, "metrics.json")["final"]
    tasks = metrics["tasks"]
    assert tasks["polarity"]["accuracy"] >= 0.9 and tasks["polarity"]["roc_auc"] >= 0.95
    assert tasks["color"]["accuracy"] >= 0.9
    assert tasks["places"]["entity_f1"] >= 0.9
    assert metrics["aggregate"]["mean_score"] >= 0.8
    assert set(metrics["by_language"]) == {"en", "xx"}
    manifest = read(synthetic, "manifest.json")
    labelled = manifest["data"]["labelled_train_examples"]
    n_sentences = manifest["data"]["datasets"]["sentences"]["rows"]["train"]
    assert labelled["polarity"] < 0.8 * n_sentences and labelled["color"] < 0.8 * n_sentences  # labels missing
    assert sum(manifest["data"]["sampling_probabilities"].values()) == pytest.approx(1.0)


def test_multitask_model_keeps_the_base_lm_head(synthetic, tiny):
    from transformers import AutoModelForMaskedLM

    base, _ = tiny
    tuned = AutoModelForMaskedLM.from_pretrained(synthetic)
    for name in ("lm_head.dense.weight", "lm_head.layer_norm.weight", "lm_head.bias"):
        assert torch.equal(tuned.state_dict()[name], base.state_dict()[name]), name
    layer = "roberta.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(tuned.state_dict()[layer], base.state_dict()[layer])
    manifest = read(synthetic, "manifest.json")
    assert manifest["lm_head"].startswith("base model's LM head (untrained with the encoder")
    assert (synthetic / "tasks.json").is_file() and (synthetic / "heads.safetensors").is_file()


def test_predict_writes_per_task_predictions(synthetic, english, data_dir, tmp_path, cli):
    output = tmp_path / "predictions.csv"
    code, stdout, err = cli(predict.main, ["--model", "tiny-synthetic", "--input", str(data_dir / "sentences.csv"),
                                           "--output", str(output)])
    assert code == 0, err
    rows = list(csv.DictReader(open(output, encoding="utf-8")))
    assert len(rows) == 240
    assert {"polarity_prediction", "polarity_p", "color_prediction", "color_p_red", "animals_prediction",
            "places_prediction"} <= set(rows[0])
    labelled = [r for r in rows if r["polarity"] != ""]
    correct = sum(r["polarity_prediction"] == r["polarity"] for r in labelled)
    assert correct / len(labelled) >= 0.9
    assert all(len(r["places_prediction"].split()) == len(r["text"].split()) for r in rows)
    code, _, err = cli(predict.main, ["--model", "tiny-english", "--input", str(data_dir / "sentences.csv")])
    assert code == 2 and "no task heads" in err


def test_predict_replaces_only_its_own_unchanged_file_and_only_with_overwrite(synthetic, data_dir, tmp_path, cli):
    output = tmp_path / "labelled.csv"
    argv = ["--model", "tiny-synthetic", "--input", str(data_dir / "sentences.csv"), "--output", str(output)]
    assert cli(predict.main, argv)[0] == 0
    sidecar = tmp_path / "labelled.csv.manifest.json"
    manifest = read(tmp_path, sidecar.name)
    assert manifest["command"][:3] == ["python", "-m", "finetune.predict"]
    assert manifest["outputs"]["labelled.csv"]["rows"] == 240
    written = output.read_bytes()

    code, _, err = cli(predict.main, argv)  # its own result: replaced only with --overwrite
    assert code == 2 and "--overwrite" in err and output.read_bytes() == written
    assert cli(predict.main, [*argv, "--overwrite"])[0] == 0

    output.write_text(output.read_text(encoding="utf-8") + "my,own,row\n", encoding="utf-8")  # edited by the user
    edited = output.read_bytes()
    code, _, err = cli(predict.main, [*argv, "--overwrite"])
    assert code == 2 and "not an unchanged result" in err and output.read_bytes() == edited

    mine = tmp_path / "mine.csv"  # a user's file, no manifest: never replaced
    mine.write_text("text\nhello\n", encoding="utf-8")
    code, _, err = cli(predict.main, [*argv[:-1], str(mine), "--overwrite"])
    assert code == 2 and err.count("\n") == 1 and mine.read_text(encoding="utf-8") == "text\nhello\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labelled.csv", "labelled.csv.manifest.json", "mine.csv"]


class Interrupt(Exception):
    pass


class InterruptAfterCheckpoint(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Interrupt()


def test_resume_gives_the_same_result_as_an_uninterrupted_run(models_dir, tiny_dir, data_dir):
    """Flat layout, auxiliary masked-LM loss and dropout: an interrupted run resumed equals a straight one."""
    import safetensors.torch

    changes = {"tasks": [], "flat": {"dataset": "sentences", "label_column": "flat", "group_sizes": [2, 3],
                                     "names": ["polar", "colour"], "types": ["binary", "multiclass"]},
               "auxiliary_mlm_weight": 0.5, "head_dropout": 0.1, "max_steps": 8, "eval_steps": 4,
               "lr_reduce_patience": 1, "early_stopping_patience": 3}
    straight = train.run(load_config(synthetic_config(data_dir, output_name="tiny-straight", **changes)),
                         overwrite=True)
    config = load_config(synthetic_config(data_dir, output_name="tiny-resumed", **changes))
    with pytest.raises(Interrupt):
        train.run(config, overwrite=True, callbacks=[InterruptAfterCheckpoint(4)])
    target = models_dir / "tiny-resumed"
    checkpoints = models_dir / ".tiny-resumed.checkpoints"
    assert not target.exists() and (checkpoints / "checkpoint-4" / "trainer_state.json").is_file()
    resumed = train.run(config)  # the same command again
    a, b = read(straight, "metrics.json"), read(resumed, "metrics.json")
    assert b["training"]["resumed_from"].endswith("checkpoint-4")
    assert a["final"] == b["final"] and a["history"] == b["history"] and a["initial"] == b["initial"]
    assert set(a["final"]["tasks"]) == {"polar", "colour"} and "mlm_loss" in a["final"]
    for name in ("model.safetensors", "heads.safetensors"):
        wa = safetensors.torch.load_file(str(straight / name))
        wb = safetensors.torch.load_file(str(resumed / name))
        assert all(torch.equal(wa[k], wb[k]) for k in wa), name
    assert read(resumed, "manifest.json")["lm_head"].startswith("auxiliary masked-LM head")


def test_every_labelled_validation_row_is_scored_whatever_its_weight(models_dir, tiny_dir, tmp_path, cli):
    """Rows of sample weight 0 are scored; weighted_accuracy counts weights; both checked against predict."""
    import pandas as pd

    from finetune.data import load_splits

    rng = random.Random(3)
    rows = []
    for i in range(48):
        polar = rng.randrange(2)
        words = [rng.choice(FILLER) for _ in range(3)] + [POLARITY[polar]]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "polarity": str(polar) if i % 6 else "-1",
                     "weight": [0, 0.5, 1, 2][i % 4]})
    pd.DataFrame(rows).to_csv(tmp_path / "weighted.csv", index=False)
    path = synthetic_config(
        tmp_path, output_name="tiny-weighted", max_steps=4, eval_steps=4, weighted_metrics=True, pooling="cls",
        datasets={"s": {"train": {"path": str(tmp_path / "weighted.csv")}, "validation_fraction": 0.5}},
        tasks=[{"name": "polarity", "type": "binary", "dataset": "s", "label_column": "polarity",
                "weight_column": "weight"},
               {"name": "plain", "type": "binary", "dataset": "s", "label_column": "polarity"}])
    config = load_config(path)
    folder = train.run(config, overwrite=True)
    tasks = read(folder, "metrics.json")["final"]["tasks"]
    scored = tasks["polarity"]
    assert tasks["plain"]["n"] == scored["n"] and "weighted_accuracy" not in tasks["plain"]  # no weight column

    validation = pd.read_csv(tmp_path / "weighted.csv", dtype=str).iloc[load_splits(config)[1][0].rows]
    labelled = validation[validation["polarity"] != "-1"].reset_index(drop=True)
    assert (labelled["weight"].astype(float) == 0).sum() >= 3  # the rows that used to vanish
    assert scored["n"] == len(labelled)
    labelled.to_csv(tmp_path / "validation.csv", index=False)
    code, _, err = cli(predict.main, ["--model", "tiny-weighted", "--input", str(tmp_path / "validation.csv"),
                                      "--output", str(tmp_path / "predicted.csv"), "--batch_size", "1"])
    assert code == 0, err
    predicted = pd.read_csv(tmp_path / "predicted.csv", dtype=str)
    correct = (predicted["polarity_prediction"] == labelled["polarity"]).to_numpy()
    weight = labelled["weight"].astype(float).to_numpy()
    assert scored["accuracy"] == pytest.approx(correct.mean())
    assert scored["weighted_accuracy"] == pytest.approx((weight * correct).sum() / weight.sum())
    assert read(folder, "manifest.json")["split_seed"] == 0
