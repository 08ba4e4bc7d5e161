"""One batch of user events (clicks, exposures, profiles) → updated table values and the work to score.

Events are applied in input order through the pure updates of `stream.batching.users`; each realised-
effect delta goes to the partial of its promotion and the event's partition. Every valid exposure is
scored, a replayed one too (its prediction may not have been published before the crash: predictions
are keyed by event_id, so a duplicate is harmless) — but a replay changes no state and no totals.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from stream.batching.partials import Partial, partial_key
from stream.batching.records import Record
from stream.batching.users import UserConfig, UserValue, apply_click, apply_exposure, apply_profile
from stream.effects.attribution import Delta
from stream.events.gate import Event
from stream.events.models import ClickEvent, ExposureEvent, UserProfileEvent
from stream.features.state import Applied

OUTCOME = {Applied.applied: "ok", Applied.late: "late", Applied.duplicate: "duplicate"}


@dataclass(frozen=True, slots=True)
class ExposureItem:
    record: Record
    event: ExposureEvent


@dataclass(frozen=True, slots=True)
class RankItem:
    record: Record
    user_id: str
    session_id: str
    ts: float


@dataclass
class Assembly:
    users: dict[str, tuple[int, UserValue]] = field(default_factory=dict)
    """user_id → (partition, value after the batch), for the users the batch changed."""
    partials: dict[str, Partial] = field(default_factory=dict)
    exposures: list[ExposureItem] = field(default_factory=list)
    rankings: dict[str, RankItem] = field(default_factory=dict)
    """At most one per user: the latest click of the batch that called for one."""
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(logical topic, ok | late | duplicate) → events."""


def assemble(
    events: Sequence[tuple[Record, Event]],
    user: Callable[[str], UserValue],
    partial: Callable[[str], Partial | None],
    config: UserConfig,
    *,
    rankable: bool = True,
) -> Assembly:
    """`user` / `partial` read the values as of the previous batch; events must not be promotions."""
    out = Assembly()
    for record, event in events:
        uid: str = event.user_id  # type: ignore[union-attr]
        value = out.users[uid][1] if uid in out.users else user(uid)
        if isinstance(event, ExposureEvent):
            out.exposures.append(ExposureItem(record, event))
        if value.replayed(record.topic, record.offset):
            out.outcomes[record.topic, "duplicate"] += 1
            continue
        deltas: list[Delta] = []
        if isinstance(event, ClickEvent):
            value, applied, deltas, rank = apply_click(
                value, record.topic, record.offset, event, config, rankable=rankable
            )
            if rank:
                out.rankings[uid] = RankItem(record, uid, event.session_id, event.ts.timestamp())
        elif isinstance(event, ExposureEvent):
            value, applied, delta = apply_exposure(value, record.topic, record.offset, event, config)
            deltas = [] if delta is None else [delta]
        elif isinstance(event, UserProfileEvent):
            value, applied = apply_profile(value, record.topic, record.offset, event)
        else:
            raise TypeError(f"{type(event).__name__} is not a user event")
        out.users[uid] = record.partition, value
        out.outcomes[record.topic, OUTCOME[applied]] += 1
        _count(out, record, deltas, partial)
    return out


def _count(
    out: Assembly, record: Record, deltas: list[Delta], partial: Callable[[str], Partial | None]
) -> None:
    # All deltas of one event for one promotion go in together: the partial's mark then covers the event.
    by_promotion: defaultdict[str, list[Delta]] = defaultdict(list)
    for d in deltas:
        by_promotion[d.promotion_id].append(d)
    for pid, ds in by_promotion.items():
        key = partial_key(pid, record.partition)
        current = out.partials.get(key) or partial(key) or Partial(pid, ds[0].campaign_id, record.partition)
        out.partials[key] = current.add_deltas(record.topic, record.offset, ds)
