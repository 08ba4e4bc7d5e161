"""Uplift evaluation metrics, pure numpy.

Conventions: `uplift` is the predicted effect used to rank rows (higher = target first), `y` the observed
outcome, `t` the arm (1 = treatment, 0 = holdout). Curves are evaluated only where the ranking score
changes, so tied scores count as one block in random order (linear interpolation between block ends) and
a constant score ranks no better than random. The x axis is the fraction of the population targeted;
curve values are incremental outcomes per member of the whole population, so coefficients are comparable
across data sets of different size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOP_K = (0.1, 0.3)


@dataclass(frozen=True)
class Curve:
    x: np.ndarray  # fraction targeted, from 0 to 1
    y: np.ndarray  # incremental outcome per population member at that fraction


def _ranked(uplift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order from highest to lowest score, and the last position of each block of tied scores."""
    order = np.argsort(-uplift, kind="stable")
    return order, np.append(np.nonzero(np.diff(uplift[order]))[0], len(uplift) - 1)


def _cumulative(uplift: np.ndarray, y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cumulative treated/control counts and outcome sums at each tie-block end, with a leading zero."""
    order, block_ends = _ranked(uplift)
    yy, tt = y[order].astype(float), t[order].astype(bool)
    pad = lambda a: np.concatenate(([0.0], a[block_ends]))  # noqa: E731
    n_t = pad(np.cumsum(tt))
    n_c = pad(np.cumsum(~tt))
    y_t = pad(np.cumsum(np.where(tt, yy, 0.0)))
    y_c = pad(np.cumsum(np.where(tt, 0.0, yy)))
    return n_t, n_c, y_t, y_c


def qini_curve(uplift: np.ndarray, y: np.ndarray, t: np.ndarray) -> Curve:
    """Radcliffe's Qini curve: Y_t(k) - Y_c(k) * N_t(k) / N_c(k), divided by the population size."""
    n_t, n_c, y_t, y_c = _cumulative(uplift, y, t)
    scaled_c = np.divide(y_c * n_t, n_c, out=np.zeros_like(y_c), where=n_c > 0)
    n = len(uplift)
    return Curve(x=(n_t + n_c) / n, y=(y_t - scaled_c) / n)


def gain_curve(uplift: np.ndarray, y: np.ndarray, t: np.ndarray) -> Curve:
    """Cumulative uplift gain: (mean treated - mean control outcome in the top k) * k / N."""
    n_t, n_c, y_t, y_c = _cumulative(uplift, y, t)
    mean_t = np.divide(y_t, n_t, out=np.zeros_like(y_t), where=n_t > 0)
    mean_c = np.divide(y_c, n_c, out=np.zeros_like(y_c), where=n_c > 0)
    k = n_t + n_c
    both = (n_t > 0) & (n_c > 0)
    return Curve(x=k / len(uplift), y=np.where(both, (mean_t - mean_c) * k / len(uplift), 0.0))


def _area(curve: Curve) -> float:
    return float(np.sum(np.diff(curve.x) * (curve.y[1:] + curve.y[:-1]) / 2.0))


def qini_coefficient(uplift: np.ndarray, y: np.ndarray, t: np.ndarray) -> float:
    """Area between the Qini curve and the random-targeting diagonal; > 0 means better than random."""
    curve = qini_curve(uplift, y, t)
    return _area(curve) - float(curve.y[-1]) / 2.0


def normalised_qini(uplift: np.ndarray, y: np.ndarray, t: np.ndarray) -> float:
    """scikit-uplift's `qini_auc_score` (negative_effect=True): the Qini coefficient as a share of the perfect
    ranking's, which puts treated responders first and holdout responders last (score y * (2t - 1)).

    Both areas lie above the same random-targeting line and scikit-uplift's curves differ from these by the
    axes' scale only (counts instead of shares of the population), which cancels in the ratio; ties count
    as one block in both. Published figures quote it x 100. nan when the perfect ranking has no area."""
    perfect = qini_coefficient(y * (2.0 * t - 1.0), y, t)
    return qini_coefficient(uplift, y, t) / perfect if perfect > 0 else float("nan")


def truth_qini(uplift: np.ndarray, true_tau: np.ndarray) -> float:
    """The Qini coefficient of a ranking measured on the true effects instead of the observed outcomes:
    the area between the cumulative true effect of the top k (per population member) and the random
    diagonal. Free of outcome noise, so it compares rankings on a simulator history where one split's
    observed Qini moves by a quarter of the oracle's; tie blocks count at their mean, as in the curves."""
    order, ends = _ranked(uplift)
    n = len(uplift)
    curve = Curve(
        x=np.concatenate(([0.0], (ends + 1) / n)),
        y=np.concatenate(([0.0], np.cumsum(true_tau[order].astype(float))[ends])) / n,
    )
    return _area(curve) - float(curve.y[-1]) / 2.0


def auuc(uplift: np.ndarray, y: np.ndarray, t: np.ndarray) -> float:
    """Area under the cumulative uplift gain curve (random targeting scores half the overall effect)."""
    return _area(gain_curve(uplift, y, t))


def uplift_at_k(uplift: np.ndarray, y: np.ndarray, t: np.ndarray, k: float) -> float:
    """Mean treated minus mean control outcome among the top fraction k ranked by predicted uplift.

    Rows tied with the last row taken count with the share of their block that fits (expected counts
    under random order within the block), like the curves' interpolation."""
    if len(uplift) == 0:
        return float("nan")
    n = min(len(uplift), max(1, int(np.ceil(k * len(uplift)))))
    cut = np.sort(uplift)[::-1][n - 1]
    above, tied = uplift > cut, uplift == cut
    weight = above + tied * ((n - above.sum()) / tied.sum())
    treated = t.astype(bool)
    w_t, w_c = weight[treated], weight[~treated]
    if w_t.sum() == 0 or w_c.sum() == 0:
        return float("nan")
    y = y.astype(float)
    return float(np.average(y[treated], weights=w_t) - np.average(y[~treated], weights=w_c))


def average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.concatenate(([True], np.diff(sorted_values) != 0))
    group = np.cumsum(starts) - 1
    first = np.nonzero(starts)[0]
    last = np.append(first[1:], len(values)) - 1
    ranks = np.empty(len(values))
    ranks[order] = (first[group] + last[group]) / 2.0 + 1.0
    return ranks


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney statistic with average ranks for ties; nan when one class is absent."""
    positive = label.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(score.astype(float))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def calibration_bins(
    pred: np.ndarray, y: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean prediction, mean outcome and row count per equal-count bin of the prediction (deciles by default).

    Equal-count bins rather than equal-width ones: conversion probabilities sit near zero, where
    equal-width bins would put nearly every row into the first bin.
    """
    order = np.argsort(pred, kind="stable")
    chunks = [c for c in np.array_split(order, bins) if len(c)]
    return (
        np.array([pred[c].mean() for c in chunks]),
        np.array([y[c].astype(float).mean() for c in chunks]),
        np.array([len(c) for c in chunks]),
    )


def calibration_error(pred: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Row-weighted mean |mean prediction - mean outcome| over prediction deciles (ECE for probabilities)."""
    if len(pred) == 0:
        return float("nan")
    mean_pred, mean_y, sizes = calibration_bins(pred, y, bins)
    return float(np.sum(sizes * np.abs(mean_pred - mean_y)) / len(pred))


def pehe(pred_tau: np.ndarray, true_tau: np.ndarray) -> float:
    """Precision in estimating heterogeneous effects: root mean squared error of the predicted effect."""
    return float(np.sqrt(np.mean((pred_tau - true_tau) ** 2)))


def uplift_by_decile(uplift: np.ndarray, y: np.ndarray, t: np.ndarray, bins: int = 10) -> np.ndarray:
    """Observed uplift (treated minus control mean) per decile of predicted uplift, highest decile first."""
    order = np.argsort(-uplift, kind="stable")
    out = []
    for chunk in np.array_split(order, bins):
        tt = t[chunk].astype(bool)
        yy = y[chunk].astype(float)
        out.append(yy[tt].mean() - yy[~tt].mean() if tt.any() and (~tt).any() else np.nan)
    return np.array(out)


def outcome_metrics(
    p_treated: np.ndarray,
    p_control: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    *,
    binary: bool,
    true_tau: np.ndarray | None = None,
) -> dict[str, float]:
    """Every metric of one model on one outcome; the oracle's only where the true effect is known."""
    treated = t.astype(bool)
    uplift = p_treated - p_control
    label = y if binary else (y > 0)
    out = {
        "auc_treated": auc(p_treated[treated], label[treated]),
        "auc_control": auc(p_control[~treated], label[~treated]),
        "qini": qini_coefficient(uplift, y, t),
        "auuc": auuc(uplift, y, t),
        **{f"uplift_at_{round(k * 100)}": uplift_at_k(uplift, y, t, k) for k in TOP_K},
        "calibration_treated": calibration_error(p_treated[treated], y[treated]),
        "calibration_control": calibration_error(p_control[~treated], y[~treated]),
        "mean_predicted_uplift": float(uplift.mean()),
        "observed_ate": float(y[treated].mean() - y[~treated].mean()) if treated.any() and (~treated).any()
        else float("nan"),
    }
    if true_tau is not None:
        out["pehe"] = pehe(uplift, true_tau)
        out["oracle_qini"] = qini_coefficient(true_tau, y, t)
        out["truth_qini"] = truth_qini(uplift, true_tau)
        out["oracle_truth_qini"] = truth_qini(true_tau, true_tau)
        out["true_ate"] = float(true_tau.mean())
    return out
