"""Whole-word completions: candidates of one or more pieces, scored by the chain rule.

One ``<mask>`` can only produce a single token, and which words of a language are single tokens
depends on its tokenisation, not on the model. In word mode a sentence's slot (its target mask) is
filled with every word of a candidate set (:mod:`probing.candidates`), each as many masks as it
has pieces. For a word ``w`` of pieces ``t_1..t_n`` in the slot of sentence ``s``::

    log p(w | s) = Σ_{i=1..n} log p(t_i | s with the slot as t_1..t_{i-1} followed by n-i+1 masks)

each term read at the slot's ``i``-th position, in nats (left-to-right decoding of a fixed number
of masks, as in mLAMA, Kassner et al. 2021, and X-FACTR, Jiang et al. 2020). For a one-piece word
this is exactly token mode's ``log p``.

Known bias: the model is told how many pieces to fill (the number of masks), so ``log p(w | s)``
is conditional on the piece count ``n`` and ignores ``log p(n | s)``: the words of each length
form their own distribution (summing to at most 1 each), and words of different lengths are ranked
as if every length were equally likely. Typicality scoring (``log p(w | s) - log p(w | s_prior)``,
the prior sentence having the group masked too) subtracts the same chain-rule quantity, with the
same ``n`` and the same pieces, so whatever the length conditioning adds largely cancels; with raw
scoring, one-piece words tend to rank above longer ones (each further piece multiplies in a
probability below one).

Search (every score it returns is the exact chain-rule score above):

1. **First stage.** One pass with one mask in the slot gives every one-piece word's exact score
   (a log-softmax over the full vocabulary, as in token mode). Per longer piece count ``n``: one
   pass with ``n`` masks in the slot, read at all ``n`` positions, gives the all-masks score
   ``A(w) = Σ_i [log q_i(t_i) - δ]``, where ``q_i`` is the softmax at the slot's ``i``-th
   position taken over ``S`` only, the set of pieces that longer candidates use (~10-20% of
   XLM-R's vocabulary: the LM head's last layer computes ``|S|`` outputs instead of 250,002), and
   ``δ = log Σ_V exp(logit) - log Σ_S exp(logit)`` is the log of the mass outside ``S``, measured
   at the one-mask slot (where the full softmax is computed anyway) and taken as the estimate for
   every position. ``A`` is exact for one-piece words and an estimate for longer ones. Since a
   softmax over a subset is at least the full one on that subset, ``log q_1(t_1) >= log p(t_1 |
   s, n masks)``, an upper bound of the exact first term.
2. **Shortlist.** The ``L = ceil(shortlist_factor * m)`` best candidates by ``A`` (``m`` = ``k``,
   or the typicality pool). A longer word in it whose first-term bound ``log q_1(t_1)`` already
   falls below the ``m``-th best one-piece score is left out exactly: every further term is
   ``<= 0``, so its chain score is lower still.
3. **Exact rescoring** of the shortlist's longer words: all ``n`` terms over the full vocabulary,
   one pass per distinct (sentence, ``n``, prefix ``t_1..t_{i-1}``): words sharing a prefix share
   the pass. Passes are sorted by length and batched.
4. The top ``m`` by exact score among the one-piece words and the rescored ones.

A longer word outside the shortlist whose exact score would have entered the top ``m`` is the
only way the result can differ from exhaustive exact scoring. (A model whose LM head cannot be
split before its vocabulary-sized layer, or whose split disagrees with the head, gets ``q_i`` over
the full vocabulary: the same search, slower.) ``benchmarks/word_search.py``
measures how often the top-k is identical to the exhaustive one.

Memory is flat in the number of sentences: each batch of sentences keeps ``(batch, candidates)``
arrays only until its top-k is taken, and log-probabilities go through the scorer's reused buffer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from probing.engine import (DEFAULT_TYPICALITY_POOL, SCORINGS, MaskedLMScorer, TopKTable, _structural_copy,
                            mask_positions)
from probing.errors import UserError

DEFAULT_SHORTLIST_FACTOR = 2.0


@dataclass
class PieceTable:
    """Candidates grouped by piece count: ``groups[n] = (indices (C_n,), pieces (C_n, n))``, long
    tensors on the scorer's device; ``n_pieces[c]`` and ``pieces[c]`` per candidate."""

    pieces: list[tuple[int, ...]]
    n_pieces: torch.Tensor  # (C,) long
    groups: dict[int, tuple[torch.Tensor, torch.Tensor]]

    @classmethod
    def build(cls, pieces, device) -> "PieceTable":
        pieces = [tuple(int(t) for t in p) for p in pieces]
        if not pieces or any(not p for p in pieces):
            raise ValueError("every candidate needs at least one piece, and there must be candidates")
        lengths = np.array([len(p) for p in pieces])
        groups = {}
        for n in sorted(set(lengths.tolist())):
            index = np.flatnonzero(lengths == n)
            groups[n] = (torch.as_tensor(index, dtype=torch.long, device=device),
                         torch.as_tensor(np.array([pieces[c] for c in index], dtype=np.int64).reshape(-1, n),
                                         device=device))
        return cls(pieces, torch.as_tensor(lengths, dtype=torch.long, device=device), groups)

    def __len__(self) -> int:
        return len(self.pieces)


class RestrictedHead:
    """The LM head's log-softmax over a subset ``tokens`` of the vocabulary, at a fraction of the
    cost: the head up to its vocabulary-sized linear layer, then that layer's rows for ``tokens``.

    :meth:`build` returns None when the head has no single vocabulary-sized ``nn.Linear`` or the
    split does not reproduce the head's logits (checked on random inputs).
    """

    def __init__(self, features: torch.nn.Module, weight: torch.Tensor, bias: torch.Tensor | None, tokens):
        self.features = features
        self.weight = weight
        self.bias = bias
        self.tokens = tokens  # (|S|,) sorted token ids

    @classmethod
    def build(cls, scorer: MaskedLMScorer, tokens: np.ndarray, tolerance: float = 1e-4) -> "RestrictedHead | None":
        head = scorer.head
        if head is None:
            return None
        vocab_size = len(scorer.tokenizer)
        found = [(name, m) for name, m in head.named_modules()
                 if isinstance(m, torch.nn.Linear) and m.out_features >= vocab_size]
        if len(found) != 1 or not found[0][0]:
            return None
        name, decoder = found[0]
        features = _structural_copy(head)
        parent_name, _, attribute = name.rpartition(".")
        setattr(features.get_submodule(parent_name) if parent_name else features, attribute, torch.nn.Identity())
        index = torch.as_tensor(tokens, dtype=torch.long, device=scorer.device)
        # inference mode, as the engine's passes: the head's reused output buffer is an inference tensor
        with torch.inference_mode():
            weight = decoder.weight.detach().index_select(0, index).contiguous()
            bias = None if decoder.bias is None else decoder.bias.detach().index_select(0, index).contiguous()
            restricted = cls(features, weight, bias, tokens)
            probe = torch.randn(3, decoder.in_features, generator=torch.Generator().manual_seed(0))
            probe = probe.to(device=scorer.device, dtype=decoder.weight.dtype)
            try:
                expected = head(probe).float().index_select(1, index)
                got = restricted.logits(probe).float()
            except (RuntimeError, TypeError, ValueError):
                return None
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=tolerance, rtol=tolerance):
            return None
        return restricted

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(self.features(hidden), self.weight, self.bias)

    @torch.inference_mode()
    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """(reads, |S|) float32 log-softmax over ``tokens`` of the head at ``hidden``."""
        return torch.log_softmax(self.logits(hidden).float(), dim=-1)


def slot_context(ids: list[int], slot: int, prefix: tuple[int, ...], n: int, mask_id: int) -> list[int]:
    """``ids`` with the mask at ``slot`` replaced by ``prefix`` followed by ``n - len(prefix)`` masks."""
    return ids[:slot] + list(prefix) + [mask_id] * (n - len(prefix)) + ids[slot + 1:]


class WordScorer:
    """Top-k whole words of each sentence's target mask, over a candidate set (see the module docstring).

    Parameters
    ----------
    scorer : the :class:`probing.engine.MaskedLMScorer` that runs the model (its batch size,
        device, precision and fast paths apply).
    pieces : the token ids of each candidate word, as it is tokenised in the slot.
    shortlist_factor : the first stage keeps ``ceil(shortlist_factor * m)`` candidates for exact
        rescoring (``m`` = ``k``, or the typicality pool); at least 1.
    """

    def __init__(self, scorer: MaskedLMScorer, pieces, *, shortlist_factor: float = DEFAULT_SHORTLIST_FACTOR):
        if not shortlist_factor >= 1:
            raise UserError(f"--shortlist_factor must be at least 1, got {shortlist_factor}")
        self.scorer = scorer
        self.table = PieceTable.build(pieces, scorer.device)
        self.shortlist_factor = float(shortlist_factor)
        self.mask_id = scorer.mask_id
        self.passes = 0  # forward-pass rows (sentence contexts) run so far
        longer = [p for p in self.table.pieces if len(p) > 1]
        tokens = np.unique(np.fromiter((t for p in longer for t in p), dtype=np.int64)) if longer else None
        self.restricted = RestrictedHead.build(scorer, tokens) if tokens is not None else None
        if self.restricted is not None:  # the longer candidates' pieces as positions in the subset
            self.local_pieces = {n: torch.as_tensor(np.searchsorted(tokens, pieces.cpu().numpy()), device=scorer.device)
                                 for n, (_, pieces) in self.table.groups.items() if n > 1}

    # -- the two stages -------------------------------------------------------------------------

    def first_stage(self, ids: list[list[int]], slots: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A, bound)``, each ``(len(ids), C)`` float32, for the token-id rows ``ids`` whose slot
        is at ``slots``: every candidate's first-stage score and an upper bound of its exact first
        term (both exact for one-piece words; see the module docstring)."""
        n_rows, n_candidates = len(ids), len(self.table)
        device = self.scorer.device
        all_masks = torch.empty((n_rows, n_candidates), dtype=torch.float32, device=device)
        bound = torch.empty_like(all_masks)
        outside = torch.zeros(n_rows, dtype=torch.float32, device=device)  # log Σ_V exp - log Σ_S exp, one mask
        batch = self.scorer.batch_size
        one_piece = self.table.groups.get(1)
        for start in range(0, n_rows, batch):  # one mask: the one-piece words, and the mass outside S
            stop = min(n_rows, start + batch)
            contexts = [ids[r] for r in range(start, stop)]
            reads = list(range(stop - start))
            self.passes += stop - start
            if self.restricted is None:
                if one_piece is not None:
                    full = self.scorer.log_probs_at(contexts, reads, slots[start:stop])
                    all_masks[start:stop, one_piece[0]] = full.index_select(1, one_piece[1][:, 0])
                continue
            hidden = self.scorer.hidden_at(contexts, reads, slots[start:stop])
            full = self.scorer.head_log_probs(hidden)
            if one_piece is not None:
                all_masks[start:stop, one_piece[0]] = full.index_select(1, one_piece[1][:, 0])
            outside[start:stop] = self.restricted.log_probs(hidden)[:, 0] - full[:, int(self.restricted.tokens[0])]
        if one_piece is not None:
            bound[:, one_piece[0]] = all_masks[:, one_piece[0]]
        for n, (index, pieces) in self.table.groups.items():
            if n == 1:
                continue
            per_call = max(1, batch // n)  # n reads per row: the buffer stays batch-sized
            for start in range(0, n_rows, per_call):
                stop = min(n_rows, start + per_call)
                contexts = [slot_context(ids[r], slots[r], (), n, self.mask_id) for r in range(start, stop)]
                rows = [r for r in range(stop - start) for _ in range(n)]
                cols = [slots[start + r] + i for r in range(stop - start) for i in range(n)]
                self.passes += stop - start
                if self.restricted is not None:
                    log_probs = self.restricted.log_probs(self.scorer.hidden_at(contexts, rows, cols))
                    local = self.local_pieces[n]
                else:
                    log_probs, local = self.scorer.log_probs_at(contexts, rows, cols), pieces
                log_probs = log_probs.view(stop - start, n, -1)
                terms = torch.stack([log_probs[:, i].index_select(1, local[:, i]) for i in range(n)], dim=-1)
                # over S, every term is shifted by the one-mask slot's mass outside S (an estimate)
                all_masks[start:stop, index] = terms.sum(dim=-1) - n * outside[start:stop, None]
                bound[start:stop, index] = terms[..., 0]
        return all_masks, bound

    def chain_terms(self, ids: list[list[int]], slots: list[int], rows, candidates, *, first_term: int = 1) -> torch.Tensor:
        """``Σ_{i=first_term..n} log p(t_i | ...)`` (the chain rule's terms from ``first_term`` on)
        for each pair ``(ids[rows[j]], candidate candidates[j])``, float32 ``(len(rows),)``.

        One pass per distinct (row, piece count, prefix); passes sorted by length and batched.
        """
        rows, candidates = [int(r) for r in rows], [int(c) for c in candidates]
        keys: dict[tuple, int] = {}
        term_pass, term_token, term_pair = [], [], []
        for pair, (row, candidate) in enumerate(zip(rows, candidates)):
            pieces = self.table.pieces[candidate]
            n = len(pieces)
            for i in range(first_term - 1, n):
                key = (row, n, pieces[:i])
                term_pass.append(keys.setdefault(key, len(keys)))
                term_token.append(pieces[i])
                term_pair.append(pair)
        sums = torch.zeros(len(rows), dtype=torch.float32, device=self.scorer.device)
        if not keys:
            return sums
        key_list = list(keys)
        lengths = np.array([len(ids[row]) + n - 1 for row, n, _ in key_list])
        order = np.argsort(lengths, kind="stable")  # passes in length order: little padding
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        term_pass = rank[np.asarray(term_pass)]
        by_pass = np.argsort(term_pass, kind="stable")
        term_pass = term_pass[by_pass]
        term_token = torch.as_tensor(np.asarray(term_token)[by_pass], dtype=torch.long, device=self.scorer.device)
        term_pair = torch.as_tensor(np.asarray(term_pair)[by_pass], dtype=torch.long, device=self.scorer.device)
        batch = self.scorer.batch_size
        for start in range(0, len(order), batch):
            chunk = [key_list[k] for k in order[start:start + batch]]
            contexts = [slot_context(ids[row], slots[row], prefix, n, self.mask_id) for row, n, prefix in chunk]
            cols = [slots[row] + len(prefix) for row, _, prefix in chunk]
            log_probs = self.scorer.log_probs_at(contexts, list(range(len(chunk))), cols)
            self.passes += len(chunk)
            lo, hi = np.searchsorted(term_pass, [start, start + len(chunk)])
            local = torch.as_tensor(term_pass[lo:hi] - start, dtype=torch.long, device=self.scorer.device)
            sums.index_add_(0, term_pair[lo:hi], log_probs[local, term_token[lo:hi]])
        return sums

    def exhaustive(self, ids: list[list[int]], slots: list[int]) -> torch.Tensor:
        """``(len(ids), C)`` exact chain-rule log-probabilities of every candidate (the reference
        the search is measured against: one pass per distinct prefix, slow)."""
        n_rows, n_candidates = len(ids), len(self.table)
        rows = np.repeat(np.arange(n_rows), n_candidates)
        candidates = np.tile(np.arange(n_candidates), n_rows)
        return self.chain_terms(ids, slots, rows, candidates).view(n_rows, n_candidates)

    def select(self, ids: list[list[int]], slots: list[int], m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(candidate indices, exact log p)``, each ``(len(ids), m)``, best first: the search of
        the module docstring."""
        all_masks, bound = self.first_stage(ids, slots)
        n_candidates = len(self.table)
        device = all_masks.device
        shortlist_size = min(n_candidates, math.ceil(self.shortlist_factor * m))
        shortlist = torch.topk(all_masks, shortlist_size, dim=1).indices
        longer = self.table.n_pieces > 1
        one_piece = torch.nonzero(~longer).flatten()
        if len(one_piece) >= m:  # the m-th best one-piece score: a floor of the final m-th best
            floor = torch.topk(all_masks.index_select(1, one_piece), m, dim=1).values[:, -1]
        else:
            floor = torch.full((len(ids),), float("-inf"), device=device)
        needed = longer[shortlist] & (bound.gather(1, shortlist) >= floor[:, None])
        pair_rows, where = torch.nonzero(needed, as_tuple=True)
        pair_candidates = shortlist[pair_rows, where]
        rescored = self.chain_terms(ids, slots, pair_rows.tolist(), pair_candidates.tolist())
        exact = all_masks.masked_fill(longer[None, :], float("-inf"))
        exact[pair_rows, pair_candidates] = rescored
        values, indices = torch.topk(exact, m, dim=1)
        return indices, values

    # -- the engine's interface -----------------------------------------------------------------

    def _encoded(self, sentences: list[str], mask_index) -> tuple[list[list[int]], list[int]]:
        ids = self.scorer._encode(sentences)
        slots = [mask_positions(row, self.mask_id)[which] for row, which in zip(ids, mask_index)]
        return ids, slots

    def top_k(self, sentences: list[str], *, k: int, scoring: str = "raw", prior_sentences: list[str] | None = None,
              prior_mask_index: list[int] | None = None, typicality_pool: int = DEFAULT_TYPICALITY_POOL,
              desc: str = "probing") -> TopKTable:
        """Top-``k`` candidate words of each sentence's (first) mask, as a :class:`TopKTable` whose
        ``token_ids`` are candidate indices; ``log_probs`` are exact chain-rule ``log p(w | s)``
        and ``scores`` the ranking score (raw: the same; typicality: ``log p(w | s) -
        log p(w | s_prior)`` over the ``typicality_pool`` words of highest ``log p(w | s)``)."""
        n_candidates = len(self.table)
        if scoring not in SCORINGS:
            raise UserError(f"--scoring {scoring!r} is not one of {', '.join(SCORINGS)}")
        if not 1 <= k <= n_candidates:
            raise UserError(f"--top_k {k} must lie in [1, {n_candidates}], the size of the candidate set")
        pool = k if scoring == "raw" else min(max(typicality_pool, k), n_candidates)
        if scoring == "typicality" and (prior_sentences is None or len(prior_sentences) != len(sentences)):
            raise ValueError("typicality needs one prior sentence per sentence")
        ids, slots = self._encoded(sentences, [0] * len(sentences))
        priors = _PriorScores(self, prior_sentences, prior_mask_index) if scoring == "typicality" else None
        results = TopKTable.empty(len(sentences), k)
        order = sorted(range(len(sentences)), key=lambda i: len(ids[i]))
        batch_size = self.scorer.batch_size
        batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        for batch in tqdm(batches, desc=desc, unit="batch", disable=not self.scorer.progress, leave=False):
            candidates, log_probs = self.select([ids[i] for i in batch], [slots[i] for i in batch], pool)
            if priors is None:
                chosen, chosen_log_probs, scores = candidates, log_probs, log_probs
            else:
                typicality = log_probs - priors.scores(batch, candidates)
                scores, where = torch.topk(typicality, k, dim=1)
                chosen = torch.gather(candidates, 1, where)
                chosen_log_probs = torch.gather(log_probs, 1, where)
            rows = np.asarray(batch)
            results.token_ids[rows] = chosen.cpu().numpy().astype(np.int32)
            results.log_probs[rows] = chosen_log_probs.cpu().numpy()
            results.scores[rows] = scores.cpu().numpy()
        return results


class _PriorScores:
    """Exact chain-rule ``log p(w | s_prior)`` of the words asked for, per distinct prior sentence.

    A prior sentence is shared by every group of a template and form: its first stage runs once,
    and each longer word's remaining terms once, then they are cached (for one ``top_k`` call).
    """

    def __init__(self, words: WordScorer, prior_sentences: list[str], prior_mask_index: list[int] | None):
        self.words = words
        mask_index = prior_mask_index or [0] * len(prior_sentences)
        keys = list(zip(prior_sentences, mask_index))
        self.distinct: dict[tuple[str, int], int] = {}
        self.prior_of = [self.distinct.setdefault(key, len(self.distinct)) for key in keys]
        distinct = list(self.distinct)
        self.ids, self.slots = words._encoded([s for s, _ in distinct], [w for _, w in distinct])
        self.first_stage: dict[int, torch.Tensor] = {}  # prior -> its first stage's scores (exact for one piece)
        self.longer: dict[tuple[int, int], float] = {}  # (prior, longer candidate) -> exact chain-rule score

    def scores(self, sentences: list[int], candidates: torch.Tensor) -> torch.Tensor:
        """``(len(sentences), m)`` exact ``log p(w | s_prior)`` of ``candidates`` (m per sentence)."""
        priors = [self.prior_of[s] for s in sentences]
        missing = sorted(set(priors) - set(self.first_stage))
        if missing:
            all_masks, _ = self.words.first_stage([self.ids[p] for p in missing], [self.slots[p] for p in missing])
            for row, prior in enumerate(missing):
                self.first_stage[prior] = all_masks[row]
        longer = self.words.table.n_pieces.cpu().numpy() > 1
        wanted = sorted({(prior, c) for prior, row in zip(priors, candidates.tolist()) for c in row
                         if longer[c] and (prior, c) not in self.longer})
        if wanted:
            exact = self.words.chain_terms(self.ids, self.slots, [p for p, _ in wanted], [c for _, c in wanted])
            self.longer.update(zip(wanted, exact.tolist()))
        out = torch.empty(candidates.shape, dtype=torch.float32, device=candidates.device)
        for row, (prior, chosen) in enumerate(zip(priors, candidates.tolist())):
            out[row] = self.first_stage[prior][candidates[row]]
            where = [j for j, c in enumerate(chosen) if longer[c]]
            if where:
                out[row, where] = torch.tensor([self.longer[(prior, chosen[j])] for j in where],
                                               dtype=torch.float32, device=out.device)
        return out


def beam_pieces(scorer: MaskedLMScorer, sentences: list[str], piece_counts=(2, 3), width: int = 3) -> set[tuple[int, ...]]:
    """The model's own most probable piece sequences for each sentence's slot: for each ``n`` in
    ``piece_counts``, a beam of ``width`` best tokens per step, left to right (``width ** n``
    sequences). They are the multi-piece candidates that compete hardest with one-piece words, so
    tests and ``benchmarks/word_search.py`` add them to a candidate set to make the search work."""
    found = set()
    for sentence in sentences:
        ids = scorer._encode([sentence])[0]
        slot = mask_positions(ids, scorer.mask_id)[0]
        for n in piece_counts:
            beams = [()]
            for i in range(n):
                contexts = [slot_context(ids, slot, prefix, n, scorer.mask_id) for prefix in beams]
                log_probs = scorer.log_probs_at(contexts, list(range(len(beams))), [slot + i] * len(beams))
                best = torch.topk(log_probs, width, dim=1).indices.tolist()
                beams = [prefix + (token,) for prefix, tokens in zip(beams, best) for token in tokens]
            found.update(beams)
    return found

