"""Paired statistics for comparing two retrievers on the same queries: bootstrap CI, sign-flip p-value, W/T/L.

Everything is seeded, so a report is reproducible. The bootstrap resamples queries with replacement (paired: both
systems' scores of a query move together) and reports the percentile 95 % interval of the mean difference. The
sign-flip test randomly negates per-query differences (valid under the null that the systems are exchangeable).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean of b - a, lower 2.5 %, upper 97.5 %)."""
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if diff.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(resamples, diff.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(lo), float(hi)


def sign_flip_p(a: Sequence[float], b: Sequence[float], permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value of the mean paired difference under random sign flips (with the +1 correction)."""
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if diff.size == 0 or not np.any(diff):
        return 1.0
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(permutations, diff.size))
    null = np.abs((signs * diff).mean(axis=1))
    return float((np.sum(null >= abs(diff.mean()) - 1e-12) + 1) / (permutations + 1))


def wins_ties_losses(a: Sequence[float], b: Sequence[float], tol: float = 1e-9) -> tuple[int, int, int]:
    """How often b beats, ties and loses to a."""
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    return int(np.sum(diff > tol)), int(np.sum(np.abs(diff) <= tol)), int(np.sum(diff < -tol))


def compare(a: Sequence[float], b: Sequence[float], resamples: int = 2000, permutations: int = 10000, seed: int = 0) -> dict[str, object]:
    delta, lo, hi = paired_bootstrap(a, b, resamples, seed)
    wins, ties, losses = wins_ties_losses(a, b)
    return {"delta": delta, "ci95": [lo, hi], "p_value": sign_flip_p(a, b, permutations, seed), "wins": wins, "ties": ties, "losses": losses}
