"""The examples in the analysis modules' docstrings run and pass (they double as hand-checked tests).

``pyproject.toml`` collects doctests from ``probing/`` only, so this runs them for ``analysis/``.
Each statistics module must carry at least two examples (as ``evaluate`` requires of its metrics).
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["analysis.correlations", "analysis.fairness", "analysis._common", "analysis.figures",
           "analysis.correlate", "analysis.identity_sets", "analysis.explore", "analysis.compare_models",
           "analysis.alignment", "analysis.recall"]
STATISTICS = {"analysis.correlations", "analysis.fairness", "analysis.compare_models", "analysis.alignment",
              "analysis.recall"}


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if name in STATISTICS:
        assert result.attempted >= 2


REQUIRED = {
    "analysis.correlations": ["spearman_per_group", "cosine_similarity_matrix", "rsa", "per_emotion", "statistic",
                              "permutation_test", "bootstrap_ci", "mean_shift", "benjamini_hochberg"],
    "analysis.fairness": ["subgroup_auc", "bpsn_auc", "bnsp_auc", "generalized_mean", "bias_score", "error_rates",
                          "weighted_metrics", "bootstrap_metrics", "paired_bootstrap_metrics", "jackknife_metrics",
                          "acceleration", "bca_interval", "metric_range"],
    "analysis.compare_models": ["resample_counts", "weighted_auc", "percentile_interval"],
    "analysis.alignment": ["cosine_matrix", "retrieval_credits", "pair_statistics"],
    "analysis.recall": ["clustered_proportion_interval"],
}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_statistic_has_an_example(name):
    module = importlib.import_module(name)
    with_examples = {t.name.rsplit(".", 1)[-1] for t in doctest.DocTestFinder().find(module) if t.examples}
    missing = [f for f in REQUIRED[name] if f not in with_examples]
    assert not missing, f"{name}: {missing} have no doctest example"
