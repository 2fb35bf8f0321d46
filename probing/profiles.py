"""Emotion profiles: the share of a group's lexicon-covered completions in each dimension.

For a group ``g`` let ``W_g`` be the unique kept words (lower-cased) over all its templates,
``C_g ⊆ W_g`` those the language's lexicon lists (surface form or lemma), including words it
lists with no association (NRC EmoLex's all-zero rows), and ``E(w)`` the dimensions the lexicon
gives word ``w`` (possibly none). For each dimension ``d`` (anger, anticipation, disgust, fear,
joy, sadness, surprise, trust, negative, positive):

* ``weighting="count"``::

      P_g(d) = |{w ∈ C_g : d ∈ E(w)}| / |C_g|

* ``weighting="probability"``, with ``m_w = Σ_t p(w | s_t)`` the probability mass of ``w`` summed
  over the templates ``t`` in whose kept top-k it appears::

      P_g(d) = Σ_{w ∈ C_g, d ∈ E(w)} m_w / Σ_{w ∈ C_g} m_w

Both lie in [0, 1]; a word may carry several dimensions, so a profile need not sum to 1. With no
covered word the profile is undefined (NaN), and ``n_covered`` says so. ``n_emotional`` counts
the covered words with at least one dimension; dividing by ``n_covered`` rather than
``n_emotional`` is the definition of Choenni et al. (2021). A lexicon that lists only emotional
words (EmoAtlas) has ``n_covered == n_emotional``, so its profiles are larger than those of one
that lists neutral words too (NRC EmoLex): compare runs made with the same lexicon only.
"""

from __future__ import annotations

import numpy as np

from probing.lexicon import EMOTIONS

WEIGHTINGS = ("count", "probability")


def emotion_profile(dimensions, mass=None, *, weighting: str = "count") -> dict[str, float]:
    """Profile of one group from its unique kept words.

    Parameters
    ----------
    dimensions : sequence of length n_words, each a set of dimension names, or None when the
        lexicon does not cover the word.
    mass : array-like of shape (n_words,), the summed probability ``m_w`` of each word; required
        for ``weighting="probability"``.
    weighting : ``"count"`` or ``"probability"``.

    Returns
    -------
    dict with one float per dimension in ``EMOTIONS`` order, plus ``n_words``, ``n_covered`` and
    ``n_emotional``.

    Examples
    --------
    >>> p = emotion_profile([{"joy", "positive"}, {"anger"}, None], weighting="count")
    >>> p["joy"], p["anger"], p["fear"], p["n_covered"]
    (0.5, 0.5, 0.0, 2)

    A listed word without associations (an empty set) is covered: French heureux (joy), table and
    grand (no association) and fâché (anger) give joy = 1/4.

    >>> p = emotion_profile([{"joy"}, set(), set(), {"anger"}], weighting="count")
    >>> p["joy"], p["n_covered"], p["n_emotional"]
    (0.25, 4, 2)
    >>> p = emotion_profile([{"joy"}, {"anger"}], [0.3, 0.1], weighting="probability")
    >>> round(p["joy"], 6), round(p["anger"], 6)
    (0.75, 0.25)
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    dimensions = list(dimensions)
    if weighting == "probability":
        if mass is None:
            raise ValueError("weighting='probability' needs the mass of each word")
        weights = np.asarray(mass, dtype=float)
        if weights.shape != (len(dimensions),):
            raise ValueError(f"mass has shape {weights.shape}, expected ({len(dimensions)},)")
        if np.any(weights < 0) or not np.all(np.isfinite(weights)):
            raise ValueError("mass must be finite and non-negative")
    else:
        weights = np.ones(len(dimensions))
    covered = np.array([d is not None for d in dimensions], dtype=bool)
    total = weights[covered].sum()
    profile = {}
    for emotion in EMOTIONS:
        has = np.array([d is not None and emotion in d for d in dimensions], dtype=bool)
        profile[emotion] = float(weights[has].sum() / total) if covered.any() and total > 0 else float("nan")
    profile["n_words"] = len(dimensions)
    profile["n_covered"] = int(covered.sum())
    profile["n_emotional"] = sum(1 for d in dimensions if d)
    return profile
