"""Distribution distances over binned data, pure numpy, vectorised along the last axis.

Inputs are histograms on the same bins: fractions or raw counts (each row is normalised), shape [..., bins].
Rows may be padded with empty bins at the end; padding changes none of the results.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-4


def fractions(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def psi(expected: np.ndarray, actual: np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """Population stability index Σ (a − e)·ln(a / e); empty bins get `eps` so the log stays finite."""
    e = fractions(expected) + eps
    a = fractions(actual) + eps
    return np.asarray(((a - e) * np.log(a / e)).sum(axis=-1))


def ks(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Kolmogorov–Smirnov statistic on the bin edges: the largest gap between the two binned CDFs."""
    gap = np.abs(np.cumsum(fractions(expected), axis=-1) - np.cumsum(fractions(actual), axis=-1))
    return np.asarray(gap.max(axis=-1))


def jensen_shannon(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Jensen–Shannon divergence in bits, 0 (same) … 1 (disjoint)."""
    p, q = fractions(expected), fractions(actual)
    m = (p + q) / 2
    return np.asarray((_kl(p, m) + _kl(q, m)) / 2)


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    ratio = np.divide(p, q, out=np.ones_like(p), where=(p > 0) & (q > 0))
    return np.asarray((p * np.log2(ratio)).sum(axis=-1))
