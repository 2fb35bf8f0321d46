"""Fine-tune masked LMs, per language or as one multi-task model, and register them for probing.

* :mod:`finetune.config` - the YAML config (dataclasses; unknown keys are refused).
* :mod:`finetune.data` - reading local files or hub data sets, label checks, tokenisation,
  deterministic masking and task sampling.
* :mod:`finetune.losses`, :mod:`finetune.metrics` - plain functions, formulas in the docstrings.
* :mod:`finetune.model` - a shared encoder with one head per task and an optional LM head.
* :mod:`finetune.trainer` - the transformers ``Trainer`` with multi-task evaluation and saving.
* :mod:`finetune.launch` - a user error in several launched processes: one line, from local rank 0.
* ``python -m finetune.train`` writes ``results/models/<name>/``; ``python -m finetune.predict``
  labels new texts with a multi-task model.
"""
