"""Hillstrom's e-mail campaign replayed as a liftstream campaign (see decisions.py).

The 64,000 customers were randomised into Mens E-Mail / Womens E-Mail / No E-Mail; each e-mail against
No E-Mail is one campaign, its holdout share the No E-Mail share (≈ 0.5). The covariate is cross-fitted:
the customers are split into `FOLDS` folds and a gradient-boosted model of each outcome (visit, conversion,
spend) from the pre-treatment covariates and the segment is fitted on the other folds, then asked for each
customer of its fold with the segment set to the campaign's e-mail and to No E-Mail. Its prediction does
not depend on the customer's own arm nor outcome, as a model scoring an exposure before its outcome; the
covariate is the midpoint of the two, the predicted uplift their difference, as in the engine.
A run's stream resamples the campaign's customers with replacement (a random order); its true uplift is the
pool's difference of means. The pool stands for the population the stream is drawn from, and randomisation
balances a population on every pre-treatment covariate, but the 42,700 customers are balanced only up to
chance: the arm means of the covariate differ by up to ~0.9 of their standard error, which moves the target
of the adjusted estimator by up to 0.6% of the effect away from the pool's difference of means (`lin_shift`,
reported) — a replay artefact that alone made the adjusted rule decide ~0.5% later. So the covariate is
centred within each arm of the pool (a constant per arm, fixed before any stream), which makes the pool
balanced on it as a randomised population is. Its A/A twin permutes the arm labels within the same stream
(true uplift 0).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stream.bench.decisions_data import Sums, arm_sums, cumulative, totals

Array = np.ndarray
OUTCOMES = ("visit", "conversion", "revenue")
SEGMENTS = ("No E-Mail", "Mens E-Mail", "Womens E-Mail")
CAMPAIGNS = {"womens": "Womens E-Mail", "mens": "Mens E-Mail"}
FOLDS = 3
_ZIP = ("Urban", "Surburban", "Rural")
_CHANNEL = ("Phone", "Web", "Multichannel")


@dataclass(frozen=True, slots=True)
class Hillstrom:
    features: Array
    """Pre-treatment covariates, one row per customer (the segment not included)."""
    segment: Array
    """Index into SEGMENTS."""
    outcomes: Array
    """(customers, 3): visit, conversion, spend."""


def load(path: Path) -> Hillstrom:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    feats = [
        [float(r["recency"]), float(r["history"]), float(r["mens"]), float(r["womens"]), float(r["newbie"]),
         *(float(r["zip_code"] == z) for z in _ZIP), *(float(r["channel"] == c) for c in _CHANNEL)]
        for r in rows
    ]  # fmt: skip
    return Hillstrom(
        np.array(feats),
        np.array([SEGMENTS.index(r["segment"]) for r in rows]),
        np.array([[float(r["visit"]), float(r["conversion"]), float(r["spend"])] for r in rows]),
    )


def crossfit(data: Hillstrom, seed: int) -> Array:
    """Predictions (customers, outcome, segment): each customer's from the model fitted on the other folds."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # OpenMP threads on a small or shared machine are several times slower
        return _crossfit(data, seed, HistGradientBoostingClassifier, HistGradientBoostingRegressor)


def _crossfit(data: Hillstrom, seed: int, classifier: Any, regressor: Any) -> Array:
    n = len(data.segment)
    fold = np.random.default_rng(seed).permutation(n) % FOLDS
    onehot = np.eye(len(SEGMENTS))[:, 1:]
    x = np.hstack([data.features, onehot[data.segment]])
    out = np.empty((n, len(OUTCOMES), len(SEGMENTS)))
    for k in range(FOLDS):
        train, test = fold != k, fold == k
        for j in range(len(OUTCOMES)):
            y = data.outcomes[train, j]
            model = classifier if j < 2 else regressor
            clf = model(max_iter=100, max_leaf_nodes=15, random_state=seed).fit(x[train], y)
            for s in range(len(SEGMENTS)):
                xs = np.hstack([data.features[test], np.repeat(onehot[s][None], test.sum(), axis=0)])
                out[test, j, s] = clf.predict_proba(xs)[:, 1] if j < 2 else clf.predict(xs)
    return out


@dataclass(frozen=True, slots=True)
class Pool:
    """One campaign's customers: treatment indicator, outcomes, covariate and predicted uplift per outcome."""

    name: str
    treated: Array
    outcomes: Array
    covariate: Array
    uplift: Array

    @property
    def holdout(self) -> float:
        return 1.0 - float(self.treated.mean())

    def effect(self) -> Array:
        t = self.treated.astype(bool)
        return self.outcomes[t].mean(axis=0) - self.outcomes[~t].mean(axis=0)

    def variance(self) -> Array:
        return self.outcomes.var(axis=0)


def lin_shift(treated: Array, y: Array, x: Array) -> float:
    """How far Lin's population target lies from the difference of means, relative to it, in this pool."""
    t = treated.astype(bool)
    mu = []
    for a in (t, ~t):
        var = x[a].var(ddof=1)
        slope = np.cov(x[a], y[a])[0, 1] / var if var > 0 else 0.0
        mu.append(y[a].mean() - slope * (x[a].mean() - x.mean()))
    raw = y[t].mean() - y[~t].mean()
    return float((mu[0] - mu[1] - raw) / raw) if raw else 0.0


def pool(data: Hillstrom, predictions: Array, campaign: str) -> tuple[Pool, Array]:
    """The campaign's pool, with the covariate balanced between its arms (module doc), and per outcome the
    shift of Lin's target (relative to the effect) that the pool's chance imbalance would have caused."""
    seg = SEGMENTS.index(CAMPAIGNS[campaign])
    keep = (data.segment == seg) | (data.segment == 0)
    p, treated, y = predictions[keep], (data.segment[keep] == seg), data.outcomes[keep]
    x = (p[:, :, seg] + p[:, :, 0]) / 2
    shift = np.array([lin_shift(treated, y[:, j], x[:, j]) for j in range(len(OUTCOMES))])
    for arm in (treated, ~treated):
        x[arm] += x.mean(axis=0) - x[arm].mean(axis=0)
    return Pool(campaign, treated.astype(np.float64), y, x, p[:, :, seg] - p[:, :, 0]), shift


def replay(rng: np.random.Generator, p: Pool, runs: int, horizon: int, look_every: int) -> dict[str, Sums]:
    """Per outcome, the campaign's sums (key `visit`, ...) and its A/A twin's (`visit/aa`, ...)."""
    idx = rng.integers(0, len(p.treated), size=(runs, horizon))
    a = p.treated[idx]
    aa = rng.permuted(a, axis=1)
    effect = p.effect()
    out: dict[str, Sums] = {}
    for j, name in enumerate(OUTCOMES):
        binary = name != "revenue"
        y, x = p.outcomes[idx, j], {"model": p.covariate[idx, j]}
        predicted = cumulative(p.uplift[idx, j], look_every)
        tot = totals(y, x, look_every, binary)
        for key, arms, truth in ((name, a, effect[j]), (f"{name}/aa", aa, 0.0)):
            s = arm_sums(arms, y, x, tot, look_every, binary)
            s.truth, s.predicted_mean = truth, predicted / s.exposures
            out[key] = s
    return out
