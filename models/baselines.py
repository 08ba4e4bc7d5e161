"""Classical uplift baselines with gradient boosting, fitted in the same run as the neural model is evaluated.

All see the same inputs as the neural scorer apart from the promotion text: user features, promotion
attributes and the promotion id as a categorical column. All use the same train/validation split
(validation drives boosting's early stopping) and the same seed.
- T-learner: one model per arm and outcome, uplift = treated model - control model.
- S-learner: one model per outcome with the arm as an extra column, uplift = f(arm=1) - f(arm=0).
- X-learner and DR-learner (`META_LEARNERS`, the cross-fitting protocol's): second-stage regressions of
  imputed effects and of doubly robust pseudo-outcomes; see their docstrings.
Visit and conversion use a classifier (probabilities), revenue a Poisson-loss regressor (a log-link mean
suited to zero-inflated, non-negative spend), matching the neural heads' links; the second stages are
squared-error regressors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from models.dataset import Dataset
from models.nets import N_BINARY
from stream.scoring.signature import OUTCOMES

# Boosting's categorical columns hold at most 255 categories; beyond that the code is used as ordinal.
_MAX_CATEGORIES = 250
Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Predictions:
    p_treated: np.ndarray  # [N, 3]
    p_control: np.ndarray  # [N, 3]

    def uplift(self, o: int) -> np.ndarray:
        """Predicted effect on outcome column o: the ranking score of every uplift metric."""
        return self.p_treated[:, o] - self.p_control[:, o]


def _design(ds: Dataset, promotions: np.ndarray) -> np.ndarray:
    # Unknown promotions (not in training) map to a code of their own that boosting never saw.
    code = np.searchsorted(promotions, ds.promotion_ids)
    known = (code < len(promotions)) & (promotions[np.minimum(code, len(promotions) - 1)] == ds.promotion_ids)
    code = np.where(known, code, len(promotions)).astype(np.float64)
    return np.column_stack([ds.user_features, ds.promo_attrs, code]).astype(np.float64)


def _fit(x: np.ndarray, y: np.ndarray, val: tuple[np.ndarray, ...], binary: bool, seed: int) -> Predictor:
    """One boosted model; validation rows drive early stopping when they hold more than one outcome value.

    No sample weights: with them boosting bins features by weighted quantiles, 5-10x slower to fit.
    """
    x_val, y_val = val
    if (binary and len(np.unique(y)) < 2) or not (y > 0).any():
        constant = float(y.mean()) if len(y) else 0.0
        return lambda rows: np.full(len(rows), constant)
    informative_val = len(np.unique(y_val)) > 1
    params = _params(x, seed, informative_val)
    fit_val = {"X_val": x_val, "y_val": y_val} if informative_val else {}
    if binary:
        clf = HistGradientBoostingClassifier(**params).fit(x, y, **fit_val)
        return lambda rows: clf.predict_proba(rows)[:, 1]
    reg = HistGradientBoostingRegressor(loss="poisson", **params).fit(x, y, **fit_val)
    return lambda rows: reg.predict(rows)


def _params(x: np.ndarray, seed: int, early_stopping: bool) -> dict[str, Any]:
    return {
        "max_iter": 300,
        "learning_rate": 0.05,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 100,
        "l2_regularization": 1.0,
        "early_stopping": early_stopping,
        "n_iter_no_change": 20,
        "random_state": seed,
        "categorical_features": [x.shape[1] - 1] if x[:, -1].max(initial=0) < _MAX_CATEGORIES else None,
    }


def _fit_effect(x: np.ndarray, d: np.ndarray, val: tuple[np.ndarray, ...], seed: int) -> Predictor:
    """A squared-error boosted regression of an effect estimate per row (X- and DR-learners' second stage):
    such targets are signed and neither counts nor probabilities."""
    x_val, d_val = val
    if len(d) == 0:
        return lambda rows: np.zeros(len(rows))
    informative_val = len(d_val) > 1 and bool(np.ptp(d_val) > 0)
    fit_val = {"X_val": x_val, "y_val": d_val} if informative_val else {}
    reg = HistGradientBoostingRegressor(**_params(x, seed, informative_val)).fit(x, d, **fit_val)
    return lambda rows: reg.predict(rows)


def _promotions(train: Dataset) -> np.ndarray:
    return np.unique(train.promotion_ids)


Learner = Callable[[Dataset, Dataset, Dataset, int], Predictions]


def _single_threaded(fit: Learner) -> Learner:
    """Boosting's OpenMP threads spin-wait: on a shared or small machine one thread was far faster
    (13.4 s vs 0.7 s for one fit on 2 busy cores)."""

    def run(train: Dataset, val: Dataset, test: Dataset, seed: int) -> Predictions:
        with threadpool_limits(limits=1, user_api="openmp"):
            return fit(train, val, test, seed)

    return run


@_single_threaded
def t_learner(train: Dataset, val: Dataset, test: Dataset, seed: int) -> Predictions:
    promos = _promotions(train)
    x, x_val, x_test = (_design(d, promos) for d in (train, val, test))
    out = {1: np.zeros((len(test), len(OUTCOMES))), 0: np.zeros((len(test), len(OUTCOMES)))}
    for arm, pred in out.items():
        rows, val_rows = train.arm == arm, val.arm == arm
        for o in range(len(OUTCOMES)):
            val_data = (x_val[val_rows], val.labels[val_rows, o])
            model = _fit(x[rows], train.labels[rows, o], val_data, o < N_BINARY, seed)
            pred[:, o] = model(x_test)
    return Predictions(out[1], out[0])


@_single_threaded
def s_learner(train: Dataset, val: Dataset, test: Dataset, seed: int) -> Predictions:
    promos = _promotions(train)

    def with_arm(d: Dataset, arm: np.ndarray) -> np.ndarray:
        design = _design(d, promos)
        # The categorical promotion code stays the last column (boosting's categorical_features index).
        return np.column_stack([design[:, :-1], arm, design[:, -1]])

    x, x_val = with_arm(train, train.arm), with_arm(val, val.arm)
    x_t = with_arm(test, np.ones(len(test)))
    x_c = with_arm(test, np.zeros(len(test)))
    p_t, p_c = np.zeros((len(test), len(OUTCOMES))), np.zeros((len(test), len(OUTCOMES)))
    for o in range(len(OUTCOMES)):
        model = _fit(x, train.labels[:, o], (x_val, val.labels[:, o]), o < N_BINARY, seed)
        p_t[:, o], p_c[:, o] = model(x_t), model(x_c)
    return Predictions(p_t, p_c)


def _arm_models(
    train: Dataset, val: Dataset, x: np.ndarray, x_val: np.ndarray, o: int, seed: int
) -> dict[int, Predictor]:
    """The T-learner's two outcome models of outcome o (arm -> predictor), `x` and `x_val` the designs."""
    models = {}
    for arm in (0, 1):
        rows, val_rows = train.arm == arm, val.arm == arm
        val_data = (x_val[val_rows], val.labels[val_rows, o])
        models[arm] = _fit(x[rows], train.labels[rows, o], val_data, o < N_BINARY, seed)
    return models


def propensity(train: Dataset, ds: Dataset) -> np.ndarray:
    """Each row's chance of treatment: its promotion's treated share in `train` (the arms are randomised per
    promotion), the overall share for a promotion `train` lacks; clipped to [0.01, 0.99]."""
    promos, code = np.unique(train.promotion_ids, return_inverse=True)
    share = np.bincount(code, weights=train.arm.astype(np.float64)) / np.bincount(code)
    at = np.minimum(np.searchsorted(promos, ds.promotion_ids), len(promos) - 1)
    known = promos[at] == ds.promotion_ids
    return np.clip(np.where(known, share[at], train.arm.mean()), 0.01, 0.99)


@_single_threaded
def x_learner(train: Dataset, val: Dataset, test: Dataset, seed: int) -> Predictions:
    """Künzel et al. 2019: the T-learner's models impute each training row's effect (treated: outcome minus
    the control model; holdout: the treated model minus outcome), one regression per arm learns it, and the
    two are blended by the propensity e: tau = e * tau_control + (1 - e) * tau_treated (the arm with fewer
    rows gets the smaller weight). p_control is the control model, p_treated = p_control + tau."""
    promos = _promotions(train)
    x, x_val, x_test = (_design(d, promos) for d in (train, val, test))
    e = propensity(train, test)
    p_t, p_c = np.zeros((len(test), len(OUTCOMES))), np.zeros((len(test), len(OUTCOMES)))
    for o in range(len(OUTCOMES)):
        mu = _arm_models(train, val, x, x_val, o, seed)
        tau = {}
        for arm in (0, 1):
            rows, val_rows = train.arm == arm, val.arm == arm
            sign = 1.0 if arm == 1 else -1.0
            d = sign * (train.labels[rows, o] - mu[1 - arm](x[rows]))
            d_val = sign * (val.labels[val_rows, o] - mu[1 - arm](x_val[val_rows]))
            tau[arm] = _fit_effect(x[rows], d, (x_val[val_rows], d_val), seed)(x_test)
        p_c[:, o] = mu[0](x_test)
        p_t[:, o] = p_c[:, o] + e * tau[0] + (1.0 - e) * tau[1]
    return Predictions(p_t, p_c)


def _user_halves(ds: Dataset, seed: int) -> np.ndarray:
    """True for the rows of a random half of the users (a user's rows stay together)."""
    users, code = np.unique(ds.user_ids, return_inverse=True)
    first = np.zeros(len(users), dtype=bool)
    first[np.random.default_rng(seed).permutation(len(users))[: len(users) // 2]] = True
    return first[code]


def _pseudo_outcome(
    y: np.ndarray, t: np.ndarray, e: np.ndarray, mu0: np.ndarray, mu1: np.ndarray
) -> np.ndarray:
    """The doubly robust (AIPW) score of the effect: unbiased for it when either the outcome models or the
    propensity are right, and the propensity is known in a randomised test."""
    return mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1.0 - e)


@_single_threaded
def dr_learner(train: Dataset, val: Dataset, test: Dataset, seed: int) -> Predictions:
    """Kennedy 2023: the outcome models are cross-fitted over two halves of the training users (each row's
    pseudo-outcome uses models that did not see it), and one regression of the doubly robust pseudo-outcome
    on the features is the effect. The validation and test rows use the mean of both halves' models;
    p_control is their control model, p_treated = p_control + tau."""
    promos = _promotions(train)
    x, x_val, x_test = (_design(d, promos) for d in (train, val, test))
    half = _user_halves(train, seed)
    e, e_val = propensity(train, train), propensity(train, val)
    p_t, p_c = np.zeros((len(test), len(OUTCOMES))), np.zeros((len(test), len(OUTCOMES)))
    for o in range(len(OUTCOMES)):
        mu = np.zeros((2, len(train)))
        mu_val, mu_test = np.zeros((2, len(val))), np.zeros((2, len(test)))
        for side in (True, False):
            fit_rows = half == side
            models = _arm_models(train.subset(fit_rows), val, x[fit_rows], x_val, o, seed)
            for arm in (0, 1):
                mu[arm, ~fit_rows] = models[arm](x[~fit_rows])
                mu_val[arm] += models[arm](x_val) / 2.0
                mu_test[arm] += models[arm](x_test) / 2.0
        phi = _pseudo_outcome(train.labels[:, o], train.arm, e, mu[0], mu[1])
        phi_val = _pseudo_outcome(val.labels[:, o], val.arm, e_val, mu_val[0], mu_val[1])
        p_c[:, o] = mu_test[0]
        p_t[:, o] = mu_test[0] + _fit_effect(x, phi, (x_val, phi_val), seed)(x_test)
    return Predictions(p_t, p_c)


BASELINES: dict[str, Learner] = {
    "t_learner_gbm": t_learner,
    "s_learner_gbm": s_learner,
}
# The cross-fitting protocol's baselines (models/crossfit.py); `liftstream evaluate` keeps the two above.
META_LEARNERS: dict[str, Learner] = {
    **BASELINES,
    "x_learner_gbm": x_learner,
    "dr_learner_gbm": dr_learner,
}
