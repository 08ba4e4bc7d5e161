"""Crash recovery of realised totals: user values first, partials after, outboxes resent when missing.

The engine writes a batch's user values, then its partials, then acknowledges its input. These tests
play that order through `assemble` with crashes between any two of the steps, replay the unacknowledged
input in another interleaving of the topics and in other batches, and compare the partials with one
pass over the whole input.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import orjson
import pytest

from stream.batching.assemble import assemble
from stream.batching.outbox import Outbox, aggregate, positions
from stream.batching.partials import Partial, partial_key
from stream.batching.records import Record
from stream.batching.users import EMPTY, UserConfig, UserValue
from stream.effects.aggregate import PromotionTotals, merge
from stream.effects.attribution import Delta
from stream.events.gate import Event
from stream.events.models import Arm
from tests.features.builders import click, exposure

pytestmark = pytest.mark.unit

CONFIG = UserConfig()
Item = tuple[Record, Event]


def _item(topic: str, offset: int, event: Event, partition: int = 0) -> Item:
    return Record(topic, partition, offset, b"k", b"v", 0.0), event


class Store:
    """The tables as a worker sees them: staged values over delivered ones."""

    def __init__(self, users: dict[str, UserValue], partials: dict[str, Partial]) -> None:
        self.users, self.partials = dict(users), dict(partials)

    def batch(self, items: Sequence[Item]) -> tuple[dict[str, UserValue], dict[str, Partial]]:
        asm = assemble(items, lambda u: self.users.get(u, EMPTY), self.partials.get, CONFIG)
        users = {uid: value for uid, (_, value) in asm.users.items()}
        self.users.update(users)
        self.partials.update(asm.partials)
        return users, dict(asm.partials)


def _totals(partials: dict[str, Partial]) -> dict[str, PromotionTotals]:
    by_promotion: dict[str, list[PromotionTotals]] = {}
    for p in sorted(partials.values(), key=lambda p: p.partition):
        by_promotion.setdefault(p.promotion_id, []).append(p.totals)
    return {pid: merge(parts) for pid, parts in by_promotion.items()}


def test_a_batch_whose_partials_were_lost_is_counted_from_the_outbox() -> None:
    # The click is read before its exposure, so the exposure carries the visit; the replay reads them
    # the other way round, so recomputing would put the visit on the click — already in the user value.
    c, x = _item("clicks", 0, click("u", 20.0)), _item("exposures", 0, exposure("u", 10.0))
    store = Store({}, {})
    store.batch([c])
    users, partials = store.batch([x])
    assert users["u"].outbox == Outbox(
        {"exposures": 0}, aggregate([Delta("p1", "camp-p1", Arm.treatment, _ts(x), _ts(c), 1, 1)])
    )
    # Crash after the user values of the second batch, before its partials: the partials lack it.
    after_crash = Store(users, {})
    _, replayed = after_crash.batch([x, c])
    t = replayed[partial_key("p1", 0)].totals.treatment
    assert (t.exposures, t.visits) == (1, 1)
    # Delivered partials cover the outbox: a replay adds nothing.
    assert Store(users, partials).batch([x, c]) == ({}, {})


def _ts(item: Item) -> float:
    return item[1].ts.timestamp()  # type: ignore[union-attr]


def test_outbox_and_positions_round_trip_and_aggregate() -> None:
    d = [
        Delta("p1", "c1", Arm.treatment, 10.0, 20.0, 1, 1, 0, 2.5, 6.25),
        Delta("p1", "c1", Arm.treatment, 5.0, 30.0, 0, 0, 1, 1.5, 9.75),
        Delta("p1", "c1", Arm.holdout, 7.0, 7.0, 1),
    ]
    box = Outbox({"clicks": 4}, aggregate(d))
    assert box.deltas[0] == Delta("p1", "c1", Arm.treatment, 5.0, 30.0, 1, 1, 1, 4.0, 16.0)
    assert Outbox.from_json(orjson.loads(orjson.dumps(box.to_json()))) == box
    x = exposure("u", 1.0)
    records = [_item("clicks", 3, x)[0], _item("clicks", 9, x)[0], _item("exposures", 2, x, 1)[0]]
    assert positions(records) == {0: {"clicks": 9}, 1: {"exposures": 2}}


def _world(rng: random.Random) -> list[list[Item]]:
    """Per topic, its events in offset order: a few users on two partitions, clicks and exposures within
    the allowed lateness of each other (so no order makes one late) and within each other's windows."""
    clicks: list[Item] = []
    exposures: list[Item] = []
    for _ in range(rng.randint(4, 40)):
        user = f"u{rng.randrange(4)}"
        partition, ts = int(user[1:]) % 2, rng.uniform(0.0, 500.0)
        if rng.random() < 0.4:
            ev: Event = exposure(
                user, ts, promo=rng.choice(["p1", "p2"]), arm=rng.choice(["treatment", "holdout"])
            )
            exposures.append(_item("exposures", len(exposures), ev, partition))
        else:
            kind = rng.choice(["view", "purchase"])
            clicks.append(
                _item("clicks", len(clicks), click(user, ts, kind, price=rng.uniform(1, 99)), partition)
            )
    return [clicks, exposures]


def _interleave(rng: random.Random, topics: list[list[Item]]) -> list[Item]:
    queues = [list(t) for t in topics if t]
    out = []
    while queues:
        q = rng.choice(queues)
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    return out


def _batches(rng: random.Random, items: list[Item]) -> list[list[Item]]:
    cuts = sorted(rng.sample(range(1, len(items)), min(len(items) - 1, rng.randint(0, 6)))) if items else []
    return [items[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)], strict=True)]


@pytest.mark.parametrize("seed", range(300))
def test_totals_after_crashes_and_reordered_replays_equal_one_pass(seed: int) -> None:
    rng = random.Random(seed)
    topics = _world(rng)
    oracle = _totals(Store({}, {}).batch(_interleave(rng, topics))[1])

    delivered_users: dict[str, UserValue] = {}
    delivered_partials: dict[str, Partial] = {}
    committed = {"clicks": -1, "exposures": -1}
    for crash in range(3):
        # Unacknowledged input, in a new interleaving and new batches.
        todo = [[i for i in t if i[0].offset > committed[i[0].topic]] for t in topics]
        batches = _batches(rng, _interleave(rng, todo))
        store = Store(delivered_users, delivered_partials)
        stop = rng.randrange(len(batches) + 1) if crash < 2 else len(batches)
        for n, batch in enumerate(batches):
            users, partials = store.batch(batch)
            if n == stop:  # crash: some or all user values delivered, then maybe the partials; no ack
                if rng.random() < 0.5:
                    delivered_users.update(users)
                    if rng.random() < 0.5:
                        delivered_partials.update(partials)
                else:
                    delivered_users.update({u: v for u, v in users.items() if rng.random() < 0.5})
                break
            delivered_users.update(users)
            delivered_partials.update(partials)
            for record, _ in batch:
                committed[record.topic] = max(committed[record.topic], record.offset)
    got = _totals(delivered_partials)
    assert got.keys() == oracle.keys()
    for pid, want in oracle.items():
        for arm in (Arm.treatment, Arm.holdout):
            a, b = got[pid].arm(arm), want.arm(arm)
            assert (a.exposures, a.visits, a.conversions) == (b.exposures, b.visits, b.conversions), pid
            assert a.revenue == pytest.approx(b.revenue) and a.revenue_sq == pytest.approx(b.revenue_sq)
