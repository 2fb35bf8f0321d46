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
    per_example = F.cross_entropy(logits.float(), labels, reduction="none", label_smoothing=label_smoothing)
    return weighted_mean(per_example, weights)


def binary_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, *,
                label_smoothing: float = 0.0) -> torch.Tensor:
    """Sigmoid cross-entropy on one logit per example, weighted mean.

    ``l_i = -[y'_i log sigma(z_i) + (1 - y'_i) log(1 - sigma(z_i))]``, ``y' = y (1 - eps) + eps / 2``;
    logits and targets of shape (n,).
    """
    per_example = F.binary_cross_entropy_with_logits(logits.float(), smooth_binary(targets, label_smoothing),
                                                     reduction="none")
    return weighted_mean(per_example, weights)


def multilabel_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, *,
                    label_smoothing: float = 0.0) -> torch.Tensor:
    """Sigmoid cross-entropy per label, averaged over the ``K`` labels, then weighted mean.

    ``l_i = (1 / K) sum_k BCE(z_ik, y'_ik)``; logits and multi-hot targets of shape (n, K).
    """
    per_label = F.binary_cross_entropy_with_logits(logits.float(), smooth_binary(targets, label_smoothing),
                                                   reduction="none")
    return weighted_mean(per_label.mean(dim=1), weights)


def token_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, *,
               label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-token softmax cross-entropy, each token weighted by its example's weight.

    ``L = sum_{i,j} w_i c_ij l_ij / sum_{i,j} w_i c_ij``, where ``c_ij = 1`` when token ``j``
    carries a label (a word's first sub-word) and 0 otherwise (``labels == -100``: other
    sub-words, special tokens, padding); ``l_ij`` as in :func:`multiclass_loss`. Logits of shape
    (n, length, K), labels (n, length), weights (n,).
    """
    n, length, k = logits.shape
    per_token = F.cross_entropy(logits.float().reshape(-1, k), labels.reshape(-1), reduction="none",
                                ignore_index=IGNORE_INDEX, label_smoothing=label_smoothing)
    token_weights = (weights[:, None] * (labels != IGNORE_INDEX)).reshape(-1).to(per_token.dtype)
    return weighted_mean(per_token, token_weights)


TASK_LOSSES = {"multiclass": multiclass_loss, "binary": binary_loss, "multilabel": multilabel_loss,
               "token": token_loss}
