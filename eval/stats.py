"""Statistics for comparing retrievers on the same queries: bootstrap CIs, a sign-flip p-value, wins/ties/losses.

Everything is seeded, so a report is reproducible.
- `bootstrap_ci`: scipy.stats.bootstrap, percentile 95 % interval of the mean, resampling queries with replacement.
- `paired_bootstrap`: the same on the per-query differences b - a (paired: both systems' scores of a query move together).
- `sign_flip_p`: scipy.stats.permutation_test on the differences with permutation_type="samples" (one sample: each
  difference's sign is flipped at random, valid under the null that the systems are exchangeable), statistic |mean|,
  so the two-sided p is the share of flips at least as extreme (scipy adds the +1 correction; with 2**n <= permutations
  it enumerates every flip and gives the exact p).
Left by hand, because scipy has nothing smaller for them: wins/ties/losses (three counts), and the degenerate inputs
scipy refuses (no query: NaN and p = 1; one query: its value is the whole interval, p = 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TIE = 1e-9  # a per-query difference this small is a tie


def bootstrap_ci(values: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, lower 2.5 %, upper 97.5 %) of the mean of `values`."""
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size == 1:  # scipy needs two observations; every resample of one is that value
        return mean, mean, mean
    ci = bootstrap((x,), np.mean, n_resamples=resamples, method="percentile", rng=np.random.default_rng(seed), vectorized=True).confidence_interval
    return mean, float(ci.low), float(ci.high)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean of b - a, lower 2.5 %, upper 97.5 %)."""
    return bootstrap_ci(np.asarray(b, dtype=float) - np.asarray(a, dtype=float), resamples, seed)


def _abs_mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.abs(np.mean(x, axis=axis))


def sign_flip_p(a: Sequence[float], b: Sequence[float], permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value of the mean paired difference under random sign flips."""
    from scipy.stats import permutation_test

    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if diff.size < 2 or not np.any(diff):  # no difference, or one (both of its signs are as extreme): scipy needs two
        return 1.0
    result = permutation_test((diff,), _abs_mean, permutation_type="samples", n_resamples=permutations, alternative="greater",
                              vectorized=True, rng=np.random.default_rng(seed))
    return float(result.pvalue)


def wins_ties_losses(a: Sequence[float], b: Sequence[float], tol: float = TIE) -> tuple[int, int, int]:
    """How often b beats, ties and loses to a."""
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    return int(np.sum(diff > tol)), int(np.sum(np.abs(diff) <= tol)), int(np.sum(diff < -tol))


def compare(a: Sequence[float], b: Sequence[float], resamples: int = 2000, permutations: int = 10000, seed: int = 0) -> dict[str, object]:
    """b - a: {"delta", "ci95": [lo, hi], "p_value", "wins", "ties", "losses"}."""
    delta, lo, hi = paired_bootstrap(a, b, resamples, seed)
    wins, ties, losses = wins_ties_losses(a, b)
    return {"delta": delta, "ci95": [lo, hi], "p_value": sign_flip_p(a, b, permutations, seed), "wins": wins, "ties": ties, "losses": losses}
