"""The commit ledger (stream/batching/commits.py), the write fence (fence.py) and the intake (intake.py)."""

from __future__ import annotations

import asyncio

import pytest
from faust.types import TP as KafkaTP

from stream.batching.commits import Commits
from stream.batching.fence import Fence
from stream.batching.intake import Intake

pytestmark = pytest.mark.unit

A, B = ("exposures", 0), ("clicks", 0)


def test_offsets_commit_up_to_the_first_unsettled_batch() -> None:
    commits = Commits()
    first, _ = commits.take([(A, 0), (A, 1), (B, 5)])
    second, _ = commits.take([(A, 2), (B, 6)])
    assert commits.due() == {A: 0, B: 5}
    commits.settle(first)
    assert commits.due() == {A: 2, B: 6}
    commits.committed(commits.due())
    assert commits.due() == {}
    commits.settle(second)
    assert commits.due() == {A: 3, B: 7}


def test_a_held_record_keeps_its_partition_uncommitted_until_released() -> None:
    commits = Commits()
    first, _ = commits.take([(A, 0), (A, 1), (A, 2), (B, 0)])
    commits.hold(A, 1)
    commits.settle(first)
    assert commits.due() == {A: 1, B: 1}
    second, _ = commits.take([(A, 3)])
    commits.release(A, 1)
    commits.settle(second)
    assert commits.due() == {A: 4, B: 1}


def test_copies_are_left_out_and_batches_settle_in_order() -> None:
    commits = Commits()
    first, fresh = commits.take([(A, 4), (A, 5)])
    second, again = commits.take([(A, 5), (A, 6)])
    assert fresh == [True, True] and again == [False, True]
    with pytest.raises(ValueError, match="out of order"):
        commits.settle(second)
    commits.settle(first)
    commits.settle(second)
    assert commits.due() == {A: 7}
    commits.reset()
    assert commits.due() == {} and len(commits) == 0


def test_a_revoke_or_a_stall_fences_the_batches_taken_before() -> None:
    now = [0.0]
    fence = Fence(stall_s=7.0, clock=lambda: now[0])
    assert fence.allows(0)  # before the first tick nothing counts as a stall
    fence.tick()
    fence.revoke()
    assert not fence.allows(0) and fence.allows(1)
    now[0] = 1.0
    assert not fence.tick()
    now[0] = 9.5  # SIGSTOP for 8.5 s: a write right after the resume, before any tick, is refused
    assert not fence.allows(1)
    assert fence.tick()  # asks once for a rejoin
    assert not fence.tick() and not fence.allows(1)
    fence.revoke()  # the rejoin's revoke
    assert fence.allows(2)


async def test_the_intake_takes_batches_and_holds_partitions_back_while_full() -> None:
    held: list[set[KafkaTP]] = []
    intake = Intake(limit=4, hold=held.append)
    p0, p1 = KafkaTP("exposures", 0), KafkaTP("exposures", 1)
    intake.put(p0, [1, 2], 0)
    assert len(intake) == 0  # closed until the first assignment
    intake.reopen()
    intake.put(p0, [1, 2, 3], 7)
    intake.put(p1, [4, 5], 7)
    assert held == [{p0, p1}]
    assert await intake.take(4, within=1.0) == [(p0, [1, 2, 3], 7), (p1, [4], 7)]
    assert held == [{p0, p1}, set()]
    assert await intake.take(4, within=0.01) == [(p1, [5], 7)]  # a partial batch after `within`
    task = asyncio.ensure_future(intake.take(4, within=0.01))
    await asyncio.sleep(0.02)
    assert not task.done()  # nothing waiting: it waits for input
    intake.put(p1, [6], 7)
    assert await task == [(p1, [6], 7)]
    intake.put(p0, [7], 7)
    intake.close()
    intake.put(p0, [8], 8)
    assert len(intake) == 0
