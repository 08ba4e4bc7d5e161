"""The input contract beyond the schema: a user event on its key's partition, its event time not ahead."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import DefaultPartitioner

from stream.batching.contract import WRONG_PARTITION, enforce, partition_for, violation
from stream.batching.records import Decoded, Record
from stream.events.gate import FUTURE_TIMESTAMP, AnyExposure, Event
from tests.features.builders import at, click, exposure

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# Utils.murmur2 of these keys in the Java client's own tests (org.apache.kafka.common.utils.UtilsTest).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"abc": 479470107,
}


def test_partitions_are_the_java_clients_and_aiokafkas() -> None:
    for key, java in JAVA_MURMUR2.items():
        assert partition_for(key, 12) == (java & 0x7FFFFFFF) % 12
    for i in range(500):
        key = f"user-{i}".encode()
        for n in (1, 4, 7):
            assert partition_for(key, n) == DefaultPartitioner()(key, list(range(n)), list(range(n)))


def _record(event: Event, partition: int | None = None, timestamp: float | None = None) -> Record:
    uid: str = event.user_id  # type: ignore[union-attr]
    p = partition_for(uid.encode(), 4) if partition is None else partition
    ts = event.ts.timestamp() if timestamp is None else timestamp
    topic = "exposures" if isinstance(event, AnyExposure) else "clicks"
    return Record(topic, p, 9, uid.encode(), b"{}", ts)


def test_an_event_on_another_partition_than_its_users_breaks_the_contract() -> None:
    event = click("u1", 0.0)
    assert violation(_record(event), event, 4, 600.0) is None
    right = partition_for(b"u1", 4)
    error = violation(_record(event, partition=(right + 1) % 4), event, 4, 600.0)
    assert error is not None and error.reason == WRONG_PARTITION
    assert f"belongs on partition {right} of 4" in str(error)


def test_an_event_time_ahead_of_the_kafka_timestamp_by_more_than_the_lateness_breaks_it() -> None:
    event = click("u1", 3600.0)
    assert violation(_record(event, timestamp=at(3000.0).timestamp()), event, 4, 600.0) is None
    ahead = violation(_record(event, timestamp=at(2999.0).timestamp()), event, 4, 600.0)
    assert ahead is not None and ahead.reason == FUTURE_TIMESTAMP
    assert violation(_record(event, timestamp=-0.001), event, 4, 600.0) is None  # no timestamp to go by


def test_enforce_moves_breaking_events_to_dead_letters_naming_their_source() -> None:
    good, moved, ahead = exposure("u1", 0.0), exposure("u2", 0.0), click("u3", 90_000.0)
    wrong = (partition_for(b"u2", 4) + 1) % 4
    records: list[tuple[Record, Event]] = [
        (_record(good), good),
        (_record(moved, partition=wrong), moved),
        (_record(ahead, timestamp=at(0.0).timestamp()), ahead),
    ]
    decoded = Decoded(records, [], Counter({("clicks", "malformed_json"): 1}))
    names = {"clicks": "prod-clicks", "exposures": "prod-exposures"}
    out = enforce(decoded, {"clicks": 4, "exposures": 4}, 600.0, names, NOW)
    assert [e for _, e in out.valid] == [good]
    assert [(d.reason, d.source_topic, d.partition, d.offset) for d in out.dead] == [
        (WRONG_PARTITION, "prod-exposures", wrong, 9),
        (FUTURE_TIMESTAMP, "prod-clicks", records[2][0].partition, 9),
    ]
    assert out.reasons == Counter(
        {("clicks", "malformed_json"): 1, ("exposures", WRONG_PARTITION): 1, ("clicks", FUTURE_TIMESTAMP): 1}
    )
