"""A synthetic scored population: continuous, count and one-hot features, two arms, predictions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.scoring.signature import DISCOUNT_TYPES, PROMO_ATTRS, USER_FEATURES

SPEND = [i for i, name in enumerate(USER_FEATURES) if name.endswith("_spend")]
COUNTS = [i for i, name in enumerate(USER_FEATURES) if name.endswith("_count")]
IS_NEW = USER_FEATURES.index("profile_is_new")
DISCOUNTS = [PROMO_ATTRS.index(f"discount_{d}") for d in DISCOUNT_TYPES]
DISCOUNT_VALUE = PROMO_ATTRS.index("discount_value_log")


@dataclass(frozen=True)
class Scored:
    user: np.ndarray
    promo: np.ndarray
    arm: np.ndarray
    p_treated: np.ndarray
    p_control: np.ndarray

    @property
    def uplift(self) -> np.ndarray:
        return self.p_treated - self.p_control

    def take(self, rows: slice) -> Scored:
        return Scored(self.user[rows], self.promo[rows], self.arm[rows], self.p_treated[rows],
                      self.p_control[rows])


def population(n: int, seed: int, spend_scale: float = 1.0, new_share: float = 0.1,
               holdout_new_share: float | None = None) -> Scored:
    rng = np.random.default_rng(seed)
    user = rng.normal(size=(n, len(USER_FEATURES)))
    user[:, COUNTS] = rng.poisson(2.0, size=(n, len(COUNTS)))
    user[:, SPEND] = rng.lognormal(3.0, 1.0, size=(n, len(SPEND))) * spend_scale
    arm = np.where(rng.random(n) < 0.9, "treatment", "holdout")
    new_share_per_row = np.full(n, new_share)
    if holdout_new_share is not None:
        new_share_per_row[arm == "holdout"] = holdout_new_share
    user[:, IS_NEW] = rng.random(n) < new_share_per_row
    promo = np.zeros((n, len(PROMO_ATTRS)))
    promo[np.arange(n), rng.choice(DISCOUNTS, size=n, p=[0.5, 0.3, 0.1, 0.05, 0.05])] = 1.0
    promo[:, DISCOUNT_VALUE] = rng.normal(2.5, 0.5, size=n)
    logit = 0.3 * user[:, 0] + 0.01 * user[:, SPEND[0]] - 2.0
    p_control = 1 / (1 + np.exp(-logit))
    p_treated = 1 / (1 + np.exp(-(logit + 0.2 + 0.3 * user[:, IS_NEW])))
    outcomes = np.stack([p_control, p_control / 3, p_control * 50], axis=1)
    treated = np.stack([p_treated, p_treated / 3, p_treated * 50], axis=1)
    return Scored(user, promo, arm, treated, outcomes)
