"""Per-user attribution state: which exposures each click and purchase is an outcome of, counted once.

An exposure at t collects the user's clicks with ts in [t, t + window) (stream/features/labels.py):
its visit turns on with the first click of any kind, its conversion with the first purchase, and every
purchase adds price * quantity to its revenue. Each change is returned as a `Delta` for the promotion
totals; revenue deltas carry new² − old² so Σ revenue² per exposure stays exact for a Welch interval.

The state is JSON-able for a Faust table keyed by user_id and bounded:
- open exposures, kept until no on-time click can fall in their window (t + window <= max_ts − lateness);
- recent clicks, kept for the allowed lateness, so an exposure that arrives after its user's clicks
  (clicks and exposures are separate topics) still finds them, and re-delivered clicks are recognised;
- caps on both; capping drops the oldest rows and raises `floor_ts`, and events at or before it are
  refused as late, so a forgotten event can never be counted a second time.
Events older than `max_ts − allowed_lateness` (the user's newest event time) are refused as late, the
same rule as the feature state. Refused and duplicate events change nothing.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, TypeVar

from stream.events.models import Arm, ExposureEvent
from stream.features.state import PURCHASE, Applied, ClickRow, stable_hash
from stream.settings import Settings

STATE_VERSION = 2

# (ts, event hash, promotion_id, campaign_id, treated 0/1, visited 0/1, converted 0/1, revenue, x): x is the
# exposure's prediction per outcome, the covariate (stream/batching/covariate.py), () until it is scored.
OpenExposure = tuple[float, int, str, str, int, int, int, float, tuple[float, ...]]
# (ts, event hash, purchase 0/1, price * quantity)
SeenClick = tuple[float, int, int, float]
R = TypeVar("R", OpenExposure, SeenClick)


class ExposureFact(NamedTuple):
    ts: float
    event_hash: int
    promotion_id: str
    campaign_id: str
    arm: Arm


def exposure_fact(event: ExposureEvent) -> ExposureFact:
    return ExposureFact(
        event.ts.timestamp(),
        stable_hash(event.event_id),
        event.promotion_id,
        event.campaign_id,
        event.arm,
    )


@dataclass(frozen=True, slots=True)
class Delta:
    """A change to one promotion arm's totals, from the exposure at `exposure_ts`; `ts` is the newest
    event time it accounts for (the exposure's, or the latest click's it collected). `exposure_hash` names
    the exposure (0 once deltas are aggregated); `cov` is a covariate block (stream/effects/aggregate.py),
    set only on the deltas a user's outbox keeps."""


    promotion_id: str
    campaign_id: str
    arm: Arm
    exposure_ts: float
    ts: float
    d_exposures: int = 0
    d_visits: int = 0
    d_conversions: int = 0
    d_revenue: float = 0.0
    d_revenue_sq: float = 0.0
    exposure_hash: int = 0
    cov: tuple[float, ...] = ()
    x: tuple[float, ...] = ()
    """The exposure's covariate as its row held it when the delta was made; () when not yet scored."""


@dataclass(frozen=True, slots=True)
class AttributionConfig:
    window_s: float = 86400.0
    allowed_lateness_s: float = 600.0
    max_exposures: int = 64
    max_clicks: int = 256

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.allowed_lateness_s < 0 or min(self.max_exposures, self.max_clicks) < 1:
            raise ValueError(f"invalid attribution config {self}")

    @classmethod
    def from_settings(cls, settings: Settings) -> AttributionConfig:
        return cls(
            window_s=float(settings.windows.attribution_window_s),
            allowed_lateness_s=float(settings.windows.allowed_lateness_s),
        )


@dataclass(frozen=True, slots=True)
class AttributionState:
    exposures: tuple[OpenExposure, ...] = ()
    clicks: tuple[SeenClick, ...] = ()
    max_ts: float | None = None
    floor_ts: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "x": [list(r) for r in self.exposures],
            "c": [list(r) for r in self.clicks],
            "max_ts": self.max_ts,
            "floor_ts": self.floor_ts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AttributionState:
        # Version 1 rows (before the covariate) read as unscored.
        if data.get("v") not in (1, STATE_VERSION):
            raise ValueError(f"unsupported attribution state version {data.get('v')!r}")
        return cls(
            exposures=tuple((*r[:8], tuple(r[8]) if len(r) > 8 else ()) for r in data["x"]),
            clicks=tuple(map(tuple, data["c"])),
            max_ts=data["max_ts"],
            floor_ts=data["floor_ts"],
        )


EMPTY = AttributionState()


def _ts(row: tuple[Any, ...]) -> float:
    return float(row[0])


def _insert(rows: tuple[R, ...], row: R) -> tuple[R, ...] | None:
    """Insert after rows of equal ts (arrival order breaks ties); None if the event hash is there."""
    ts = row[0]
    at = bisect_right(rows, ts, key=_ts)
    j = at
    while j > 0 and rows[j - 1][0] == ts:
        if rows[j - 1][1] == row[1]:
            return None
        j -= 1
    return rows[:at] + (row,) + rows[at:]


def _refused(state: AttributionState, ts: float, config: AttributionConfig) -> bool:
    late = state.max_ts is not None and ts < state.max_ts - config.allowed_lateness_s
    return late or (state.floor_ts is not None and ts <= state.floor_ts)


def _trim(rows: tuple[R, ...], cutoff: int, cap: int) -> tuple[tuple[R, ...], float | None]:
    """Drop rows before index `cutoff` and beyond the newest `cap`; the newest ts dropped by the cap."""
    start = max(cutoff, len(rows) - cap)
    capped = rows[start - 1][0] if start > cutoff else None
    return rows[start:], capped


def _settle(
    state: AttributionState,
    exposures: tuple[OpenExposure, ...],
    clicks: tuple[SeenClick, ...],
    ts: float,
    config: AttributionConfig,
) -> AttributionState:
    max_ts = ts if state.max_ts is None or ts > state.max_ts else state.max_ts
    on_time = max_ts - config.allowed_lateness_s
    # An exposure is closed once its whole window lies before the on-time horizon.
    closed = bisect_right(exposures, on_time - config.window_s, key=_ts)
    exposures, x_cap = _trim(exposures, closed, config.max_exposures)
    clicks, c_cap = _trim(clicks, bisect_left(clicks, on_time, key=_ts), config.max_clicks)
    floor = max((f for f in (state.floor_ts, x_cap, c_cap) if f is not None), default=None)
    return AttributionState(exposures, clicks, max_ts, floor)


def apply_exposure(
    state: AttributionState, fact: ExposureFact, config: AttributionConfig
) -> tuple[AttributionState, Delta | None, Applied]:
    """Open an exposure, with the outcomes of clicks already seen in its window; None when not applied."""
    if _refused(state, fact.ts, config):
        return state, None, Applied.late
    end = fact.ts + config.window_s
    visited = converted = 0
    revenue, newest = 0.0, fact.ts
    for ts, _hash, purchase, amount in state.clicks[bisect_left(state.clicks, fact.ts, key=_ts) :]:
        if ts >= end:
            break
        # Only clicks that change the exposure date it, as they would have arriving after it.
        if purchase or not visited:
            newest = ts
        visited = 1
        if purchase:
            converted = 1
            revenue += amount
    treated = int(fact.arm == Arm.treatment)
    row: OpenExposure = (*fact[:4], treated, visited, converted, revenue, ())
    exposures = _insert(state.exposures, row)
    if exposures is None:
        return state, None, Applied.duplicate
    pid, cid, arm = fact.promotion_id, fact.campaign_id, fact.arm
    squared = revenue * revenue
    delta = Delta(pid, cid, arm, fact.ts, newest, 1, visited, converted, revenue, squared, fact.event_hash)
    return _settle(state, exposures, state.clicks, fact.ts, config), delta, Applied.applied


def apply_click(
    state: AttributionState, row: ClickRow, config: AttributionConfig
) -> tuple[AttributionState, list[Delta], Applied]:
    """Attribute a click (a feature-state `click_row`) to every open exposure whose window holds it."""
    ts, kind, amount, event_hash = row[0], row[1], row[2], row[-1]
    if _refused(state, ts, config):
        return state, [], Applied.late
    purchase = int(kind == PURCHASE)
    clicks = _insert(state.clicks, (ts, event_hash, purchase, amount))
    if clicks is None:
        return state, [], Applied.duplicate
    deltas: list[Delta] = []
    exposures = list(state.exposures)
    # Exposures are in ts order: only those at or before the click, back to one window earlier, qualify.
    i = bisect_right(exposures, ts, key=_ts) - 1
    while i >= 0 and exposures[i][0] > ts - config.window_s:
        x_ts, x_hash, pid, cid, treated, visited, converted, revenue, x = exposures[i]
        new_revenue = revenue + amount if purchase else revenue
        d_visit, d_conv = 1 - visited, (1 - converted) if purchase else 0
        if d_visit or purchase:
            exposures[i] = (x_ts, x_hash, pid, cid, treated, 1, converted | purchase, new_revenue, x)
            arm = Arm.treatment if treated else Arm.holdout
            d_sq = new_revenue * new_revenue - revenue * revenue
            d_rev = amount if purchase else 0.0
            deltas.append(Delta(pid, cid, arm, x_ts, ts, 0, d_visit, d_conv, d_rev, d_sq, x_hash, x=x))
        i -= 1
    deltas.reverse()
    return _settle(state, tuple(exposures), clicks, ts, config), deltas, Applied.applied


def stamp(state: AttributionState, event_hash: int, x: tuple[float, ...]) -> AttributionState:
    """The state with the open exposure `event_hash` scored as `x` (unchanged if it is not open)."""
    rows = state.exposures
    for i, row in enumerate(rows):
        if row[1] == event_hash:
            return replace(state, exposures=(*rows[:i], (*row[:8], x), *rows[i + 1 :]))
    return state
