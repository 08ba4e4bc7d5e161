"""Random input for the working-state oracle: a few users' events on a few partitions, consumed in batches
with crashes between the table writes, replays in other interleavings, and the agent's later edits of
the stored values (covariate stamps, outbox covariate blocks, version 1 offsets).

Times are whole seconds over a small range, so equal timestamps, late and out-of-order events, the caps
of the small `CONFIG` and the horizon (after a jump of a day) all happen within a few dozen events.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from stream.batching.assemble import Assembly
from stream.batching.outbox import Outbox, aggregate
from stream.batching.partials import Partial
from stream.batching.records import Record
from stream.batching.users import EMPTY, UserConfig, UserValue, stamp
from stream.effects.aggregate import COV_WIDTH
from stream.effects.attribution import AttributionConfig, Delta
from stream.events.gate import Event
from stream.features.state import FeatureConfig
from stream.scoring.signature import OUTCOMES
from tests.features.builders import click, exposure, profile

CONFIG = UserConfig(
    FeatureConfig(allowed_lateness_s=30.0, max_events=5, max_exposures=3),
    AttributionConfig(window_s=60.0, allowed_lateness_s=30.0, max_exposures=3, max_clicks=4),
    ranking_interval_s=20.0,
)
KINDS = ("view", "click", "add_to_cart", "purchase", "visit")
Item = tuple[Record, Event]


@dataclass
class Batch:
    items: list[Item]
    users: dict[str, UserValue]
    partials: dict[str, Partial]
    rankable: bool


def _event(rng: random.Random, uid: str, t: float, earlier: list[tuple[str, Event]]) -> tuple[str, Event]:
    roll = rng.random()
    if roll < 0.06 and earlier:  # the same event again at a new offset: a duplicate by event hash
        return rng.choice(earlier)
    if roll < 0.62:
        kind = rng.choice(KINDS)
        fields = {
            "session_id": f"{uid}-s{rng.randrange(3)}",
            "category": rng.choice(("shoes", "books", None)),
            "price": float(rng.choice((0, 1.5, 10, 99.99))),
            "quantity": rng.randint(1, 3),
        }
        return "clicks", click(uid, t, kind, **fields)
    if roll < 0.9:
        arm = rng.choice(("treatment", "holdout"))
        return "exposures", exposure(uid, t, promo=rng.choice(("p1", "p2", "p3")), arm=arm)
    return "profiles", profile(uid, t, tenure_days=rng.randrange(400), interests=rng.choice(([], ["shoes"])))


def _log(rng: random.Random) -> dict[tuple[str, int], list[Item]]:
    """Per (topic, partition), its records in offset order."""
    users = [f"u{i}" for i in range(rng.randint(1, 5))]
    home = {u: rng.randrange(3) for u in users}
    queues: dict[tuple[str, int], list[Item]] = {}
    earlier: list[tuple[str, Event]] = []
    clock = 1000.0
    for _ in range(rng.randint(1, 70)):
        clock += rng.choice((0, 0, 1, 2, 5, 10, 40))
        if rng.random() < 0.04:  # past the horizon, or onto it: rows exactly at the cutoff stay
            clock += rng.choice((CONFIG.features.horizon_s, 90_000))
        uid = rng.choice(users)
        # Now and then a user's events come from another partition (the topic gained partitions).
        part = home[uid] if rng.random() < 0.9 else rng.randrange(3)
        topic, event = _event(rng, uid, clock - rng.choice((0, 0, 0, 3, 20, 45, 100)), earlier)
        earlier.append((topic, event))
        queue = queues.setdefault((topic, part), [])
        queue.append((Record(topic, part, len(queue), b"k", b"v", 0.0), event))
    return queues


def _edit(rng: random.Random, value: UserValue) -> UserValue:
    """What the agent does to stored values besides assembling them, and old stored formats."""
    roll = rng.random()
    if roll < 0.3 and value.attribution.exposures:
        row = rng.choice(value.attribution.exposures)
        return stamp(value, [(row[1], tuple(rng.random() for _ in OUTCOMES))])
    if roll < 0.6 and value.outbox is not None:
        d = rng.choice(value.outbox.deltas)
        block = tuple(rng.random() for _ in range(COV_WIDTH))
        extra = Delta(d.promotion_id, d.campaign_id, d.arm, d.exposure_ts, d.ts, cov=block)
        return replace(value, outbox=Outbox(value.outbox.position, aggregate([*value.outbox.deltas, extra])))
    if roll < 0.7:
        return replace(value, offsets={k.split("/")[0]: v for k, v in value.offsets.items()})
    return value


def play(rng: random.Random, step: Callable[[Batch], Assembly]) -> int:
    """Consume a random log in batches; `step` assembles each. Its users and partials, or part of them,
    are written to the tables as after a crash at a random point; an unacknowledged batch is read again,
    in another interleaving of its topic partitions. Returns the number of batches."""
    queues = _log(rng)
    committed = dict.fromkeys(queues, 0)
    users: dict[str, UserValue] = {}
    partials: dict[str, Partial] = {}
    for attempt in range(60):
        read = dict(committed)
        items: list[Item] = []
        size = rng.randint(1, 16)
        while len(items) < size and (ready := [tp for tp, q in queues.items() if read[tp] < len(q)]):
            tp = rng.choice(ready)
            items.append(queues[tp][read[tp]])
            read[tp] += 1
        if not items:
            return attempt
        asm = step(Batch(items, dict(users), dict(partials), rng.random() < 0.8))
        fate = rng.random() if attempt < 50 else 0.0
        if fate < 0.95:  # the user values are written (else a crash before anything)
            users.update((uid, value) for uid, (_, value) in asm.users.items())
        if fate < 0.85:  # the partials too (else a crash between the two)
            partials.update(asm.partials)
        if fate < 0.7:  # and the input acknowledged (else it is read again)
            committed = read
        if users and rng.random() < 0.6:
            uid = rng.choice(sorted(users))
            users[uid] = _edit(rng, users[uid])
        if rng.random() < 0.03:  # a stored value that is EMPTY
            users[f"u{rng.randrange(5)}"] = EMPTY
    return 60
