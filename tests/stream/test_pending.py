from __future__ import annotations

import pytest

from stream.batching.assemble import ExposureItem
from stream.batching.pending import PendingExposures
from stream.batching.records import Record
from tests.features.builders import exposure

pytestmark = pytest.mark.unit


def _item(promo: str, offset: int) -> ExposureItem:
    return ExposureItem(Record("exposures", 0, offset, b"u", b"{}", 0.0), exposure("u", 0.0, promo=promo))


def test_releases_known_in_arrival_order_and_expires_the_rest() -> None:
    pending = PendingExposures(wait_s=10.0)
    assert pending.hold([_item("p1", 1), _item("p2", 2), _item("p1", 3)], now=100.0) == []
    ready, expired = pending.release(lambda pid: pid == "p1", now=105.0)
    assert [i.record.offset for i in ready] == [1, 3] and expired == []
    ready, expired = pending.release(lambda pid: False, now=110.0)
    assert ready == [] and [i.record.offset for i in expired] == [2]
    assert len(pending) == 0


def test_holds_at_most_capacity_and_nothing_without_a_wait() -> None:
    pending = PendingExposures(wait_s=10.0, capacity=2)
    overflow = pending.hold([_item("p", o) for o in range(3)], now=0.0)
    assert [i.record.offset for i in overflow] == [2] and len(pending) == 2
    none = PendingExposures(wait_s=0.0)
    assert len(none.hold([_item("p", 0)], now=0.0)) == 1


def test_forget_drops_items_of_revoked_partitions() -> None:
    pending = PendingExposures(wait_s=10.0)
    pending.hold([_item("p", 0)], now=0.0)
    pending.forget(lambda item: item.record.partition != 0)
    assert len(pending) == 0
