"""The campaign-effects agent: partial snapshots → merged totals → one CampaignEffect per promotion.

Keyed by promotion on the internal `campaign-partials` topic, so one worker merges each promotion; the
merged value lives in the `campaign-totals` table of the snapshot's partition. Decisions (underperforming,
meeting the goal) and the model's `at_risk` warning raise and resolve alerts through the shared `AlertGate`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from mode import CrashingSupervisor

from stream.agents.engine import Engine
from stream.alerts import check_effect
from stream.events.gate import encode
from stream.outputs import Output
from stream.outputs.partials import PARTIALS, effect, effect_output, offer, read_snapshot

log = logging.getLogger(__name__)

BATCH = 256
WAIT_S = 0.25


def register(engine: Engine) -> None:
    topic = engine.topics[PARTIALS]

    @engine.app.agent(topic, name="campaign-effects", supervisor_strategy=CrashingSupervisor)
    async def campaign_effects(stream: Any) -> None:
        async for events in stream.noack_take(BATCH, within=WAIT_S):
            await handle(engine, events)
            for event in events:
                await stream.ack(event)


async def handle(engine: Engine, events: list[Any]) -> None:
    writes: dict[str, tuple[int, dict[str, Any]]] = {}
    for event in events:
        partial = read_snapshot(event.message.value)
        key = partial.promotion_id
        stored = writes[key][1] if key in writes else engine.merged.get(key)
        merged = offer(stored, partial)
        if merged is not None:
            writes[key] = (event.message.partition, merged)
            engine.merged.stage(key, merged)
    now = datetime.now(UTC)
    outputs: list[Output] = []
    for key, (_, merged) in sorted(writes.items()):
        promo = engine.registry.get(key)
        if promo is None:
            continue  # no goal to judge it by yet; the next snapshot after the promotion arrives will
        e = effect(merged, promo.goal, engine.model_version, now, engine.policy, promo.event.holdout_fraction)
        if e.decision.reason is not None and key not in engine.undecidable:
            engine.undecidable.add(key)
            log.warning("promotion %s can never be decided: %s", key, e.decision.reason)
        outputs.append(effect_output(e))
        engine.metrics.set_campaign(e)
        for check in check_effect(e):
            alert = engine.alert_gate.offer(check)
            if alert is not None:
                engine.metrics.alert(alert)
                outputs.append(Output("alerts", None, encode(alert)))
    flushed = await engine.merged.flush((k, part, v) for k, (part, v) in writes.items())
    await asyncio.gather(*await engine.publish(outputs), *flushed)
