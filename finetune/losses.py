"""Pooling and masked, weighted, label-smoothed losses for the task heads (plain functions).

Notation: ``w_i >= 0`` is example ``i``'s weight for the task (0 when its label is missing),
``eps`` the label smoothing, ``K`` the number of classes, ``sigma`` the logistic function. Every
task loss is a weighted mean over the examples that carry a label::

    L = sum_i w_i * l_i / sum_i w_i        (L = 0, with zero gradient, when sum_i w_i = 0)

so a missing label contributes nothing, whatever placeholder the batch holds for it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """One vector per sequence from token states ``hidden`` of shape (batch, length, width).

    Parameters
    ----------
    hidden : tensor of shape (n, length, width)
    attention_mask : tensor of shape (n, length), 1 for real tokens and 0 for padding
    how : {'cls', 'mean', 'max'}
        ``cls``: ``h_0`` (the first token); ``mean``: ``sum_j m_j h_j / sum_j m_j``;
        ``max``: per dimension ``max_{j: m_j = 1} h_j``. Padding never enters ``mean`` or ``max``.

    Examples
    --------
    >>> h = torch.tensor([[[1., 4.], [3., 0.], [9., 9.]]])
    >>> m = torch.tensor([[1, 1, 0]])
    >>> pool(h, m, "cls").tolist(), pool(h, m, "mean").tolist(), pool(h, m, "max").tolist()
    ([[1.0, 4.0]], [[2.0, 2.0]], [[3.0, 4.0]])
    """
    if how == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if how == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    if how == "max":
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(1).values
    raise ValueError(f"unknown pooling {how!r}; expected cls, mean or max")


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i v_i / sum_i w_i``; 0 (still part of the graph) when all weights are 0.

    >>> weighted_mean(torch.tensor([1., 5., 100.]), torch.tensor([1., 3., 0.])).item()
    4.0
    """
    total = weights.sum()
    numerator = (values * weights).sum()
    return torch.where(total > 0, numerator / total.clamp_min(torch.finfo(values.dtype).tiny), numerator * 0.0)


def smooth_binary(targets: torch.Tensor, eps: float) -> torch.Tensor:
    """Label smoothing for 0/1 targets: ``y' = y (1 - eps) + eps / 2``."""
    return targets * (1.0 - eps) + eps / 2.0


def multiclass_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, *,
                    label_smoothing: float = 0.0) -> torch.Tensor:
    """Softmax cross-entropy with label smoothing, weighted mean over examples.

    ``l_i = (1 - eps) * (-log p_{i, y_i}) + (eps / K) * sum_k (-log p_{i,k})``, with
    ``p_i = softmax(z_i)``; logits of shape (n, K), labels (n,), weights (n,).
    """
    return weighted_mean(_multiclass_terms(logits, labels, label_smoothing), weights)


def _multiclass_terms(logits, labels, label_smoothing):
    return F.cross_entropy(logits.float(), labels, reduction="none", label_smoothing=label_smoothing)


def binary_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, *,
                label_smoothing: float = 0.0) -> torch.Tensor:
    """Sigmoid cross-entropy on one logit per example, weighted mean.

    ``l_i = -[y'_i log sigma(z_i) + (1 - y'_i) log(1 - sigma(z_i))]``, ``y' = y (1 - eps) + eps / 2``;
    logits and targets of shape (n,).
    """
    return weighted_mean(_binary_terms(logits, targets, label_smoothing), weights)


def _binary_terms(logits, targets, label_smoothing):
    return F.binary_cross_entropy_with_logits(logits.float(), smooth_binary(targets, label_smoothing),
                                              reduction="none")


def multilabel_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, *,
                    label_smoothing: float = 0.0) -> torch.Tensor:
    """Sigmoid cross-entropy per label, averaged over the ``K`` labels, then weighted mean.

    ``l_i = (1 / K) sum_k BCE(z_ik, y'_ik)``; logits and multi-hot targets of shape (n, K).
    """
    return weighted_mean(_binary_terms(logits, targets, label_smoothing).mean(dim=1), weights)


def token_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, *,
               label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-token softmax cross-entropy, each token weighted by its example's weight.

    ``L = sum_{i,j} w_i c_ij l_ij / sum_{i,j} w_i c_ij``, where ``c_ij = 1`` when token ``j``
    carries a label (a word's first sub-word) and 0 otherwise (``labels == -100``: other
    sub-words, special tokens, padding); ``l_ij`` as in :func:`multiclass_loss`. Logits of shape
    (n, length, K), labels (n, length), weights (n,).
    """
    per_token = _token_terms(logits, labels, label_smoothing)
    token_weights = (weights[:, None] * (labels != IGNORE_INDEX)).reshape(-1).to(per_token.dtype)
    return weighted_mean(per_token.reshape(-1), token_weights)


def _token_terms(logits, labels, label_smoothing):
    """Per-token cross-entropy of shape (n, length); 0 where ``labels == -100``."""
    n, length, k = logits.shape
    per_token = F.cross_entropy(logits.float().reshape(-1, k), labels.reshape(-1), reduction="none",
                                ignore_index=IGNORE_INDEX, label_smoothing=label_smoothing)
    return per_token.reshape(n, length)


TASK_LOSSES = {"multiclass": multiclass_loss, "binary": binary_loss, "multilabel": multilabel_loss,
               "token": token_loss}


def example_loss_terms(kind: str, logits: torch.Tensor, labels: torch.Tensor, *,
                       label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example ``i``: (``s_i``, ``c_i``), the sum of its loss terms and their number, shapes (n,).

    Sequence tasks: ``s_i = l_i`` and ``c_i = 1``; token tasks: ``s_i = sum_j c_ij l_ij`` and
    ``c_i = sum_j c_ij`` (its labelled tokens), with ``l`` as in the task's loss above. So every
    task loss is ``sum_i w_i s_i / sum_i w_i c_i``, and the validation loss of a task over a whole
    split, ``sum_i s_i / sum_i c_i`` over its labelled examples, does not depend on batching.

    >>> s, c = example_loss_terms("token", torch.zeros(1, 3, 2), torch.tensor([[-100, 0, 1]]))
    >>> round(s.item(), 4), c.item()   # two labelled tokens, each -log(1/2)
    (1.3863, 2)
    """
    if kind == "multiclass":
        sums = _multiclass_terms(logits, labels, label_smoothing)
    elif kind == "binary":
        sums = _binary_terms(logits, labels, label_smoothing)
    elif kind == "multilabel":
        sums = _binary_terms(logits, labels, label_smoothing).mean(dim=1)
    elif kind == "token":
        return _token_terms(logits, labels, label_smoothing).sum(dim=1), (labels != IGNORE_INDEX).sum(dim=1)
    else:
        raise ValueError(f"unknown task type {kind!r}")
    return sums, torch.ones_like(sums, dtype=torch.long)
