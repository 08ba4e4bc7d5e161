"""Work on a clock: partial snapshots for the effects agent, drift reports, Triton-outage alerts, lag, and
the retirement of stopped promotions' campaign series once their attribution window has closed.

Each worker publishes only the partials of the partitions it owns: the dirty ones every second, all of
them every `FULL_EVERY` ticks, which also republishes what a crash may have kept from going out.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from faust.types import TP

from stream.agents.engine import Engine
from stream.agents.topics import USER_INPUTS
from stream.alerts import check_drift, check_triton
from stream.events.gate import encode
from stream.outputs import Output
from stream.outputs.partials import snapshot
from stream.scoring.signature import SCORER

log = logging.getLogger(__name__)

PARTIALS_INTERVAL_S = 1.0
FULL_EVERY = 30
HEALTH_INTERVAL_S = 5.0


def register(engine: Engine) -> None:
    app = engine.app
    ticks = {"n": 0}

    @app.timer(PARTIALS_INTERVAL_S, name="partial-snapshots")
    async def partial_snapshots() -> None:
        ticks["n"] += 1
        await publish_partials(engine, full=ticks["n"] % FULL_EVERY == 1)

    @app.timer(engine.settings.drift.report_interval_s, name="drift-reports")
    async def drift_reports() -> None:
        await report_drift(engine)

    @app.timer(HEALTH_INTERVAL_S, name="health")
    async def health() -> None:
        await check_health(engine)


async def publish_partials(engine: Engine, *, full: bool) -> None:
    owned = engine.owned_partitions()
    keys, engine.dirty_partials = engine.dirty_partials, set()
    if full:
        keys |= set(engine.partials.table.data.keys())
    outputs = [
        snapshot(p)
        for key in sorted(keys)
        if (p := engine.partials.stored(key)) is not None and p.partition in owned
    ]
    if outputs:
        await asyncio.gather(*await engine.publish(outputs))


async def report_drift(engine: Engine) -> None:
    now = datetime.now(UTC)
    outputs: list[Output] = []
    threshold = engine.settings.drift.psi_threshold
    for report in engine.drift.report(now):
        outputs.append(Output("drift", report.scope.encode(), encode(report)))
        engine.metrics.set_drift(report, threshold)
        alert = engine.alert_gate.offer(check_drift(report, threshold))
        if alert is not None:
            engine.metrics.alert(alert)
            outputs.append(Output("alerts", None, encode(alert)))
    if outputs:
        await asyncio.gather(*await engine.publish(outputs))


async def check_health(engine: Engine) -> None:
    stopped = [(p.campaign_id, p.promotion_id) for p in engine.registry.entries() if not p.active]
    engine.metrics.retire_campaigns(stopped, engine.settings.windows.attribution_window_s)
    outage = engine.batch_scorer.outage
    alert = engine.alert_gate.offer(check_triton(SCORER, outage.since, datetime.now(UTC), outage.error))
    if alert is not None:
        engine.metrics.alert(alert)
        await asyncio.gather(*await engine.publish([Output("alerts", None, encode(alert))]))
    consumer = engine.app.consumer
    for logical in USER_INPUTS:
        name = engine.names[logical]
        for partition in engine.owned_partitions():
            tp = TP(name, partition)
            try:
                end = consumer.highwater(tp)
            except (KeyError, AssertionError, ValueError):
                continue
            done = engine.progress.get((logical, partition))
            if end is not None and done is not None:
                engine.metrics.set_lag(logical, partition, end - done - 1)
