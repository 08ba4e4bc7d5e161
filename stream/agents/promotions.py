"""The promotions agent: promotion events → registry entries, each new text encoded at the served version.

Entries are written (and their changelog delivery awaited) before the events are acknowledged; encoding
happens here so the first exposures find a vector ready, and scoring encodes on demand what is still
missing (a promotion that arrived while Triton was down, or a newly rolled model version).
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime
from typing import Any

from mode import CrashingSupervisor

from stream.agents.engine import Engine
from stream.batching.records import decode_records
from stream.errors import ScoringError
from stream.events.gate import encode
from stream.events.models import PromotionEvent
from stream.outputs import Output
from stream.registry.promos import Promo, apply_event
from stream.scoring.triton import backoff_delay

log = logging.getLogger(__name__)

BATCH = 256


def register(engine: Engine) -> None:
    topic = engine.topics["promotions"]

    @engine.app.agent(topic, name="promotions", supervisor_strategy=CrashingSupervisor)
    async def promotions(stream: Any) -> None:
        async for events in stream.noack_take(BATCH, within=engine.settings.batching.max_wait_s):
            await handle(engine, events)
            for event in events:
                await stream.ack(event)


async def handle(engine: Engine, events: list[Any]) -> None:
    decoded = decode_records([engine.record(e) for e in events], engine.names, datetime.now(UTC))
    changed: dict[str, Promo] = {}
    for _, event in decoded.valid:
        assert isinstance(event, PromotionEvent)
        current = changed.get(event.promotion_id) or engine.registry.get(event.promotion_id)
        updated = apply_event(current, event)
        if updated is not None:
            changed[event.promotion_id] = updated
    futures = [engine.registry.put(p) for p in changed.values()]
    futures += await engine.publish(Output("dead-letter", None, encode(d)) for d in decoded.dead)
    engine.metrics.observe_input("promotions", ok=len(decoded.valid))
    for (topic, reason), n in decoded.reasons.items():
        engine.metrics.dead_letter(topic, reason, n)
    await asyncio.gather(*futures)
    active = [pid for pid, p in changed.items() if p.active]
    if active:
        await _encode(engine, active)
        log.info("registry: %d promotions updated, %d encoded", len(changed), len(active))


async def _encode(engine: Engine, promotion_ids: list[str]) -> None:
    """Vectors for the served version; retried while Triton is away (scoring would otherwise wait on it)."""
    b, rng, attempt = engine.settings.batching, random.Random(), 0
    while True:
        try:
            await engine.encoder.vectors(promotion_ids, await engine.scorer.model_version())
            return
        except ScoringError as exc:
            delay = backoff_delay(attempt, b.backoff_base_s, b.backoff_max_s, rng.random())
            log.warning("encoding %d promotions failed (%s); retrying in %.2fs", len(promotion_ids), exc, delay)
            await asyncio.sleep(delay)
            attempt += 1
