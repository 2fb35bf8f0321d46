"""Batched masked-LM scoring: top-k completions of the mask over the full vocabulary.

For each sentence the encoder runs once (sentences sorted by length and batched), the LM head
runs only at the target mask position, and a log-softmax over the full vocabulary gives
``log p(w | sentence)`` in nats for every token ``w``.

Scores (``scoring``):

* ``raw``: ``score(w) = log p(w | s)``; the top-k is taken over the full vocabulary.
* ``typicality``: ``score(w) = log p(w | s) - log p(w | s_prior)``, where ``s_prior`` is the same
  template with the group slot masked too (computed once per distinct prior sentence, i.e. per
  template and grammatical form, over the full vocabulary). A token that is rare everywhere has a
  tiny prior and could get a large ratio from noise, so candidates are first restricted to the
  ``typicality_pool`` most probable tokens under ``p(w | s)`` (default 1000, at least ``top_k``),
  then ranked by typicality.

Memory does not grow with the number of sentences: results go into ``(n, k)`` arrays allocated
once per call, the log-softmax of every batch is written into one reused ``(batch, vocab)``
buffer, and nothing vocabulary-sized outlives its batch. (Small arrays kept per batch would land
inside the freed vocabulary-sized blocks and stop the heap from shrinking: a full run grew by
~32 MB a batch that way.) Batches are always padded on the right, whatever the tokenizer's
``padding_side``.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from probing.errors import UserError

logger = logging.getLogger(__name__)

SCORINGS = ("raw", "typicality")
DEFAULT_TYPICALITY_POOL = 1000


@dataclass
class TopK:
    """The top-k candidates of one sentence, best first."""

    token_ids: np.ndarray  # (k,) int32
    log_probs: np.ndarray  # (k,) float32, log p(w | s) in nats
    scores: np.ndarray  # (k,) float32, the ranking score


@dataclass
class TopKTable:
    """The top-k candidates of ``n`` sentences, in input order, best first; ``table[i]`` is a :class:`TopK`."""

    token_ids: np.ndarray  # (n, k) int32
    log_probs: np.ndarray  # (n, k) float32, log p(w | s) in nats
    scores: np.ndarray  # (n, k) float32, the ranking score

    @classmethod
    def empty(cls, n: int, k: int) -> "TopKTable":
        return cls(np.zeros((n, k), dtype=np.int32), np.zeros((n, k), dtype=np.float32),
                   np.zeros((n, k), dtype=np.float32))

    def __len__(self) -> int:
        return len(self.token_ids)

    def __getitem__(self, row):
        """A :class:`TopK` for an integer, a :class:`TopKTable` for a slice."""
        if isinstance(row, slice):
            return TopKTable(self.token_ids[row], self.log_probs[row], self.scores[row])
        return TopK(self.token_ids[row], self.log_probs[row], self.scores[row])

    def __iter__(self):
        return (self[row] for row in range(len(self)))


TOP_K_STRIPES = 16
VOCAB_CHUNK = 16_384  # output rows per packed chunk of a vocabulary-sized layer (4 MB at batch 64)


def top_k_rows(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.topk(values, k, dim=-1)`` (sorted, best first) of a ``(n, V)`` tensor, faster for
    ``k << V``: the same values; ids may differ only among exactly tied values.

    Each row's first ``S * W`` entries (``S`` = ``TOP_K_STRIPES``, ``W = V // S``) are split into
    ``W`` disjoint sets ``B_c = {c, c + W, ..., c + (S - 1) W}``; the ``V - S W < S`` left over
    are candidates always. Let ``v_k`` be a row's k-th largest value. Every top-k entry lies in a set whose
    maximum is ``>= v_k``, and at most ``k`` sets have a maximum ``>= v_k`` (each such maximum is
    itself one of the row's top-k entries, and the sets are disjoint), so the ``k`` sets with the
    largest maxima hold the whole top-k. The exact top-k is then taken over those ``k S``
    candidates. Cost: one pass of ``max`` over the row instead of a selection over ``V``.
    Falls back to ``torch.topk`` when ``W < 4 k``.
    """
    rows, width_total = values.shape
    width = width_total // TOP_K_STRIPES
    if width < 4 * k:
        return torch.topk(values, k, dim=-1)
    covered = TOP_K_STRIPES * width
    maxima = values[:, :covered].view(rows, TOP_K_STRIPES, width).amax(dim=1)
    _, sets = torch.topk(maxima, k, dim=-1, sorted=False)
    offsets = width * torch.arange(TOP_K_STRIPES, device=values.device)
    candidates = (sets.unsqueeze(-1) + offsets).view(rows, -1)
    if covered < width_total:
        leftover = torch.arange(covered, width_total, device=values.device).expand(rows, -1)
        candidates = torch.cat([candidates, leftover], dim=1)
    top, where = torch.topk(torch.gather(values, 1, candidates), k, dim=-1)
    return top, torch.gather(candidates, 1, where)


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available; use --device cpu or auto")
    if device not in {"cpu", "cuda"}:
        raise UserError(f"--device {device!r} is not one of auto, cpu, cuda")
    return torch.device(device)


def split_lm_head(model) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """``(encoder, head)`` of a masked LM, so the head can run at the mask positions only.

    Works for models whose only child besides ``base_model`` is the LM head (XLM-R, RoBERTa,
    BERT, ...). Returns ``head=None`` when the split is not clear; the caller then runs the whole
    model and picks the mask positions from its logits.
    """
    encoder = model.base_model
    others = [module for _, module in model.named_children() if module is not encoder]
    if encoder is model or len(others) != 1:
        return model, None
    return encoder, others[0]


class _OneDNNLinear(torch.nn.Linear):
    """An ``nn.Linear`` whose fp32 CPU forward calls oneDNN instead of the default BLAS (MKL).

    ``packed_weight``, when set, is the weight reordered once into oneDNN's blocked layout, which
    the GEMM otherwise redoes on every call (same values: the results are bitwise identical).
    ``packed_chunks``, for a vocabulary-sized layer, holds the same in blocks of
    ``VOCAB_CHUNK`` output rows, each computed on its own and copied into the output: a
    ``(64, 250002)`` output is 64 MB, which every call would otherwise map and fault in afresh
    (~20 ms), while a chunk's 4 MB come from the heap (bitwise the same numbers). With
    ``reuse_output`` the layer writes every call into one kept tensor and returns a view of it,
    valid until the next call (for a caller that consumes the result at once, as the engine does).
    """

    packed_weight: torch.Tensor | None = None
    packed_chunks: list[tuple[int, int, torch.Tensor, torch.Tensor | None]] | None = None
    reuse_output: bool = False
    _output: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dtype != torch.float32 or x.device.type != "cpu" or self.weight.dtype != torch.float32
                or (torch.is_grad_enabled() and self.weight.requires_grad)):
            return super().forward(x)  # the op has no autograd; also any dtype/device it does not cover
        if self.packed_chunks is not None:
            return self._chunked(x)
        weight = self.packed_weight if self.packed_weight is not None else self.weight
        return torch.ops.mkldnn._linear_pointwise(x, weight, self.bias, "none", [], "")

    def _chunked(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        out = self._output_rows(len(rows))
        for start, stop, weight, bias in self.packed_chunks:
            out[:, start:stop] = torch.ops.mkldnn._linear_pointwise(rows, weight, bias, "none", [], "")
        return out.view(*x.shape[:-1], self.out_features)

    def _output_rows(self, rows: int) -> torch.Tensor:
        if not self.reuse_output:
            return torch.empty((rows, self.out_features), dtype=torch.float32)
        if self._output is None or self._output.shape[0] < rows:
            self._output = None  # free the old one before allocating
            self._output = torch.empty((rows, self.out_features), dtype=torch.float32)
        return self._output[:rows]


def onednn_linear_available() -> bool:
    """Whether this torch build can run fp32 Linear layers through oneDNN (mkldnn) on the CPU."""
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return False
    try:
        out = torch.ops.mkldnn._linear_pointwise(torch.ones(2, 3), torch.ones(4, 3), torch.zeros(4), "none", [], "")
    except (AttributeError, NotImplementedError, RuntimeError):
        return False
    return out.shape == (2, 4) and bool((out == 3).all())


def _structural_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module``'s structure that shares all its tensors (parameters, buffers, packed
    weights): changing the copy's modules leaves ``module`` as it was, at no memory cost."""
    tensors = [*module.parameters(), *module.buffers()]
    for m in module.modules():
        if getattr(m, "packed_weight", None) is not None:
            tensors.append(m.packed_weight)
        for _, _, weight, bias in getattr(m, "packed_chunks", None) or ():
            tensors += [weight] + ([bias] if bias is not None else [])
    return copy.deepcopy(module, memo={id(t): t for t in tensors})


def with_onednn_linears(module: torch.nn.Module, *, pack_rows: int | None = None,
                        pack_max_out: int = 100_000, wide_pack_rows: int | None = None) -> torch.nn.Module:
    """A copy of ``module`` whose ``nn.Linear`` layers run through oneDNN in fp32 on the CPU.

    Why: on x86 CPUs PyTorch runs fp32 ``nn.Linear`` with MKL. oneDNN's fp32 GEMM
    (``torch.ops.mkldnn._linear_pointwise``) also computes in plain fp32 (no bf16/tf32
    down-conversion); on the 2-core AMD EPYC (Zen 4) it was measured on, it is ~10% faster on the
    encoder's GEMM shapes and ~2x faster on the LM head's ``(batch, 768) @ (768, 250002)``
    decoder, making full-size XLM-R scoring 15-25% faster (``benchmarks/probe_speed.py``).
    ``torch.backends.mkldnn`` has no flag that routes fp32 ``linear`` to oneDNN on x86, and
    neither ``torch.jit.freeze``/``optimize_for_inference`` nor ``torch.compile`` with inductor
    freezing sped the encoder up there, hence this explicit swap.

    The copy shares every parameter and buffer with ``module`` (no extra memory; tied weights
    stay tied) and only changes the class of its ``nn.Linear`` children, so ``module`` itself is
    untouched. With ``pack_rows`` (the typical number of input rows), each layer with at most
    ``pack_max_out`` outputs also keeps its weight reordered once into oneDNN's blocked layout
    (``torch.ops.mkldnn._reorder_linear_weight``), which the GEMM would otherwise redo on every
    call: bitwise identical results, 8-20% faster on the encoder's shapes, for a second copy of
    those weights (0.34 GB at xlm-roberta-base size). With ``wide_pack_rows`` (the rows it sees:
    one per sentence of a batch), a wider layer, the 250k-row decoder, is packed too, in chunks
    (``_OneDNNLinear.packed_chunks``): ~20% faster at xlm-roberta-base size and ~2x at tiny-xlmr's
    (whose decoder is bound by writing its output), for a second copy of it (0.77 GB at
    xlm-roberta-base size). Results differ from the plain path by float rounding only (another summation
    order: at most ~6e-6 on log-probabilities over 500 sentences x the full vocabulary, at
    xlm-roberta-base size). Layers fall back to ``F.linear`` for non-fp32, non-CPU or autograd
    inputs.
    """
    fast = _structural_copy(module)
    for sub in fast.modules():
        if type(sub) is torch.nn.Linear:
            sub.__class__ = _OneDNNLinear
            with torch.no_grad():
                if pack_rows and sub.out_features <= pack_max_out:
                    sub.packed_weight = torch.ops.mkldnn._reorder_linear_weight(sub.weight.detach(), pack_rows)
                elif wide_pack_rows and sub.out_features > pack_max_out:
                    sub.packed_chunks = _packed_chunks(sub, wide_pack_rows)
    return fast


def _packed_chunks(linear: torch.nn.Linear, rows: int) -> list[tuple[int, int, torch.Tensor, torch.Tensor | None]]:
    """``(start, stop, packed weight, bias)`` of each ``VOCAB_CHUNK`` output rows of ``linear``."""
    chunks = []
    for start in range(0, linear.out_features, VOCAB_CHUNK):
        stop = min(start + VOCAB_CHUNK, linear.out_features)
        weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach()[start:stop].contiguous(), rows)
        bias = None if linear.bias is None else linear.bias.detach()[start:stop].contiguous()
        chunks.append((start, stop, weight, bias))
    return chunks


class _LastLayerAtMask(torch.nn.Module):
    """An encoder's last layer computed for the target mask of each row only.

    Only the mask's hidden state leaves the last layer (the LM head reads nothing else), so the
    layer's query, attention output and feed-forward run on one row per sentence (or per position
    read, when a row is read at several positions: word mode); keys and values still come from
    every token. For a length-``T`` sentence this skips
    ``(T - 1) * (2h^2 + 2hf)`` of the layer's ``T * (4h^2 + 2hf)`` multiply-adds: ~7% of
    xlm-roberta-base's encoder at ``T = 12``. The other positions of the returned hidden states
    are the layer's *input* (unused). Works for the BERT family's layer (``attention.self``
    with ``query/key/value``, ``attention.output``, ``feed_forward_chunk``); see
    :func:`with_last_layer_at_mask`, which checks the result against the full layer.
    """

    def __init__(self, layer: torch.nn.Module):
        super().__init__()
        self.layer = layer
        self.rows: torch.Tensor | None = None  # set before each forward: read j is at
        self.cols: torch.Tensor | None = None  # (rows[j], cols[j])
        self.one_read_per_row = True  # rows is arange(batch): keys and values need no gather

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        attention = self.layer.attention
        self_attention = attention.self
        batch, length, _ = hidden_states.shape
        heads, size = self_attention.num_attention_heads, self_attention.attention_head_size
        reads = len(self.rows)  # positions read: one per row, or several (word mode)
        target = hidden_states[self.rows, self.cols].unsqueeze(1)  # (reads, 1, hidden)
        query = self_attention.query(target).view(reads, 1, heads, size).transpose(1, 2)
        key = self_attention.key(hidden_states).view(batch, length, heads, size).transpose(1, 2)
        value = self_attention.value(hidden_states).view(batch, length, heads, size).transpose(1, 2)
        if reads != batch or not self.one_read_per_row:
            key, value = key[self.rows], value[self.rows]
        mask = None
        if attention_mask is not None:  # (batch, 1, length or 1, length), boolean or additive
            mask = attention_mask[self.rows, :, self.cols if attention_mask.shape[2] == length else 0, :]
            mask = mask.unsqueeze(2)
        context = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, scale=getattr(self_attention, "scaling", size ** -0.5))
        context = context.transpose(1, 2).reshape(reads, 1, heads * size)
        output = self.layer.feed_forward_chunk(attention.output(context, target))
        hidden_states = hidden_states.clone()
        hidden_states[self.rows, self.cols] = output[:, 0]
        return hidden_states


def with_last_layer_at_mask(encoder: torch.nn.Module, probe_ids: torch.Tensor, probe_mask: torch.Tensor,
                            rows: torch.Tensor, cols: torch.Tensor, tolerance: float = 1e-4):
    """``(copy of encoder, wrapper)`` whose last layer runs at the mask only, or ``(encoder, None)``
    when its layers are not of the supported kind or the copy disagrees with the full encoder on
    the probe batch by more than ``tolerance`` (so the saving never changes results beyond float
    rounding). The copy shares every parameter with ``encoder``."""
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if not isinstance(layers, torch.nn.ModuleList) or not layers:
        return encoder, None
    last = layers[-1]
    self_attention = getattr(getattr(last, "attention", None), "self", None)
    needed = (hasattr(last, "feed_forward_chunk") and hasattr(last.attention, "output")
              and all(hasattr(self_attention, name) for name in
                      ("query", "key", "value", "num_attention_heads", "attention_head_size")))
    if not needed:
        return encoder, None
    trimmed = _structural_copy(encoder)
    wrapper = _LastLayerAtMask(trimmed.encoder.layer[-1])
    trimmed.encoder.layer[-1] = wrapper
    wrapper.rows, wrapper.cols = rows, cols
    try:
        with torch.inference_mode():
            full = encoder(input_ids=probe_ids, attention_mask=probe_mask)[0][rows, cols]
            fast = trimmed(input_ids=probe_ids, attention_mask=probe_mask)[0][rows, cols]
    except (RuntimeError, TypeError, AttributeError, IndexError, ValueError) as error:
        logger.info("last layer at the mask only is not available for this model (%s)", error)
        return encoder, None
    if not torch.allclose(full.float(), fast.float(), atol=tolerance, rtol=tolerance):
        logger.info("last layer at the mask only disagrees with the full layer; not used")
        return encoder, None
    return trimmed, wrapper


def mask_positions(ids: list[int], mask_id: int) -> list[int]:
    """Positions of the mask token in a row of token ids, in order."""
    return [i for i, t in enumerate(ids) if t == mask_id]


def check_top_k(k: int, vocab_size: int) -> None:
    """``k`` candidates per sentence must lie in [1, vocabulary size]: a larger ``k`` would only
    repeat the whole vocabulary's ranking (and its memory) with no candidate more."""
    if k < 1:
        raise UserError(f"--top_k must be at least 1, got {k}")
    if k > vocab_size:
        raise UserError(f"--top_k {k} is more than the model's vocabulary ({vocab_size} tokens); pass --top_k "
                        f"{vocab_size} or less")


class MaskedLMScorer:
    """Log-probabilities at the mask of many sentences, batched.

    Parameters
    ----------
    model, tokenizer : a transformers masked LM and its tokenizer.
    device : ``torch.device``.
    batch_size : sentences per forward pass.
    dtype : ``torch.float32`` (default) or ``torch.bfloat16`` for the forward pass; the
        log-softmax is always computed in float32.
    cpu_fast_path : on the CPU in float32, run the Linear layers through oneDNN (see
        :func:`with_onednn_linears`; same results up to float rounding). ``False`` turns it off.
    pack_weights : with the CPU fast path, reorder the weights into oneDNN's layout once, the
        vocabulary-sized decoder in chunks (see :func:`with_onednn_linears`; bitwise the same
        results, ~10-20% faster; costs a second copy of the weights: 1.1 GB at xlm-roberta-base size).
    last_layer_at_mask : run the encoder's last layer at the target mask only (see
        :class:`_LastLayerAtMask`; same results up to float rounding, checked at start-up).
    """

    def __init__(self, model, tokenizer, *, device, batch_size: int = 32, dtype=torch.float32,
                 progress: bool = True, cpu_fast_path: bool = True, last_layer_at_mask: bool = True,
                 pack_weights: bool = True):
        if batch_size < 1:
            raise UserError(f"--batch_size must be at least 1, got {batch_size}")
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        self.dtype = dtype
        self.progress = progress
        self.model = model.to(device=device, dtype=dtype).eval()
        self.fast_path = (cpu_fast_path and torch.device(device).type == "cpu" and dtype == torch.float32
                          and onednn_linear_available())
        if self.fast_path:
            # typical rows of an encoder GEMM: a batch of ~16-token sentences
            self.model = with_onednn_linears(self.model, pack_rows=batch_size * 16 if pack_weights else None,
                                             wide_pack_rows=batch_size if pack_weights else None)
        self.encoder, self.head = split_lm_head(self.model)
        for layer in (self.head.modules() if self.head is not None else ()):
            if isinstance(layer, _OneDNNLinear) and layer.packed_chunks is not None:
                layer.reuse_output = True  # its logits go straight into the log-softmax buffer
        self.mask_id = tokenizer.mask_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._log_prob_buffer: torch.Tensor | None = None  # (batch_size, vocab), reused by every batch
        self.forward_passes = 0  # rows (sentences, or word-mode contexts) through the model so far
        self._last_layer = None
        if self.head is not None and last_layer_at_mask:
            self.encoder, self._last_layer = self._trim_last_layer()

    @property
    def last_layer_at_mask(self) -> bool:
        """Whether the encoder's last layer runs at the mask only (see :class:`_LastLayerAtMask`)."""
        return self._last_layer is not None

    def _trim_last_layer(self):
        """The encoder with its last layer at the mask only, checked on two padded sentences."""
        probe = [[self.tokenizer.cls_token_id or 0, 5, 6, self.mask_id, 7, self.tokenizer.sep_token_id or 2],
                 [self.tokenizer.cls_token_id or 0, self.mask_id, 8, self.tokenizer.sep_token_id or 2]]
        ids, attention = self._right_padded(probe)
        rows = torch.arange(2, device=self.device)
        cols = torch.tensor([3, 1], device=self.device)
        return with_last_layer_at_mask(self.encoder, ids, attention, rows, cols)

    def _encode(self, sentences: list[str]) -> list[list[int]]:
        encoded = self.tokenizer(sentences, add_special_tokens=True, truncation=True)["input_ids"]
        for sentence, ids in zip(sentences, encoded):
            if self.mask_id not in ids:
                raise UserError(f"sentence {sentence!r} has no {self.tokenizer.mask_token} after tokenisation")
        return encoded

    def _right_padded(self, batch_ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)`` padded on the right, whatever the tokenizer's
        ``padding_side``: models with absolute positions counted from the start of the row (BERT)
        give other log-probabilities when padded on the left. (XLM-R and RoBERTa count positions
        over non-pad tokens and are indifferent; right padding is correct for both.)"""
        width = max(len(ids) for ids in batch_ids)
        input_ids = np.full((len(batch_ids), width), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(batch_ids), width), dtype=np.int64)
        for row, ids in enumerate(batch_ids):
            input_ids[row, :len(ids)] = ids
            attention_mask[row, :len(ids)] = 1
        return (torch.from_numpy(input_ids).to(self.device), torch.from_numpy(attention_mask).to(self.device))

    def _buffer(self, rows: int, vocab: int) -> torch.Tensor:
        if (self._log_prob_buffer is None or self._log_prob_buffer.shape[0] < rows
                or self._log_prob_buffer.shape[1] != vocab):
            self._log_prob_buffer = None  # free the old one before allocating
            self._log_prob_buffer = torch.empty((max(rows, self.batch_size), vocab), dtype=torch.float32,
                                                device=self.device)
        return self._log_prob_buffer[:rows]

    @torch.inference_mode()
    def _batch_log_probs(self, batch_ids: list[list[int]], mask_index: list[int]) -> torch.Tensor:
        """(batch, vocab) float32 log-probabilities at each sentence's target mask.

        The result is a view of a buffer that the next call overwrites.
        """
        cols = [mask_positions(ids, self.mask_id)[which] for ids, which in zip(batch_ids, mask_index)]
        return self.log_probs_at(batch_ids, list(range(len(batch_ids))), cols)

    @torch.inference_mode()
    def log_probs_at(self, batch_ids: list[list[int]], rows: list[int], cols: list[int]) -> torch.Tensor:
        """(reads, vocab) float32 log-probabilities at positions ``(rows[j], cols[j])`` of the
        token-id rows ``batch_ids`` (one forward pass; a row may be read at several positions).

        The result is a view of a buffer that the next call overwrites; at most
        ``max(batch_size, len(batch_ids))`` reads per call keep that buffer the size it has.
        """
        if self.head is not None:
            return self.head_log_probs(self.hidden_at(batch_ids, rows, cols))
        self.forward_passes += len(batch_ids)
        input_ids, attention_mask = self._right_padded(batch_ids)
        rows_t, cols_t = torch.tensor(rows, device=self.device), torch.tensor(cols, device=self.device)
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits[rows_t, cols_t]
        return self._log_softmax(logits)

    @torch.inference_mode()
    def head_log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """(reads, vocab) float32 log-probabilities of the LM head at encoder outputs ``hidden``
        (a view of the reused buffer, as :meth:`log_probs_at`)."""
        return self._log_softmax(self.head(hidden))

    def _log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        out = self._buffer(*logits.shape)
        torch.log_softmax(logits.float(), dim=-1, out=out)
        return out

    @torch.inference_mode()
    def hidden_at(self, batch_ids: list[list[int]], rows: list[int], cols: list[int]) -> torch.Tensor:
        """(reads, hidden) encoder outputs at positions ``(rows[j], cols[j])`` (what the LM head
        reads); only for a model whose head is split off (``self.head is not None``)."""
        self.forward_passes += len(batch_ids)
        input_ids, attention_mask = self._right_padded(batch_ids)
        rows_t = torch.tensor(rows, device=self.device)
        cols_t = torch.tensor(cols, device=self.device)
        if self._last_layer is not None:
            self._last_layer.rows, self._last_layer.cols = rows_t, cols_t
            self._last_layer.one_read_per_row = rows == list(range(len(batch_ids)))
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0][rows_t, cols_t]

    def iter_log_probs(self, sentences: list[str], mask_index: list[int] | None = None, *, desc: str = "probing"):
        """Yield ``(sentence_indices, log_probs)`` per batch, in length-sorted order.

        ``mask_index[i]`` says which mask of sentence ``i`` is the target (default 0, the first).
        """
        mask_index = mask_index or [0] * len(sentences)
        encoded = self._encode(sentences)
        order = sorted(range(len(sentences)), key=lambda i: len(encoded[i]))
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        for batch in tqdm(batches, desc=desc, unit="batch", disable=not self.progress, leave=False):
            yield batch, self._batch_log_probs([encoded[i] for i in batch], [mask_index[i] for i in batch])

    def log_probs(self, sentences: list[str], mask_index: list[int] | None = None, *, desc: str = "priors") -> torch.Tensor:
        """(n, vocab) log-probabilities at the target mask of every sentence, in input order."""
        out = None  # allocated once, at the first batch, when the head's width is known
        for batch, log_probs in self.iter_log_probs(sentences, mask_index, desc=desc):
            if out is None:
                out = torch.empty((len(sentences), log_probs.shape[1]), dtype=torch.float32, device=self.device)
            out[torch.tensor(batch, device=self.device)] = log_probs
        return out

    def top_k(
        self,
        sentences: list[str],
        *,
        k: int,
        scoring: str = "raw",
        prior_sentences: list[str] | None = None,
        prior_mask_index: list[int] | None = None,
        typicality_pool: int = DEFAULT_TYPICALITY_POOL,
        desc: str = "probing",
    ) -> TopKTable:
        """Top-``k`` candidates of each sentence's mask by ``scoring`` (see the module docstring)."""
        vocab_size = len(self.tokenizer)
        check_top_k(k, vocab_size)
        if scoring not in SCORINGS:
            raise UserError(f"--scoring {scoring!r} is not one of {', '.join(SCORINGS)}")
        prior_rows = None
        if scoring == "typicality":
            if prior_sentences is None or len(prior_sentences) != len(sentences):
                raise ValueError("typicality needs one prior sentence per sentence")
            distinct = {}
            for sentence, which in zip(prior_sentences, prior_mask_index or [0] * len(sentences)):
                distinct.setdefault((sentence, which), len(distinct))
            keys = list(distinct)
            priors = self.log_probs([s for s, _ in keys], [w for _, w in keys], desc=f"{desc} (priors)")
            prior_rows = [distinct[(s, w)] for s, w in
                          zip(prior_sentences, prior_mask_index or [0] * len(sentences))]
            pool = min(max(typicality_pool, k), vocab_size)
        results = TopKTable.empty(len(sentences), k)
        for batch, log_probs in self.iter_log_probs(sentences, desc=desc):
            if scoring == "raw":
                scores, ids = top_k_rows(log_probs, k)
                chosen_log_probs = scores
            else:
                prior = priors[torch.tensor([prior_rows[i] for i in batch], device=priors.device)]
                pool_log_probs, pool_ids = top_k_rows(log_probs, pool)
                typicality = pool_log_probs - torch.gather(prior, 1, pool_ids)
                scores, where = torch.topk(typicality, k, dim=-1)
                ids = torch.gather(pool_ids, 1, where)
                chosen_log_probs = torch.gather(pool_log_probs, 1, where)
            rows = np.asarray(batch)
            results.token_ids[rows] = ids.cpu().numpy()
            results.log_probs[rows] = chosen_log_probs.cpu().numpy()
            results.scores[rows] = scores.cpu().numpy()
        return results
