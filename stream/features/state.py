"""Per-user feature state: a bounded, JSON-able aggregate and the pure functions that update it.

The state lives in a Faust table, so it is a frozen dataclass that round-trips exactly through
`to_json()` / `from_json()` (plain lists of numbers). Events are compact rows kept in event-time
order; session statistics are derived from the rows (each row carries its session hash) rather than
kept as running totals, so an out-of-order insert cannot leave them inconsistent.

Rows are retained for the longest feature window plus the allowed lateness, measured from the newest
event time the state has seen (`max_ts`), and capped at `max_events` / `max_exposures` most-recent
rows so a hot key has bounded memory. Dropping always takes the oldest rows, so one number — the
newest dropped click time — keeps recency exact after eviction. Applying an event returns
`(state, Applied)`; LATE and DUPLICATE leave the state untouched, so re-delivered input is harmless.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeVar

from stream.errors import ConfigError
from stream.events.models import ClickEvent, ExposureEvent
from stream.scoring.signature import CLICK_KINDS, DECLARATION, WINDOW_SECONDS
from stream.settings import Settings

STATE_VERSION = 1
KIND_INDEX: dict[str, int] = {k: i for i, k in enumerate(CLICK_KINDS)}
PURCHASE = KIND_INDEX["purchase"]
NO_CATEGORY = -1
LONGEST_WINDOW_S = float(max(WINDOW_SECONDS))

# (ts seconds, kind index, price * quantity, category hash or NO_CATEGORY, session hash, event hash)
ClickRow = tuple[float, int, float, int, int, int]
# (ts seconds, promotion hash, event hash)
ExposureRow = tuple[float, int, int]
R = TypeVar("R", ClickRow, ExposureRow)


def stable_hash(text: str) -> int:
    """A process-independent 32-bit id for a string (Python's hash() is salted per process)."""
    return zlib.crc32(text.encode())


class Applied(StrEnum):
    applied = "applied"
    duplicate = "duplicate"
    late = "late"


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    allowed_lateness_s: float = 600.0
    max_events: int = 256
    max_exposures: int = 64

    @property
    def horizon_s(self) -> float:
        """How far behind the newest event rows are kept: any on-time query still sees a full window."""
        return LONGEST_WINDOW_S + self.allowed_lateness_s

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureConfig:
        windows = tuple(settings.windows.feature_windows_s)
        if windows != WINDOW_SECONDS:
            raise ConfigError(
                f"feature_windows_s {windows} must equal the model signature's windows {WINDOW_SECONDS}"
            )
        if settings.profile.attributes != DECLARATION:
            # The signature's width was fixed from the environment at start-up; a per-command override
            # would make the profile columns disagree with it.
            raise ConfigError(
                "profile.attributes differ from the declaration the model signature was built with: "
                "declare them in the environment (LIFTSTREAM_PROFILE__*), not per command"
            )
        return cls(allowed_lateness_s=float(settings.windows.allowed_lateness_s))


@dataclass(frozen=True, slots=True)
class UserState:
    clicks: tuple[ClickRow, ...] = ()
    exposures: tuple[ExposureRow, ...] = ()
    # Newest event time applied (clicks and exposures); lateness and eviction are measured from it.
    max_ts: float | None = None
    # Newest click time no longer in `clicks` (recency after eviction).
    dropped_click_ts: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "clicks": [list(r) for r in self.clicks],
            "exposures": [list(r) for r in self.exposures],
            "max_ts": self.max_ts,
            "dropped_click_ts": self.dropped_click_ts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UserState:
        if data.get("v") != STATE_VERSION:
            raise ValueError(f"unsupported user state version {data.get('v')!r}")
        # Rows are taken as they come (no per-number conversion): this runs for every event of a user.
        return cls(
            clicks=tuple(map(tuple, data["clicks"])),
            exposures=tuple(map(tuple, data["exposures"])),
            max_ts=_opt_float(data["max_ts"]),
            dropped_click_ts=_opt_float(data["dropped_click_ts"]),
        )


EMPTY = UserState()


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


_recurring_hash = lru_cache(maxsize=1 << 16)(stable_hash)
"""For categories and session ids, which recur from click to click (event ids do not)."""


def click_row(click: ClickEvent) -> ClickRow:
    category = NO_CATEGORY if click.category is None else _recurring_hash(click.category)
    return (
        click.ts.timestamp(),
        KIND_INDEX[click.kind._value_],  # the enum's `value` is a Python-level property: slow per event
        float(click.price) * click.quantity,
        category,
        _recurring_hash(click.session_id),
        stable_hash(click.event_id),
    )


def exposure_row(exposure: ExposureEvent) -> ExposureRow:
    return (exposure.ts.timestamp(), stable_hash(exposure.promotion_id), stable_hash(exposure.event_id))


def _ts(row: tuple[Any, ...]) -> float:
    return float(row[0])


def _insert(rows: tuple[R, ...], row: R) -> tuple[R, ...] | None:
    """Insert after any rows with the same ts (arrival order breaks ties); None when already present."""
    ts = row[0]
    at: int = bisect_right(rows, ts, key=_ts)
    j = at
    while j > 0 and rows[j - 1][0] == ts:
        if rows[j - 1][-1] == row[-1]:
            return None
        j -= 1
    return rows[:at] + (row,) + rows[at:]


def _trim(rows: tuple[R, ...], cap: int, cutoff: float) -> tuple[tuple[R, ...], float | None]:
    """Keep at most `cap` rows at or after `cutoff`; also returns the newest dropped ts."""
    start = max(len(rows) - cap, bisect_left(rows, cutoff, key=_ts))
    if start <= 0:
        return rows, None
    return rows[start:], rows[start - 1][0]


def is_late(state: UserState, ts: float, config: FeatureConfig) -> bool:
    return state.max_ts is not None and ts < state.max_ts - config.allowed_lateness_s


def evict(state: UserState, config: FeatureConfig) -> UserState:
    """Apply the caps and drop rows before `max_ts - horizon`, which no on-time query can see."""
    if state.max_ts is None:
        return state
    cutoff = state.max_ts - config.horizon_s
    clicks, dropped = _trim(state.clicks, config.max_events, cutoff)
    exposures, _ = _trim(state.exposures, config.max_exposures, cutoff)
    if dropped is None and exposures is state.exposures:
        return state
    if dropped is None or (state.dropped_click_ts is not None and state.dropped_click_ts > dropped):
        dropped = state.dropped_click_ts
    return UserState(clicks, exposures, state.max_ts, dropped)


def _newer(ts: float, state: UserState) -> float:
    return ts if state.max_ts is None or ts > state.max_ts else state.max_ts


def apply_click(state: UserState, row: ClickRow, config: FeatureConfig) -> tuple[UserState, Applied]:
    if is_late(state, row[0], config):
        return state, Applied.late
    clicks = _insert(state.clicks, row)
    if clicks is None:
        return state, Applied.duplicate
    updated = UserState(clicks, state.exposures, _newer(row[0], state), state.dropped_click_ts)
    return evict(updated, config), Applied.applied


def apply_exposure(state: UserState, row: ExposureRow, config: FeatureConfig) -> tuple[UserState, Applied]:
    if is_late(state, row[0], config):
        return state, Applied.late
    exposures = _insert(state.exposures, row)
    if exposures is None:
        return state, Applied.duplicate
    updated = UserState(state.clicks, exposures, _newer(row[0], state), state.dropped_click_ts)
    return evict(updated, config), Applied.applied
