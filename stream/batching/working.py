"""`assemble` on mutable per-batch working state: the same `Assembly` for any input, for less per event.

The reference (stream/batching/assemble.py) stays the specification: pure updates that rebuild a
user's frozen value, its row tuples and the partials for every event. Here a user's value is thawed into
a `WorkingUser` at its first event in the batch, updated in place, and frozen once at the end; the deltas
for each partial are collected in input order and added in one `Partial.add_deltas` per partial (one
batch has one position per partition, so one call with the concatenated deltas is the same sums in the
same order as one call per event). Every other step, and every dict's insertion order, is the
reference's; tests/batching/test_working.py holds the two equal field for field.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from stream.batching.assemble import OUTCOME, Assembly, ExposureItem, RankItem
from stream.batching.outbox import Outbox, aggregate, positions
from stream.batching.partials import Partial, partial_key
from stream.batching.records import Record
from stream.batching.users import UserConfig, UserValue, offset_key
from stream.batching.working_user import WorkingUser
from stream.effects.attribution import Delta
from stream.events.gate import AnyClick, AnyExposure, AnyProfile, Event

_Pending = dict[str, tuple[int, Partial, list[Delta]]]
"""partial key → (its partition, the partial as of the previous batch or a new one, the batch's deltas
for it)."""


def assemble_working(
    events: Sequence[tuple[Record, Event]],
    user: Callable[[str], UserValue],
    partial: Callable[[str], Partial | None],
    config: UserConfig,
    *,
    rankable: bool = True,
) -> Assembly:
    """`stream.batching.assemble.assemble`, same arguments, same result."""
    out = Assembly()
    batch_at = positions(record for record, _ in events)
    work: dict[str, WorkingUser] = {}
    changed: dict[str, WorkingUser] = {}
    """The users in the order the reference first writes them to `out.users`."""
    pending: _Pending = {}
    outcomes: dict[tuple[str, str], int] = {}
    keys: dict[tuple[str, int], str] = {}
    """(topic, partition) → its `offset_key`: formatted once per batch rather than once per event."""
    for record, event in events:
        uid: str = event.user_id  # type: ignore[union-attr]
        topic, part, offset = record.topic, record.partition, record.offset
        w = work.get(uid)
        if w is None:
            value = user(uid)
            w = work[uid] = WorkingUser(value, part)
            w.added = _resend(value, part, partial, pending)
            if w.added:
                changed[uid] = w
        if isinstance(event, AnyExposure):
            out.exposures.append(ExposureItem(record, event))
        key = keys.get((topic, part))
        if key is None:
            key = keys[topic, part] = offset_key(topic, part)
        if w.replayed(topic, key, offset):
            name = topic, "duplicate"
            outcomes[name] = outcomes.get(name, 0) + 1
            continue
        if isinstance(event, AnyClick):
            applied, deltas, ranked_at = w.apply_click(event, config, rankable)
            if ranked_at is not None:
                out.rankings[uid] = RankItem(record, uid, event.session_id, ranked_at)
        elif isinstance(event, AnyExposure):
            applied, delta = w.apply_exposure(event, config)
            deltas = [] if delta is None else [delta]
        elif isinstance(event, AnyProfile):
            applied, deltas = w.apply_profile(event), []
        else:
            raise TypeError(f"{type(event).__name__} is not a user event")
        w.move(topic, key, offset)
        w.partition = part
        if uid not in changed:
            changed[uid] = w
        name = topic, OUTCOME[applied]
        outcomes[name] = outcomes.get(name, 0) + 1
        if deltas:
            w.added += deltas
            out.changes += [(uid, part, d) for d in deltas]
            _collect(pending, part, deltas, partial)
    out.outcomes = Counter(outcomes)
    for uid, w in changed.items():
        outbox = Outbox(batch_at[w.partition], aggregate(w.added)) if w.added else None
        out.users[uid] = w.partition, w.freeze(outbox)
    for key, (part, base, deltas) in pending.items():
        out.partials[key] = base.add_deltas(batch_at[part], deltas)
    return out


def _resend(
    value: UserValue, partition: int, partial: Callable[[str], Partial | None], pending: _Pending
) -> list[Delta]:
    """`assemble._resend`: the outbox deltas the partials as of the previous batch do not cover, counted
    again in this batch."""
    if value.outbox is None:
        return []
    at = value.outbox.position
    missing = [
        d
        for d in value.outbox.deltas
        if (p := partial(partial_key(d.promotion_id, partition))) is None or not p.covers(at)
    ]
    _collect(pending, partition, missing, partial)
    return missing


def _collect(
    pending: _Pending, partition: int, deltas: list[Delta], partial: Callable[[str], Partial | None]
) -> None:
    for d in deltas:
        key = partial_key(d.promotion_id, partition)
        entry = pending.get(key)
        if entry is None:
            base = partial(key) or Partial(d.promotion_id, d.campaign_id, partition)
            entry = pending[key] = (partition, base, [])
        entry[2].append(d)
