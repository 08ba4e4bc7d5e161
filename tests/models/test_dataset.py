from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.dataset import Dataset, arm_weights, build_dataset, split_by_user
from stream.errors import ConfigError
from stream.history import TruthRow, write_history
from stream.scoring.signature import PROMO_ATTRS, USER_FEATURES
from tests.features.builders import click, exposure, profile, promotion

pytestmark = pytest.mark.unit

META = {"source": "test", "attribution_window_s": 3600}


def _history(tmp_path: Path, truth: bool = False) -> Path:
    promotions = [
        promotion("p1", 0, title="Shoes", description="Ten off"),
        promotion("p1", 5000, action="update", version=2, title="Shoes", description="Twenty off"),
        promotion("late", 9000, discount_type="bogo"),
    ]
    exposures = [
        exposure("a", 100, "p1"),
        exposure("b", 200, "p1", "holdout"),
        exposure("a", 6000, "p1", "holdout"),
        exposure("c", 8990, "late"),  # shown before its promotion arrived: the stream waits for it
        exposure("c", 9500, "ghost"),  # never defined: cannot be featurised
    ]
    clicks = [
        click("a", 50, "view"),
        click("a", 100, "purchase", price=3.0, quantity=2),  # at the exposure instant: an outcome
        click("a", 3699, "purchase", price=10.0),
        click("a", 3700, "purchase", price=99.0),  # window end: excluded
        click("b", 300, "visit"),
        click("c", 9000, "purchase", price=1.5),
    ]
    rows = [
        TruthRow(e.event_id, e.user_id, e.promotion_id, e.arm.value, i, 0.1 * i, 2.0 * i, 0.5, 0.05, 1.0)
        for i, e in enumerate(exposures)
    ]
    write_history(tmp_path, promotions, [profile("a", 0)], exposures, clicks, rows if truth else None, META)
    return tmp_path


def test_rows_labels_and_promotions(tmp_path: Path) -> None:
    ds = build_dataset(_history(tmp_path))
    assert len(ds) == 4
    assert ds.user_ids.tolist() == ["a", "b", "a", "c"]
    assert ds.promotion_ids.tolist() == ["p1", "p1", "p1", "late"]
    assert ds.campaign_ids.tolist() == ["camp-p1", "camp-p1", "camp-p1", "camp-late"]
    assert ds.arm.tolist() == [1, 0, 0, 1]
    assert ds.labels.tolist() == [[1, 1, 16.0], [1, 0, 0], [0, 0, 0], [1, 1, 1.5]]
    assert ds.user_features.shape == (4, len(USER_FEATURES)) and ds.user_features.dtype == np.float32
    assert ds.promo_attrs.shape == (4, len(PROMO_ATTRS)) and ds.promo_attrs.dtype == np.float32
    assert ds.promo_attrs[3, PROMO_ATTRS.index("discount_bogo")] == 1.0
    assert ds.promo_texts == {"p1": "Shoes. Twenty off", "late": "Deal late. Ten percent off shoes"}
    assert ds.tau is None and ds.mu0 is None
    assert ds.meta["skipped_unknown_promotion"] == 1 and ds.meta["attribution_window_s"] == 3600
    assert ds.meta["source"] == "test"
    profile_known = ds.user_features[:, USER_FEATURES.index("profile_known")]
    assert profile_known.tolist() == [1, 0, 1, 0]


def test_attribution_window_argument_overrides_meta(tmp_path: Path) -> None:
    ds = build_dataset(_history(tmp_path), attribution_window_s=10_000)
    assert ds.labels[0].tolist() == [1, 1, 115.0]
    assert ds.meta["attribution_window_s"] == 10_000


def test_truth_is_aligned_by_event_id(tmp_path: Path) -> None:
    ds = build_dataset(_history(tmp_path, truth=True))
    assert ds.tau is not None and ds.mu0 is not None
    assert ds.tau[:, 0].tolist() == [0, 1, 2, 3]
    assert ds.mu0.shape == (4, 3)


def test_split_by_user_is_disjoint_and_deterministic(tmp_path: Path) -> None:
    ds = _synthetic(1000)
    train, val = split_by_user(ds, val_fraction=0.25, seed=4)
    assert not set(train.user_ids.tolist()) & set(val.user_ids.tolist())
    assert len(train) + len(val) == len(ds)
    assert sorted(np.concatenate([train.event_ids, val.event_ids]).tolist()) == sorted(ds.event_ids.tolist())
    assert len(set(val.user_ids.tolist())) == 50
    again, _ = split_by_user(ds, val_fraction=0.25, seed=4)
    assert np.array_equal(again.event_ids, train.event_ids)
    assert val.promo_texts is ds.promo_texts and val.user_features.shape[1] == len(USER_FEATURES)
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_user(ds, val_fraction=1.0)


def test_arm_weights_balance_each_promotion() -> None:
    ds = _synthetic(1000)
    w = arm_weights(ds)
    assert w.dtype == np.float32 and w.mean() == pytest.approx(1.0)
    for promo in np.unique(ds.promotion_ids):
        mine = ds.promotion_ids == promo
        treated, held = w[mine & (ds.arm == 1)].sum(), w[mine & (ds.arm == 0)].sum()
        assert treated == pytest.approx(held, rel=1e-5)
    one_arm = ds.subset(ds.arm == 1)
    assert np.allclose(arm_weights(one_arm), 1.0)


def test_empty_history(tmp_path: Path) -> None:
    write_history(tmp_path, [], [], [], [], None, META)
    ds = build_dataset(tmp_path)
    assert len(ds) == 0 and ds.user_features.shape == (0, len(USER_FEATURES))
    assert ds.labels.shape == (0, 3) and ds.promo_attrs.shape == (0, len(PROMO_ATTRS))
    assert arm_weights(ds).shape == (0,)


def _synthetic(n: int) -> Dataset:
    rng = np.random.default_rng(0)
    promos = np.array(["p1", "p2"])[rng.integers(0, 2, n)]
    arm = np.where(promos == "p1", rng.random(n) < 0.9, rng.random(n) < 0.5).astype(np.int8)
    return Dataset(
        event_ids=np.array([f"e{i}" for i in range(n)]),
        user_ids=np.array([f"u{i % 200}" for i in range(n)]),
        promotion_ids=promos,
        campaign_ids=np.char.add("c-", promos),
        ts=np.arange(n, dtype=np.float64),
        user_features=np.zeros((n, len(USER_FEATURES)), np.float32),
        promo_attrs=np.zeros((n, len(PROMO_ATTRS)), np.float32),
        arm=arm,
        labels=np.zeros((n, 3), np.float32),
        tau=None,
        mu0=None,
        promo_texts={"p1": "a", "p2": "b"},
        meta={},
    )


def test_truth_must_cover_every_exposure(tmp_path: Path) -> None:
    history = _history(tmp_path, truth=True)
    lines = (history / "truth.csv").read_text().splitlines()
    (history / "truth.csv").write_text("\n".join(lines[:-2]) + "\n")  # drops a kept exposure's row
    with pytest.raises(ConfigError, match="truth.csv has no row"):
        build_dataset(history)
