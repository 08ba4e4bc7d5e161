"""The promotions agent: promotion events → registry entries, each new text encoded at the served version.

Entries are written (and their changelog delivery awaited) before the events are acknowledged; encoding
happens here so the first exposures find a vector ready, and scoring encodes on demand what is still
missing (a promotion that arrived while Triton was down, or a newly rolled model version).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from mode import CrashingSupervisor

from stream.agents.engine import Engine
from stream.errors import ScoringError
from stream.events.gate import encode
from stream.events.models import PromotionEvent
from stream.outputs import Output
from stream.registry.promos import Promo, apply_event

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
    records = [engine.record(e) for e in events]
    await engine.resolve_schema_ids(records)
    decoded = engine.decode(records, datetime.now(UTC))
    changed: dict[str, Promo] = {}
    for _, event in decoded.valid:
        assert isinstance(event, PromotionEvent)
        current = changed.get(event.promotion_id) or engine.registry.get(event.promotion_id)
        updated = apply_event(current, event)
        if updated is not None:
            changed[event.promotion_id] = updated
    promos = await _encoded(engine, list(changed.values()))
    futures = [engine.registry.put(p) for p in promos]
    futures += await engine.publish(Output("dead-letter", None, encode(d)) for d in decoded.dead)
    await asyncio.gather(*futures)
    engine.metrics.observe_input("promotions", ok=len(decoded.valid))
    for (topic, reason), n in decoded.reasons.items():
        engine.metrics.dead_letter(topic, reason, n)
    if promos:
        log.info("registry: %d promotions updated", len(promos))


async def _encoded(engine: Engine, promos: list[Promo]) -> list[Promo]:
    """Active promotions with a vector for the served version, so exposures find one ready.

    Tried for at most `group.revoke_drain_s`: if Triton stays away the entries are stored without
    vectors and scoring encodes them when it can. Exposures must not wait on Triton for their promotion
    to become known, and a rebalance waits for this agent's messages (Faust's `wait_empty` on revoke):
    a stuck Triton would hold the whole group's rebalance.
    """
    active = [p for p in promos if p.active]
    if not active:
        return promos
    deadline = engine.settings.group.revoke_drain_s

    async def encode() -> list[Promo]:
        version = await engine.scorer.model_version()
        return await engine.encoder.with_vectors(active, version)

    try:
        # Shielded: past the deadline the request goes on, and scoring finds its vectors when they come.
        done = await asyncio.wait_for(asyncio.shield(encode()), deadline)
    except ScoringError as exc:
        log.warning("storing %d promotions without vectors: %s", len(active), exc)
        return promos
    except TimeoutError:
        log.warning("storing %d promotions without vectors: Triton gave none in %gs", len(active), deadline)
        return promos
    encoded = {p.promotion_id: p for p in done}
    return [encoded.get(p.promotion_id, p) for p in promos]
