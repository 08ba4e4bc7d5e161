"""A user value in a mutable form for the batch that touches it: `stream.batching.users`' updates in place.

Thawed at the user's first event in the batch, updated by each of its events, frozen back into a
`UserValue` at the end of the batch (stream/batching/working.py), so a user's tuples and frozen values
are rebuilt once per batch instead of once per event.
"""

from __future__ import annotations

from stream.batching.outbox import Outbox
from stream.batching.users import UserConfig, UserValue
from stream.effects.attribution import Delta, ExposureFact
from stream.effects.working import WorkingAttribution
from stream.events.models import ClickEvent, ExposureEvent, UserProfileEvent
from stream.features import state as features
from stream.features.profile import profile_interests, profile_vector
from stream.features.state import Applied
from stream.features.working import WorkingFeatures


class WorkingUser:
    __slots__ = (
        "features", "attribution", "profile", "interests", "profile_ts", "offsets", "session", "ranked_ts",
        "partition", "added",
    )  # fmt: skip

    def __init__(self, value: UserValue, partition: int) -> None:
        self.features = WorkingFeatures(value.features)
        self.attribution = WorkingAttribution(value.attribution)
        self.profile = value.profile
        self.interests = value.interests
        self.profile_ts = value.profile_ts
        self.offsets = dict(value.offsets)
        self.session = value.session
        self.ranked_ts = value.ranked_ts
        self.partition = partition
        """The partition of the user's latest event that changed the value (the reference's choice)."""
        self.added: list[Delta] = []
        """The deltas the batch adds to partials for the user: its new outbox."""

    def freeze(self, outbox: Outbox | None) -> UserValue:
        return UserValue(
            self.features.freeze(),
            self.attribution.freeze(),
            self.profile,
            self.interests,
            self.profile_ts,
            self.offsets,
            self.session,
            self.ranked_ts,
            outbox,
        )

    def replayed(self, topic: str, key: str, offset: int) -> bool:
        """`UserValue.replayed`; `key` is `offset_key(topic, partition)`."""
        offsets = self.offsets
        return offset <= offsets.get(key, offsets.get(topic, -1))

    def move(self, topic: str, key: str, offset: int) -> None:
        """`users._at`: the offset of the event's topic partition, superseding a version 1 offset."""
        offsets = self.offsets
        if topic in offsets:
            del offsets[topic]
        offsets[key] = offset

    def apply_click(
        self, click: ClickEvent, config: UserConfig, rankable: bool
    ) -> tuple[Applied, list[Delta], float | None]:
        """`users.apply_click` without the offset: (feature outcome, deltas, the click's event time when
        promotions are to be ranked for the user now, else None)."""
        row = features.click_row(click)
        applied = self.features.apply_click(row, config.features)
        deltas = self.attribution.apply_click(row, config.attribution)
        ts, session = row[0], row[4]
        ranked_ts = self.ranked_ts
        rank = (
            rankable
            and applied is Applied.applied
            and (
                ranked_ts is None
                or (
                    ts >= ranked_ts
                    and (session != self.session or ts - ranked_ts >= config.ranking_interval_s)
                )
            )
        )
        if not rank:
            return applied, deltas, None
        self.session, self.ranked_ts = session, ts
        return applied, deltas, ts

    def apply_exposure(self, exposure: ExposureEvent, config: UserConfig) -> tuple[Applied, Delta | None]:
        row = features.exposure_row(exposure)
        applied = self.features.apply_exposure(row, config.features)
        # row[2] is the exposure's event hash, as `attribution.exposure_fact` computes it.
        fact = ExposureFact(row[0], row[2], exposure.promotion_id, exposure.campaign_id, exposure.arm)
        delta, _ = self.attribution.apply_exposure(fact, config.attribution)
        return applied, delta

    def apply_profile(self, profile: UserProfileEvent) -> Applied:
        ts = profile.ts.timestamp()
        if self.profile_ts is not None and ts < self.profile_ts:
            return Applied.late
        # tolist(): the float32 columns as Python floats, as float() of each gives them, in one call.
        self.profile = tuple(profile_vector(profile).tolist())
        self.interests = profile_interests(profile)
        self.profile_ts = ts
        return Applied.applied
