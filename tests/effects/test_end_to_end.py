"""A simulated history fed in event-time order through attribution and partition totals, like the engine."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from models.dataset import build_dataset
from stream.effects.aggregate import EMPTY as NO_TOTALS
from stream.effects.aggregate import PromotionTotals, merge
from stream.effects.attribution import (
    EMPTY,
    AttributionConfig,
    AttributionState,
    apply_click,
    apply_exposure,
    exposure_fact,
)
from stream.effects.report import unadjusted_estimates
from stream.effects.sequential import DEFAULT_TAU
from stream.events.gate import AnyClick
from stream.events.models import Arm, Outcome
from stream.features.state import Applied, click_row, stable_hash
from stream.history import History, read_history
from stream.scoring.signature import OUTCOMES
from stream.simulate.config import SimConfig
from stream.simulate.history_mode import write_simulation

pytestmark = pytest.mark.unit

PARTITIONS = 4
MIN_PER_ARM = 30


@pytest.fixture(scope="module")
def history_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    write_simulation(SimConfig(seed=0, users=4000, days=4), out)
    return out


@pytest.fixture(scope="module")
def history(history_dir: Path) -> History:
    return read_history(history_dir)


@pytest.fixture(scope="module")
def totals(history: History) -> dict[str, PromotionTotals]:
    config = AttributionConfig(window_s=float(history.meta["attribution_window_s"]))
    # Exposures before clicks on equal timestamps, like the history's own merge.
    timeline = sorted(
        [(e.ts, 0, i, e) for i, e in enumerate(history.exposures)]
        + [(c.ts, 1, i, c) for i, c in enumerate(history.clicks)],
        key=lambda item: item[:3],
    )
    states: dict[str, AttributionState] = {}
    partials: dict[tuple[str, int], PromotionTotals] = defaultdict(lambda: NO_TOTALS)
    for *_, event in timeline:
        state = states.get(event.user_id, EMPTY)
        if isinstance(event, AnyClick):
            state, deltas, status = apply_click(state, click_row(event), config)
        else:
            state, delta, status = apply_exposure(state, exposure_fact(event), config)
            deltas = [delta] if delta is not None else []
        assert status == Applied.applied
        states[event.user_id] = state
        partition = stable_hash(event.user_id) % PARTITIONS
        for d in deltas:
            partials[d.promotion_id, partition] = partials[d.promotion_id, partition].add(d)
    promotions = {p for p, _ in partials}
    return {p: merge(partials[p, k] for k in range(PARTITIONS) if (p, k) in partials) for p in promotions}


def test_counts_equal_the_training_labels(history_dir: Path, totals: dict[str, PromotionTotals]) -> None:
    ds = build_dataset(history_dir)
    assert sum(t.treatment.exposures + t.holdout.exposures for t in totals.values()) == len(ds)
    for pid, t in totals.items():
        for arm, code in ((Arm.treatment, 1), (Arm.holdout, 0)):
            labels = ds.labels[(ds.promotion_ids == pid) & (ds.arm == code)].astype(np.float64)
            got = t.arm(arm)
            assert (got.exposures, got.visits, got.conversions) == (
                len(labels),
                int(labels[:, OUTCOMES.index("visit")].sum()),
                int(labels[:, OUTCOMES.index("conversion")].sum()),
            )
            revenue = labels[:, OUTCOMES.index("revenue")]
            assert got.revenue == pytest.approx(revenue.sum(), rel=1e-5, abs=1e-3)
            assert got.revenue_sq == pytest.approx((revenue**2).sum(), rel=1e-5, abs=1e-3)


def test_realised_uplift_intervals_cover_the_true_mean_effect(
    history: History, totals: dict[str, PromotionTotals]
) -> None:
    assert history.truth is not None
    tau: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for row in history.truth:
        tau[row.promotion_id].append((row.tau_visit, row.tau_conversion, row.tau_revenue))
    covered = []
    for pid, t in totals.items():
        if min(t.treatment.exposures, t.holdout.exposures) < MIN_PER_ARM:
            continue
        est = unadjusted_estimates(t)
        true_mean = np.mean(tau[pid], axis=0)
        intervals = [est[Outcome(o)].interval(DEFAULT_TAU[o]) for o in OUTCOMES]
        covered.append([low <= true_mean[i] <= high for i, (low, high) in enumerate(intervals)])
    assert len(covered) >= 10
    share = np.mean(covered, axis=0)
    assert (share >= 0.8).all(), dict(zip(OUTCOMES, share, strict=True))
