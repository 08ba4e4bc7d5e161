"""The input contract beyond each event's schema: the partition a user event is on, and how far ahead its
event time may be. A valid event that breaks it is dead-lettered, neither applied nor counted.

- **Partition** (`wrong_partition`). Clicks, exposures and profiles are keyed by user_id and placed by
  Kafka's default partitioner, murmur2 of the key (`partition_for`: the Java client's and aiokafka's
  rule, which every producer of the project uses). Exact state rests on that: a user's value and
  partials live in the partition of their events, and a replay is recognised by the offsets of that
  partition. An event elsewhere would be applied by another worker to another copy of the user, or be
  compared with the offsets of another partition (a `duplicate` it is not). The user_id is checked, not
  the key: it is what the state is kept by.
- **Event time** (`future_timestamp`). State follows event time, so an event far ahead of its message's
  Kafka timestamp (the clock of the broker, or of the producer that set it) would make the user's real
  events `late` until that time comes: a click 23 h ahead would keep every click of the next 23 h out.
  More than `windows.allowed_lateness_s` ahead is refused, the skew the windows allow the other way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache

from aiokafka.partitioner import murmur2

from stream.batching.records import Decoded, Record
from stream.errors import DecodeError
from stream.events.gate import FUTURE_TIMESTAMP, Event, dead_letter

WRONG_PARTITION = "wrong_partition"


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a message with `key`: Java's
    `Utils.toPositive(Utils.murmur2(key)) % partitions`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@lru_cache(maxsize=1 << 16)
def user_partition(user_id: str, partitions: int) -> int:
    # Cached: a batch meets the same users again and again, and murmur2 is pure Python (~3 µs a key).
    return partition_for(user_id.encode(), partitions)


def violation(record: Record, event: Event, partitions: int, lateness_s: float) -> DecodeError | None:
    """Why a decoded user event breaks the contract, or None. `partitions`: its topic's partition count."""
    user_id: str = event.user_id  # type: ignore[union-attr]
    expected = user_partition(user_id, partitions)
    if record.partition != expected:
        return DecodeError(
            WRONG_PARTITION,
            f"user {user_id[:64]} belongs on partition {expected} of {partitions}, not {record.partition}",
        )
    ahead = event.ts.timestamp() - record.timestamp
    # A message without a timestamp (-1: a pre-0.10 message format) has no clock to compare with.
    if record.timestamp > 0 and ahead > lateness_s:
        return DecodeError(
            FUTURE_TIMESTAMP,
            f"event time {ahead:.0f}s ahead of the message's Kafka timestamp (allowed: {lateness_s:g}s)",
        )
    return None


def enforce(
    decoded: Decoded,
    partitions: Mapping[str, int],
    lateness_s: float,
    kafka_names: Mapping[str, str],
    now: datetime,
) -> Decoded:
    """`decoded` user events with those that break the contract moved to its dead letters.
    `partitions`: logical topic → its partition count."""
    valid = []
    dead = list(decoded.dead)
    reasons: Counter[tuple[str, str]] = Counter(decoded.reasons)
    for r, event in decoded.valid:
        error = violation(r, event, partitions[r.topic], lateness_s)
        if error is None:
            valid.append((r, event))
            continue
        source = kafka_names.get(r.topic, r.topic)
        dead.append(dead_letter(source, r.partition, r.offset, r.key, r.value, error, now))
        reasons[r.topic, error.reason] += 1
    return Decoded(valid, dead, reasons)
