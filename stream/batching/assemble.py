"""One batch of user events (clicks, exposures, profiles) → updated table values and the work to score.

Events are applied in input order through the pure updates of `stream.batching.users`; each realised-
effect delta goes to the partial of its promotion and the event's partition, and to the user's outbox.
The first event of a user in the batch first adds the user's previous outbox again if the partials do
not cover it (stream/batching/outbox.py). Every valid exposure is scored, a replayed one too (its
prediction may not have been published before the crash: predictions are keyed by event_id, so a
duplicate is harmless) — but a replay changes no state and no totals.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from stream.batching.covariate import Change
from stream.batching.outbox import Outbox, Position, aggregate, positions
from stream.batching.partials import Partial, partial_key
from stream.batching.records import Record
from stream.batching.users import UserConfig, UserValue, apply_click, apply_exposure, apply_profile
from stream.effects.attribution import Delta
from stream.events.gate import AnyClick, AnyExposure, AnyProfile, Event
from stream.events.models import ExposureEvent
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
    changes: list[Change] = field(default_factory=list)
    """The outcome changes the batch's own events made, in input order (stream/batching/covariate.py)."""


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
    batch_at = positions(record for record, _ in events)
    added: dict[str, list[Delta]] = {}
    """user_id → the deltas the batch adds to partials for the user: its new outbox."""
    for record, event in events:
        uid: str = event.user_id  # type: ignore[union-attr]
        here = batch_at[record.partition]
        value = out.users[uid][1] if uid in out.users else user(uid)
        if uid not in added:
            added[uid] = _resend(out, record.partition, here, uid, value, partial)
        if isinstance(event, AnyExposure):
            out.exposures.append(ExposureItem(record, event))
        if value.replayed(record.topic, record.partition, record.offset):
            out.outcomes[record.topic, "duplicate"] += 1
            continue
        deltas: list[Delta] = []
        at = (record.topic, record.partition, record.offset)
        if isinstance(event, AnyClick):
            value, applied, deltas, rank = apply_click(value, *at, event, config, rankable=rankable)
            if rank:
                out.rankings[uid] = RankItem(record, uid, event.session_id, event.ts.timestamp())
        elif isinstance(event, AnyExposure):
            value, applied, delta = apply_exposure(value, *at, event, config)
            deltas = [] if delta is None else [delta]
        elif isinstance(event, AnyProfile):
            value, applied = apply_profile(value, *at, event)
        else:
            raise TypeError(f"{type(event).__name__} is not a user event")
        out.users[uid] = record.partition, value
        out.outcomes[record.topic, OUTCOME[applied]] += 1
        added[uid] += deltas
        out.changes += [(uid, record.partition, d) for d in deltas]
        _count(out, record.partition, here, deltas, partial)
    for uid, (part, value) in out.users.items():
        outbox = Outbox(batch_at[part], aggregate(added[uid])) if added[uid] else None
        out.users[uid] = part, replace(value, outbox=outbox)
    return out


def _resend(
    out: Assembly,
    partition: int,
    here: Position,
    uid: str,
    value: UserValue,
    partial: Callable[[str], Partial | None],
) -> list[Delta]:
    """The user's outbox deltas that the partials as of the previous batch do not cover, counted again
    in this batch (this batch's own additions may already reach past the outbox's position)."""
    if value.outbox is None:
        return []
    at = value.outbox.position
    missing = [
        d
        for d in value.outbox.deltas
        if (p := partial(partial_key(d.promotion_id, partition))) is None or not p.covers(at)
    ]
    if missing:
        out.users[uid] = partition, value
        _count(out, partition, here, missing, partial)
    return missing


def _count(
    out: Assembly,
    partition: int,
    here: Position,
    deltas: list[Delta],
    partial: Callable[[str], Partial | None],
) -> None:
    by_promotion: defaultdict[str, list[Delta]] = defaultdict(list)
    for d in deltas:
        by_promotion[d.promotion_id].append(d)
    for pid, ds in by_promotion.items():
        key = partial_key(pid, partition)
        current = out.partials.get(key) or partial(key) or Partial(pid, ds[0].campaign_id, partition)
        out.partials[key] = current.add_deltas(here, ds)
