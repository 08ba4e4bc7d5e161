from __future__ import annotations

import json

import pytest

from stream.errors import ConfigError
from stream.features.state import (
    EMPTY,
    Applied,
    FeatureConfig,
    UserState,
    apply_click,
    apply_exposure,
    click_row,
    evict,
    exposure_row,
)
from stream.settings import load_settings
from tests.features.builders import T0, click, exposure

pytestmark = pytest.mark.unit

CFG = FeatureConfig(allowed_lateness_s=600)


def _apply_all(events: list, config: FeatureConfig = CFG) -> tuple[UserState, list[Applied]]:
    state, statuses = EMPTY, []
    for ev in events:
        if ev.__class__.__name__ == "ClickEvent":
            state, status = apply_click(state, click_row(ev), config)
        else:
            state, status = apply_exposure(state, exposure_row(ev), config)
        statuses.append(status)
    return state, statuses


def test_out_of_order_click_within_lateness_is_inserted_in_ts_order() -> None:
    state, statuses = _apply_all([click("u", 1000), click("u", 1500), click("u", 1200)])
    assert statuses == [Applied.applied] * 3
    assert [r[0] - T0.timestamp() for r in state.clicks] == [1000, 1200, 1500]
    assert state.max_ts == T0.timestamp() + 1500 and state.dropped_click_ts is None


def test_click_older_than_lateness_is_rejected_and_state_unchanged() -> None:
    state, _ = _apply_all([click("u", 1000), exposure("u", 5000)])
    at_edge, edge_status = apply_click(state, click_row(click("u", 4400)), CFG)
    late, late_status = apply_click(state, click_row(click("u", 4399.5)), CFG)
    assert edge_status == Applied.applied
    assert late_status == Applied.late
    assert late is state


def test_exposure_lateness_is_measured_against_clicks_too() -> None:
    state, statuses = _apply_all([click("u", 5000), exposure("u", 4000)])
    assert statuses[-1] == Applied.late
    assert state.exposures == ()


def test_redelivered_event_is_a_duplicate() -> None:
    c, x = click("u", 10), exposure("u", 10)
    state, statuses = _apply_all([c, x, c, x, click("u", 10)])
    assert statuses == [
        Applied.applied,
        Applied.applied,
        Applied.duplicate,
        Applied.duplicate,
        Applied.applied,
    ]
    assert len(state.clicks) == 2 and len(state.exposures) == 1


def test_cap_keeps_the_most_recent_rows() -> None:
    config = FeatureConfig(max_events=4, max_exposures=2)
    events = [click("u", t) for t in (50, 10, 40, 20, 30, 60)] + [exposure("u", t) for t in (1, 3, 2)]
    state, _ = _apply_all(events, config)
    assert [r[0] - T0.timestamp() for r in state.clicks] == [30, 40, 50, 60]
    assert [r[0] - T0.timestamp() for r in state.exposures] == [2, 3]
    assert state.dropped_click_ts == T0.timestamp() + 20
    # A late click older than every kept row is dropped at once and only remembered if newest dropped.
    older, status = apply_click(state, click_row(click("u", 5)), config)
    assert status == Applied.applied and older.clicks == state.clicks
    assert older.dropped_click_ts == state.dropped_click_ts
    newer, _ = apply_click(state, click_row(click("u", 25)), config)
    assert newer.clicks == state.clicks and newer.dropped_click_ts == T0.timestamp() + 25


def test_eviction_keeps_longest_window_plus_lateness() -> None:
    horizon = CFG.horizon_s
    assert horizon == 86400 + 600
    state, _ = _apply_all([click("u", 0), click("u", 100), exposure("u", 50), click("u", 100 + horizon)])
    assert [r[0] - T0.timestamp() for r in state.clicks] == [100, 100 + horizon]
    assert state.exposures == ()
    assert state.dropped_click_ts == T0.timestamp()
    assert evict(state, CFG) is state


def test_json_round_trip_is_exact() -> None:
    events = [
        click("u", 0.123456, "purchase", price=19.99, quantity=3),
        click("u", 7, category=None),
        exposure("u", 3),
    ]
    state, _ = _apply_all(events)
    restored = UserState.from_json(json.loads(json.dumps(state.to_json())))
    assert restored == state
    assert UserState.from_json(EMPTY.to_json()) == EMPTY


def test_unknown_state_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        UserState.from_json({**EMPTY.to_json(), "v": 99})


def test_config_from_settings_checks_windows() -> None:
    assert FeatureConfig.from_settings(load_settings()).allowed_lateness_s == 600
    with pytest.raises(ConfigError, match="feature_windows_s"):
        FeatureConfig.from_settings(load_settings(windows={"feature_windows_s": (60, 3600, 86400)}))
