"""The per-user table value and the pure updates one event makes to it.

One value per user holds everything keyed by the user, so one changelog record updates it atomically:
windowed features, attribution state, the latest profile, the ranking marker, the offset of the
last event applied from each input topic partition, and the outbox of its latest batch
(stream/batching/outbox.py). Events of a user arrive from one partition per topic in offset order, so an
event at or below its partition's recorded offset is a replay (after a crash or a rebalance) and changes
no state: features and realised totals are never counted twice. Offsets are kept per (topic, partition):
an offset means nothing in another partition, whose events (after the topic gained partitions) must not
be taken for replays (events on the wrong partition never get here: stream/batching/contract.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from stream.batching.outbox import Outbox
from stream.effects import attribution
from stream.effects.attribution import AttributionConfig, AttributionState, Delta, exposure_fact
from stream.events.models import ClickEvent, ExposureEvent, UserProfileEvent
from stream.features import state as features
from stream.features.profile import profile_interests, profile_vector
from stream.features.state import Applied, FeatureConfig, UserState, stable_hash
from stream.settings import Settings

VALUE_VERSION = 2
"""2: offsets keyed by topic and partition. A version 1 value's offsets, keyed by topic alone, still
count for the partition of the user's next event of that topic, the partition they came from."""
NO_PROFILE = profile_vector(None)


@dataclass(frozen=True, slots=True)
class UserConfig:
    features: FeatureConfig = FeatureConfig()
    attribution: AttributionConfig = AttributionConfig()
    ranking_interval_s: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> UserConfig:
        return cls(
            FeatureConfig.from_settings(settings),
            AttributionConfig.from_settings(settings),
            float(settings.windows.ranking_interval_s),
        )


@dataclass(frozen=True, slots=True)
class UserValue:
    features: UserState = features.EMPTY
    attribution: AttributionState = attribution.EMPTY
    profile: tuple[float, ...] | None = None
    interests: frozenset[int] = frozenset()
    profile_ts: float | None = None
    offsets: Mapping[str, int] = field(default_factory=dict)
    """`offset_key(topic, partition)` → the offset of the last event applied from it."""
    session: int | None = None
    """Hash of the session the user was last ranked in, and when (event time)."""
    ranked_ts: float | None = None
    outbox: Outbox | None = None

    def profile_vector(self) -> np.ndarray:
        return NO_PROFILE if self.profile is None else np.asarray(self.profile, dtype=np.float32)

    def replayed(self, topic: str, partition: int, offset: int) -> bool:
        last = self.offsets.get(offset_key(topic, partition), self.offsets.get(topic, -1))
        return offset <= last

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VALUE_VERSION,
            "f": self.features.to_json(),
            "a": self.attribution.to_json(),
            "p": None if self.profile is None else list(self.profile),
            "i": sorted(self.interests),
            "pts": self.profile_ts,
            "o": dict(self.offsets),
            "s": self.session,
            "rts": self.ranked_ts,
            "ob": None if self.outbox is None else self.outbox.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UserValue:
        if data.get("v") not in (1, VALUE_VERSION):
            raise ValueError(f"unsupported user value version {data.get('v')!r}")
        return cls(
            UserState.from_json(data["f"]),
            AttributionState.from_json(data["a"]),
            None if data["p"] is None else tuple(data["p"]),
            frozenset(data["i"]),
            data["pts"],
            dict(data["o"]),
            data["s"],
            data["rts"],
            None if data.get("ob") is None else Outbox.from_json(data["ob"]),
        )


EMPTY = UserValue()


def offset_key(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"


def _at(value: UserValue, topic: str, partition: int, offset: int, **changes: Any) -> UserValue:
    offsets = {k: v for k, v in value.offsets.items() if k != topic}  # a version 1 offset, now superseded
    offsets[offset_key(topic, partition)] = offset
    return replace(value, offsets=offsets, **changes)


def apply_click(
    value: UserValue,
    topic: str,
    partition: int,
    offset: int,
    click: ClickEvent,
    config: UserConfig,
    *,
    rankable: bool = True,
) -> tuple[UserValue, Applied, list[Delta], bool]:
    """(value, feature outcome, realised-effect deltas, whether to rank promotions for the user now).

    A ranking is due on the first applied click of a new session, and again after `ranking_interval_s`
    of event time within one session; out-of-order clicks never trigger one.
    """
    row = features.click_row(click)
    state, applied = features.apply_click(value.features, row, config.features)
    attributed, deltas, _ = attribution.apply_click(value.attribution, row, config.attribution)
    ts, session = row[0], row[4]
    rank = rankable and applied is Applied.applied and (
        value.ranked_ts is None
        or (
            ts >= value.ranked_ts
            and (session != value.session or ts - value.ranked_ts >= config.ranking_interval_s)
        )
    )
    marker = {"session": session, "ranked_ts": ts} if rank else {}
    value = _at(value, topic, partition, offset, features=state, attribution=attributed, **marker)
    return value, applied, deltas, rank


def apply_exposure(
    value: UserValue, topic: str, partition: int, offset: int, exposure: ExposureEvent, config: UserConfig
) -> tuple[UserValue, Applied, Delta | None]:
    state, applied = features.apply_exposure(value.features, features.exposure_row(exposure), config.features)
    attributed, delta, _ = attribution.apply_exposure(
        value.attribution, exposure_fact(exposure), config.attribution
    )
    return _at(value, topic, partition, offset, features=state, attribution=attributed), applied, delta


def apply_profile(
    value: UserValue, topic: str, partition: int, offset: int, profile: UserProfileEvent
) -> tuple[UserValue, Applied]:
    """The newest profile by event time wins; an older one is late and only moves the offset."""
    ts = profile.ts.timestamp()
    if value.profile_ts is not None and ts < value.profile_ts:
        return _at(value, topic, partition, offset), Applied.late
    vector = tuple(float(x) for x in profile_vector(profile))
    return _at(
        value, topic, partition, offset, profile=vector, interests=profile_interests(profile), profile_ts=ts
    ), Applied.applied


def session_hash(session_id: str) -> int:
    return stable_hash(session_id)


def stamp(value: UserValue, stamps: Iterable[tuple[int, tuple[float, ...]]]) -> UserValue:
    """The value with its open exposures `(event hash, x)` scored as x (stream/batching/covariate.py)."""
    state = value.attribution
    for event_hash, x in stamps:
        state = attribution.stamp(state, event_hash, x)
    return replace(value, attribution=state)
