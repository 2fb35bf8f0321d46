"""Analysis of probing results: correlations with significance, toxicity fairness, figures.

Modules (one per measure; the statistics are pure functions, the CLIs only load and save):

* :mod:`analysis.correlations`: Spearman per group, RSA, per-emotion rho, permutation tests,
  Benjamini-Hochberg, bootstrap intervals (pure functions on arrays).
* :mod:`analysis.correlate`: ``python -m analysis.correlate BASE OTHER...``.
* :mod:`analysis.fairness`: Borkan et al. (2019) bias AUCs, error-rate gaps, and
  ``python -m analysis.fairness PREDICTIONS``.
* :mod:`analysis.identity_sets`: identity template test sets from ``prompts/`` and
  ``analysis/frames/``, ``python -m analysis.identity_sets``.
* :mod:`analysis.figures`: ``python -m analysis.figures RUN_DIR...`` (figures and ``report.md``).

The method card (formulas, outputs and their ranges, references) is ``analysis/README.md``.
"""
