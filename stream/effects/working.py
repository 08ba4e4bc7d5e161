"""A user's attribution state in a mutable form, for the batch that touches it: the same updates as
`stream.effects.attribution`, applied in place.

The reference copies the open exposures and seen clicks into new tuples for every event; here they are
lists updated in place (an insert, the collected exposures' rows replaced, a front trim) and the state is
frozen once, at the end of the batch. The rules and the deltas are the reference's, in the same order
(tests/batching/test_working.py).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from stream.effects.attribution import (
    AttributionConfig,
    AttributionState,
    Delta,
    ExposureFact,
    OpenExposure,
    SeenClick,
)
from stream.events.models import Arm
from stream.features.state import PURCHASE, Applied, ClickRow
from stream.features.working import insert, row_ts


def _front(rows: list[OpenExposure] | list[SeenClick], cutoff: int, cap: int) -> float | None:
    """`attribution._trim` in place: drop rows before index `cutoff` and beyond the newest `cap`."""
    start = max(cutoff, len(rows) - cap)
    if start <= 0:
        return None
    capped = rows[start - 1][0] if start > cutoff else None
    del rows[:start]
    return capped


class WorkingAttribution:
    __slots__ = ("state", "changed", "exposures", "clicks", "max_ts", "floor_ts")

    def __init__(self, state: AttributionState) -> None:
        self.state = state
        self.changed = False
        self.exposures: list[OpenExposure] = list(state.exposures)
        self.clicks: list[SeenClick] = list(state.clicks)
        self.max_ts = state.max_ts
        self.floor_ts = state.floor_ts

    def freeze(self) -> AttributionState:
        if not self.changed:  # refused and duplicate events change nothing: the state as it came
            return self.state
        return AttributionState(tuple(self.exposures), tuple(self.clicks), self.max_ts, self.floor_ts)

    def _refused(self, ts: float, config: AttributionConfig) -> bool:
        late = self.max_ts is not None and ts < self.max_ts - config.allowed_lateness_s
        return late or (self.floor_ts is not None and ts <= self.floor_ts)

    def _settle(self, ts: float, config: AttributionConfig) -> None:
        """`attribution._settle` after an insert."""
        self.changed = True
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
        on_time = self.max_ts - config.allowed_lateness_s
        exposures, clicks = self.exposures, self.clicks
        closed = bisect_right(exposures, on_time - config.window_s, key=row_ts) if exposures else 0
        x_cap = _front(exposures, closed, config.max_exposures)
        # The clicks are in ts order: none before the on-time horizon when the oldest is not.
        old = bisect_left(clicks, on_time, key=row_ts) if clicks and clicks[0][0] < on_time else 0
        c_cap = _front(clicks, old, config.max_clicks)
        # max() over (floor, x_cap, c_cap) skipping None: the first of equal values stays.
        floor = self.floor_ts
        for f in (x_cap, c_cap):
            if f is not None and (floor is None or f > floor):
                floor = f
        self.floor_ts = floor

    def apply_exposure(self, fact: ExposureFact, config: AttributionConfig) -> tuple[Delta | None, Applied]:
        """Open an exposure, with the outcomes of clicks already seen in its window; None when not applied."""
        if self._refused(fact.ts, config):
            return None, Applied.late
        clicks = self.clicks
        end = fact.ts + config.window_s
        visited = converted = 0
        revenue, newest = 0.0, fact.ts
        for i in range(bisect_left(clicks, fact.ts, key=row_ts), len(clicks)):
            ts, _hash, purchase, amount = clicks[i]
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
        if not insert(self.exposures, row, 1):
            return None, Applied.duplicate
        pid, cid, arm = fact.promotion_id, fact.campaign_id, fact.arm
        squared = revenue * revenue
        x_hash = fact.event_hash
        delta = Delta(pid, cid, arm, fact.ts, newest, 1, visited, converted, revenue, squared, x_hash)
        self._settle(fact.ts, config)
        return delta, Applied.applied

    def apply_click(self, row: ClickRow, config: AttributionConfig) -> list[Delta]:
        """Attribute a click to every open exposure whose window holds it; deltas oldest exposure first."""
        ts, kind, amount, event_hash = row[0], row[1], row[2], row[-1]
        if self._refused(ts, config):
            return []
        purchase = int(kind == PURCHASE)
        if not insert(self.clicks, (ts, event_hash, purchase, amount), 1):
            return []
        deltas: list[Delta] = []
        exposures = self.exposures
        i = bisect_right(exposures, ts, key=row_ts) - 1
        while i >= 0 and exposures[i][0] > ts - config.window_s:
            x_ts, x_hash, pid, cid, treated, visited, converted, revenue, x = exposures[i]
            d_visit = 1 - visited
            if d_visit or purchase:
                new_revenue = revenue + amount if purchase else revenue
                exposures[i] = (x_ts, x_hash, pid, cid, treated, 1, converted | purchase, new_revenue, x)
                arm = Arm.treatment if treated else Arm.holdout
                d_sq = new_revenue * new_revenue - revenue * revenue
                d_rev = amount if purchase else 0.0
                d_conv = (1 - converted) if purchase else 0
                deltas.append(Delta(pid, cid, arm, x_ts, ts, 0, d_visit, d_conv, d_rev, d_sq, x_hash, x=x))
            i -= 1
        deltas.reverse()
        self._settle(ts, config)
        return deltas
