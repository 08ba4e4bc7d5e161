from __future__ import annotations

import pytest

from stream.batching.acks import AckLedger

pytestmark = pytest.mark.unit

A, B = ("exposures", 0), ("clicks", 0)


def test_releases_each_partitions_leading_run_of_done_messages() -> None:
    ledger: AckLedger[str] = AckLedger()
    for offset in (5, 6, 7):
        ledger.track(A, offset, f"a{offset}")
    ledger.track(B, 1, "b1")
    ledger.done(A, 6)
    ledger.done(B, 1)
    assert ledger.release() == ["b1"]  # a6 waits for a5
    ledger.done(A, 5)
    assert ledger.release() == ["a5", "a6"]
    ledger.done(A, 7)
    assert ledger.release() == ["a7"]
    assert len(ledger) == 0


def test_a_held_message_holds_back_later_ones_of_its_partition_only() -> None:
    ledger: AckLedger[int] = AckLedger()
    for offset in range(4):
        ledger.track(A, offset, offset)
        ledger.track(B, offset, 10 + offset)
    for offset in range(4):
        if offset != 1:
            ledger.done(A, offset)
        ledger.done(B, offset)
    assert ledger.release() == [0, 10, 11, 12, 13]
    ledger.done(A, 1)
    assert ledger.release() == [1, 2, 3]


def test_forgotten_partitions_release_nothing_and_unknown_offsets_are_ignored() -> None:
    ledger: AckLedger[int] = AckLedger()
    ledger.track(A, 0, 0)
    ledger.track(B, 0, 1)
    ledger.forget([A])
    ledger.done(A, 0)
    ledger.done(B, 99)
    assert ledger.release() == []
    ledger.done(B, 0)
    assert ledger.release() == [1]


def test_a_message_delivered_again_is_acknowledged_with_its_first_delivery() -> None:
    ledger: AckLedger[str] = AckLedger()
    assert ledger.track(A, 3, "a3") and ledger.track(A, 4, "a4")
    ledger.done(A, 3)
    assert ledger.release() == ["a3"]
    # Faust seeks to the committed offset (3) and delivers 3 and 4 again.
    assert not ledger.track(A, 3, "a3 again") and not ledger.track(A, 4, "a4 again")
    assert ledger.release() == ["a3 again"]  # its first delivery is acknowledged already
    ledger.done(A, 4)
    assert ledger.release() == ["a4", "a4 again"]
    assert len(ledger) == 0
    with pytest.raises(ValueError):
        ledger.track(A, 2, "a2")  # never taken, yet behind those taken: not a copy


def test_a_forgotten_partition_tracks_its_replayed_messages_anew() -> None:
    ledger: AckLedger[int] = AckLedger()
    ledger.track(A, 3, 3)
    ledger.done(A, 3)
    assert ledger.release() == [3]
    assert not ledger.track(A, 3, 30)  # a copy, to be acknowledged at the next release
    ledger.forget([A])
    assert ledger.release() == []  # not once the partition is gone
    assert ledger.track(A, 3, 3)
