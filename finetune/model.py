"""A shared encoder with one head per task, plus the masked-LM head it came with.

The model wraps a transformers ``AutoModelForMaskedLM`` (encoder + LM head) so that the saved
folder always loads with ``AutoModelForMaskedLM.from_pretrained`` and can be probed. Each task
adds a head on the encoder::

    head(x) = output(layer_norm(gelu(dense(dropout(x)))))

applied to a pooled sentence vector (``cls | mean | max``, :func:`finetune.losses.pool`) for
multiclass (softmax over K), binary (one sigmoid logit) and multilabel (K sigmoid logits) tasks,
and to every token for token tasks. With ``embedding_size = E`` set, the pooled vector first
passes a linear projection ``e = W p + b`` (``W`` of shape E x width) and the sentence heads work
on ``e`` (width E); token heads keep the encoder's width. ``python -m finetune.embed`` writes
``e`` (or ``p``) as the sentence embedding. The total loss is::

    L = sum_t lambda_t L_t + lambda_mlm L_mlm

over the tasks whose labels the batch carries (in training, the one task the step was drawn for;
the other heads are not run, so they get no gradient), with ``L_t`` the task losses of
:mod:`finetune.losses` (examples without a label for task t weigh 0), ``lambda_t`` the tasks'
``loss_weight`` and ``L_mlm`` the mean cross-entropy over the batch's masked tokens, computed by
the LM head at the masked positions only. With ``lambda_mlm = 0`` the
LM head's own weights are frozen (its decoder stays tied to the input embeddings when the model
ties them).

A saved folder holds the masked LM (``config.json``, ``model.safetensors``), the tokenizer, and for
multi-task models ``tasks.json`` plus ``heads.safetensors`` (and ``projection.safetensors`` when
``embedding_size`` is set; ``tasks.json`` then records it; folders without it load as before).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from finetune.losses import IGNORE_INDEX, TASK_LOSSES, pool

HEADS_FILE = "heads.safetensors"
TASKS_FILE = "tasks.json"
PROJECTION_FILE = "projection.safetensors"


@dataclass
class TaskSpec:
    """What a head predicts; saved in ``tasks.json``."""

    name: str
    type: str
    labels: list[str]
    loss_weight: float = 1.0
    label_smoothing: float = 0.0

    @property
    def n_outputs(self) -> int:
        return 1 if self.type == "binary" else len(self.labels)


class TaskHead(nn.Module):
    """dropout -> dense -> GELU -> layer norm -> output."""

    def __init__(self, width: int, n_outputs: int, dropout: float, eps: float = 1e-5):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.output = nn.Linear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.norm(F.gelu(self.dense(self.dropout(x)))))


def lm_head_of(lm: nn.Module) -> nn.Module | None:
    """The masked LM's head module (``lm_head`` for XLM-R, ``cls`` for BERT), or ``None`` if it is split up."""
    heads = [module for name, module in lm.named_children() if name != lm.base_model_prefix]
    return heads[0] if len(heads) == 1 else None


def tied_to_encoder(lm: nn.Module) -> bool:
    """Whether the LM head shares a weight with the encoder (XLM-R's decoder is the embedding matrix)."""
    head = lm_head_of(lm)
    encoder_ids = {id(p) for p in lm.base_model.parameters()}
    return head is not None and any(id(p) in encoder_ids for p in head.parameters())


def set_encoder_dropout(lm: nn.Module, p: float) -> None:
    """Dropout ``p`` everywhere in a transformers model: its config's ``hidden_dropout_prob`` and
    ``attention_probs_dropout_prob`` (BERT, RoBERTa, XLM-R: embeddings, attention probabilities,
    each sub-layer's output), and every ``nn.Dropout`` already built from them (a model reads its
    config's rates only when it is built; attention reads its module's ``p`` at each call)."""
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(lm.config, key):
            setattr(lm.config, key, p)
    for module in lm.modules():
        if isinstance(module, nn.Dropout):
            module.p = p


class MultiTaskModel(nn.Module):
    """Masked LM + task heads; ``forward`` returns a dict with ``loss`` and each task's ``logits``."""

    def __init__(self, lm: nn.Module, tasks: list[TaskSpec], *, pooling: str = "cls", head_dropout: float = 0.1,
                 mlm_weight: float = 0.0, embedding_size: int | None = None):
        super().__init__()
        self.lm = lm
        self.tasks = list(tasks)
        self.pooling = pooling
        self.head_dropout = head_dropout
        self.mlm_weight = mlm_weight
        self.embedding_size = embedding_size
        width = lm.config.hidden_size
        eps = getattr(lm.config, "layer_norm_eps", 1e-5)
        # The projection is made only when asked for, so that models without it draw the same
        # initial head weights from the seed as before it existed.
        self.projection = nn.Linear(width, embedding_size) if embedding_size else None
        sentence_width = embedding_size or width
        self.heads = nn.ModuleDict({t.name: TaskHead(width if t.type == "token" else sentence_width, t.n_outputs,
                                                     head_dropout, eps) for t in self.tasks})
        self.lm_head = lm_head_of(lm)
        if mlm_weight == 0 and self.lm_head is not None:
            encoder_ids = {id(p) for p in self.encoder.parameters()}
            for parameter in self.lm_head.parameters():
                if id(parameter) not in encoder_ids:
                    parameter.requires_grad_(False)

    @property
    def encoder(self) -> nn.Module:
        return self.lm.base_model

    def encode(self, input_ids, attention_mask) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def task_logits(self, input_ids, attention_mask, names=None) -> dict[str, torch.Tensor]:
        """Logits of the tasks in ``names`` (default: all)."""
        tasks = [t for t in self.tasks if names is None or t.name in names]
        hidden = self.encode(input_ids, attention_mask)
        pooled = None
        if any(t.type != "token" for t in tasks):
            pooled = self.project(pool(hidden, attention_mask, self.pooling))
        logits = {}
        for task in tasks:
            out = self.heads[task.name](hidden if task.type == "token" else pooled)
            logits[task.name] = out.squeeze(-1) if task.type == "binary" else out
        return logits

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        """``W p + b`` with the ``embedding_size`` projection, or ``p`` itself when the model has none."""
        return pooled if self.projection is None else self.projection(pooled)

    def mlm_loss_terms(self, mlm_input_ids, attention_mask, mlm_labels) -> tuple[torch.Tensor, torch.Tensor]:
        """Per example: (sum of cross-entropies over its masked tokens, their number), shapes (n,).

        Logits are computed only where ``labels != -100``.
        """
        selected = mlm_labels != IGNORE_INDEX
        if self.lm_head is not None:
            hidden = self.encode(mlm_input_ids, attention_mask)
            logits = self.lm_head(hidden[selected])
        else:
            logits = self.lm(input_ids=mlm_input_ids, attention_mask=attention_mask).logits[selected]
        per_token = F.cross_entropy(logits.float(), mlm_labels[selected], reduction="none")
        rows = selected.nonzero()[:, 0]
        sums = torch.zeros(len(mlm_labels), dtype=per_token.dtype, device=per_token.device).index_add(0, rows, per_token)
        return sums, selected.sum(dim=1)

    def forward(self, input_ids=None, attention_mask=None, task_labels=None, task_weights=None,
                mlm_input_ids=None, mlm_labels=None, example_index=None) -> dict:
        out: dict = {"logits": {}, "task_losses": {}}
        total = None
        if self.tasks:
            # A training batch carries the labels of its drawn task only: the other heads stay out
            # of the graph (no gradient, no optimizer update), as in MT-DNN.
            out["logits"] = self.task_logits(input_ids, attention_mask,
                                             None if task_labels is None else set(task_labels))
            for task in self.tasks:
                if task_labels is not None and task.name in task_labels:
                    loss = TASK_LOSSES[task.type](out["logits"][task.name], task_labels[task.name],
                                                  task_weights[task.name], label_smoothing=task.label_smoothing)
                    out["task_losses"][task.name] = loss.detach()
                    total = task.loss_weight * loss if total is None else total + task.loss_weight * loss
        if self.mlm_weight > 0 and mlm_labels is not None:
            sums, counts = self.mlm_loss_terms(mlm_input_ids, attention_mask, mlm_labels)
            out["mlm_example_loss_sums"], out["mlm_example_counts"] = sums.detach(), counts.detach()
            mlm = sums.sum() / counts.sum().clamp_min(1)
            total = self.mlm_weight * mlm if total is None else total + self.mlm_weight * mlm
        if total is not None:
            out["loss"] = total
        return out

    # ---- saving and loading ----

    def save(self, folder: Path) -> None:
        """The masked LM via ``save_pretrained``; heads and task specs next to it."""
        import safetensors.torch

        folder = Path(folder)
        self.lm.save_pretrained(folder)
        if self.tasks:
            state = {k: v.detach().cpu().contiguous() for k, v in self.heads.state_dict().items()}
            safetensors.torch.save_file(state, str(folder / HEADS_FILE), metadata={"format": "pt"})
            spec = {"pooling": self.pooling, "head_dropout": self.head_dropout, "mlm_weight": self.mlm_weight,
                    "tasks": [asdict(t) for t in self.tasks]}
            if self.projection is not None:
                spec["embedding_size"] = self.embedding_size
                projection = {k: v.detach().cpu().contiguous() for k, v in self.projection.state_dict().items()}
                safetensors.torch.save_file(projection, str(folder / PROJECTION_FILE), metadata={"format": "pt"})
            (folder / TASKS_FILE).write_text(json.dumps(spec, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    def load_weights(self, folder: Path) -> None:
        """Load a folder written by :meth:`save` into this model (same architecture and tasks)."""
        import safetensors.torch
        from transformers.trainer_utils import load_sharded_checkpoint

        folder = Path(folder)
        single = folder / "model.safetensors"
        if single.is_file():
            result = self.lm.load_state_dict(safetensors.torch.load_file(str(single), device="cpu"), strict=False)
            untied = set(result.missing_keys) - tied_keys(self.lm)
            if untied or result.unexpected_keys:
                raise RuntimeError(f"{single} does not match the model: missing {sorted(untied)[:5]}, "
                                   f"unexpected {result.unexpected_keys[:5]}")
        else:
            load_sharded_checkpoint(self.lm, str(folder), strict=False)
        if self.tasks:
            state = safetensors.torch.load_file(str(folder / HEADS_FILE), device="cpu")
            self.heads.load_state_dict(state, strict=True)
        if self.projection is not None:
            self.projection.load_state_dict(
                safetensors.torch.load_file(str(folder / PROJECTION_FILE), device="cpu"), strict=True)


def tied_keys(module: nn.Module) -> set[str]:
    """State-dict keys whose tensor is shared with an earlier key (``save_pretrained`` stores it once)."""
    seen, tied = set(), set()
    for key, tensor in module.state_dict(keep_vars=True).items():
        if id(tensor) in seen:
            tied.add(key)
        seen.add(id(tensor))
    return tied | {key for key in getattr(module, "_tied_weights_keys", None) or {}}


def read_task_specs(folder: Path) -> dict | None:
    """``tasks.json`` of a saved multi-task model, or ``None`` for a plain masked LM."""
    path = Path(folder) / TASKS_FILE
    if not path.is_file():
        return None
    spec = json.loads(path.read_text(encoding="utf-8"))
    spec["tasks"] = [TaskSpec(**t) for t in spec["tasks"]]
    return spec


def load_multitask(folder: Path) -> tuple[MultiTaskModel, object]:
    """(model in eval mode, tokenizer) from a folder written by ``finetune.train``."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    spec = read_task_specs(folder) or {"tasks": [], "pooling": "cls", "head_dropout": 0.0, "mlm_weight": 0.0}
    lm = AutoModelForMaskedLM.from_pretrained(folder)
    model = MultiTaskModel(lm, spec["tasks"], pooling=spec["pooling"], head_dropout=spec["head_dropout"],
                           embedding_size=spec.get("embedding_size"))  # absent in folders written before it
    import safetensors.torch

    if spec["tasks"]:
        model.heads.load_state_dict(safetensors.torch.load_file(str(Path(folder) / HEADS_FILE)), strict=True)
    if model.projection is not None:
        model.projection.load_state_dict(safetensors.torch.load_file(str(Path(folder) / PROJECTION_FILE)),
                                         strict=True)
    return model.eval(), AutoTokenizer.from_pretrained(folder)


def task_predictions(task: TaskSpec, logits: torch.Tensor) -> torch.Tensor:
    """Probabilities (softmax for multiclass, sigmoid for binary and multilabel) or, for token tasks,
    the argmax tag of every token."""
    if task.type == "multiclass":
        return logits.float().softmax(-1)
    if task.type in ("binary", "multilabel"):
        return logits.float().sigmoid()
    return logits.argmax(-1)
