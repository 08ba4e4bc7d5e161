"""Live mode: a freshly simulated world produced to Kafka at a steady rate.

Simulated time runs one-to-one against event time but is shifted to end at the wall-clock start, so every
timestamp is recent and never in the future, attribution windows keep their meaning, and the stream's
freshness checks pass. Messages leave in arrival order (a few late or out of order) with malformed payloads
mixed in at the configured rate.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from stream.errors import ConfigError
from stream.settings import Settings
from stream.simulate.config import SimConfig, stage_rng
from stream.simulate.emission import Message, arrival_order, with_malformed
from stream.simulate.history_mode import Simulation, simulate
from stream.simulate.kafka_out import (
    BATCH,
    Pacer,
    Progress,
    ProgressCallback,
    ensure_topics,
    producer,
    resolve_settings,
    send_batch,
    topic_names,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveStats:
    sent: int
    malformed: int
    by_topic: dict[str, int]
    elapsed_s: float
    exhausted: bool  # the simulated world ran out before the requested events or duration


def live_messages(config: SimConfig, now: datetime) -> list[Message]:
    """Every message of the world, in the order live mode sends them, timed to end at `now`."""
    return live_simulation(config, now)[1]


def live_simulation(config: SimConfig, now: datetime) -> tuple[Simulation, list[Message]]:
    """The world timed to end at `now` (with its ground truth) and its messages in live order."""
    shifted = now.astimezone(UTC) - timedelta(milliseconds=config.span_ms)
    start = shifted.replace(microsecond=shifted.microsecond // 1000 * 1000)
    sim = simulate(replace(config, start=start))
    ordered = arrival_order(stage_rng(config.seed, "arrival"), config, sim.messages())
    return sim, with_malformed(stage_rng(config.seed, "malformed"), config.malformed_rate, ordered)


async def produce_live(
    target: Settings | str,
    config: SimConfig,
    *,
    rate: float | None,
    events: int | None = None,
    duration_s: float | None = None,
    on_progress: ProgressCallback | None = None,
    now: datetime | None = None,
    messages: Sequence[Message] | None = None,
) -> LiveStats:
    """Produces the simulated world to the input topics of `target` (Settings, or a bootstrap `host:port`).

    Stops after `events` messages (malformed ones included) or `duration_s` seconds, whichever is given,
    else when the world is exhausted. The seed and the malformed rate come from `config`. `messages`, from
    `live_simulation(config, now)`, saves simulating the world again when the caller already has it.
    """
    if events is not None and duration_s is not None:
        raise ConfigError("give either a number of events or a duration, not both")
    if (events is not None and events < 1) or (duration_s is not None and duration_s <= 0):
        raise ConfigError("events and duration must be positive")
    settings = resolve_settings(target)
    if messages is None:
        messages = live_messages(config, now or datetime.now(UTC))
    if events is not None and events > len(messages):
        raise ConfigError(f"the simulated world holds {len(messages)} messages; raise --users or --days")
    limit = events if events is not None else len(messages)
    names = topic_names(settings)
    await ensure_topics(settings)
    pacer = Pacer(rate)
    step = BATCH if pacer.rate is None else int(np.clip(pacer.rate / 10, 1, BATCH))
    sent, malformed, by_topic = 0, 0, Counter[str]()
    async with producer(settings) as client:
        while sent < limit:
            await pacer.wait(sent)
            if duration_s is not None and pacer.elapsed >= duration_s:
                break
            batch = messages[sent : min(sent + step, limit)]
            await send_batch(client, [(names[m.topic], m.key, m.value) for m in batch])
            sent += len(batch)
            malformed += sum(not m.valid for m in batch)
            by_topic.update(m.topic for m in batch)
            if on_progress is not None:
                on_progress(Progress(sent, malformed, pacer.elapsed))
    exhausted = (
        sent == len(messages) and events is None and duration_s is not None and pacer.elapsed < duration_s
    )
    if exhausted:
        log.warning(
            "the simulated world ran out after %d messages; raise --users or --days for longer runs", sent
        )
    log.info("live: produced %d messages (%d malformed) in %.1f s", sent, malformed, pacer.elapsed)
    return LiveStats(sent, malformed, dict(by_topic), pacer.elapsed, exhausted)
