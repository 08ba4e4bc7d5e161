from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.effects.aggregate import EMPTY as NO_TOTALS
from stream.effects.aggregate import PromotionTotals
from stream.effects.attribution import (
    EMPTY,
    AttributionConfig,
    AttributionState,
    Delta,
    apply_click,
    apply_exposure,
    exposure_fact,
)
from stream.events.gate import AnyClick
from stream.events.models import Arm, ClickEvent, ExposureEvent
from stream.features.state import Applied, click_row
from stream.settings import load_settings
from tests.features.builders import at, click, exposure

pytestmark = pytest.mark.unit

W = 3600.0
CFG = AttributionConfig(window_s=W, allowed_lateness_s=600.0)


def _feed(
    events: list[ClickEvent | ExposureEvent], config: AttributionConfig = CFG, state: AttributionState = EMPTY
) -> tuple[AttributionState, list[Delta], list[Applied]]:
    deltas: list[Delta] = []
    statuses: list[Applied] = []
    for ev in events:
        if isinstance(ev, AnyClick):
            state, ds, status = apply_click(state, click_row(ev), config)
            deltas.extend(ds)
        else:
            state, d, status = apply_exposure(state, exposure_fact(ev), config)
            deltas.extend([d] if d is not None else [])
        statuses.append(status)
    return state, deltas, statuses


def _totals(deltas: list[Delta]) -> PromotionTotals:
    return NO_TOTALS.add_many(deltas)


def test_only_clicks_in_the_window_count() -> None:
    x = exposure("u", 1000.0)
    before, at_start, inside, at_end = (
        click("u", 999.0),
        click("u", 1000.0),
        click("u", 1000.0 + W - 1),
        click("u", 1000.0 + W),
    )
    _, deltas, statuses = _feed([before, x, at_start, inside, at_end])
    assert statuses == [Applied.applied] * 5
    # The exposure itself, then one visit from the click at its ts; later clicks change nothing.
    assert [(d.d_exposures, d.d_visits) for d in deltas] == [(1, 0), (0, 1)]
    assert _totals(deltas).treatment.visits == 1


def test_a_purchase_converts_once_and_adds_revenue_each_time() -> None:
    x = exposure("u", 0.0, arm="holdout")
    buy1 = click("u", 10.0, "purchase", price=20.0, quantity=2)
    buy2 = click("u", 20.0, "purchase", price=5.0)
    _, deltas, _ = _feed([x, click("u", 5.0), buy1, buy2])
    totals = _totals(deltas)
    assert totals.treatment.exposures == 0
    h = totals.holdout
    assert (h.exposures, h.visits, h.conversions, h.revenue) == (1, 1, 1, 45.0)
    # Σ of the (new² − old²) deltas is the square of the exposure's final revenue.
    assert h.revenue_sq == pytest.approx(45.0**2)


def test_a_click_counts_for_every_open_exposure_it_follows() -> None:
    xs = [exposure("u", 0.0, "p1"), exposure("u", 100.0, "p2", arm="holdout"), exposure("u", 900.0, "p1")]
    _, deltas, _ = _feed([*xs, click("u", 500.0, "purchase", price=3.0)])
    outcome = [(d.promotion_id, d.arm, d.d_conversions, d.d_revenue) for d in deltas if not d.d_exposures]
    assert outcome == [("p1", Arm.treatment, 1, 3.0), ("p2", Arm.holdout, 1, 3.0)]


def test_an_exposure_arriving_after_its_clicks_collects_them() -> None:
    x = exposure("u", 1000.0)
    clicks = [click("u", 1100.0), click("u", 1200.0, "purchase", price=7.0), click("u", 1300.0)]
    _, in_order, _ = _feed([x, *clicks])
    _, late_exposure, statuses = _feed([*clicks, x])
    assert statuses[-1] == Applied.applied
    assert _totals(late_exposure) == _totals(in_order)
    assert late_exposure[-1].d_visits == 1 and late_exposure[-1].d_revenue == 7.0


def test_duplicates_do_not_count_twice() -> None:
    x = exposure("u", 0.0)
    buy = click("u", 10.0, "purchase", price=4.0)
    state, deltas, statuses = _feed([x, buy, x, buy, buy])
    assert statuses == [Applied.applied] * 2 + [Applied.duplicate] * 3
    totals = _totals(deltas)
    assert (totals.treatment.exposures, totals.treatment.conversions, totals.treatment.revenue) == (1, 1, 4.0)


def test_events_older_than_the_allowed_lateness_are_refused() -> None:
    state, _, _ = _feed([exposure("u", 10_000.0)])
    _, deltas, statuses = _feed(
        [exposure("u", 10_000.0 - 601), click("u", 10_000.0 - 601), click("u", 10_000.0 - 599)], state=state
    )
    assert statuses == [Applied.late, Applied.late, Applied.applied]
    assert [d.d_visits for d in deltas] == []  # the on-time click is before the only open exposure


def test_closed_exposures_and_old_clicks_are_evicted() -> None:
    state, _, _ = _feed([exposure("u", 0.0), click("u", 10.0), exposure("u", 100.0)])
    # At 600 + W + 1, the exposure at 0 can no longer receive on-time clicks; the one at 100 still can.
    state, _, _ = _feed([click("u", 600.0 + W + 1)], state=state)
    assert [r[0] for r in state.exposures] == [at(100.0).timestamp()]
    assert [c[0] for c in state.clicks] == [at(600.0 + W + 1).timestamp()]
    assert state.floor_ts is None


def test_a_hot_key_stays_bounded_and_forgotten_events_stay_counted_once() -> None:
    config = AttributionConfig(window_s=W, allowed_lateness_s=600.0, max_exposures=4, max_clicks=8)
    xs = [exposure("u", float(t)) for t in range(10)]
    cs = [click("u", 10.0 + t / 10) for t in range(50)]
    state, deltas, _ = _feed([*xs, *cs], config)
    assert len(state.exposures) == 4 and len(state.clicks) == 8
    assert state.floor_ts == cs[-9].ts.timestamp()
    # Re-delivered events whose rows were dropped by the caps are refused, not counted again.
    _, again, statuses = _feed([xs[0], cs[0]], config, state)
    assert statuses == [Applied.late, Applied.late] and again == []
    assert _totals(deltas).treatment.exposures == 10


def test_state_round_trips_through_json() -> None:
    events: list[ClickEvent | ExposureEvent] = [
        exposure("u", 0.0),
        exposure("u", 5.0, "p2", "holdout"),
        click("u", 9.0, "purchase", price=2.5),
    ]
    state, _, _ = _feed(events)
    restored = AttributionState.from_json(orjson.loads(orjson.dumps(state.to_json())))
    assert restored == state
    # The restored state keeps working: the duplicate is recognised, a new click is attributed.
    _, deltas, statuses = _feed([events[2], click("u", 12.0, "purchase", price=1.0)], state=restored)
    assert statuses == [Applied.duplicate, Applied.applied] and len(deltas) == 2
    with pytest.raises(ValueError, match="version"):
        AttributionState.from_json({**state.to_json(), "v": 99})


def test_config_from_settings_and_validation() -> None:
    settings = load_settings(windows={"attribution_window_s": 7200, "allowed_lateness_s": 30})
    config = AttributionConfig.from_settings(settings)
    assert (config.window_s, config.allowed_lateness_s) == (7200.0, 30.0)
    with pytest.raises(ValueError):
        AttributionConfig(window_s=0)


_event = st.tuples(
    st.booleans(), st.integers(0, 40), st.sampled_from(["view", "purchase"]), st.integers(1, 9)
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_event, min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_any_arrival_order_with_repeats_gives_the_in_order_totals(events: list, rnd) -> None:  # type: ignore[no-untyped-def]
    # Unbounded lateness: every order and every re-delivery must give the same totals.
    config = AttributionConfig(window_s=10.0, allowed_lateness_s=1e9)
    made: list[ClickEvent | ExposureEvent] = [
        exposure("u", 100.0 * t, arm="holdout" if t % 2 else "treatment")
        if is_exposure
        else click("u", 100.0 * t + (t % 3) * 4.0, kind, price=float(price))
        for is_exposure, t, kind, price in events
    ]
    _, in_order, _ = _feed(sorted(made, key=lambda e: (e.ts, isinstance(e, AnyClick))), config)
    shuffled = made + rnd.sample(made, k=len(made) // 2)
    rnd.shuffle(shuffled)
    _, any_order, _ = _feed(shuffled, config)
    expected, got = _totals(in_order), _totals(any_order)
    for arm in (Arm.treatment, Arm.holdout):
        e, g = expected.arm(arm), got.arm(arm)
        assert (g.exposures, g.visits, g.conversions) == (e.exposures, e.visits, e.conversions)
        assert g.revenue == pytest.approx(e.revenue) and g.revenue_sq == pytest.approx(e.revenue_sq)
