"""What a batch processes (stream/agents/users.py: admitted) and what the consumer fetches (stream/app.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from stream.agents.users import admitted
from stream.app import SeekGate, _SeekFirstConsumer
from stream.batching.acks import AckLedger
from stream.batching.records import Record

pytestmark = pytest.mark.unit


def _event(partition: int, offset: int, generation: int) -> Any:
    message = SimpleNamespace(topic="exposures", partition=partition, offset=offset, generation_id=generation)
    return SimpleNamespace(message=message)


def _engine(generation: int, owned: set[int]) -> Any:
    def record(e: Any) -> Record:
        m = e.message
        return Record(m.topic, m.partition, m.offset, None, None, 0.0)

    return SimpleNamespace(
        app=SimpleNamespace(consumer_generation_id=generation),
        owned_partitions=lambda: owned,
        record=record,
        ledger=AckLedger(),
    )


def test_a_message_fetched_before_a_rebalance_is_left_for_its_delivery_after_the_seek() -> None:
    # Generation 3 took offset 85 of partition 2 into the take buffer; the partition came back in
    # generation 5, whose seek to the committed offset 84 delivers 84 and then 85 again.
    engine = _engine(generation=5, owned={2})
    assert admitted(engine, [_event(2, 85, generation=3)]) == []
    again = admitted(engine, [_event(2, 84, generation=5), _event(2, 85, generation=5)])
    assert [r.offset for r in again] == [84, 85]
    engine.ledger.done(("exposures", 2), 84)
    engine.ledger.done(("exposures", 2), 85)
    assert [e.message.offset for e in engine.ledger.release()] == [84, 85]


def test_revoked_partitions_and_copies_are_left_out() -> None:
    engine = _engine(generation=1, owned={0})
    first = admitted(engine, [_event(0, 7, 1), _event(1, 3, 1)])
    assert [(r.partition, r.offset) for r in first] == [(0, 7)]
    assert admitted(engine, [_event(0, 7, 1), _event(0, 8, 1)])[0].offset == 8


def test_input_partitions_resume_only_after_the_seek_to_their_committed_offsets() -> None:
    gate = SeekGate()
    a, b, changelog = TP("exposures", 0), TP("clicks", 0), TP("users-changelog", 0)
    gate.assigned({a, b})
    assert gate.resume({changelog}) == {changelog}  # recovery reads changelogs meanwhile
    assert gate.resume({a, b}) == set()  # faust resumes the inputs before it seeks them
    assert gate.sought() == {a, b}
    assert gate.resume({a}) == {a}  # until the next assignment, resuming is immediate
    gate.assigned({a})
    assert gate.sought() == set()  # a seek during recovery resumes nothing it was not asked to
    assert gate.resume({a}) == {a}


async def test_a_fetch_asks_for_the_partitions_active_when_it_began() -> None:
    live = {TP("users-changelog", 0)}
    asked: list[set[TP]] = []

    class Thread:
        async def getmany(self, tps: set[TP], timeout: float) -> dict[TP, list[Any]]:
            live.clear()  # recovery pauses the changelog while the fetch waits in the consumer thread
            asked.append(tps)
            return {}

    consumer = object.__new__(_SeekFirstConsumer)
    consumer._thread = Thread()
    await consumer._getmany(live, 1.0)
    assert asked == [{TP("users-changelog", 0)}]  # not the emptied set, which aiokafka reads as "all"
