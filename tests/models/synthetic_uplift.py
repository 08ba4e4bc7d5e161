"""A small synthetic Dataset with known effects, for model tests that must not depend on a history replay."""

from __future__ import annotations

import numpy as np

from models.dataset import Dataset
from stream.scoring.signature import PROMO_ATTRS, USER_FEATURES

PROMO_TEXTS = {
    "p-shoes": "20% off running shoes. Save on every pair this week.",
    "p-ship": "Free shipping. No minimum order on home goods.",
    "p-bogo": "Buy one get one free. Summer t-shirts and shorts.",
}


def synthetic_dataset(n: int = 600, seed: int = 0, truth: bool = True) -> Dataset:
    """Users respond to a promotion when feature 0 is high (visit) and feature 1 is high (conversion)."""
    rng = np.random.default_rng(seed)
    x = rng.gamma(1.0, 1.0, (n, len(USER_FEATURES))).astype(np.float32)
    attrs = rng.normal(size=(n, len(PROMO_ATTRS))).astype(np.float32)
    promos = np.array(sorted(PROMO_TEXTS))[rng.integers(0, len(PROMO_TEXTS), n)]
    arm = (rng.random(n) < 0.6).astype(np.int8)
    mu0 = np.column_stack([np.full(n, 0.2), np.full(n, 0.05), np.full(n, 2.5)]).astype(np.float32)
    tau_visit = np.where(x[:, 0] > 1.0, 0.4, 0.0)
    tau_conv = np.where(x[:, 1] > 1.0, 0.1, 0.0)
    tau = np.column_stack([tau_visit, tau_conv, tau_conv * 50.0]).astype(np.float32)
    p = mu0 + arm[:, None] * tau
    visit = rng.random(n) < p[:, 0]
    conversion = rng.random(n) < p[:, 1]
    revenue = conversion * 50.0
    return Dataset(
        event_ids=np.array([f"e{i}" for i in range(n)]),
        user_ids=np.array([f"u{i // 2}" for i in range(n)]),
        promotion_ids=promos,
        campaign_ids=np.array([f"c-{p}" for p in promos]),
        ts=np.arange(n, dtype=np.float64),
        user_features=x,
        promo_attrs=attrs,
        arm=arm,
        labels=np.column_stack([visit, conversion, revenue]).astype(np.float32),
        tau=tau if truth else None,
        mu0=mu0 if truth else None,
        promo_texts=dict(PROMO_TEXTS),
        meta={"source": "synthetic"},
    )
