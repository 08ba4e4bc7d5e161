"""What the engine takes of fetched chunks (Engine.records), what the consumer fetches (agents/adapter.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from stream.agents.adapter import SeekGate, _Consumer
from stream.agents.engine import Engine

pytestmark = pytest.mark.unit


def _record(partition: int, offset: int) -> Any:
    return SimpleNamespace(partition=partition, offset=offset, key=None, value=b"{}", timestamp=1000)


def _engine(generation: int, owned: set[int]) -> Any:
    engine = object.__new__(Engine)
    engine.app = SimpleNamespace(consumer_generation_id=generation)  # type: ignore[assignment]
    engine.logical = {"kafka-exposures": "exposures"}
    engine.owned_partitions = lambda: owned  # type: ignore[method-assign]
    return engine


def test_records_fetched_before_a_rebalance_or_of_a_revoked_partition_are_left_out() -> None:
    # Generation 3 fetched offset 85 of partition 2; the partition came back in generation 5, whose seek
    # to the committed offset 84 fetches 84 and then 85 again.
    engine = _engine(generation=5, owned={2})
    tp = TP("kafka-exposures", 2)
    assert engine.records([(tp, [_record(2, 85)], 3)]) == []
    again = engine.records([(tp, [_record(2, 84), _record(2, 85)], 5)])
    assert [(r.topic, r.offset, r.timestamp) for r in again] == [
        ("exposures", 84, 1.0),
        ("exposures", 85, 1.0),
    ]
    assert engine.records([(TP("kafka-exposures", 1), [_record(1, 3)], 5)]) == []


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

    consumer = object.__new__(_Consumer)
    consumer._thread = Thread()
    consumer.held_back = set()
    await consumer._getmany(live, 1.0)
    assert asked == [{TP("users-changelog", 0)}]  # not the emptied set, which aiokafka reads as "all"


async def test_partitions_held_back_are_left_out_of_the_fetch_and_none_left_means_no_fetch() -> None:
    asked: list[set[TP]] = []

    class Thread:
        async def getmany(self, tps: set[TP], timeout: float) -> dict[TP, list[Any]]:
            asked.append(tps)
            return {}

    consumer = object.__new__(_Consumer)
    consumer._thread = Thread()
    a, b = TP("exposures", 0), TP("exposures", 1)
    consumer.held_back = {a}
    await consumer._getmany({a, b}, 1.0)
    consumer.held_back = {a, b}
    assert await consumer._getmany({a, b}, 0.01) == {}
    assert asked == [{b}]
