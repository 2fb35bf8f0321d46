"""finetune's pieces without training: losses, pooling and metrics by hand, labels, masking, sampling."""

from __future__ import annotations

import doctest
import importlib
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from finetune import losses, metrics
from finetune.config import TaskConfig
from finetune.data import (EVAL_SALT, TRAIN_SALT, Collator, FeatureDataset, TaskSampler, align_word_labels,
                           parse_label, parse_weight, sampling_probabilities)


# ---- doctests (finetune is not among pytest's testpaths) ------------------------------------

@pytest.mark.parametrize("module", ["finetune.losses", "finetune.metrics", "finetune.data", "finetune.train"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted >= 1 and result.failed == 0


# ---- pooling and losses against hand computation -------------------------------------------

def test_pooling_by_hand_ignores_padding():
    hidden = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [100.0, 100.0]],
                           [[0.0, 1.0], [2.0, -5.0], [-1.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert losses.pool(hidden, mask, "cls").tolist() == [[1.0, -2.0], [0.0, 1.0]]
    assert losses.pool(hidden, mask, "mean").flatten().tolist() == pytest.approx([2.0, 1.0, 1 / 3, -4 / 3])
    assert losses.pool(hidden, mask, "max").tolist() == [[3.0, 4.0], [2.0, 1.0]]
    with pytest.raises(ValueError):
        losses.pool(hidden, mask, "median")


def test_multiclass_loss_masking_and_label_smoothing_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    weights = torch.tensor([1.0, 0.0])  # second example: label missing
    z = math.log(math.exp(2) + 2)
    nll = [-(2 - z), -(0 - z), -(0 - z)]  # -log p_k of example 1
    assert losses.multiclass_loss(logits, torch.tensor([0, 2]), weights).item() == pytest.approx(nll[0])
    # the placeholder label of a missing example changes nothing
    assert losses.multiclass_loss(logits, torch.tensor([0, 1]), weights).item() == pytest.approx(nll[0])
    eps = 0.1
    smoothed = (1 - eps) * nll[0] + eps / 3 * sum(nll)
    value = losses.multiclass_loss(logits, torch.tensor([0, 2]), weights, label_smoothing=eps).item()
    assert value == pytest.approx(smoothed)


def test_weighted_mean_and_all_missing():
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    weights = torch.tensor([2.0, 1.0])
    per = [math.log(1 + math.e) - 1, math.log(1 + math.e)]  # CE of label 0 for both
    value = losses.multiclass_loss(logits, torch.tensor([0, 0]), weights).item()
    assert value == pytest.approx((2 * per[0] + per[1]) / 3)
    none = losses.multiclass_loss(logits, torch.tensor([0, 0]), torch.zeros(2))
    none.backward()
    assert none.item() == 0.0 and logits.grad is not None and torch.all(logits.grad == 0)


def test_binary_and_multilabel_losses_by_hand():
    # logit 0 -> p = 0.5; smoothing eps = 0.2 turns target 1 into 0.9: BCE = log 2 whatever the target
    assert losses.binary_loss(torch.tensor([0.0]), torch.tensor([1.0]), torch.ones(1),
                              label_smoothing=0.2).item() == pytest.approx(math.log(2))
    logit, target, eps = 2.0, 1.0, 0.2
    p = 1 / (1 + math.exp(-logit))
    y = target * (1 - eps) + eps / 2
    expected = -(y * math.log(p) + (1 - y) * math.log(1 - p))
    assert losses.binary_loss(torch.tensor([logit, -3.0]), torch.tensor([target, 0.0]), torch.tensor([1.0, 0.0]),
                              label_smoothing=eps).item() == pytest.approx(expected)
    # multilabel: mean over the K labels, then over examples with a label
    logits = torch.tensor([[0.0, 2.0], [9.0, 9.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    l1 = math.log(2)
    l2 = -math.log(1 - 1 / (1 + math.exp(-2.0)))
    assert losses.multilabel_loss(logits, targets, torch.tensor([1.0, 0.0])).item() == pytest.approx((l1 + l2) / 2)


def test_token_loss_by_hand():
    # two sequences of three tokens, two classes; -100 marks special tokens and later sub-words
    logits = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]],
                           [[5.0, 0.0], [0.0, 3.0], [0.0, 0.0]]])
    labels = torch.tensor([[-100, 0, 1], [-100, 1, -100]])
    ce = lambda zs, k: -(zs[k] - math.log(sum(math.exp(z) for z in zs)))  # noqa: E731
    terms = [ce([2.0, 0.0], 0), ce([0.0, 1.0], 1), ce([0.0, 3.0], 1)]
    weights = torch.tensor([1.0, 2.0])
    expected = (terms[0] + terms[1] + 2 * terms[2]) / (1 + 1 + 2)
    assert losses.token_loss(logits, labels, weights).item() == pytest.approx(expected)
    # a missing example (weight 0) drops out
    expected_first = (terms[0] + terms[1]) / 2
    assert losses.token_loss(logits, labels, torch.tensor([1.0, 0.0])).item() == pytest.approx(expected_first)


def test_model_loss_ignores_placeholders_of_missing_labels(tiny):
    from finetune.model import MultiTaskModel, TaskSpec

    lm, _ = tiny
    torch.manual_seed(0)
    model = MultiTaskModel(lm, [TaskSpec("a", "multiclass", ["x", "y", "z"]), TaskSpec("b", "binary", ["n", "p"],
                                                                                       loss_weight=2.0)],
                           pooling="mean", head_dropout=0.0).eval()
    ids = torch.tensor([[0, 5, 6, 2], [0, 7, 2, 1]])
    attention = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    weights = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0, 1.0])}
    first = model(ids, attention, {"a": torch.tensor([2, 0]), "b": torch.tensor([0.0, 1.0])}, weights)
    second = model(ids, attention, {"a": torch.tensor([2, 1]), "b": torch.tensor([1.0, 1.0])}, weights)
    assert first["loss"].item() == pytest.approx(second["loss"].item())
    by_hand = first["task_losses"]["a"] + 2.0 * first["task_losses"]["b"]
    assert first["loss"].item() == pytest.approx(by_hand.item())


def test_flat_layout_loss_weights_smoothing_and_sample_weights_reach_the_loss(tiny, tmp_path):
    from finetune.config import load_config
    from finetune.data import load_splits, read_examples, tokenize
    from finetune.model import MultiTaskModel
    from finetune.train import task_specs

    lm, tokenizer = tiny
    (tmp_path / "flat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"text": "one two", "labels": [0, 1], "w": [2.0, 0.5]}, {"text": "three", "labels": [2, -1], "w": 3.0},
        {"text": "four five six", "labels": [1, 0], "w": None}]), encoding="utf-8")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "output_name": "flat", "base_model": "tiny-xlmr", "objective": "multitask",
        "datasets": {"d": {"train": {"path": str(tmp_path / "flat.jsonl")},
                           "validation": {"path": str(tmp_path / "flat.jsonl")}}},
        "flat": {"dataset": "d", "label_column": "labels", "group_sizes": [3, 2], "types": ["multiclass", "binary"],
                 "weight_column": "w", "loss_weight": [2.0, 0.5], "label_smoothing": [0.2, 0.1]}}), encoding="utf-8")
    config = load_config(tmp_path / "c.yaml")
    train_splits, _, _ = load_splits(config)
    features = tokenize(read_examples(train_splits, config), config, tokenizer)
    batch = Collator(tokenizer, config.tasks, mlm_probability=None, seed=0)(
        [FeatureDataset(features)[i] for i in range(3)])
    assert batch["task_weights"]["task0"].tolist() == [2.0, 3.0, 1.0]
    assert batch["task_weights"]["task1"].tolist() == [0.5, 0.0, 1.0]
    torch.manual_seed(0)
    model = MultiTaskModel(lm, task_specs(config), head_dropout=0.0).eval()
    out = model(batch["input_ids"], batch["attention_mask"], batch["task_labels"], batch["task_weights"])
    logits = out["logits"]
    by_hand = (2.0 * losses.multiclass_loss(logits["task0"], torch.tensor([0, 2, 1]), torch.tensor([2.0, 3.0, 1.0]),
                                            label_smoothing=0.2)
               + 0.5 * losses.binary_loss(logits["task1"], torch.tensor([1.0, 0.0, 0.0]),
                                          torch.tensor([0.5, 0.0, 1.0]), label_smoothing=0.1))
    assert out["loss"].item() == pytest.approx(by_hand.item())


# ---- metrics ---------------------------------------------------------------------------------

def brute_force_auc(y, s):
    pos = [b for a, b in zip(y, s) if a == 1]
    neg = [b for a, b in zip(y, s) if a == 0]
    pairs = [(p > n) + 0.5 * (p == n) for p in pos for n in neg]
    return sum(pairs) / len(pairs)


def test_metrics_against_references():
    from sklearn.metrics import f1_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.6, y, rng.integers(0, 4, 200))
    assert metrics.macro_f1(y, pred) == pytest.approx(f1_score(y, pred, average="macro"))
    assert metrics.accuracy(y, pred) == pytest.approx(np.mean(y == pred))
    yb = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60), 1)  # ties on purpose
    assert metrics.roc_auc(yb, scores) == pytest.approx(brute_force_auc(yb, scores))
    assert metrics.roc_auc(yb, scores) == pytest.approx(roc_auc_score(yb, scores))
    ym = rng.integers(0, 2, (50, 3))
    sm = rng.random((50, 3))
    assert metrics.roc_auc(ym, sm) == pytest.approx(roc_auc_score(ym, sm, average="macro"))
    pm = (sm >= 0.5).astype(int)
    assert metrics.macro_f1(ym, pm) == pytest.approx(f1_score(ym, pm, average="macro"))


def test_undefined_metrics_are_nan_with_a_warning():
    with pytest.warns(metrics.UndefinedMetricWarning):
        assert math.isnan(metrics.roc_auc([1, 1, 1], [0.2, 0.4, 0.9]))
    with pytest.warns(metrics.UndefinedMetricWarning):
        assert math.isnan(metrics.entity_f1([["O", "O"]], [["O", "O"]]))
    with pytest.warns(metrics.UndefinedMetricWarning):  # the second label is on every row
        assert math.isnan(metrics.roc_auc([[0, 1], [1, 1], [0, 1]], [[0.2, 0.6], [0.7, 0.9], [0.1, 0.3]]))


def test_multiclass_roc_auc_is_one_vs_rest_macro_by_hand():
    y = [0, 1, 2, 2]
    p = [[0.5, 0.3, 0.2], [0.4, 0.4, 0.2], [0.3, 0.3, 0.4], [0.6, 0.1, 0.3]]
    # class 0: its 0.5 beats 0.4 and 0.3, not 0.6 -> 2/3; class 1: 0.4 beats 0.3, 0.3, 0.1 -> 1;
    # class 2: 0.4 and 0.3 beat 0.2 and 0.2 -> 1; macro = (2/3 + 1 + 1) / 3
    out = metrics.task_metrics("multiclass", ["neg", "neu", "pos"], y, p)
    assert out["roc_auc"] == pytest.approx(8 / 9) and "notes" not in out
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 80)
    logits = rng.normal(size=(80, 4)) + 1.5 * np.eye(4)[y]
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = np.mean([brute_force_auc((y == k).astype(int), probabilities[:, k]) for k in range(4)])
    assert metrics.roc_auc(y, probabilities.astype(np.float32)) == pytest.approx(expected, abs=1e-6)


def test_multiclass_roc_auc_with_an_absent_class_is_nan_with_a_note():
    p = [[0.5, 0.3, 0.2], [0.4, 0.4, 0.2], [0.3, 0.3, 0.4], [0.6, 0.1, 0.3]]
    with pytest.warns(metrics.UndefinedMetricWarning):
        out = metrics.task_metrics("multiclass", ["neg", "neu", "pos"], [0, 2, 2, 0], p)
    assert math.isnan(out["roc_auc"]) and out["accuracy"] == 0.75  # argmax 0, 0, 2, 0
    assert out["notes"] == ["roc_auc is nan (undefined, one-vs-rest macro): class(es) 'neu' on none or all of "
                            "the 4 scored rows"]
    with pytest.warns(metrics.UndefinedMetricWarning):
        binary = metrics.task_metrics("binary", ["ok", "toxic"], [1, 1], [0.2, 0.9])
    assert binary["notes"] == ["roc_auc is nan (undefined): all 2 scored rows are 'toxic'"]


def test_sample_weighted_metrics_by_hand():
    # predictions 0, 1, 0, 0: row 2 is wrong but weighs 0
    out = metrics.task_metrics("binary", ["no", "yes"], [0, 1, 1, 0], [0.2, 0.7, 0.4, 0.1],
                               sample_weight=[1.0, 2.0, 0.0, 1.0])
    assert out["n"] == 4 and out["accuracy"] == 0.75 and out["weighted_accuracy"] == 1.0
    assert out["macro_f1"] == pytest.approx((4 / 5 + 2 / 3) / 2) and out["weighted_macro_f1"] == 1.0
    # weighted AUC: positive pairs weighted w_i w_j; the one positive with weight 2 beats both negatives
    assert out["weighted_roc_auc"] == 1.0
    assert "weighted_accuracy" not in metrics.task_metrics("binary", ["no", "yes"], [0, 1], [0.2, 0.7])
    token = metrics.task_metrics("token", ["O", "B-X", "I-X"], [[1, 2, 0], [0, 0]], [[1, 2, 0], [1, 0]],
                                 sample_weight=[3.0, 1.0])
    assert token["accuracy"] == pytest.approx(4 / 5)
    assert token["weighted_accuracy"] == pytest.approx((3 * 3 + 1 * 1) / (3 * 3 + 1 * 2))  # words weigh their row
    assert "weighted_entity_f1" not in token  # seqeval has no sample weights
    agg = metrics.aggregate({"a": out, "b": token})
    assert agg["mean_weighted_accuracy"] == pytest.approx((1.0 + 10 / 11) / 2)


def test_entity_f1_by_hand():
    truth = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-LOC"]]
    # true: PER(0,2) LOC(3,4) ORG(0,1); predicted: PER(0,1) LOC(3,4) ORG(0,1) LOC(1,2): TP = 2
    p, r = 2 / 4, 2 / 3
    assert metrics.entity_f1(truth, pred) == pytest.approx(2 * p * r / (p + r))


def test_task_metrics_and_aggregate():
    out = metrics.task_metrics("binary", ["no", "yes"], [0, 1, 1, 0], [0.2, 0.7, 0.4, 0.1])
    assert out["accuracy"] == 0.75 and out["roc_auc"] == 1.0 and out["primary"] == "macro_f1"
    token = metrics.task_metrics("token", ["O", "B-X", "I-X"], [[1, 2, 0]], [[1, 2, 0]])
    assert token["entity_f1"] == 1.0 and token["accuracy"] == 1.0
    pos = metrics.task_metrics("token", ["NOUN", "VERB"], [[0, 1]], [[0, 0]])
    assert pos["primary"] == "macro_f1" and "entity_f1" not in pos
    agg = metrics.aggregate({"a": out, "b": token})
    assert agg["mean_score"] == pytest.approx((out["macro_f1"] + 1.0) / 2)
    assert agg["std_score"] == pytest.approx(abs(out["macro_f1"] - 1.0) / 2)


# ---- labels ----------------------------------------------------------------------------------

def task(kind, labels=None, **kw):
    return TaskConfig(name="t", type=kind, dataset="d", label_column="c", labels=labels, **kw)


def test_parse_labels():
    multiclass = task("multiclass", ["neg", "neu", "pos"])
    assert [parse_label(v, multiclass) for v in ["pos", 0, "2", 1.0, "", None, float("nan")]] == \
        [2, 0, 2, 1, None, None, None]
    binary = task("binary", ["non_toxic", "toxic"])
    assert [parse_label(v, binary) for v in ["toxic", "0", 1, "true", ""]] == [1.0, 0.0, 1.0, 1.0, None]
    multilabel = task("multilabel", ["anger", "joy", "fear"])
    assert parse_label("anger|fear", multilabel) == [1.0, 0.0, 1.0]
    assert parse_label("none", multilabel) == [0.0, 0.0, 0.0]
    assert parse_label(["joy"], multilabel) == [0.0, 1.0, 0.0]
    assert parse_label([0, 1, 1], multilabel) == [0.0, 1.0, 1.0]
    token = task("token", ["O", "B-PER", "I-PER"])
    assert parse_label('["B-PER", "I-PER", "O"]', token) == [1, 2, 0]
    flat = task("multiclass", ["0", "1", "2"], label_index=1)
    assert parse_label("[0, 2, -1]", flat) == 2
    assert parse_label([0, -1, 1], flat) is None
    for bad, kind in [(3, multiclass), ("happy", multiclass), ("2", binary), ("rage", multilabel),
                      ([1, 0], multilabel), (["B-LOC"], token)]:
        with pytest.raises(ValueError):
            parse_label(bad, kind)
    assert parse_weight("") == 1.0 and parse_weight("0.5") == 0.5
    with pytest.raises(ValueError):
        parse_weight("-1")


def test_weight_lists_give_one_weight_per_task():
    readers = ["a", "b", "c"]
    assert [parse_weight([1.0, 2.0, 1.5], i, readers) for i in range(3)] == [1.0, 2.0, 1.5]
    assert [parse_weight("[1.0, null, 0]", i, readers) for i in range(3)] == [1.0, 1.0, 0.0]
    assert [parse_weight(np.array([0.5, 2.0, 3.0]), i, readers) for i in range(3)] == [0.5, 2.0, 3.0]
    assert parse_weight(2.0, 1, readers) == 2.0  # one number for every task
    with pytest.raises(ValueError, match=r"the weight list has 2 entries but 3 task\(s\) read this column "
                                         r"\(a, b, c\)"):
        parse_weight("[1.0, 2.0]", 0, readers)
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        parse_weight([1.0, -2.0, 1.0], 1, readers)


@pytest.mark.parametrize("kind, labels, good, expected", [
    ("binary", ["ok", "toxic"], "toxic", 1.0),
    ("multiclass", ["neg", "neu", "pos"], "neu", 1),
    ("multilabel", ["anger", "joy"], "joy", [0.0, 1.0]),
    ("token", ["O", "B-LOC"], ["O", "B-LOC"], [0, 1]),
])
def test_empty_null_and_minus_one_mean_missing_for_every_head_type(kind, labels, good, expected):
    explicit = task(kind, labels)
    assert parse_label(good, explicit) == expected
    for missing in ["", "  ", None, float("nan"), np.float32("nan"), pd.NA, -1, -1.0, "-1", np.int64(-1)]:
        assert parse_label(missing, explicit) is None, missing
    flat = task(kind, labels, label_index=1)  # the same inside a list-valued label column
    for cell in ['["x", -1]', '["x", null]', ["x", None], '["x", ""]', "-1", ""]:
        assert parse_label(cell, flat) is None, cell
    assert parse_label(["x", good], flat) == expected


def test_minus_one_is_a_label_when_the_task_names_it():
    sentiment = task("multiclass", ["-1", "0", "1"])
    assert [parse_label(v, sentiment) for v in [-1, "-1", "1", ""]] == [0, 0, 2, None]


def test_token_tags_may_be_missing_word_by_word():
    tags = task("token", ["O", "B-LOC", "I-LOC"])
    assert parse_label('["B-LOC", -1, null, "O"]', tags) == [1, None, None, 0]
    assert parse_label(["O", -1, "I-LOC"], tags) == [0, None, 2]
    assert parse_label([-1, None], tags) is None  # no tag at all: the row has no label for this task
    assert align_word_labels([None, 0, 1, 1, 2, None], [1, None, 0]) == [-100, 1, -100, -100, 0, -100]


def test_align_word_labels_first_subword(tiny):
    _, tokenizer = tiny
    encoded = tokenizer([["Konstantinopoulos", "visited", "Thessaloniki"]], is_split_into_words=True)
    aligned = align_word_labels(encoded.word_ids(0), [1, 0, 3])
    word_ids = encoded.word_ids(0)
    firsts = [i for i, w in enumerate(word_ids) if w is not None and (i == 0 or word_ids[i - 1] != w)]
    assert [aligned[i] for i in firsts] == [1, 0, 3]
    assert all(v == -100 for i, v in enumerate(aligned) if i not in firsts)
    assert len(aligned) > len(firsts) + 2  # the long names are split into several sub-words


# ---- masking ---------------------------------------------------------------------------------

def rows_for(tokenizer, texts, salt=TRAIN_SALT):
    encoded = tokenizer(texts, return_special_tokens_mask=True)
    rows = [{"input_ids": ids, "special_tokens_mask": sp, "labels": {}, "weights": {}, "language": None}
            for ids, sp in zip(encoded["input_ids"], encoded["special_tokens_mask"])]
    return FeatureDataset(rows, salt=salt)


def test_masking_ignores_padding_and_special_tokens_and_is_deterministic(tiny):
    _, tokenizer = tiny
    texts = ["a short one", "a much longer sentence that certainly needs padding for the other one " * 3]
    dataset = rows_for(tokenizer, texts)
    collator = Collator(tokenizer, [], mlm_probability=0.5, seed=3)
    batch = collator([dataset[0], dataset[1]])
    pad = batch["attention_mask"] == 0
    assert pad.any() and torch.all(batch["mlm_labels"][pad] == -100)
    assert torch.all(batch["mlm_input_ids"][pad] == tokenizer.pad_token_id)
    special = torch.isin(batch["input_ids"], torch.tensor(tokenizer.all_special_ids))
    assert torch.all(batch["mlm_labels"][special] == -100)
    labelled = batch["mlm_labels"] != -100
    assert labelled.any() and torch.equal(batch["mlm_labels"][labelled], batch["input_ids"][labelled])
    # the same example and draw gets the same mask alone or in any batch
    alone = collator([dataset[0]])
    n = alone["mlm_labels"].shape[1]
    assert torch.equal(alone["mlm_labels"][0], batch["mlm_labels"][0, :n])
    # a new draw (next epoch) changes the mask; validation examples have their own fixed masks
    redraw = collator([dataset[len(dataset) * 7 + 1]])
    assert not torch.equal(redraw["mlm_labels"][0], batch["mlm_labels"][1])
    evaluation = rows_for(tokenizer, texts, salt=EVAL_SALT)
    assert not torch.equal(collator([evaluation[1]])["mlm_labels"][0], batch["mlm_labels"][1])
    assert torch.equal(collator([evaluation[1]])["mlm_labels"][0], collator([evaluation[1]])["mlm_labels"][0])


def test_masking_rate_is_the_configured_share(tiny):
    _, tokenizer = tiny
    dataset = rows_for(tokenizer, ["the quick brown fox jumps over the lazy dog again and again"] * 200)
    batch = Collator(tokenizer, [], mlm_probability=0.15, seed=0)([dataset[i] for i in range(len(dataset))])
    real = batch["attention_mask"].bool() & ~torch.isin(batch["input_ids"], torch.tensor(tokenizer.all_special_ids))
    share = ((batch["mlm_labels"] != -100) & real).sum().item() / real.sum().item()
    assert 0.13 < share < 0.17
    masked = batch["mlm_labels"] != -100
    replaced = (batch["mlm_input_ids"][masked] == tokenizer.mask_token_id).float().mean().item()
    assert 0.75 < replaced < 0.85  # 80% <mask>, the rest random or kept


# ---- task sampling -------------------------------------------------------------------------

def test_sampling_probabilities():
    assert sampling_probabilities([30, 10], "proportional").tolist() == [0.75, 0.25]
    assert sampling_probabilities([30, 10], "uniform").tolist() == [0.5, 0.5]
    p = sampling_probabilities([90, 10], "temperature", 2.0)
    assert p.tolist() == pytest.approx([3 / 4, 1 / 4])
    assert sampling_probabilities([90, 10], "temperature", 1.0).tolist() == pytest.approx([0.9, 0.1])


def test_sampler_one_task_is_a_permutation_per_epoch():
    sampler = TaskSampler([np.arange(10)], np.array([1.0]), strategy="proportional", batch=5, n_examples=10, seed=1)
    first = [k % 10 for k in sampler]
    assert sorted(first) == list(range(10))
    again = [k % 10 for k in sampler]
    assert first == again
    sampler.set_epoch(1)
    keys = list(sampler)
    assert sorted(k % 10 for k in keys) == list(range(10)) and [k % 10 for k in keys] != first
    assert len({k // 10 for k in keys}) == 10  # every draw has its own masking key
    # a batch that does not divide the data: ceil(10 / 4) = 3 steps, the last one filled up
    short = TaskSampler([np.arange(10)], np.array([1.0]), strategy="proportional", batch=4, n_examples=10, seed=1)
    order = [k % 10 for k in short]
    assert len(order) == 12 and sorted(order[:10]) == list(range(10))


POOLS = {"a": np.arange(0, 50), "b": np.arange(0, 50, 2), "c": np.arange(50, 80), "d": np.arange(80, 87)}


def decoded_steps(sampler: TaskSampler, epoch: int = 0):
    """(task, example indices) of each step, read back through the training dataset's keys."""
    rows = [{"input_ids": [0], "labels": {}, "weights": {}} for _ in range(87)]
    dataset = FeatureDataset(rows, tasks=list(POOLS))
    sampler.set_epoch(epoch)
    items = [dataset[k] for k in sampler]
    steps = [items[i:i + sampler.batch] for i in range(0, len(items), sampler.batch)]
    return [({item["task"] for item in step}, [item["index"] for item in step]) for step in steps]


def test_proportional_epoch_is_one_task_per_step_and_visits_every_example():
    sampler = TaskSampler(list(POOLS.values()), sampling_probabilities([50, 25, 30, 7], "proportional"),
                          strategy="proportional", batch=8, n_examples=87, seed=0)
    assert sampler.steps_per_epoch == 7 + 4 + 4 + 1 and len(sampler) == 16 * 8
    for epoch in (0, 1):
        steps = decoded_steps(sampler, epoch)
        assert all(len(tasks) == 1 for tasks, _ in steps)  # each step trains one task
        for name, pool in POOLS.items():
            mine = [indices for tasks, indices in steps if tasks == {name}]
            assert len(mine) == math.ceil(len(pool) / 8)  # its share of the data
            seen = np.concatenate(mine)
            assert set(seen.tolist()) == set(pool.tolist())  # every labelled example, at least once
            assert len(seen) - len(pool) < 8  # repeats only to fill the last batch
    trained = sampler.trained(16 + 3)
    assert [t["steps"] for t in trained] == [sum(tasks == {n} for tasks, _ in decoded_steps(sampler, 0)) +
                                             sum(tasks == {n} for tasks, _ in decoded_steps(sampler, 1)[:3])
                                             for n in POOLS]
    assert [t["distinct_examples"] for t in sampler.trained(16)] == [50, 25, 30, 7]
    assert all(t["examples"] == 8 * t["steps"] for t in trained)


@pytest.mark.parametrize("strategy, expected", [
    ("uniform", [0.25, 0.25, 0.25, 0.25]),
    ("proportional_draws", [50 / 112, 25 / 112, 30 / 112, 7 / 112]),  # p_t = n_t / sum_s n_s, drawn each step
    # temperature T = 2: p_t = n_t^(1/2) / sum_s n_s^(1/2) for n = (50, 25, 30, 7)
    ("temperature", [math.sqrt(n) / sum(math.sqrt(m) for m in (50, 25, 30, 7)) for n in (50, 25, 30, 7)]),
])
def test_step_shares_follow_the_strategy_within_binomial_noise(strategy, expected):
    from scipy.stats import binom

    p = sampling_probabilities([50, 25, 30, 7], strategy, 2.0)
    assert p.tolist() == pytest.approx(expected)
    sampler = TaskSampler(list(POOLS.values()), p, strategy=strategy, batch=8, n_examples=87, seed=0)
    total = 16 * 250  # 250 epochs
    steps = np.array([t["steps"] for t in sampler.trained(total)])
    assert steps.sum() == total
    # Each task's count is Binomial(total, p_t); two-sided 99.9% interval, Bonferroni over 8 checks.
    low, high = binom.interval(1 - 0.001 / 8, total, expected)
    assert np.all((low <= steps) & (steps <= high)), (steps / total, expected)
    assert all(len(tasks) == 1 for tasks, _ in decoded_steps(sampler))


def test_a_step_trains_the_drawn_task_only(tiny):
    from finetune.model import MultiTaskModel, TaskSpec

    lm, tokenizer = tiny
    tasks = [task("multiclass", ["x", "y", "z"]), TaskConfig(name="u", type="binary", dataset="d",
                                                              label_column="c", labels=["n", "p"])]
    encoded = tokenizer(["one text", "another text"], return_special_tokens_mask=True)
    rows = [{"input_ids": ids, "special_tokens_mask": sp, "language": None, "labels": {"t": 2, "u": 1.0},
             "weights": {"t": 1.0, "u": 1.0}} for ids, sp in zip(encoded["input_ids"], encoded["special_tokens_mask"])]
    dataset = FeatureDataset(rows, tasks=["t", "u"])
    batch = Collator(tokenizer, tasks, mlm_probability=None, seed=0)([dataset[(4 + 1) * 2 + i] for i in range(2)])
    assert set(batch["task_labels"]) == {"u"}  # draw 2, task 1 ("u"), examples 0 and 1
    model = MultiTaskModel(lm, [TaskSpec("t", "multiclass", ["x", "y", "z"]), TaskSpec("u", "binary", ["n", "p"])],
                           head_dropout=0.0)
    batch.pop("example_index")
    out = model(**batch)
    assert set(out["logits"]) == {"u"} and set(out["task_losses"]) == {"u"}
    out["loss"].backward()
    assert all(p.grad is None for p in model.heads["t"].parameters())  # AdamW leaves that head alone
    assert all(p.grad is not None for p in model.heads["u"].parameters())
    model.zero_grad(set_to_none=True)
    validation = Collator(tokenizer, tasks, mlm_probability=None, seed=0)([FeatureDataset(rows)[i] for i in range(2)])
    assert set(validation["task_labels"]) == {"t", "u"}


def test_demo_data_is_what_its_generator_writes():
    import importlib.util
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "finetune" / "demo_data"
    spec = importlib.util.spec_from_file_location("make_demo_data", folder / "make_demo_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, content in module.render().items():
        assert (folder / name).read_text(encoding="utf-8") == content, f"rerun {folder / 'make_demo_data.py'}"


def test_learning_rate_is_reduced_on_a_plateau_and_the_state_round_trips():
    from finetune.trainer import ReduceLROnPlateauCallback

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / 10)
    callback = ReduceLROnPlateauCallback(patience=2, factor=0.5, metric="eval_mean_score", greater_is_better=True)
    for score in [0.5, 0.6, 0.6, 0.55]:  # no improvement twice after 0.6: one reduction
        callback.on_evaluate(None, None, None, metrics={"eval_mean_score": score}, optimizer=optimizer,
                             lr_scheduler=scheduler)
    assert callback.reductions == 1 and scheduler.base_lrs == [0.5] and optimizer.param_groups[0]["lr"] == 0.5
    optimizer.step()
    scheduler.step()  # the schedule continues from the lowered level
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * 0.9)
    restored = ReduceLROnPlateauCallback.from_state(callback.state())
    assert (restored.best, restored.bad_evaluations, restored.reductions) == (0.6, 0, 1)


def test_learning_rate_cuts_stop_at_max_reductions():
    from finetune.trainer import ReduceLROnPlateauCallback

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    callback = ReduceLROnPlateauCallback(patience=1, factor=0.5, metric="eval_loss", max_reductions=2)
    for loss in [1.0, 2.0, 2.0, 2.0, 2.0, 0.5, 0.7]:  # five bad evaluations would give five cuts
        callback.on_evaluate(None, None, None, metrics={"eval_loss": loss}, optimizer=optimizer,
                             lr_scheduler=scheduler)
    assert callback.reductions == 2 and scheduler.base_lrs == [0.25] and optimizer.param_groups[0]["lr"] == 0.25
    restored = ReduceLROnPlateauCallback.from_state(callback.state())
    assert restored.max_reductions == 2 and restored.reductions == 2
