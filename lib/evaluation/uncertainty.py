"""95% bootstrap intervals that resample test *subjects*, not pairs.

Pairs of one subject share a face and an input video pool, so they are not independent:
resampling pairs would give intervals that are too narrow.  Each resample draws the test
subjects with replacement and takes every pair of each drawn subject (a cluster bootstrap),
then the statistic (the mean) of those pairs; the interval is the 2.5th..97.5th percentile.
"""
from __future__ import annotations

import numpy as np

N_RESAMPLES = 1000


def subject_bootstrap_interval(values, subjects, n_resamples: int = N_RESAMPLES, seed: int = 0,
                               level: float = 0.95) -> tuple[float, float]:
    """(low, high) of the mean of ``values`` (one per pair) under resampling of ``subjects``.

    NaN values are left out of every mean; with fewer than two subjects the interval is NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    subjects = np.asarray(subjects).astype(str)
    if values.shape != subjects.shape:
        raise ValueError(f"values {values.shape} and subjects {subjects.shape} must align (one per pair)")
    names = np.unique(subjects)
    if len(names) < 2:
        return float("nan"), float("nan")
    groups = [values[subjects == name] for name in names]
    sums = np.array([np.nansum(g) for g in groups])
    counts = np.array([np.isfinite(g).sum() for g in groups])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), size=(n_resamples, len(names)))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums[draws].sum(1) / counts[draws].sum(1)
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(means, [tail, 100 - tail])
    return float(low), float(high)


def add_intervals(metrics: dict, per_pair: dict[str, np.ndarray], subjects, seed: int = 0) -> dict:
    """``metrics`` plus ``{name}_lo`` / ``{name}_hi`` for every per-pair array in ``per_pair``."""
    out = dict(metrics)
    for name, values in per_pair.items():
        out[f"{name}_lo"], out[f"{name}_hi"] = subject_bootstrap_interval(values, subjects, seed=seed)
    return out
