"""`liftstream monitor`: a live terminal view of the campaigns, read from the worker's output topics."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import Console, Group
from rich.live import Live

from stream.errors import ConfigError
from stream.events.models import Alert, CampaignEffect, DriftReport
from stream.monitor.source import OutputReader
from stream.monitor.state import MonitorState
from stream.monitor.view import render
from stream.settings import Kafka, load_settings


def register(app: typer.Typer) -> None:
    """Adds this package's subcommands to the `liftstream` CLI."""
    app.command("monitor")(monitor)


def monitor(
    bootstrap: Annotated[str | None, typer.Option(
        "--bootstrap", envvar="LIFTSTREAM_KAFKA__BOOTSTRAP", help="Kafka bootstrap servers")] = None,
    from_beginning: Annotated[bool, typer.Option(
        "--from-beginning", help="replay the output topics from their start instead of from now")] = False,
    once: Annotated[bool, typer.Option(
        "--once", help="read what the topics hold now, print one view and exit")] = False,
    duration: Annotated[float | None, typer.Option(
        "--duration", help="stop after this many seconds (default: until Ctrl-C)")] = None,
    refresh: Annotated[float, typer.Option("--refresh", help="seconds between redraws")] = 1.0,
    alerts: Annotated[int, typer.Option("--alerts", help="recent alerts to keep on screen")] = 10,
) -> None:
    """Shows per promotion predicted vs realised uplift, status and trend, drift flags and recent alerts.

    Topic names come from the settings (LIFTSTREAM_TOPICS__CAMPAIGN_EFFECTS, __ALERTS, __DRIFT).
    """
    if duration is not None and duration <= 0:
        raise ConfigError(f"--duration must be positive, got {duration}")
    if not 0.05 <= refresh <= 3600:
        raise ConfigError(f"--refresh must be between 0.05 and 3600 s, got {refresh}")
    if not 1 <= alerts <= 1000:
        raise ConfigError(f"--alerts must be between 1 and 1000, got {alerts}")
    settings = load_settings()
    kafka = settings.kafka
    if bootstrap is not None:
        kafka = kafka.model_copy(update={"bootstrap": bootstrap})
    t = settings.topics
    topics: dict[str, type[BaseModel]] = {
        t.campaign_effects: CampaignEffect, t.alerts: Alert, t.drift: DriftReport,
    }
    state = MonitorState(max_alerts=alerts)
    try:
        asyncio.run(watch(kafka, topics, state, Console(), from_beginning=from_beginning, once=once,
                          duration=duration, refresh=refresh))
    except KeyboardInterrupt:
        return


async def watch(kafka: Kafka, topics: dict[str, type[BaseModel]], state: MonitorState, console: Console, *,
                from_beginning: bool, once: bool, duration: float | None, refresh: float) -> None:
    async with OutputReader(kafka, topics, state, from_beginning=from_beginning) as reader:

        def view() -> Group:
            missing = f"  (not created yet: {', '.join(reader.missing)})" if reader.missing else ""
            return render(state, datetime.now(UTC), f"{kafka.bootstrap}  {', '.join(topics)}{missing}")

        if once:
            await reader.catch_up()
            console.print(view())
            return
        deadline = None if duration is None else time.monotonic() + duration
        with Live(view(), console=console, auto_refresh=False) as live:
            while deadline is None or time.monotonic() < deadline:
                until_redraw = time.monotonic() + refresh
                while (left := until_redraw - time.monotonic()) > 0:
                    await reader.poll(left)
                live.update(view(), refresh=True)
