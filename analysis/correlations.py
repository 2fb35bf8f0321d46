"""Correlations between two sets of emotion profiles of the same groups, with significance.

Every function takes two arrays ``base`` and ``other`` of shape ``(n_groups, n_dims)`` whose row
``i`` is the same social group (aligned by ``group_id`` beforehand) and whose columns are the same
emotion dimensions in the same order. Data are positional, options keyword-only; nothing here
reads files or loads a model.

Three statistics:

* ``spearman``: per group, Spearman's rho between its two profile vectors
  (:func:`spearman_per_group`); the summary of a set of groups is the mean rho.
* ``rsa``: representational similarity analysis (Choenni et al. 2021 [1]_): per model a
  group-by-group cosine-similarity matrix; per group, Spearman's rho between its two rows; the
  summary is the mean over groups (:func:`rsa`).
* ``emotion``: per dimension, Spearman's rho across groups (:func:`per_emotion`).

Significance and uncertainty (:func:`permutation_test`, :func:`bootstrap_ci`,
:func:`benjamini_hochberg`): a one-sided permutation test of "the two profiles agree more than
under a random pairing of groups" (optionally pairing groups only within strata, e.g. categories;
exact by enumeration when there are few pairings, else sequential Monte Carlo [4]_), p-values
corrected within a family of tests with Benjamini-Hochberg, and percentile bootstrap intervals
over groups (for ``rsa`` both similarity matrices are recomputed on every resample; with strata,
groups are resampled within them). Mean shifts per dimension (:func:`mean_shift`) come with a
paired sign-flip test (:func:`sign_flip_test`). Permutations and resamples are processed in
chunks whose temporaries stay within :data:`CHUNK_BYTES`, whatever the number of groups.
:func:`compare` draws its permutations and resamples from two independent streams seeded by the
seed and the data (:func:`data_streams`).

Spearman's rho is Pearson's correlation of average ranks (ties share their mean rank), as in
:func:`scipy.stats.spearmanr`; it is undefined (NaN) when either vector is constant.

References
----------
.. [1] Rochelle Choenni, Ekaterina Shutova and Robert van Rooij. 2021. Stepmothers are mean and
   academics are pretentious: What do pretrained language models learn about you? EMNLP 2021.
.. [2] Yoav Benjamini and Yosef Hochberg. 1995. Controlling the false discovery rate: a practical
   and powerful approach to multiple testing. JRSS B 57(1): 289-300.
.. [3] Belinda Phipson and Gordon K. Smyth. 2010. Permutation p-values should never be zero.
   Statistical Applications in Genetics and Molecular Biology 9(1).
.. [4] Julian Besag and Peter Clifford. 1991. Sequential Monte Carlo p-values. Biometrika
   78(2): 301-304.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import warnings

import numpy as np
from scipy.stats import false_discovery_control, norm, rankdata
from scipy.stats import t as student_t
from sklearn.metrics.pairwise import cosine_similarity

METHODS = ("spearman", "rsa", "emotion")
DIAGONAL_OPTIONS = ("exclude", "include")
CHUNK_BYTES = 256 * 10**6  # temporaries of one vectorised step of permutations or resamples (see _chunk_size)
_RSA_PERMUTATION_BYTES = 24  # per permutation and cell of the n x n matrix: the relabelled matrix, a product
_RSA_RESAMPLE_BYTES = 64  # per resample and cell: weights, orders, cumulative counts, tie bounds, ranks (int32)
                          # and the three float64 factors of the weighted products
EXACT_SIGN_FLIPS = 4096  # sign_flip_test enumerates all 2^n sign vectors up to this many
NULL_PERCENTILES = (2.5, 97.5)  # the chance band reported with every permutation test
NULL_BAND_DRAWS = 100  # drawn (N or B allowing) before any test may stop: its chance band rests on enough
_BAND_STORE_MAX = 100_000  # permutation statistics kept per dimension for the chance band (memory: 8 bytes each)
_BATCH_BYTES = 32 * 2**20  # memory of one batch of permutations and their statistics (its size follows from n)


def _check_pair(base, other) -> tuple[np.ndarray, np.ndarray]:
    base = np.asarray(base, dtype=float)
    other = np.asarray(other, dtype=float)
    if base.ndim != 2 or other.ndim != 2:
        raise ValueError(f"profiles must be 2-D (n_groups, n_dims); got shapes {base.shape} and {other.shape}")
    if base.shape != other.shape:
        raise ValueError(f"base and other must have the same shape; got {base.shape} and {other.shape}")
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(other))):
        raise ValueError("profiles must be finite; drop groups with an undefined (NaN) profile first")
    return base, other


def _check_choice(value, allowed, name):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _chunk_size(bytes_per_item: int) -> int:
    """Permutations or resamples per vectorised step, so that one step's temporaries stay within
    :data:`CHUNK_BYTES` (at least one: a single step of a huge input may exceed it)."""
    return max(1, CHUNK_BYTES // max(1, int(bytes_per_item)))


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


STREAMS = ("permutation", "bootstrap", "shift", "sign_flip")  # new names go last: the earlier streams keep their draws


def data_streams(seed, *arrays) -> dict:
    """Independent random generators, one per name in :data:`STREAMS`, seeded by ``seed`` and the
    data.

    Parameters
    ----------
    seed : int or numpy Generator
        An int is combined with a SHA-256 digest of ``arrays`` (values and shapes), so the draws
        depend on the seed and the numbers only, never on names or on what else a run computes;
        a Generator is split with :meth:`numpy.random.Generator.spawn`.
    *arrays : array-like
        The data of the test (``base``, ``other`` and, if any, the strata codes).

    Returns
    -------
    dict of numpy Generators
        ``{"permutation": ..., "bootstrap": ..., "shift": ..., "sign_flip": ...}``; children of one
        :class:`numpy.random.SeedSequence`, so drawing more from one leaves the others unchanged.

    Examples
    --------
    >>> a = data_streams(0, [[1.0, 2.0]])["permutation"].integers(1000)
    >>> b = data_streams(0, [[1.0, 2.0]])["permutation"].integers(1000)
    >>> c = data_streams(0, [[1.0, 2.5]])["permutation"].integers(1000)
    >>> bool(a == b), bool(a == c)
    (True, False)
    """
    if isinstance(seed, np.random.Generator):
        return dict(zip(STREAMS, seed.spawn(len(STREAMS))))
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array, dtype=float)
        digest.update(repr(array.shape).encode("ascii"))
        digest.update(array.tobytes())
    words = np.frombuffer(digest.digest()[:16], dtype=np.uint32).tolist()
    children = np.random.SeedSequence([int(seed), *words]).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}


def _standardized_ranks(values: np.ndarray, axis: int) -> np.ndarray:
    """Average ranks along ``axis``, centred, scaled to unit length; NaN where constant.

    The dot product of two such vectors is their Spearman rho.
    """
    ranks = rankdata(values, axis=axis)
    ranks = ranks - ranks.mean(axis=axis, keepdims=True)
    norm = np.sqrt((ranks ** 2).sum(axis=axis, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 1e-12, ranks / np.where(norm > 1e-12, norm, 1.0), np.nan)


def _clean(rho):
    """Rhos clipped to [-1, 1] and rounded to 12 decimals, so that floating-point noise in the
    rank sums (0.9999999999999997) does not show in tables."""
    return np.round(np.clip(rho, -1.0, 1.0), 12)


def _quiet_nanmean(values, axis=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN, as intended
        return np.nanmean(values, axis=axis)


def spearman_per_group(base, other) -> np.ndarray:
    """Spearman's rho between each group's two profile vectors.

    Parameters
    ----------
    base, other : array-like of shape (n_groups, n_dims)
        Row ``i`` of both is the same group.

    Returns
    -------
    rho : ndarray of shape (n_groups,)
        In [-1, 1]; 1 means the group's dimensions are in the same order in both profiles.
        NaN for a group whose vector is constant in either profile.

    Notes
    -----
    ``rho_g = corr(rank(base_g), rank(other_g))`` with average ranks for ties.

    Examples
    --------
    >>> spearman_per_group([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]], [[0.2, 0.4, 0.9], [0.1, 0.2, 0.3]])
    array([ 1., -1.])

    Ties share their mean rank: ranks (1.5, 1.5, 3) and (1, 2.5, 2.5), centred (-.5, -.5, 1) and
    (-1, .5, .5), give rho = 0.75 / 1.5:

    >>> spearman_per_group([[0, 0, 1]], [[0, 1, 1]])
    array([0.5])
    """
    base, other = _check_pair(base, other)
    return _clean((_standardized_ranks(base, axis=1) * _standardized_ranks(other, axis=1)).sum(axis=1))


def cosine_similarity_matrix(profiles) -> np.ndarray:
    """Group-by-group cosine similarity of profile vectors.

    Parameters
    ----------
    profiles : array-like of shape (n_groups, n_dims)
        No row may be all zeros (its cosine is undefined).

    Returns
    -------
    similarity : ndarray of shape (n_groups, n_groups)
        ``S[i, j] = <x_i, x_j> / (|x_i| |x_j|)``; in [0, 1] for non-negative profiles, 1 on the
        diagonal. Rounded to 12 decimals, so that similarities equal in exact arithmetic (groups
        with proportional profiles are common) tie in the RSA ranks instead of being ordered by
        floating-point noise.

    Examples
    --------
    >>> cosine_similarity_matrix([[1, 0], [0, 1], [1, 1]]).round(4)
    array([[1.    , 0.    , 0.7071],
           [0.    , 1.    , 0.7071],
           [0.7071, 0.7071, 1.    ]])
    """
    profiles = np.asarray(profiles, dtype=float)
    zero = ~np.any(profiles != 0, axis=1)
    if np.any(zero):
        raise ValueError(f"rows {np.flatnonzero(zero).tolist()} are all zeros: cosine similarity is undefined")
    return np.round(np.clip(cosine_similarity(profiles), -1.0, 1.0), 12)


def _rsa_standardized(similarity: np.ndarray, diagonal: str) -> np.ndarray:
    """Row-wise standardised ranks of a similarity matrix; with ``diagonal="exclude"`` the
    diagonal is left out of the ranking and set to 0 (so it adds nothing to dot products)."""
    n = len(similarity)
    if diagonal == "include":
        return _standardized_ranks(similarity, axis=1)
    off = ~np.eye(n, dtype=bool)
    z = np.zeros((n, n))
    z[off] = _standardized_ranks(similarity[off].reshape(n, n - 1), axis=1).ravel()
    return z


def rsa(base, other, *, diagonal: str = "exclude") -> dict:
    """Representational similarity analysis between two sets of profiles.

    Parameters
    ----------
    base, other : array-like of shape (n_groups, n_dims)
        Row ``i`` of both is the same group; no row may be all zeros; n_groups >= 3.
    diagonal : {"exclude", "include"}, default "exclude"
        Whether a group's similarity to itself (always 1) takes part in its row's ranking.
        Choenni et al. (2021) included it; it is the largest value of every row in both matrices,
        so including it pushes every rho up.

    Returns
    -------
    dict
        ``rho``: the mean of ``per_group`` (NaN ignored), in [-1, 1];
        ``per_group``: ndarray of shape (n_groups,), Spearman's rho between row ``g`` of
        ``S_base`` and row ``g`` of ``S_other`` (NaN for a constant row).

    Notes
    -----
    ``S_m = cosine_similarity_matrix(profiles_m)``;
    ``rho_g = spearman(S_base[g, J], S_other[g, J])`` with ``J`` all groups, or all but ``g``;
    ``RSA = mean_g rho_g``.

    Examples
    --------
    Group a is most like b in one model and most like c in the other:

    >>> base = [[1, 0], [1, 0.1], [0, 1]]
    >>> other = [[1, 0], [0, 1], [1, 0.1]]
    >>> rsa(base, other)["per_group"]
    array([-1., -1., -1.])

    Including the diagonal adds a shared maximum to each row: row a becomes ranks (3, 2, 1)
    against (3, 1, 2), rho = 0.5:

    >>> rsa(base, other, diagonal="include")["per_group"]
    array([0.5, 0.5, 0.5])
    """
    _check_choice(diagonal, DIAGONAL_OPTIONS, "diagonal")
    base, other = _check_pair(base, other)
    if len(base) < 3:
        raise ValueError(f"rsa needs at least 3 groups, got {len(base)}")
    za = _rsa_standardized(cosine_similarity_matrix(base), diagonal)
    zb = _rsa_standardized(cosine_similarity_matrix(other), diagonal)
    per_group = _clean((za * zb).sum(axis=1))
    return {"rho": float(_quiet_nanmean(per_group)), "per_group": per_group}


def per_emotion(base, other) -> np.ndarray:
    """Per dimension, Spearman's rho across groups.

    Parameters
    ----------
    base, other : array-like of shape (n_groups, n_dims)

    Returns
    -------
    rho : ndarray of shape (n_dims,)
        ``rho_d = spearman(base[:, d], other[:, d])``: 1 when both profiles order the groups
        the same way on dimension ``d``; NaN when a column is constant.

    Examples
    --------
    >>> per_emotion([[0.1, 0.5], [0.2, 0.4], [0.3, 0.0]], [[0.0, 0.1], [0.5, 0.2], [0.9, 0.3]])
    array([ 1., -1.])
    """
    base, other = _check_pair(base, other)
    return _clean((_standardized_ranks(base, axis=0) * _standardized_ranks(other, axis=0)).sum(axis=0))


def statistic(base, other, *, method: str, diagonal: str = "exclude"):
    """The summary statistic of ``method``: mean per-group rho (``spearman``), mean RSA rho
    (``rsa``), or the ``(n_dims,)`` per-dimension rhos (``emotion``).

    >>> statistic([[0, 1, 2], [2, 1, 0]], [[0, 1, 2], [0, 1, 2]], method="spearman")
    0.0
    >>> statistic([[0, 1], [1, 2], [2, 0]], [[0, 1], [1, 2], [2, 3]], method="emotion")
    array([ 1. , -0.5])
    """
    _check_choice(method, METHODS, "method")
    if method == "spearman":
        return float(_quiet_nanmean(spearman_per_group(base, other)))
    if method == "rsa":
        return rsa(base, other, diagonal=diagonal)["rho"]
    return per_emotion(base, other)


def _permutations(n: int, n_permutations: int, rng: np.random.Generator, strata=None) -> np.ndarray:
    """``(n_permutations, n)`` random permutations of ``range(n)``; with ``strata`` (one label per
    item) each permutation maps every item to an item of the same stratum."""
    if strata is None:
        return rng.permuted(np.tile(np.arange(n), (n_permutations, 1)), axis=1)
    permutations = np.tile(np.arange(n), (n_permutations, 1))
    for members in _strata_members(n, strata):
        permutations[:, members] = members[rng.permuted(np.tile(np.arange(len(members)), (n_permutations, 1)), axis=1)]
    return permutations


def _strata_members(n: int, strata) -> list[np.ndarray]:
    """The positions of each stratum, in order of first appearance (one stratum without ``strata``)."""
    if strata is None:
        return [np.arange(n)]
    strata = np.asarray(strata)
    if strata.shape != (n,):
        raise ValueError(f"strata must have one label per group ({n}), got shape {strata.shape}")
    return [np.flatnonzero(strata == label) for label in dict.fromkeys(strata.tolist())]


def n_distinct_permutations(n_groups: int, *, strata=None, limit: int | None = None) -> int:
    """How many distinct permutations a test may draw: ``prod_s n_s!`` over the strata (``n!``
    without strata).

    With ``limit``, any count above it is returned as ``limit + 1`` (the product of factorials of
    2,400 groups is not worth computing to decide that it exceeds the permutations one would draw).

    >>> n_distinct_permutations(3), n_distinct_permutations(5, strata=[0, 0, 1, 1, 1])
    (6, 12)
    >>> n_distinct_permutations(400, limit=10_000)
    10001
    """
    total = 1
    for members in _strata_members(n_groups, strata):
        for k in range(2, len(members) + 1):
            total *= k
            if limit is not None and total > limit:
                return limit + 1
    return total


@functools.lru_cache(maxsize=16)
def _all_orders(size: int) -> np.ndarray:
    """Every permutation of ``range(size)``, identity first, as a ``(size!, size)`` array."""
    return np.array(list(itertools.permutations(range(size))), dtype=np.int64).reshape(-1, size)


def _enumerated_permutations(members: list[np.ndarray], n: int, start: int, stop: int) -> np.ndarray:
    """Permutations ``start`` to ``stop - 1`` of all ``prod_s n_s!`` within-stratum permutations:
    index ``k`` is read as mixed-radix digits, one per stratum (radix ``n_s!``); index 0 is the
    identity."""
    index = np.arange(start, stop, dtype=np.int64)
    permutations = np.tile(np.arange(n), (len(index), 1))
    for positions in members:
        if len(positions) < 2:
            continue
        orders = _all_orders(len(positions))
        permutations[:, positions] = positions[orders[index % len(orders)]]
        index //= len(orders)
    return permutations


def _null_function(base, other, *, method, diagonal):
    """``(null, bytes_per_permutation)``: ``null(permutations, columns)`` is the statistic of
    ``method`` with ``other``'s groups relabelled by each permutation, shape
    ``(n_permutations, len(columns))`` (``columns``: the ``emotion`` dimensions wanted; one column
    for the other methods). The ranks and similarity matrices are computed once, here."""
    n = base.shape[0]
    if method == "spearman":
        pair_rho = _standardized_ranks(base, axis=1) @ _standardized_ranks(other, axis=1).T
        rows = np.arange(n)

        def null(permutations, columns=None):
            return _quiet_nanmean(_clean(pair_rho[rows, permutations]), axis=1)[:, None]

        return null, 8 * n * 4
    if method == "emotion":
        zb = _standardized_ranks(base, axis=0)
        zo = _standardized_ranks(other, axis=0)
        width = base.shape[1]

        def null(permutations, columns=None):
            columns = np.arange(width) if columns is None else np.asarray(columns)
            return _clean(np.einsum("nd,pnd->pd", zb[:, columns], zo[:, columns][permutations]))

        return null, 8 * n * (width + 1) * 3
    za = _rsa_standardized(cosine_similarity_matrix(base), diagonal)
    zo = _rsa_standardized(cosine_similarity_matrix(other), diagonal)

    def null(permutations, columns=None):
        values = np.empty(len(permutations))
        step = _chunk_size(_RSA_PERMUTATION_BYTES * n * n)
        for start in range(0, len(permutations), step):
            chunk = permutations[start:start + step]
            if n < 32:  # small matrices: one broadcast (chunk, n, n) gather, rows and columns together
                rows = (za[None] * zo[chunk[:, :, None], chunk[:, None, :]]).sum(axis=2)
            else:  # one (n, n) matrix at a time: np.ix_ gathers it several times faster than the broadcast index
                rows = np.stack([np.einsum("ij,ij->i", za, zo[np.ix_(p, p)]) for p in chunk])
            values[start:start + len(chunk)] = _quiet_nanmean(_clean(rows), axis=1)
        return values[:, None]

    return null, 8 * n * 3


def _null_distribution(base, other, *, method, diagonal, permutations) -> np.ndarray:
    """The statistic of ``method`` with ``other``'s groups relabelled by each permutation:
    ``(n_permutations,)``, or ``(n_permutations, n_dims)`` for ``emotion``."""
    null, _ = _null_function(base, other, method=method, diagonal=diagonal)
    values = null(np.asarray(permutations))
    return values if method == "emotion" else values[:, 0]


def permutation_test(base, other, *, method: str, n_permutations: int = 1000, exceedances: int = 0,
                     diagonal: str = "exclude", strata=None, seed: int | np.random.Generator = 0) -> dict:
    """One-sided permutation test: do the profiles agree more than under a random group pairing?

    Parameters
    ----------
    base, other : array-like of shape (n_groups, n_dims)
        Row ``i`` of both is the same group.
    method : {"spearman", "rsa", "emotion"}
    n_permutations : int, default 1000
        The most random permutations drawn (Monte Carlo, with replacement among the allowed
        permutations), ``B``. When the allowed permutations are no more than ``B``, all of them
        are enumerated instead and ``p`` is exact.
    exceedances : int, default 0
        ``h`` of the sequential rule (Besag and Clifford 1991 [4]_): stop a test at its ``h``-th
        permutation with ``T(pi) >= T_obs``. 0: always draw ``B`` (a fixed-count test).
    diagonal : {"exclude", "include"}, default "exclude"
        For ``rsa`` only; see :func:`rsa`.
    strata : array-like of shape (n_groups,), optional
        A label per group (its category, for a pooled test): permutations then only exchange
        groups of the same stratum. Default: any group with any group.
    seed : int or numpy Generator, default 0

    Returns
    -------
    dict
        ``statistic``: the observed statistic (see :func:`statistic`); ``p_value``: float, or
        ``(n_dims,)`` array for ``emotion``, in ``(0, 1]``; NaN where the statistic is;
        ``n_permutations``: the permutations ``p`` rests on (float like ``p_value``; NaN where
        ``p`` is); ``p_floor``: the smallest ``p`` the test can give, ``1/N`` when exact, else
        ``1/(B+1)``; ``exact``: whether every permutation was enumerated;
        ``null_mean``, ``null_low``, ``null_high``: the mean and the 2.5 and 97.5 percentiles
        (:data:`NULL_PERCENTILES`) of the permutation statistics drawn (the statistic's chance
        band; at least the first ``min(B, N, 100)`` draws, see :data:`NULL_BAND_DRAWS`).

    Notes
    -----
    Null hypothesis: the pairing of groups between the two profiles carries no information
    (with ``strata``: none beyond the stratum; ``other``'s groups are exchangeable within each
    stratum). A permutation ``pi`` of the groups (within strata, if given) relabels ``other``:

    * ``spearman``: ``T(pi) = mean_g spearman(base_g, other_pi(g))``, i.e. which group's vector
      in ``other`` is paired with which group in ``base``;
    * ``rsa``: ``S_other`` is relabelled, rows and columns together:
      ``S'[i, j] = S_other[pi(i), pi(j)]``, and ``T(pi) = RSA(S_base, S')``;
    * ``emotion``: the groups of ``other`` are shuffled: ``T_d(pi) = spearman(base[:, d], other[pi, d])``.

    Let ``N = prod_s n_s!`` be the number of allowed permutations (:func:`n_distinct_permutations`).

    * ``N <= B``: all ``N`` are enumerated (the identity among them) and
      ``p = #{T(pi) >= T_obs} / N``, exact; ``p >= 1/N``.
    * otherwise, random permutations are drawn one after another (in batches whose size depends on
      the number of groups, so memory stays bounded). With ``h = exceedances > 0`` the test stops
      at the ``L``-th draw if that is the ``h``-th with ``T(pi) >= T_obs``: ``p = h / L``;
      a test reaching ``B`` draws with ``g < h`` exceedances (or any test with ``h = 0``) gets
      ``p = (1 + g) / (1 + B)`` (never 0 [3]_). Both are valid p-values, ``P(p <= a) <= a``
      under the null [4]_; the smallest is ``1/(B+1)`` (``h/L >= h/B > 1/(B+1)``). A test far
      from significance stops after about ``h / p`` draws; one near or beyond the rejection
      boundary draws on, up to ``B``.
    * ``emotion`` decides per dimension: draws go on while any dimension is unresolved, and each
      dimension counts only the draws up to its own stop.

    Because all profiles share structure (every group has more ``negative`` than ``surprise``,
    say), mismatched pairs correlate too; the test asks whether the *matched* pairing beats them.
    Pooling categories without strata would also count agreement that only reflects the
    categories (groups of one category resemble each other in both models) as a match.

    Examples
    --------
    Identical profiles of eight groups: no random pairing reaches rho = 1.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((8, 10))
    >>> result = permutation_test(x, x, method="spearman", n_permutations=99, seed=1)
    >>> result["statistic"], result["p_value"]
    (1.0, 0.01)

    Three groups have 3! = 6 pairings; enumerated, the identity is the only one reaching rho = 1,
    so p = 1/6, and no data can give less:

    >>> result = permutation_test(x[:3], x[:3], method="spearman", n_permutations=99)
    >>> round(result["p_value"], 4), round(result["p_floor"], 4), result["n_permutations"], result["exact"]
    (0.1667, 0.1667, 6.0, True)

    The sequential rule stops a null test at its 10th exceedance, long before B:

    >>> y = rng.random((30, 10))
    >>> result = permutation_test(x[:6].repeat(5, axis=0), y, method="spearman", n_permutations=9999,
    ...                           exceedances=10, seed=2)
    >>> result["n_permutations"] < 100, result["p_value"] == 10 / result["n_permutations"]
    (True, True)

    Four strata of one group each allow no other pairing (N = 1): p = 1.

    >>> permutation_test(x[:4], x[:4], method="spearman", n_permutations=9, strata=[0, 1, 2, 3])["p_value"]
    1.0
    """
    _check_choice(method, METHODS, "method")
    _check_choice(diagonal, DIAGONAL_OPTIONS, "diagonal")
    base, other = _check_pair(base, other)
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be at least 1, got {n_permutations}")
    if not 0 <= exceedances <= n_permutations:
        raise ValueError(f"exceedances must be between 0 and n_permutations ({n_permutations}), got {exceedances}")
    n = len(base)
    members = _strata_members(n, strata)
    observed = statistic(base, other, method=method, diagonal=diagonal)
    target = np.atleast_1d(np.asarray(observed, dtype=float)) - 1e-9  # >= despite floating-point noise in the sums
    width = len(target)
    n_distinct = n_distinct_permutations(n, strata=strata, limit=n_permutations)
    exact = n_distinct <= n_permutations
    total = n_distinct if exact else n_permutations
    sequential = exceedances > 0 and not exact
    null, bytes_each = _null_function(base, other, method=method, diagonal=diagonal)
    batch_limit = max(1, _BATCH_BYTES // bytes_each)
    rng = _rng(seed)

    defined = ~np.isnan(target)
    open_ = defined.copy()  # still counting: not stopped by the sequential rule
    exceed = np.zeros(width, dtype=np.int64)
    used = np.full(width, np.nan)
    p_value = np.full(width, np.nan)
    band, kept, drawn, size = [], 0, 0, min(NULL_BAND_DRAWS, batch_limit)
    while drawn < total and (open_.any() or drawn < NULL_BAND_DRAWS):
        size = min(size, batch_limit, total - drawn)
        permutations = (_enumerated_permutations(members, n, drawn, drawn + size) if exact
                        else _permutations(n, size, rng, strata))
        columns = np.arange(width) if drawn < NULL_BAND_DRAWS else np.flatnonzero(open_)
        values = np.full((size, width), np.nan)
        values[:, columns] = null(permutations, columns)
        if kept < _BAND_STORE_MAX:
            band.append(values[:_BAND_STORE_MAX - kept])
            kept += len(band[-1])
        hits = (values >= target) & open_  # NaN compares False
        if sequential:
            reached = exceed + np.cumsum(hits, axis=0) >= exceedances  # (size, width)
            stop = reached.any(axis=0) & open_
            used[stop] = drawn + reached.argmax(axis=0)[stop] + 1
            p_value[stop] = exceedances / used[stop]
            open_ &= ~stop
        exceed += hits.sum(axis=0)
        drawn += size
        size *= 2  # a test that did not stop is likely to go far: fewer, larger batches
    unresolved = open_ & defined
    used[unresolved] = total
    p_value[unresolved] = exceed[unresolved] / total if exact else (1 + exceed[unresolved]) / (1 + total)
    band = np.concatenate(band) if band else np.full((1, width), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN null gives NaN, as intended
        low, high = np.nanpercentile(band, NULL_PERCENTILES, axis=0)
    summary = {"null_mean": _quiet_nanmean(band, axis=0), "null_low": low, "null_high": high}
    floor = 1.0 / total if exact else 1.0 / (1 + total)
    if method != "emotion":
        return {"statistic": observed, "p_value": float(p_value[0]), "n_permutations": float(used[0]),
                "p_floor": floor, "exact": exact, **{k: float(v[0]) for k, v in summary.items()}}
    return {"statistic": observed, "p_value": p_value, "n_permutations": used, "p_floor": floor, "exact": exact,
            **summary}


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple:
    alpha = (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(samples, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return low, high


def _bootstrap_indices(n: int, n_bootstrap: int, rng: np.random.Generator, strata=None) -> np.ndarray:
    """``(n_bootstrap, n)`` resamples of ``range(n)`` with replacement; with ``strata`` (one label
    per item) position ``a`` draws from the items of its own stratum, so every resample keeps each
    stratum's count."""
    if strata is None:
        return rng.integers(0, n, size=(n_bootstrap, n))
    indices = np.empty((n_bootstrap, n), dtype=np.int64)
    for members in _strata_members(n, strata):
        indices[:, members] = members[rng.integers(0, len(members), size=(n_bootstrap, len(members)))]
    return indices


def _rank_tables(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``similarity``: the column order that sorts it, and for every column ``j`` the
    first and one-past-last sorted positions of the values equal to ``S[i, j]`` (its tie group).
    int32, built in blocks of rows so that the temporaries stay within :data:`CHUNK_BYTES`."""
    n = len(similarity)
    order, first, last = (np.empty((n, n), dtype=np.int32) for _ in range(3))
    position = np.arange(n)
    step = _chunk_size(48 * n)
    for start in range(0, n, step):
        rows = slice(start, start + step)
        block_order = np.argsort(similarity[rows], axis=1, kind="stable")
        values = np.take_along_axis(similarity[rows], block_order, axis=1)
        new = np.ones(values.shape, dtype=bool)
        new[:, 1:] = values[:, 1:] != values[:, :-1]  # a tie group starts here
        begins = np.maximum.accumulate(np.where(new, position, 0), axis=1)
        ends_here = np.ones(values.shape, dtype=bool)
        ends_here[:, :-1] = new[:, 1:]
        ends = np.minimum.accumulate(np.where(ends_here, position + 1, n)[:, ::-1], axis=1)[:, ::-1]
        order[rows] = block_order
        np.put_along_axis(first[rows], block_order, begins, axis=1)
        np.put_along_axis(last[rows], block_order, ends, axis=1)
    return order, first, last


def _weighted_centred_ranks(weights: np.ndarray, groups: np.ndarray, tables) -> np.ndarray:
    """Twice the centred average ranks of row ``groups[p]`` of a similarity matrix, each column
    ``j`` counted ``weights[p, j]`` times (int32, exact; column order).

    With ``cum`` the cumulative weights in the row's sorted order (``cum[0] = 0``), the values
    tied with column ``j`` occupy weighted positions ``cum[first_j] + 1 .. cum[last_j]``; their
    average rank is ``(cum[first_j] + cum[last_j] + 1) / 2`` and the weighted mean rank
    ``(T + 1) / 2`` (``T`` the total weight), so twice the centred rank is
    ``cum[first_j] + cum[last_j] - T``.
    """
    order, first, last = tables
    cumulative = np.zeros((len(groups), weights.shape[1] + 1), dtype=np.int32)
    np.cumsum(np.take_along_axis(weights, order[groups], axis=1), axis=1, out=cumulative[:, 1:])
    doubled = np.take_along_axis(cumulative, first[groups], axis=1)
    doubled += np.take_along_axis(cumulative, last[groups], axis=1)
    doubled -= cumulative[:, -1:]
    return doubled


def _rsa_resampled(base, other, indices: np.ndarray, diagonal: str) -> np.ndarray:
    """RSA of each bootstrap resample of the groups, both similarity matrices recomputed on it.

    In resample ``b`` row ``a`` is group ``indices[b, a]``; its rho runs over the columns that
    are a different group (a copy of the row's own group is left out; with
    ``diagonal="include"`` the row's own cell stays in).

    Computed without re-ranking: a resample's matrix holds group ``j``'s column ``c_j`` times
    (``c`` its counts), so row ``i``'s Spearman rho is a weighted one over the original ``n``
    columns with weights ``c_j`` (and ``c_i`` set to 0, or 1 with the diagonal), whose average
    ranks follow from each row's sort order, computed once (:func:`_weighted_centred_ranks`).
    Copies of a group have the same row, so each distinct group's rho is computed once and
    counted ``c_i`` times in the mean. Ranks are exact integers; the result equals ranking the
    resampled matrices (``scipy.stats.rankdata``) up to floating-point rounding (1e-15).
    """
    sa, so = cosine_similarity_matrix(base), cosine_similarity_matrix(other)
    n = len(sa)
    tables = (_rank_tables(sa), _rank_tables(so))
    del sa, so
    own = 1 if diagonal == "include" else 0
    result = np.full(len(indices), np.nan)
    step = _chunk_size(_RSA_RESAMPLE_BYTES * n * n)
    for start in range(0, len(indices), step):
        chunk = indices[start:start + step]
        offsets = (np.arange(len(chunk))[:, None] * n + chunk).ravel()
        counts = np.bincount(offsets, minlength=len(chunk) * n).astype(np.int32).reshape(len(chunk), n)
        resample, groups = np.nonzero(counts)  # one row per distinct group of each resample
        weights = counts[resample]
        weights[np.arange(len(groups)), groups] = own
        za = _weighted_centred_ranks(weights, groups, tables[0])
        zo = _weighted_centred_ranks(weights, groups, tables[1])
        weights, za, zo = (array.astype(float) for array in (weights, za, zo))
        weighted_a = weights * za
        numerator = np.einsum("pj,pj->p", weighted_a, zo)
        norm_a = np.einsum("pj,pj->p", weighted_a, za)
        del weighted_a
        norm_o = np.einsum("pj,pj->p", weights * zo, zo)
        del weights, za, zo
        defined = (norm_a > 0) & (norm_o > 0)  # integer sums: 0 exactly when a row's ranks are all tied
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = _clean(numerator / np.sqrt(np.where(defined, norm_a * norm_o, 1.0)))
        multiplicity = counts[resample, groups] * defined
        total = np.bincount(resample, weights=multiplicity * np.where(defined, rho, 0.0), minlength=len(chunk))
        rows = np.bincount(resample, weights=multiplicity, minlength=len(chunk))
        with np.errstate(invalid="ignore", divide="ignore"):
            result[start:start + len(chunk)] = np.where(rows > 0, total / np.where(rows > 0, rows, 1), np.nan)
    return result


def bootstrap_ci(base, other, *, method: str, n_bootstrap: int = 1000, confidence: float = 0.95,
                 diagonal: str = "exclude", strata=None, seed: int | np.random.Generator = 0) -> dict:
    """Percentile bootstrap interval over groups for the statistic of ``method``.

    Parameters
    ----------
    base, other : array-like of shape (n_groups, n_dims)
    method : {"spearman", "rsa", "emotion"}
    n_bootstrap : int, default 1000
        Resamples of the groups, with replacement.
    confidence : float, default 0.95
    diagonal : {"exclude", "include"}, default "exclude"
        For ``rsa`` only.
    strata : array-like of shape (n_groups,), optional
        A label per group (its category, for a pooled row): each resample then draws every
        stratum's groups from that stratum only, keeping its count (a stratified bootstrap, as
        :func:`permutation_test` with ``strata`` permutes within strata). Default: one stratum.
    seed : int or numpy Generator, default 0

    Returns
    -------
    dict
        ``ci_low``, ``ci_high``: floats, or ``(n_dims,)`` arrays for ``emotion``; the
        ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of the resampled statistic
        (resamples where it is undefined are ignored).

    Notes
    -----
    Every method resamples the groups (rows of both profiles together) and recomputes its
    statistic on the resample:

    * ``spearman``: a group's rho depends on that group only, so this is the mean of the
      resampled per-group rhos;
    * ``rsa``: both similarity matrices are those of the resampled groups; a group's row leaves
      out its own copies (their similarity is 1 in both matrices, a tie no real pair has), so
      with ``diagonal="exclude"`` row ``g`` still ranks only other groups. Resampling the
      per-group rhos instead would treat them as independent, which they are not (each is
      computed from the same two matrices): the intervals were too narrow (simulated coverage of
      a nominal 95% interval 0.77 at 20 groups, 0.68 at 60);
    * ``emotion``: each column's rho across the resampled groups.

    With ``strata`` the resample of stratum ``k`` (``n_k`` groups) is ``n_k`` draws with
    replacement from its own groups (the stratified bootstrap of Davison and Hinkley 1997 [6]_,
    chapter 3: the categories are fixed by the design, the groups within them are sampled), and
    the resampled statistics are widened about the observed one by
    ``sqrt(n / (n - K)) * t_{n-K}(q) / z(q)`` for ``K`` strata and ``q = (1 + confidence) / 2``
    (:func:`_widened`; without it small strata give too narrow intervals). Memory: resamples are processed in chunks whose
    temporaries stay within :data:`CHUNK_BYTES`.

    References
    ----------
    .. [6] Anthony C. Davison and David V. Hinkley. 1997. Bootstrap Methods and their
       Application. Cambridge University Press.
    .. [7] Tim C. Hesterberg. 2015. What teachers should know about the bootstrap: resampling in
       the undergraduate statistics curriculum. The American Statistician 69(4): 371-386.

    Examples
    --------
    Every group has rho = 1, so every resample averages to 1:

    >>> x = [[0.1, 0.2, 0.3], [0.3, 0.1, 0.2], [0.2, 0.3, 0.1]]
    >>> bootstrap_ci(x, x, method="spearman", n_bootstrap=50)
    {'ci_low': 1.0, 'ci_high': 1.0}

    Identical similarity structure stays identical on every resample:

    >>> y = [[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]]
    >>> bootstrap_ci(y, y, method="rsa", n_bootstrap=50)
    {'ci_low': 1.0, 'ci_high': 1.0}

    Two strata of one group each: every resample is the sample itself.

    >>> bootstrap_ci([[0, 1, 2], [2, 1, 0]], [[0, 1, 2], [0, 1, 2]], method="spearman", n_bootstrap=20,
    ...              strata=["a", "b"])
    {'ci_low': 0.0, 'ci_high': 0.0}
    """
    _check_choice(method, METHODS, "method")
    _check_choice(diagonal, DIAGONAL_OPTIONS, "diagonal")
    base, other = _check_pair(base, other)
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    indices = _bootstrap_indices(len(base), n_bootstrap, _rng(seed), strata)
    if method == "emotion":
        resampled = np.empty((n_bootstrap, base.shape[1]))
        step = _chunk_size(96 * base.size)  # gathered profiles, rankdata's sort and ranks, products (measured ~70)
        for start in range(0, n_bootstrap, step):
            chunk = indices[start:start + step]
            products = _standardized_ranks(base[chunk], axis=1) * _standardized_ranks(other[chunk], axis=1)
            resampled[start:start + len(chunk)] = _clean(products.sum(axis=1))
        observed = per_emotion(base, other)
    elif method == "rsa":  # the sample itself as a last "resample": its RSA from the same rank tables
        resampled = _rsa_resampled(base, other, np.vstack([indices, np.arange(len(base))]), diagonal)
        resampled, observed = resampled[:-1], resampled[-1]
    else:
        per_group = spearman_per_group(base, other)
        resampled, observed = _quiet_nanmean(per_group[indices], axis=1), _quiet_nanmean(per_group)
    if strata is not None:
        resampled = _widened(resampled, observed, len(base), len(_strata_members(len(base), strata)), confidence)
    low, high = _percentile_interval(resampled, confidence)
    if method == "emotion":
        return {"ci_low": low, "ci_high": high}
    return {"ci_low": float(low), "ci_high": float(high)}


def _widened(resampled: np.ndarray, observed, n: int, n_strata: int, confidence: float) -> np.ndarray:
    """Resampled statistics moved away from the observed one by
    ``sqrt(n / (n - K)) * t_{n - K}(q) / z(q)``, ``K = n_strata``, ``q = (1 + confidence) / 2``.

    Resampling ``n_k`` of ``n_k`` groups estimates a stratum's variance with divisor ``n_k``
    instead of ``n_k - 1``; for a pooled mean the bootstrap variance is then ``(n - K) / n`` of the
    unbiased one (``K`` strata of about equal spread), which makes percentile intervals too narrow
    when strata are small (simulated coverage 0.90 at nominal 0.95 with 5 groups per category).
    Widening by the inverse factor, and by the ratio of Student's to the normal quantile for the
    ``n - K`` degrees of freedom, is the expanded percentile interval of Hesterberg (2015) [7]_
    with the stratified degrees of freedom. Where the observed statistic is undefined, the
    resamples are left as they are. One stratum of one group per group (``n == K``): unchanged.
    """
    if n <= n_strata:
        return resampled
    q = (1 + confidence) / 2
    factor = np.sqrt(n / (n - n_strata)) * student_t.ppf(q, n - n_strata) / norm.ppf(q)
    return np.where(np.isnan(observed), resampled, observed + factor * (resampled - observed))


def mean_shift(base, other, *, n_bootstrap: int = 1000, confidence: float = 0.95, strata=None,
               seed: int | np.random.Generator = 0) -> dict:
    """Per dimension, the mean over groups of ``other - base``, with a bootstrap interval.

    Parameters
    ----------
    base, other : array-like of shape (n_groups, n_dims)
    n_bootstrap : int, default 1000
    confidence : float, default 0.95
    strata : array-like of shape (n_groups,), optional
        Resample within strata, widened for their size (see :func:`bootstrap_ci`).
    seed : int or numpy Generator, default 0

    Returns
    -------
    dict of ndarrays of shape (n_dims,)
        ``base_mean``, ``other_mean``, ``shift = other_mean - base_mean`` (in [-1, 1] for
        profiles in [0, 1]; positive: ``other`` gives the dimension a larger share), ``ci_low``,
        ``ci_high`` (percentile bootstrap over groups). Its p-value: :func:`sign_flip_test`.

    Examples
    --------
    >>> result = mean_shift([[0.2, 0.5], [0.4, 0.5]], [[0.3, 0.5], [0.5, 0.5]], n_bootstrap=20)
    >>> result["shift"].round(6), result["ci_low"].round(6), result["ci_high"].round(6)
    (array([0.1, 0. ]), array([0.1, 0. ]), array([0.1, 0. ]))
    """
    base, other = _check_pair(base, other)
    difference = other - base
    indices = _bootstrap_indices(len(base), n_bootstrap, _rng(seed), strata)
    means = np.empty((n_bootstrap, base.shape[1]))
    step = _chunk_size(8 * base.size)  # the gathered differences of one resample
    for start in range(0, n_bootstrap, step):
        means[start:start + step] = difference[indices[start:start + step]].mean(axis=1)
    if strata is not None:
        means = _widened(means, difference.mean(axis=0), len(base), len(_strata_members(len(base), strata)),
                         confidence)
    low, high = _percentile_interval(means, confidence)
    return {"base_mean": base.mean(axis=0), "other_mean": other.mean(axis=0),
            "shift": difference.mean(axis=0), "ci_low": low, "ci_high": high}


def sign_flip_test(base, other, *, n_permutations: int = 1000, seed: int | np.random.Generator = 0) -> dict:
    """Paired sign-flip permutation test of "the mean over groups of ``other - base`` is 0", per
    dimension (two-sided).

    Parameters
    ----------
    base, other : array-like of shape (n_groups, n_dims)
        Row ``i`` of both is the same group.
    n_permutations : int, default 1000
        Random sign vectors drawn when there are more than ``max(n_permutations,``
        :data:`EXACT_SIGN_FLIPS` ``)`` of them (``2^n_groups``); otherwise all are enumerated.
    seed : int or numpy Generator, default 0

    Returns
    -------
    dict
        ``statistic``: ``(n_dims,)`` mean differences ``T = mean_g d_g`` with ``d_g = other_g - base_g``;
        ``p_value``: ``(n_dims,)`` in ``(0, 1]``; ``n_sign_flips``: sign vectors used (including
        the identity); ``exact``: whether they were all ``2^n`` of them.

    Notes
    -----
    Null hypothesis: within each group the two profiles are exchangeable (``base`` and ``other``
    could be swapped), so each ``d_g`` is as likely as ``-d_g``: under it every sign vector
    ``s`` in ``{-1, 1}^n`` gives an equally likely ``T(s) = mean_g s_g d_g`` (Fisher 1935 [4]_;
    Good 2005 [5]_). Enumerated: ``p = #{s : |T(s)| >= |T_obs|} / 2^n``, exact for differences
    symmetric about 0 whatever their distribution; the smallest attainable p is ``2 / 2^n`` (``s``
    and ``-s`` give the same ``|T|``), e.g. 0.25 for 3 groups. Monte Carlo (``B`` random
    ``s``, each sign +1 or -1 with probability 1/2): ``p = (1 + #{|T(s)| >= |T_obs|}) / (1 + B)``
    [3]_. A dimension with all ``d_g = 0`` has p = 1. The test is about the mean only: a shift
    of some groups up and others down by the same amount is not detected.

    References
    ----------
    .. [4] Ronald A. Fisher. 1935. The Design of Experiments. Oliver and Boyd.
    .. [5] Phillip I. Good. 2005. Permutation, Parametric and Bootstrap Tests of Hypotheses,
       3rd ed. Springer (the one-sample and matched-pairs permutation tests).

    Examples
    --------
    Three groups, differences 0.1, 0.2, 0.3 in one dimension: of the 8 sign vectors only
    ``(+, +, +)`` and ``(-, -, -)`` reach ``|T| = 0.2``, so ``p = 2 / 8``:

    >>> result = sign_flip_test([[0.0], [0.0], [0.0]], [[0.1], [0.2], [0.3]])
    >>> result["p_value"], result["n_sign_flips"], result["exact"]
    (array([0.25]), 8, True)
    """
    base, other = _check_pair(base, other)
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be at least 1, got {n_permutations}")
    difference = other - base
    n = len(difference)
    observed = difference.mean(axis=0)
    threshold = np.abs(observed) - 1e-12  # so that T(s) equal to |T_obs| counts despite rounding
    exact = n < 63 and 2 ** n <= max(n_permutations, EXACT_SIGN_FLIPS)
    total = 2 ** n if exact else n_permutations
    exceed = np.zeros(difference.shape[1], dtype=np.int64)
    step = _chunk_size(16 * n)  # a chunk of sign vectors as float64, and the booleans drawn
    rng = _rng(seed)
    for start in range(0, total, step):
        size = min(step, total - start)
        if exact:  # bit g of the vector's number is group g's sign
            codes = np.arange(start, start + size)[:, None]
            signs = 1.0 - 2.0 * ((codes >> np.arange(n)) & 1)
        else:
            signs = np.where(rng.random((size, n)) < 0.5, -1.0, 1.0)
        exceed += (np.abs(signs @ difference) / n >= threshold).sum(axis=0)
    p_value = exceed / total if exact else (1 + exceed) / (1 + total)
    return {"statistic": observed, "p_value": p_value, "n_sign_flips": total, "exact": bool(exact)}


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values [2]_; NaN entries are left out and stay NaN.

    Parameters
    ----------
    p_values : array-like of shape (n_tests,)

    Returns
    -------
    ndarray of shape (n_tests,)
        ``p_adj(i) = min_{k >= rank(i)} min(1, m * p_(k) / k)`` over the ``m`` defined p-values
        (:func:`scipy.stats.false_discovery_control`, ``method="bh"``).

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, np.nan, 0.03])
    array([0.03, 0.04,  nan, 0.04])
    """
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, np.nan)
    defined = ~np.isnan(p_values)
    if defined.any():
        adjusted[defined] = false_discovery_control(p_values[defined], method="bh")
    return adjusted


def compare(base, other, *, method: str, n_permutations: int = 1000, exceedances: int = 0, n_bootstrap: int = 1000,
            confidence: float = 0.95, diagonal: str = "exclude", strata=None,
            seed: int | np.random.Generator = 0) -> dict:
    """Statistic, permutation p-value with its chance band, and bootstrap interval in one call.

    ``n_permutations=0`` or ``n_bootstrap=0`` skip that part (NaN). ``n_permutations`` and
    ``exceedances`` go to :func:`permutation_test` (the most permutations and the stopping rule),
    whose ``n_permutations`` (used) and ``p_floor`` are returned too. ``per_group`` holds the
    per-group rhos for ``spearman`` and ``rsa`` (None for ``emotion``). ``strata`` go to
    :func:`permutation_test` and :func:`bootstrap_ci` (permutations and resamples within strata). Permutations and resamples come from the ``permutation`` and
    ``bootstrap`` streams of :func:`data_streams` (seed and data only): the p-value does not
    depend on ``n_bootstrap``, nor the interval on ``n_permutations``.

    >>> x = np.arange(12.0).reshape(4, 3) % 5
    >>> result = compare(x, x, method="rsa", n_permutations=10, n_bootstrap=10)
    >>> sorted(result)  # doctest: +NORMALIZE_WHITESPACE
    ['ci_high', 'ci_low', 'n_permutations', 'null_high', 'null_low', 'null_mean', 'p_floor', 'p_value',
     'per_group', 'statistic']
    >>> result["n_permutations"], result["p_floor"]  # 4! = 24 pairings > 10: Monte Carlo, floor 1/11
    (10.0, 0.09090909090909091)
    """
    base, other = _check_pair(base, other)
    codes = None if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1]
    streams = data_streams(seed, base, other, *([] if codes is None else [codes]))
    width = base.shape[1] if method == "emotion" else None
    nan = np.full(width, np.nan) if width else float("nan")
    result = {"statistic": statistic(base, other, method=method, diagonal=diagonal), "p_value": nan,
              "n_permutations": nan, "p_floor": float("nan"),
              "null_mean": nan, "null_low": nan, "null_high": nan, "ci_low": nan, "ci_high": nan}
    if n_permutations > 0:
        test = permutation_test(base, other, method=method, n_permutations=n_permutations, exceedances=exceedances,
                                diagonal=diagonal, strata=strata, seed=streams["permutation"])
        result.update({key: test[key] for key in ("p_value", "n_permutations", "p_floor", "null_mean", "null_low",
                                                  "null_high")})
    if n_bootstrap > 0:
        result.update(bootstrap_ci(base, other, method=method, n_bootstrap=n_bootstrap, confidence=confidence,
                                   diagonal=diagonal, strata=strata, seed=streams["bootstrap"]))
    result["per_group"] = (spearman_per_group(base, other) if method == "spearman"
                           else rsa(base, other, diagonal=diagonal)["per_group"] if method == "rsa" else None)
    return result
