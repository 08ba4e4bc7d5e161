"""The working-state `assemble_working` against the pure reference `assemble`: equal field for field.

Random logs (tests/batching/scenarios.py) cover late, out-of-order and duplicate events (replayed
offsets and re-sent event ids), the row caps and the horizon, several partitions, crashes between the
table writes (outboxes resent), covariate stamps and outbox blocks, profiles, version 1 and EMPTY values;
the simulated world covers realistic batches with state carried over.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.batching.assemble import Assembly, assemble
from stream.batching.bench_state import user_events
from stream.batching.partials import Partial, partial_key
from stream.batching.users import EMPTY, UserConfig, UserValue
from stream.batching.working import assemble_working
from tests.batching.scenarios import CONFIG, Batch, play

pytestmark = pytest.mark.unit


def _json(asm: Assembly) -> bytes:
    users = {uid: [part, value.to_json()] for uid, (part, value) in asm.users.items()}
    partials = {key: p.to_json() for key, p in asm.partials.items()}
    return orjson.dumps([users, partials])


def assert_same(batch: Batch, config: UserConfig = CONFIG) -> Assembly:
    def run(fn: Callable[..., Assembly]) -> Assembly:
        user = lambda u: batch.users.get(u, EMPTY)  # noqa: E731
        return fn(batch.items, user, batch.partials.get, config, rankable=batch.rankable)

    want, got = run(assemble), run(assemble_working)
    assert got == want
    # Beyond ==: the same insertion orders, and the same JSON (no 1 where the reference has 1.0).
    for name in ("users", "partials", "rankings", "outcomes"):
        assert list(getattr(got, name)) == list(getattr(want, name)), name
    assert _json(got) == _json(want)
    return want


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_equals_the_reference_on_random_logs(seed: int) -> None:
    play(random.Random(seed), assert_same)


def test_the_random_logs_reach_every_path() -> None:
    seen: Counter[str] = Counter()

    def step(batch: Batch) -> Assembly:
        asm = assert_same(batch)
        seen.update(outcome for (_, outcome), n in asm.outcomes.items() if n)
        seen["partitions > 1"] += len({r.partition for r, _ in batch.items}) > 1
        seen["resent outbox"] += _resends(batch)
        seen["ranking"] += bool(asm.rankings)
        seen["duplicate event id"] += asm.outcomes[("clicks", "duplicate")] + asm.outcomes[
            ("exposures", "duplicate")
        ] > _replays(batch)
        for _, value in asm.users.values():
            f, a = value.features, value.attribution
            seen["click cap or horizon"] += f.dropped_click_ts is not None
            seen["attribution floor"] += a.floor_ts is not None
            seen["stamped"] += any(row[8] for row in a.exposures)
            seen["outbox cov"] += value.outbox is not None and any(d.cov for d in value.outbox.deltas)
            seen["version 1 offsets"] += any("/" not in k for k in value.offsets)
        return asm

    for seed in range(100):
        play(random.Random(seed), step)
    paths = (
        "ok", "late", "duplicate", "duplicate event id", "partitions > 1", "resent outbox", "ranking",
        "click cap or horizon", "attribution floor", "stamped", "outbox cov", "version 1 offsets",
    )  # fmt: skip
    assert all(seen[path] >= 5 for path in paths), seen


def _replays(batch: Batch) -> int:
    """Clicks and exposures of the batch at or below their user's stored offset."""
    return sum(
        r.topic != "profiles" and batch.users.get(e.user_id, EMPTY).replayed(r.topic, r.partition, r.offset)  # type: ignore[union-attr]
        for r, e in batch.items
    )


def _resends(batch: Batch) -> bool:
    """Whether the batch counts a user's stored outbox again: the partials miss some of its deltas."""
    first: dict[str, int] = {}
    for record, event in batch.items:
        first.setdefault(event.user_id, record.partition)  # type: ignore[union-attr]
    for uid, part in first.items():
        outbox = batch.users.get(uid, EMPTY).outbox
        for d in () if outbox is None else outbox.deltas:
            p = batch.partials.get(partial_key(d.promotion_id, part))
            if p is None or not p.covers(outbox.position):  # type: ignore[union-attr]
                return True
    return False


def test_equals_the_reference_on_the_simulated_world() -> None:
    events = user_events(users=300, days=1.0)
    users: dict[str, UserValue] = {}
    partials: dict[str, Partial] = {}
    for i in range(0, len(events), 250):
        asm = assert_same(Batch(events[i : i + 250], users, partials, rankable=True), UserConfig())
        users.update((uid, value) for uid, (_, value) in asm.users.items())
        partials.update(asm.partials)
    assert len(users) == 300
