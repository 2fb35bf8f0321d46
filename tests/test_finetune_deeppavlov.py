"""DeepPavlov's multi-task recipe, faithfully: a constant learning rate between cuts, the best
checkpoint restored before each cut, each step's task drawn at random in proportion to the data,
and the encoder's dropout set from the config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from finetune import train
from finetune.config import load_config
from finetune.data import TaskSampler, sampling_probabilities
from test_finetune_train import synthetic_config, write_synthetic

CONFIGS = Path(__file__).resolve().parent.parent / "finetune" / "configs"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deeppavlov-data")
    write_synthetic(folder)
    return folder


def test_deeppavlov_config_uses_the_faithful_options():
    config = load_config(CONFIGS / "multitask_deeppavlov.yaml")
    assert (config.lr_schedule, config.warmup, config.restore_best_on_lr_cut) == ("constant", 0, True)
    assert config.task_sampling == "proportional_draws" and config.encoder_dropout is None
    args = train.training_arguments(config, Path("unused"))
    assert args.lr_scheduler_type == "constant_with_warmup" and args.get_warmup_steps(1000) == 0


@pytest.mark.parametrize("overrides, expected", [
    ({"lr_schedule": "cosine"}, "--lr_schedule: unknown value 'cosine'; expected one of linear, constant"),
    ({"encoder_dropout": 1.0}, "--encoder_dropout: must lie in [0, 1) (or null for the base model's own)"),
    ({"task_sampling": "random"}, "--task_sampling: unknown value 'random'; expected one of proportional, "
                                  "proportional_draws, uniform, temperature"),
    ({"restore_best_on_lr_cut": "maybe"}, "--restore_best_on_lr_cut: expected bool, got 'maybe'"),
])
def test_bad_values_of_the_new_keys_are_refused(overrides, expected):
    with pytest.raises(Exception) as caught:
        load_config(CONFIGS / "multitask_deeppavlov.yaml", overrides)
    assert str(caught.value) == expected


# ---- (c) each step's task drawn at random in proportion to the data --------------------------

def test_random_draws_are_seeded_and_follow_the_data_proportions():
    pools = [np.arange(0, 30), np.arange(30, 40)]  # n = (30, 10): p = (3/4, 1/4) by hand
    p = sampling_probabilities([30, 10], "proportional_draws")
    assert p.tolist() == [0.75, 0.25]

    def sampler(seed):
        return TaskSampler(pools, p, strategy="proportional_draws", batch=5, n_examples=40, seed=seed)

    a, b, other = sampler(7), sampler(7), sampler(8)
    assert a.steps_per_epoch == 6 + 2  # the epoch of the quotas: sum_t ceil(n_t / 5)
    plans = [a.plan(e)[0] for e in range(400)]
    assert all(np.array_equal(x, b.plan(e)[0]) for e, x in enumerate(plans))  # the same seed: the same draws
    assert any(not np.array_equal(x, other.plan(e)[0]) for e, x in enumerate(plans))
    counts = [int((plan == 1).sum()) for plan in plans]
    assert len(set(counts)) > 1  # drawn, not quotas: the count of task 1 varies from epoch to epoch
    # Deterministic check of the draw: numpy's choice(p) is the inverse CDF of one uniform per step,
    # task 1 exactly when u >= 3/4; the uniforms are the generator's first draws after its seed.
    for epoch in (0, 1, 2):
        u = np.random.default_rng([7, epoch]).random(a.steps_per_epoch)
        assert a.plan(epoch)[0].tolist() == (u >= 0.75).astype(int).tolist()
    # and, as a sanity check on many epochs, the share of task 1 is near p_1 = 1/4 (3200 steps: sd 0.0077)
    assert abs(sum(counts) / (400 * 8) - 0.25) < 0.04


# ---- (d) encoder dropout ---------------------------------------------------------------------

def forward_twice(model, tokenizer, features) -> tuple:
    from finetune.data import Collator

    batch = Collator(tokenizer, [], mlm_probability=None, seed=0)(
        [{**f, "index": i, "draw": 0} for i, f in enumerate(features[:4])])
    model.train()
    with torch.no_grad():
        outs = [model.encode(batch["input_ids"], batch["attention_mask"]) for _ in range(2)]
    return outs


@pytest.mark.parametrize("dropout", [0.0, 0.3, None])
def test_encoder_dropout_reaches_the_model(models_dir, tiny_dir, data_dir, dropout):
    config = load_config(synthetic_config(data_dir, output_name="tiny-dropout", encoder_dropout=dropout,
                                          max_train_examples=20, max_eval_examples=8))
    prepared = train.Prepared(config)
    own = prepared.base.model.config.hidden_dropout_prob
    trainer = train.build_trainer(config, prepared, train.training_arguments(config, data_dir / "unused"))
    model = trainer.model
    expected = own if dropout is None else dropout
    assert own > 0  # tiny-xlmr's own dropout, so that None differs from 0
    assert model.lm.config.hidden_dropout_prob == model.lm.config.attention_probs_dropout_prob == expected
    rates = {m.p for m in model.lm.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {expected}
    first, second = forward_twice(model, prepared.base.tokenizer, prepared.train_features)
    if dropout == 0.0:
        assert torch.equal(first, second)  # no dropout left in the encoder: train mode is deterministic
    else:
        assert not torch.equal(first, second)


# ---- (a), (b): a constant rate, halved at a cut, the best checkpoint restored first --------

class ScriptedMetric(TrainerCallback):
    """Replace the selection metric by scripted values (runs before the plateau callback)."""

    def __init__(self, values: dict[int, float]):
        self.values = values

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics["eval_loss"] = self.values[state.global_step]


class Recorder(TrainerCallback):
    """Rates applied at each update; weights and optimizer state at each save; both right after each cut."""

    def __init__(self):
        self.rates, self.saved, self.after_cut = {}, {}, {}

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.rates[state.global_step + 1] = optimizer.param_groups[0]["lr"]

    @staticmethod
    def snapshot(model, optimizer):
        weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        moments = {k: {n: t.clone() for n, t in v.items() if torch.is_tensor(t)}
                   for k, v in optimizer.state_dict()["state"].items()}
        return weights, moments

    def on_save(self, args, state, control, model=None, optimizer=None, **kwargs):
        self.saved[state.global_step] = self.snapshot(model, optimizer)

    def on_evaluate(self, args, state, control, model=None, optimizer=None, **kwargs):
        self.after_cut[state.global_step] = self.snapshot(model, optimizer)


def same_state(a, b) -> bool:
    weights_a, moments_a = a
    weights_b, moments_b = b
    return (weights_a.keys() == weights_b.keys() and all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
            and moments_a.keys() == moments_b.keys()
            and all(torch.equal(moments_a[k][n], moments_b[k][n]) for k in moments_a for n in moments_a[k]))


@pytest.mark.parametrize("restore", [True, False])
def test_constant_rate_halves_at_each_cut_after_restoring_the_best_checkpoint(models_dir, tiny_dir, data_dir,
                                                                             tmp_path, restore):
    lr = 1e-3
    config = load_config(synthetic_config(
        data_dir, output_name="tiny-cuts", lr_schedule="constant", warmup=0, learning_rate=lr,
        restore_best_on_lr_cut=restore, lr_reduce_patience=1, lr_reduce_factor=0.5, selection_metric="loss",
        eval_steps=2, max_steps=10, logging_steps=1, early_stopping_patience=0, max_train_examples=40,
        max_eval_examples=8, batch_size=4))
    prepared = train.Prepared(config)
    args = train.training_arguments(config, tmp_path / "checkpoints")
    recorder = Recorder()
    trainer = train.build_trainer(config, prepared, args, callbacks=[recorder])
    # eval losses: best at 2, worse at 4 (cut 1), best at 6, worse at 8 (cut 2), better at 10
    trainer.callback_handler.callbacks.insert(0, ScriptedMetric({2: 1.0, 4: 2.0, 6: 0.5, 8: 3.0, 10: 0.4}))
    trainer.train()
    plateau = next(cb for cb in trainer.callback_handler.callbacks if type(cb).__name__ == "ReduceLROnPlateauCallback")
    assert plateau.reductions == 2
    # constant between cuts, halved from the update after each cut (cuts after updates 4 and 8)
    assert recorder.rates == pytest.approx({s: lr * 0.5 ** ((s > 4) + (s > 8)) for s in range(1, 11)}, rel=1e-12)
    # right after a cut the model and AdamW's moments are the best checkpoint's (steps 2, then 6)
    for cut, best in ((4, 2), (8, 6)):
        assert same_state(recorder.after_cut[cut], recorder.saved[best]) is restore
    assert plateau.restored == ([2, 6] if restore else [])
