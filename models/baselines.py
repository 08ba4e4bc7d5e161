"""Classical uplift baselines with gradient boosting, fitted in the same run as the neural model is evaluated.

Both see the same inputs as the neural scorer apart from the promotion text: user features, promotion
attributes and the promotion id as a categorical column. Both use the same train/validation split
(validation drives boosting's early stopping) and the same seed.
- T-learner: one model per arm and outcome, uplift = treated model - control model.
- S-learner: one model per outcome with the arm as an extra column, uplift = f(arm=1) - f(arm=0).
Visit and conversion use a classifier (probabilities), revenue a Poisson-loss regressor (a log-link mean
suited to zero-inflated, non-negative spend), matching the neural heads' links.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    params = {
        "max_iter": 300,
        "learning_rate": 0.05,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 100,
        "l2_regularization": 1.0,
        "early_stopping": informative_val,
        "n_iter_no_change": 20,
        "random_state": seed,
        "categorical_features": [x.shape[1] - 1] if x[:, -1].max(initial=0) < _MAX_CATEGORIES else None,
    }
    fit_val = {"X_val": x_val, "y_val": y_val} if informative_val else {}
    if binary:
        clf = HistGradientBoostingClassifier(**params).fit(x, y, **fit_val)
        return lambda rows: clf.predict_proba(rows)[:, 1]
    reg = HistGradientBoostingRegressor(loss="poisson", **params).fit(x, y, **fit_val)
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


BASELINES: dict[str, Learner] = {
    "t_learner_gbm": t_learner,
    "s_learner_gbm": s_learner,
}
