"""A user's feature state in a mutable form, for the batch that touches it: the same updates as
`stream.features.state`, applied in place.

`stream.features.state` rebuilds the row tuples and the frozen state for every event; here the rows are
lists that take an insert and a front trim in place, and the state is frozen once, at the end of the
batch. Every rule (lateness, duplicates by event hash among rows of equal ts, the caps, the horizon, the
newest dropped click time) is the reference's, step for step, so the frozen state equals the one the
reference gives after the same events (tests/batching/test_working.py).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import itemgetter
from typing import Any

from stream.features.state import Applied, ClickRow, ExposureRow, FeatureConfig, UserState

row_ts = itemgetter(0)
"""The bisect key: the reference's is float(row[0]), the same order for the floats the rows hold."""


def insert(rows: list[Any], row: tuple[Any, ...], same: int) -> bool:
    """Insert after the rows of equal ts; False, leaving `rows` as they are, when a row of equal ts has
    the same `row[same]` (the event hash) already."""
    ts = row[0]
    at = bisect_right(rows, ts, key=row_ts)
    j = at
    while j > 0 and rows[j - 1][0] == ts:
        if rows[j - 1][same] == row[same]:
            return False
        j -= 1
    rows.insert(at, row)
    return True


def trim(rows: list[Any], cap: int, cutoff: float) -> Any:
    """`state._trim` in place: keep at most `cap` rows at or after `cutoff`; the newest dropped ts."""
    n = len(rows)
    if n <= cap and (n == 0 or rows[0][0] >= cutoff):
        return None
    start = max(n - cap, bisect_left(rows, cutoff, key=row_ts))
    if start <= 0:
        return None
    dropped = rows[start - 1][0]
    del rows[:start]
    return dropped


class WorkingFeatures:
    __slots__ = ("state", "changed", "clicks", "exposures", "max_ts", "dropped_click_ts")

    def __init__(self, state: UserState) -> None:
        self.state = state
        self.changed = False
        self.clicks: list[ClickRow] = list(state.clicks)
        self.exposures: list[ExposureRow] = list(state.exposures)
        self.max_ts = state.max_ts
        self.dropped_click_ts = state.dropped_click_ts

    def freeze(self) -> UserState:
        if not self.changed:  # late and duplicate events change nothing: the state as it came
            return self.state
        return UserState(tuple(self.clicks), tuple(self.exposures), self.max_ts, self.dropped_click_ts)

    def _late(self, ts: float, config: FeatureConfig) -> bool:
        return self.max_ts is not None and ts < self.max_ts - config.allowed_lateness_s

    def _evict(self, ts: float, config: FeatureConfig) -> None:
        """`state._newer` and `state.evict` after an insert."""
        self.changed = True
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
        cutoff = self.max_ts - config.horizon_s
        dropped = trim(self.clicks, config.max_events, cutoff)
        trim(self.exposures, config.max_exposures, cutoff)
        if dropped is not None and (self.dropped_click_ts is None or not self.dropped_click_ts > dropped):
            self.dropped_click_ts = dropped

    def apply_click(self, row: ClickRow, config: FeatureConfig) -> Applied:
        if self._late(row[0], config):
            return Applied.late
        if not insert(self.clicks, row, 5):
            return Applied.duplicate
        self._evict(row[0], config)
        return Applied.applied

    def apply_exposure(self, row: ExposureRow, config: FeatureConfig) -> Applied:
        if self._late(row[0], config):
            return Applied.late
        if not insert(self.exposures, row, 2):
            return Applied.duplicate
        self._evict(row[0], config)
        return Applied.applied
