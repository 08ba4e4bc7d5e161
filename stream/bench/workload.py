"""The benchmark's events: one simulated live world, generated once, as Kafka message bytes.

The first `events` messages are the backlog every throughput contender consumes; the messages after
them are the live continuation the latency phase sends (the same users, later on, so their state
exists). The attribution window is the shortest the simulator allows, so exposures go on to the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson

from stream.errors import ConfigError
from stream.simulate.config import SimConfig
from stream.simulate.live import live_messages

Message = tuple[str, bytes, bytes]
"""(logical input topic, key, value)."""

# Over three simulated days with a one-hour window a user sends ~10.4 messages (a profile first, then
# clicks and exposures). A world 2.5 times the backlog leaves the latency phase 1.5 backlogs of live
# traffic; the profiles, all sent at the start, stay under a third of the backlog.
DAYS = 3.0
MESSAGES_PER_USER = 10.4
WORLD_FACTOR = 2.5


@dataclass(frozen=True)
class Workload:
    backlog: list[Message]
    live: list[Message]
    exposures: frozenset[str]
    """event_ids of the valid exposures in the backlog: each must get a prediction."""
    users: int
    """distinct users in the backlog: whose state the worker holds after it."""

    @property
    def events(self) -> int:
        return len(self.backlog)


def sim_config(events: int, seed: int) -> SimConfig:
    users = max(10, round(events * WORLD_FACTOR / MESSAGES_PER_USER))
    return SimConfig(seed=seed, users=users, days=DAYS, attribution_window_s=3600)


def build_workload(events: int, seed: int, now: datetime) -> Workload:
    if events < 100:
        raise ConfigError("--events must be at least 100")
    messages = [(m.topic, m.key, m.value) for m in live_messages(sim_config(events, seed), now)]
    if len(messages) <= events:
        raise ConfigError(f"the simulated world holds only {len(messages)} messages; lower --events")
    backlog, live = messages[:events], messages[events:]
    users = len({key for topic, key, _ in backlog if topic != "promotions"})
    return Workload(backlog, live, exposure_ids(backlog), users)


def exposure_ids(messages: list[Message]) -> frozenset[str]:
    return frozenset(orjson.loads(value)["event_id"] for topic, _, value in messages if topic == "exposures")
