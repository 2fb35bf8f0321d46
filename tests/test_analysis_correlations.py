"""The correlation statistics against hand-computed values, brute-force references and their null."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from analysis import correlations as c


# ------------------------------------------------------------------ hand-computed values


def test_spearman_per_group_by_hand():
    base = [[0.1, 0.2, 0.3, 0.4],    # ranks 1 2 3 4
            [0.0, 0.0, 0.5, 0.5],    # ranks 1.5 1.5 3.5 3.5
            [0.3, 0.1, 0.2, 0.9]]    # ranks 3 1 2 4
    other = [[0.4, 0.3, 0.2, 0.1],   # ranks 4 3 2 1: reversed
             [0.1, 0.0, 0.2, 0.3],   # ranks 2 1 3 4
             [0.2, 0.1, 0.3, 0.9]]   # ranks 2 1 3 4
    rho = c.spearman_per_group(base, other)
    # group 1: reversed order
    # group 2: centred ranks (-1,-1,1,1) and (-.5,-1.5,.5,1.5): dot 4, norms 2 and sqrt(5): 2/sqrt(5)
    # group 3: d = (1, 0, -1, 0), sum d^2 = 2: 1 - 6*2/(4*15) = 0.8
    assert rho == pytest.approx([-1.0, 2 / math.sqrt(5), 0.8])
    assert c.statistic(base, other, method="spearman") == pytest.approx((-1 + 2 / math.sqrt(5) + 0.8) / 3)


def test_constant_vector_gives_nan_not_zero():
    rho = c.spearman_per_group([[0.5, 0.5, 0.5], [0.1, 0.2, 0.3]], [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]])
    assert np.isnan(rho[0]) and rho[1] == 1.0
    assert c.statistic([[0.5, 0.5, 0.5], [0.1, 0.2, 0.3]], [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]],
                       method="spearman") == 1.0  # the mean over defined groups


def unit(degrees):
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


# Four groups as 2-D directions; the cosine of two groups is cos(angle difference).
# base:  a 0°, b 20°, c 50°, d 90°  ->  ab .940, ac .643, ad 0, bc .866, bd .342, cd .766
# other: a 0°, b 50°, c 20°, d 90°  ->  ab .643, ac .940, ad 0, bc .866, bd .766, cd .342
RSA_BASE = [unit(0), unit(20), unit(50), [0.0, 1.0]]
RSA_OTHER = [unit(0), unit(50), unit(20), [0.0, 1.0]]


def test_rsa_by_hand_and_the_diagonal_changes_it():
    # Diagonal excluded, each row ranks 3 values (no ties): rho = 1 - 6 sum d^2 / (3 * 8).
    #   a: (b .940, c .643, d 0) ranks 3 2 1 vs (.643, .940, 0) ranks 2 3 1: sum d^2 = 2 -> 0.5
    #   b: (a .940, c .866, d .342) ranks 3 2 1 vs (.643, .866, .766) ranks 1 3 2: 6 -> -0.5
    #   c: (a .643, b .866, d .766) ranks 1 3 2 vs (.940, .866, .342) ranks 3 2 1: 6 -> -0.5
    #   d: (a 0, b .342, c .766) ranks 1 2 3 vs (0, .766, .342) ranks 1 3 2: 2 -> 0.5
    excluded = c.rsa(RSA_BASE, RSA_OTHER, diagonal="exclude")
    assert excluded["per_group"] == pytest.approx([0.5, -0.5, -0.5, 0.5])
    assert excluded["rho"] == pytest.approx(0.0, abs=1e-12)
    # Diagonal included: every row gains its own similarity 1, rank 4 in both: rho = 1 - 6 sum d^2 / 60.
    #   a: ranks 4 3 2 1 vs 4 2 3 1: 2 -> 0.8;  b: 3 4 2 1 vs 1 4 3 2: 6 -> 0.4
    #   c: 1 3 4 2 vs 3 2 4 1: 6 -> 0.4;        d: 1 2 3 4 vs 1 3 2 4: 2 -> 0.8
    included = c.rsa(RSA_BASE, RSA_OTHER, diagonal="include")
    assert included["per_group"] == pytest.approx([0.8, 0.4, 0.4, 0.8])
    assert included["rho"] == pytest.approx(0.6)


def test_per_emotion_by_hand():
    base = [[0.1, 0.9], [0.2, 0.5], [0.3, 0.5], [0.4, 0.1]]
    other = [[0.0, 0.2], [0.1, 0.3], [0.3, 0.1], [0.2, 0.4]]
    # emotion 1: ranks 1 2 3 4 vs 1 2 4 3: sum d^2 = 2 -> 1 - 12/60 = 0.8
    # emotion 2: ranks 4 2.5 2.5 1 vs 2 3 1 4; centred (1.5, 0, 0, -1.5) and (-.5, .5, -1.5, 1.5):
    #            dot -3, norms sqrt(4.5) and sqrt(5): -3 / sqrt(22.5)
    assert c.per_emotion(base, other) == pytest.approx([0.8, -3 / math.sqrt(22.5)])


def test_benjamini_hochberg_by_hand():
    # m = 4, sorted p .01 .03 .04 .2 -> m p / k = .04 .06 .0533 .2, then running minimum from the top
    adjusted = c.benjamini_hochberg([0.01, 0.04, 0.03, 0.2])
    assert adjusted == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])
    with_nan = c.benjamini_hochberg([0.01, np.nan, 0.04, 0.03, 0.2])
    assert np.isnan(with_nan[1]) and with_nan[[0, 2, 3, 4]] == pytest.approx(adjusted)


def test_mean_shift_by_hand():
    base = [[0.2, 0.5], [0.4, 0.1], [0.0, 0.3]]
    other = [[0.3, 0.5], [0.4, 0.0], [0.2, 0.3]]
    result = c.mean_shift(base, other, n_bootstrap=200, seed=0)
    assert result["shift"] == pytest.approx([0.1, -0.1 / 3])
    assert result["base_mean"] == pytest.approx([0.2, 0.3])
    # differences per group: (.1, .0, .2) and (0, -.1, 0): resampled means lie within their range
    assert 0.0 <= result["ci_low"][0] <= 0.1 <= result["ci_high"][0] <= 0.2 + 1e-12
    assert -0.1 - 1e-12 <= result["ci_low"][1] <= result["ci_high"][1] <= 0.0


def test_bootstrap_interval_is_degenerate_for_equal_values_and_seeded():
    x = np.array([[0.1, 0.2, 0.3], [0.3, 0.1, 0.2], [0.2, 0.3, 0.1], [0.9, 0.1, 0.5]])
    assert c.bootstrap_ci(x, x, method="spearman", n_bootstrap=100) == {"ci_low": 1.0, "ci_high": 1.0}
    rng = np.random.default_rng(3)
    a, b = rng.random((12, 10)), rng.random((12, 10))
    for method in c.METHODS:
        first = c.bootstrap_ci(a, b, method=method, n_bootstrap=200, seed=5)
        again = c.bootstrap_ci(a, b, method=method, n_bootstrap=200, seed=5)
        np.testing.assert_array_equal(first["ci_low"], again["ci_low"])
        estimate = c.statistic(a, b, method=method)
        assert np.all(np.asarray(first["ci_low"]) <= np.asarray(estimate) + 1e-9)
        assert np.all(np.asarray(estimate) <= np.asarray(first["ci_high"]) + 1e-9)


# ------------------------------------------------------------------ brute-force references


def brute_rsa(base, other, diagonal):
    def cosine(u, v):  # rounded as the implementation does, so that exact ties stay ties
        return round(sum(x * y for x, y in zip(u, v)) / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v)), 12)

    n = len(base)
    rhos = []
    for g in range(n):
        columns = [j for j in range(n) if diagonal == "include" or j != g]
        rhos.append(scipy_stats.spearmanr([cosine(base[g], base[j]) for j in columns],
                                          [cosine(other[g], other[j]) for j in columns]).statistic)
    return np.array(rhos)


def test_against_scipy_with_ties():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 4, (15, 10)) / 4  # many ties, as in real profiles
    other = rng.integers(0, 4, (15, 10)) / 4
    base[base.sum(axis=1) == 0, 0] = 1  # no all-zero vector
    other[other.sum(axis=1) == 0, 0] = 1
    expected = [scipy_stats.spearmanr(b, o).statistic for b, o in zip(base, other)]
    np.testing.assert_allclose(c.spearman_per_group(base, other), expected, atol=1e-12)
    expected = [scipy_stats.spearmanr(base[:, d], other[:, d]).statistic for d in range(10)]
    np.testing.assert_allclose(c.per_emotion(base, other), expected, atol=1e-12)
    for diagonal in c.DIAGONAL_OPTIONS:
        np.testing.assert_allclose(c.rsa(base, other, diagonal=diagonal)["per_group"],
                                   brute_rsa(base.tolist(), other.tolist(), diagonal), atol=1e-12)


@pytest.mark.parametrize("method", c.METHODS)
@pytest.mark.parametrize("diagonal", c.DIAGONAL_OPTIONS)
def test_null_distribution_is_the_statistic_of_relabelled_groups(method, diagonal):
    """The fast null equals recomputing the statistic with ``other``'s rows permuted (for RSA,
    permuting profile rows permutes the similarity matrix's rows and columns together)."""
    rng = np.random.default_rng(1)
    base, other = rng.random((7, 10)), rng.random((7, 10))
    permutations = c._permutations(7, 6, rng)
    null = c._null_distribution(base, other, method=method, diagonal=diagonal, permutations=permutations)
    for k, perm in enumerate(permutations):
        np.testing.assert_allclose(null[k], c.statistic(base, other[perm], method=method, diagonal=diagonal),
                                   atol=1e-9)


def test_order_of_groups_does_not_matter():
    rng = np.random.default_rng(2)
    base, other = rng.random((9, 10)), rng.random((9, 10))
    order = rng.permutation(9)
    for method in c.METHODS:
        np.testing.assert_allclose(c.statistic(base, other, method=method),
                                   c.statistic(base[order], other[order], method=method), atol=1e-12)


# ------------------------------------------------------------------ permutation p-values


@pytest.mark.parametrize("method", c.METHODS)
def test_p_values_are_uniform_under_the_null(method):
    """Independent random profiles: p-values spread over (0, 1] (about 5% below 0.05)."""
    rng = np.random.default_rng(11)
    p_values = []
    for _ in range(150):
        base, other = rng.random((10, 10)), rng.random((10, 10))
        p = c.permutation_test(base, other, method=method, n_permutations=200, seed=rng)["p_value"]
        p_values.append(np.atleast_1d(p)[0])
    p_values = np.array(p_values)
    assert 0.4 < p_values.mean() < 0.6
    assert 0.0 <= np.mean(p_values < 0.05) <= 0.12
    assert scipy_stats.kstest(p_values, "uniform").pvalue > 0.01


@pytest.mark.parametrize("method", c.METHODS)
def test_p_values_are_small_for_identical_profiles(method):
    rng = np.random.default_rng(12)
    x = rng.random((12, 10))
    result = c.permutation_test(x, x, method=method, n_permutations=200, seed=0)
    assert np.all(np.asarray(result["p_value"]) <= 2 / 201)
    assert np.allclose(result["statistic"], 1.0)


def test_permutation_test_is_seeded_and_its_p_value_is_never_zero():
    rng = np.random.default_rng(13)
    a, b = rng.random((8, 10)), rng.random((8, 10))
    first = c.permutation_test(a, b, method="rsa", n_permutations=50, seed=4)
    assert first == c.permutation_test(a, b, method="rsa", n_permutations=50, seed=4)
    assert 1 / 51 <= first["p_value"] <= 1


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="same shape"):
        c.spearman_per_group([[1, 2, 3]], [[1, 2]])
    with pytest.raises(ValueError, match="finite"):
        c.rsa([[1, 2], [np.nan, 1], [1, 1]], [[1, 2], [2, 1], [1, 1]])
    with pytest.raises(ValueError, match="all zeros"):
        c.cosine_similarity_matrix([[0, 0], [1, 0]])
    with pytest.raises(ValueError, match="method must be one of"):
        c.permutation_test([[1, 2]], [[1, 2]], method="pearson")
    with pytest.raises(ValueError, match="diagonal must be one of"):
        c.rsa([[1, 2], [2, 1], [1, 1]], [[1, 2], [2, 1], [1, 1]], diagonal="yes")


# ------------------------------------------------------------------ pooled (stratified) null


def category_profiles(rng, n_categories=3, per_category=6, d=10):
    """Two models whose profiles depend on the category only (plus independent noise)."""
    centres = rng.random((n_categories, d))
    strata = np.repeat(np.arange(n_categories), per_category)
    base = centres[strata] + 0.3 * rng.random((len(strata), d))
    other = centres[strata] + 0.3 * rng.random((len(strata), d))
    return base, other, strata


def test_stratified_permutations_stay_within_strata():
    strata = np.array(["a", "b", "a", "c", "b", "a"])
    permutations = c._permutations(6, 50, np.random.default_rng(0), strata)
    assert (strata[permutations] == strata).all()
    assert all(sorted(p) == list(range(6)) for p in permutations)
    assert len({tuple(p) for p in permutations}) > 1  # they do move groups
    with pytest.raises(ValueError, match="one label per group"):
        c._permutations(6, 5, np.random.default_rng(0), strata[:5])


@pytest.mark.parametrize("method", c.METHODS)
def test_pooled_null_is_beyond_category(method):
    """Profiles that depend on the category only: a plain permutation rejects almost always (the
    matched pairs share a category, most random pairs do not); permuting within categories
    rejects at about the nominal rate."""
    rng = np.random.default_rng(21)
    stratified, plain = [], []
    for _ in range(60):
        base, other, strata = category_profiles(rng)
        for out, groups in ((stratified, strata), (plain, None)):
            p = c.permutation_test(base, other, method=method, n_permutations=100, strata=groups, seed=rng)["p_value"]
            out.append(np.atleast_1d(p))
    assert np.mean(np.concatenate(stratified) <= 0.05) < 0.10
    assert np.mean(np.concatenate(plain) <= 0.05) > 0.5


def test_null_band_is_reported():
    rng = np.random.default_rng(22)
    base, other, strata = category_profiles(rng)
    for method in c.METHODS:
        result = c.permutation_test(base, other, method=method, n_permutations=200, strata=strata, seed=0)
        rng = np.random.default_rng(0)  # drawn in two batches: the first NULL_BAND_DRAWS, then the rest
        permutations = np.vstack([c._permutations(len(base), size, rng, strata)
                                  for size in (c.NULL_BAND_DRAWS, 200 - c.NULL_BAND_DRAWS)])
        null = c._null_distribution(base, other, method=method, diagonal="exclude", permutations=permutations)
        np.testing.assert_allclose(result["null_mean"], null.mean(axis=0))
        np.testing.assert_allclose(result["null_low"], np.percentile(null, 2.5, axis=0))
        np.testing.assert_allclose(result["null_high"], np.percentile(null, 97.5, axis=0))
        assert np.all(np.asarray(result["null_low"]) <= np.asarray(result["null_high"]))


# ------------------------------------------------------------------ random streams


def test_streams_depend_on_seed_and_data_only_and_are_independent():
    rng = np.random.default_rng(23)
    base, other, strata = category_profiles(rng)
    reference = c.compare(base, other, method="rsa", n_permutations=100, n_bootstrap=100, strata=strata, seed=7)
    more_bootstrap = c.compare(base, other, method="rsa", n_permutations=100, n_bootstrap=300, strata=strata, seed=7)
    more_permutations = c.compare(base, other, method="rsa", n_permutations=300, n_bootstrap=100, strata=strata, seed=7)
    assert more_bootstrap["p_value"] == reference["p_value"]
    assert more_bootstrap["null_mean"] == reference["null_mean"]
    assert (more_permutations["ci_low"], more_permutations["ci_high"]) == (reference["ci_low"], reference["ci_high"])
    other_seed = c.compare(base, other, method="rsa", n_permutations=100, n_bootstrap=100, strata=strata, seed=8)
    assert other_seed["null_mean"] != reference["null_mean"]
    # Strata names do not matter, only which groups share one.
    renamed = c.compare(base, other, method="rsa", n_permutations=100, n_bootstrap=100,
                        strata=np.array(["x", "y", "z"])[strata], seed=7)
    assert renamed["p_value"] == reference["p_value"] and renamed["ci_low"] == reference["ci_low"]


# ------------------------------------------------------------------ RSA bootstrap


@pytest.mark.filterwarnings("ignore:An input array is constant")  # scipy's NaN for a constant row, as ours
def test_rsa_resample_recomputes_both_matrices_without_self_pairs():
    """A resample's RSA equals RSA computed by brute force on the resampled profiles, each row
    leaving out the copies of its own group (and, with the diagonal included, keeping its own cell)."""
    rng = np.random.default_rng(24)
    base, other = rng.integers(0, 3, (7, 10)) + 0.0, rng.integers(0, 3, (7, 10)) + 0.0
    base[:, 0] += 1
    other[:, 0] += 1
    identity = np.arange(7)[None]
    for diagonal in c.DIAGONAL_OPTIONS:
        assert c._rsa_resampled(base, other, identity, diagonal)[0] == pytest.approx(
            c.rsa(base, other, diagonal=diagonal)["rho"], abs=1e-12)
        indices = c._bootstrap_indices(7, 5, rng)
        for k, idx in enumerate(indices):
            sa, so = c.cosine_similarity_matrix(base[idx]), c.cosine_similarity_matrix(other[idx])
            rhos = []
            for a in range(7):
                keep = [b for b in range(7) if idx[b] != idx[a] or (diagonal == "include" and b == a)]
                rhos.append(scipy_stats.spearmanr(sa[a, keep], so[a, keep]).statistic if len(keep) > 1 else np.nan)
            expected = np.nanmean(rhos) if not np.all(np.isnan(rhos)) else np.nan
            np.testing.assert_allclose(c._rsa_resampled(base, other, idx[None], diagonal)[0], expected, atol=1e-12)


def latent_profiles(rng, n, d=10, noise=0.7):
    """Two models' profiles of ``n`` groups drawn from one population: each group has a latent
    vector, and each model sees it through its own noise (positive values, as profiles are)."""
    z = rng.normal(size=(n, d))
    return (np.exp(0.5 * (z + noise * rng.normal(size=(n, d)))),
            np.exp(0.5 * (z + noise * rng.normal(size=(n, d)))))


def rsa_coverage(n_groups, repeats, n_bootstrap, seed):
    """Share of nominal 95% RSA intervals that cover the population RSA. The population value
    is the RSA of one very large sample (1200 groups; its own sampling error is about 0.003)."""
    rng = np.random.default_rng(seed)
    truth = c.rsa(*latent_profiles(rng, 1200))["rho"]
    hits = []
    for _ in range(repeats):
        ci = c.bootstrap_ci(*latent_profiles(rng, n_groups), method="rsa", n_bootstrap=n_bootstrap, seed=rng)
        hits.append(ci["ci_low"] <= truth <= ci["ci_high"])
    return float(np.mean(hits))


@pytest.mark.parametrize("n_groups", [20, 60])
def test_rsa_interval_covers_the_population_value(n_groups):
    assert rsa_coverage(n_groups, repeats=100, n_bootstrap=100, seed=25) >= 0.92


@pytest.mark.slow
@pytest.mark.parametrize("n_groups", [20, 60])
def test_rsa_interval_covers_the_population_value_large(n_groups):
    assert rsa_coverage(n_groups, repeats=300, n_bootstrap=400, seed=26) >= 0.92


# ------------------------------------------------------------------ exact, sequential and bounded p-values


def brute_force_p(base, other, method, strata=None):
    """#{T(pi) >= T_obs} / N over every within-stratum permutation (itertools), the identity included."""
    n = len(base)
    strata = np.zeros(n, dtype=int) if strata is None else np.asarray(strata)
    blocks = [np.flatnonzero(strata == s) for s in dict.fromkeys(strata.tolist())]
    observed = np.atleast_1d(c.statistic(base, other, method=method))
    values = []
    for orders in itertools.product(*(itertools.permutations(block) for block in blocks)):
        perm = np.arange(n)
        for block, order in zip(blocks, orders):
            perm[block] = order
        # relabelling OTHER's groups: its profiles (and so its similarity matrix) follow pi
        values.append(np.atleast_1d(c.statistic(base, other[perm], method=method)))
    values = np.array(values)
    return (values >= observed - 1e-9).mean(axis=0), len(values)


@pytest.mark.parametrize("method", c.METHODS)
def test_three_groups_are_enumerated_and_p_floor_is_one_sixth(method):
    """A 3-group category has 3! = 6 pairings: p is the exact enumeration p, never below 1/6."""
    rng = np.random.default_rng(30)
    for other_is_base in (True, False):
        base = rng.random((3, 10))
        other = base.copy() if other_is_base else rng.random((3, 10))
        result = c.permutation_test(base, other, method=method, n_permutations=999, exceedances=20, seed=1)
        expected, n_distinct = brute_force_p(base, other, method)
        assert n_distinct == 6 and result["exact"]
        assert result["p_floor"] == pytest.approx(1 / 6)
        np.testing.assert_allclose(result["p_value"], expected if method == "emotion" else expected[0])
        assert np.all(np.asarray(result["n_permutations"]) == 6)
        assert np.all(np.asarray(result["p_value"]) >= 1 / 6 - 1e-12)
    # identical profiles reach the floor, and no data can go below it
    assert np.all(np.asarray(c.permutation_test(base, base, method=method, n_permutations=999)["p_value"])
                  == pytest.approx(1 / 6))


@pytest.mark.parametrize("method", c.METHODS)
def test_stratified_enumeration_matches_brute_force_in_any_batch_size(method, monkeypatch):
    rng = np.random.default_rng(31)
    base, other = rng.random((7, 6)), rng.random((7, 6))
    other[:3] = base[:3] + 0.05 * rng.random((3, 6))  # some agreement in the first stratum
    strata = np.array([0, 0, 0, 1, 1, 2, 2])  # 3! 2! 2! = 24 pairings
    expected, n_distinct = brute_force_p(base, other, method, strata)
    assert n_distinct == c.n_distinct_permutations(7, strata=strata) == 24
    monkeypatch.setattr(c, "_BATCH_BYTES", 1)  # one permutation per batch: the same exact p
    for limit in (24, 500):
        result = c.permutation_test(base, other, method=method, n_permutations=limit, exceedances=3, strata=strata)
        assert result["exact"] and result["p_floor"] == pytest.approx(1 / 24)
        np.testing.assert_allclose(result["p_value"], expected if method == "emotion" else expected[0])
    # one permutation fewer than the pairings: Monte Carlo with floor 1/(B+1)
    result = c.permutation_test(base, other, method=method, n_permutations=23, strata=strata)
    assert not result["exact"] and result["p_floor"] == pytest.approx(1 / 24)


def test_sequential_p_is_besag_clifford_by_hand():
    """p = h / L where the L-th draw (in the order of the random stream) is the h-th exceedance."""
    rng = np.random.default_rng(32)
    base, other = rng.random((12, 10)), rng.random((12, 10))
    result = c.permutation_test(base, other, method="spearman", n_permutations=5000, exceedances=7, seed=5)
    stream = np.random.default_rng(5)
    null = c._null_distribution(base, other, method="spearman", diagonal="exclude",
                                permutations=c._permutations(12, c.NULL_BAND_DRAWS, stream))
    hits = np.cumsum(null >= c.statistic(base, other, method="spearman") - 1e-9)
    assert hits[-1] >= 7  # this data stops in the first batch
    draws = int(np.argmax(hits >= 7)) + 1
    assert result["n_permutations"] == draws and result["p_value"] == 7 / draws
    # the chance band rests on the whole first batch
    assert result["null_mean"] == pytest.approx(null.mean())


def test_emotion_stops_per_dimension():
    """A dimension the models share runs to the maximum and sits at the floor; unrelated ones stop early."""
    rng = np.random.default_rng(33)
    base, other = rng.random((40, 5)), rng.random((40, 5))
    other[:, 0] = base[:, 0]
    result = c.permutation_test(base, other, method="emotion", n_permutations=3000, exceedances=10, seed=0)
    used = result["n_permutations"]
    assert used[0] == 3000 and result["p_value"][0] == pytest.approx(1 / 3001) == result["p_floor"]
    assert (used[1:] < 3000).all() and np.allclose(result["p_value"][1:], 10 / used[1:])


@pytest.mark.parametrize("method", c.METHODS)
def test_sequential_p_values_are_valid_under_the_null(method):
    """Global null: P(p <= a) <= a (with Monte Carlo slack); tests stop after a few dozen draws."""
    rng = np.random.default_rng(34)
    p_values, used = [], []
    for _ in range(150):
        base, other = rng.random((10, 6)), rng.random((10, 6))
        result = c.permutation_test(base, other, method=method, n_permutations=999, exceedances=10, seed=rng)
        p_values.append(np.atleast_1d(result["p_value"]))
        used.append(np.atleast_1d(result["n_permutations"]))
    p_values, used = np.concatenate(p_values), np.concatenate(used)
    for level in (0.05, 0.1, 0.25):
        assert np.mean(p_values <= level) <= level + 3 * math.sqrt(level * (1 - level) / 150)
    assert np.median(used) < 60


def test_bh_within_a_family_of_sequential_p_values_keeps_the_fdr_under_the_global_null():
    """Small version of benchmarks/pvalue_calibration.py (b): families of 10 null tests, sequential
    p (h = 20, B = 999) adjusted by BH at 0.05: the false-discovery proportion (1 if anything is
    rejected) averages at most 0.05, up to Monte Carlo error."""
    rng = np.random.default_rng(35)
    fdp, p_all = [], []
    for _ in range(150):
        p = [c.permutation_test(rng.random((8, 6)), rng.random((8, 6)), method="spearman", n_permutations=999,
                                exceedances=20, seed=rng)["p_value"] for _ in range(10)]
        fdp.append(float((c.benjamini_hochberg(p) <= 0.05).any()))
        p_all += p
    assert np.mean(fdp) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 150)
    assert np.mean(np.array(p_all) <= 0.05) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 1500)


# ------------------------------------------------------------------ stratified bootstrap (pooled rows)


def test_stratified_resamples_keep_every_category_count_by_hand():
    """Strata a a b b b c: every resample draws positions 0-1 from {0, 1}, 2-4 from {2, 3, 4},
    5 from {5}, so each keeps the counts 2, 3, 1; without strata one position may take any group."""
    strata = np.array(["a", "a", "b", "b", "b", "c"])
    indices = c._bootstrap_indices(6, 500, np.random.default_rng(0), strata)
    assert set(indices[:, :2].ravel()) == {0, 1}
    assert set(indices[:, 2:5].ravel()) == {2, 3, 4}
    assert (indices[:, 5] == 5).all()
    for resample in indices:
        assert [int(np.sum(strata[resample] == label)) for label in "abc"] == [2, 3, 1]
    plain = c._bootstrap_indices(6, 500, np.random.default_rng(0))
    assert set(plain[:, 0]) == set(range(6))
    with pytest.raises(ValueError, match="one label per group"):
        c._bootstrap_indices(6, 5, np.random.default_rng(0), strata[:5])


def test_stratified_rsa_resample_matches_brute_force():
    """Within-stratum resamples keep the rule "a row leaves out the copies of its own group"."""
    rng = np.random.default_rng(31)
    base, other = rng.random((9, 6)), rng.random((9, 6))
    strata = np.repeat([0, 1, 2], 3)
    indices = c._bootstrap_indices(9, 4, rng, strata)
    for diagonal in c.DIAGONAL_OPTIONS:
        for idx in indices:
            sa, so = c.cosine_similarity_matrix(base[idx]), c.cosine_similarity_matrix(other[idx])
            rhos = []
            for a in range(9):
                keep = [b for b in range(9) if idx[b] != idx[a] or (diagonal == "include" and b == a)]
                rhos.append(scipy_stats.spearmanr(sa[a, keep], so[a, keep]).statistic)
            assert c._rsa_resampled(base, other, idx[None], diagonal)[0] == pytest.approx(np.mean(rhos), abs=1e-12)


def stratified_profiles(rng, means, per_category, noise=0.7):
    """Groups of fixed categories: a group's latent vector is its category's mean plus its own
    deviation; each model sees it through its own noise (as latent_profiles)."""
    z = np.repeat(means, per_category, axis=0) + rng.normal(size=(len(means) * per_category, means.shape[1]))
    return (np.exp(0.5 * (z + noise * rng.normal(size=z.shape))),
            np.exp(0.5 * (z + noise * rng.normal(size=z.shape))))


def stratified_coverage(method, n_categories, per_category, repeats, n_bootstrap, seed):
    """Share of nominal 95% stratified intervals of a pooled statistic covering its population
    value: the categories (their means) are fixed, the groups within them sampled. The
    population value is the statistic of one very large sample with the same categories in the
    same proportions (1200 groups for rsa, 20000 for spearman)."""
    rng = np.random.default_rng(seed)
    means = 1.5 * rng.normal(size=(n_categories, 10))
    big = (1200 if method == "rsa" else 20000) // n_categories
    truth = c.statistic(*stratified_profiles(rng, means, big), method=method)
    strata = np.repeat(np.arange(n_categories), per_category)
    hits = []
    for _ in range(repeats):
        ci = c.bootstrap_ci(*stratified_profiles(rng, means, per_category), method=method, n_bootstrap=n_bootstrap,
                            strata=strata, seed=rng)
        hits.append(ci["ci_low"] <= truth <= ci["ci_high"])
    return float(np.mean(hits))


@pytest.mark.parametrize("method", ["spearman", "rsa"])
def test_stratified_interval_covers_the_population_value(method):
    assert stratified_coverage(method, 4, 8, repeats=100, n_bootstrap=100, seed=32) >= 0.90


# ------------------------------------------------------------------ chunks bounded in memory


def test_results_do_not_depend_on_the_chunk_size(monkeypatch):
    """Tiny chunks (one permutation or resample at a time) give the same numbers as one chunk."""
    rng = np.random.default_rng(33)
    base, other = rng.random((12, 5)), rng.random((12, 5))
    strata = np.repeat([0, 1, 2], 4)

    def everything():
        results = [c.compare(base, other, method=m, n_permutations=30, n_bootstrap=30, strata=strata, seed=3)
                   for m in c.METHODS]
        results.append(c.mean_shift(base, other, n_bootstrap=30, strata=strata, seed=3))
        results.append(c.sign_flip_test(base, other, n_permutations=5000, seed=3))  # 2^12 < 5000: enumerated
        results.append(c.sign_flip_test(np.vstack([base, base]), np.vstack([other, base]), n_permutations=50, seed=3))
        return results

    large = everything()
    monkeypatch.setattr(c, "CHUNK_BYTES", 1)
    assert c._chunk_size(10**6) == 1
    small = everything()
    for one, other_result in zip(large, small):
        for key, value in one.items():
            if key != "per_group":
                np.testing.assert_array_equal(value, other_result[key], err_msg=key)


def test_chunk_size_follows_the_groups():
    n_small, n_large = 20, 2400
    assert c._chunk_size(c._RSA_RESAMPLE_BYTES * n_small ** 2) > 1000  # one step for 1000 resamples
    assert c._chunk_size(c._RSA_RESAMPLE_BYTES * n_large ** 2) == 1
    assert c._chunk_size(c._RSA_PERMUTATION_BYTES * n_large ** 2) * c._RSA_PERMUTATION_BYTES * n_large ** 2 \
        <= c.CHUNK_BYTES


# ------------------------------------------------------------------ sign-flip test of shifts


def test_sign_flip_test_by_hand_with_three_groups():
    """Differences per group (rows) and dimension (columns); all 8 sign vectors by hand.
    Column 0: d = (0.1, 0.2, 0.3), |T| = 0.2 only for (+++) and (---): p = 2/8.
    Column 1: d = (0.3, -0.1, 0.1), T_obs = 0.1: p = 6/8 (below). Column 2: all zero, p = 1.
    Then against brute-force enumeration."""
    base = np.zeros((3, 3))
    other = np.array([[0.1, 0.3, 0.0], [0.2, -0.1, 0.0], [0.3, 0.1, 0.0]]) + 0.5
    base += 0.5
    result = c.sign_flip_test(base, other, n_permutations=100)
    assert result["exact"] and result["n_sign_flips"] == 8
    # column 1 by hand: s = (s1, s2, s3), T = (0.3 s1 - 0.1 s2 + 0.1 s3) / 3; |3T| over the 8 vectors:
    # (+++) .3, (++-) .1, (+-+) .5, (+--) .3, and their negatives the same: |3T| >= .3 for 6 of 8.
    np.testing.assert_allclose(result["p_value"], [2 / 8, 6 / 8, 1.0])
    np.testing.assert_allclose(result["statistic"], [0.2, 0.1, 0.0])
    brute = []
    d = other - base
    for signs in np.array(np.meshgrid(*[[-1, 1]] * 3)).reshape(3, -1).T:
        brute.append(np.abs(signs @ d / 3) >= np.abs(d.mean(axis=0)) - 1e-12)
    np.testing.assert_allclose(result["p_value"], np.mean(brute, axis=0))


def test_sign_flip_test_monte_carlo_is_seeded_and_never_zero():
    """30 groups, every difference 0.5: only the all-equal sign vectors (probability 2 / 2^30)
    reach |T_obs|, so p = 1 / (1 + 99). A weaker shift: the same seed gives the same p."""
    rng = np.random.default_rng(34)
    base = rng.random((30, 4))
    result = c.sign_flip_test(base, base + 0.5, n_permutations=99, seed=1)
    assert not result["exact"] and result["n_sign_flips"] == 99
    np.testing.assert_allclose(result["p_value"], 0.01)
    other = base + rng.normal(0, 0.1, size=base.shape) + 0.02
    first = c.sign_flip_test(base, other, n_permutations=200, seed=1)["p_value"]
    assert np.array_equal(first, c.sign_flip_test(base, other, n_permutations=200, seed=1)["p_value"])
    assert not np.array_equal(first, c.sign_flip_test(base, other, n_permutations=200, seed=2)["p_value"])
    with pytest.raises(ValueError, match="n_permutations"):
        c.sign_flip_test(base, other, n_permutations=0)


def sign_flip_rejections(n_groups, repeats, seed, n_permutations=200):
    """Share of p <= 0.05 under the null: both models' profiles of a group are exchangeable
    (two noisy views of the same group, positive and skewed, as profiles are)."""
    rng = np.random.default_rng(seed)
    rejections = []
    for _ in range(repeats):
        z = rng.normal(size=(n_groups, 3))
        base, other = (np.exp(0.5 * (z + 0.7 * rng.normal(size=z.shape))) for _ in range(2))
        rejections.append(c.sign_flip_test(base, other, n_permutations=n_permutations, seed=rng)["p_value"] <= 0.05)
    return float(np.mean(rejections))


@pytest.mark.parametrize("n_groups", [6, 40])
def test_sign_flip_test_is_calibrated_under_the_null(n_groups):
    """600 p-values (200 data sets x 3 dimensions): P(p <= 0.05) within 0.02-0.08."""
    assert 0.02 <= sign_flip_rejections(n_groups, repeats=200, seed=35) <= 0.08


def test_sign_flip_test_finds_a_planted_shift():
    rng = np.random.default_rng(36)
    base = rng.random((20, 3)) * 0.5
    other = base + rng.normal(0, 0.05, size=base.shape) + np.array([0.1, 0.0, 0.0])
    p = c.sign_flip_test(base, other, n_permutations=999, seed=0)["p_value"]
    assert p[0] <= 0.002 and p[1] > 0.05 and p[2] > 0.05
