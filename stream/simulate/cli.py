"""`liftstream simulate`, `liftstream replay`, `liftstream data hillstrom` and `liftstream data import`."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from models.hillstrom import import_hillstrom
from models.import_cli import import_data
from stream.errors import ConfigError
from stream.settings import Settings, get_settings
from stream.simulate.config import SimConfig
from stream.simulate.history_mode import write_simulation
from stream.simulate.kafka_out import Progress, ProgressCallback
from stream.simulate.live import produce_live
from stream.simulate.replay import replay_history

log = logging.getLogger(__name__)

Bootstrap = Annotated[
    str | None,
    typer.Option("--bootstrap", help="Kafka bootstrap host:port (default: LIFTSTREAM_KAFKA__BOOTSTRAP)"),
]


def _settings(bootstrap: str | None) -> Settings:
    settings = get_settings()
    if bootstrap is None:
        return settings
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"bootstrap": bootstrap})})


def _progress(every_s: float = 5.0) -> ProgressCallback:
    """Logs progress at most every `every_s` seconds (one line, never per message)."""
    last = [time.monotonic()]

    def report(p: Progress) -> None:
        if time.monotonic() - last[0] >= every_s:
            last[0] = time.monotonic()
            log.info("sent %d messages (%d malformed) in %.0f s", p.sent, p.malformed, p.elapsed_s)

    return report


def simulate(
    seed: Annotated[
        int, typer.Option(envvar="LIFTSTREAM_SIM_SEED", help="random seed: same seed, same bytes")
    ] = 0,
    users: Annotated[int, typer.Option(help="number of simulated users")] = 5000,
    days: Annotated[float, typer.Option(help="days during which promotions are shown")] = 7.0,
    history_out: Annotated[
        Path | None, typer.Option(help="write a history directory instead of producing")
    ] = None,
    malformed_rate: Annotated[float, typer.Option(help="share of malformed messages, in [0, 0.5)")] = 0.0,
    drift_start: Annotated[
        float | None,
        typer.Option(
            envvar="LIFTSTREAM_SIM_DRIFT_START", help="drift episode start, as a fraction of --days"
        ),
    ] = None,
    drift_end: Annotated[
        float | None,
        typer.Option(
            envvar="LIFTSTREAM_SIM_DRIFT_END", help="drift episode end, a fraction of --days (default 1)"
        ),
    ] = None,
    drift_kind: Annotated[
        str,
        typer.Option(
            envvar="LIFTSTREAM_SIM_DRIFT_KIND", help="new_segment (a new-user cohort), price or both"
        ),
    ] = "new_segment",
    drift_price_factor: Annotated[
        float, typer.Option(help="catalogue price multiplier within a price episode")
    ] = SimConfig.drift_price_factor,
    rate: Annotated[
        float | None, typer.Option(help="live: messages per second (default 500; 0: unlimited)")
    ] = None,
    events: Annotated[int | None, typer.Option(help="live: stop after this many messages")] = None,
    duration: Annotated[float | None, typer.Option(help="live: stop after this many seconds")] = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Simulates an e-commerce world with known promotion effects, as a history or live into Kafka."""
    config = SimConfig(
        seed=seed, users=users, days=days, malformed_rate=malformed_rate, drift_start=drift_start,
        drift_end=drift_end, drift_kind=drift_kind, drift_price_factor=drift_price_factor,
    )  # fmt: skip
    if history_out is not None:
        if any(v is not None for v in (rate, events, duration, bootstrap)):
            raise ConfigError(
                "--rate, --events, --duration and --bootstrap apply to live mode, not --history-out"
            )
        counts = write_simulation(config, history_out)
        typer.echo(f"history written to {history_out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return
    live_rate = 500.0 if rate is None else rate
    stats = asyncio.run(
        produce_live(_settings(bootstrap), config, rate=live_rate, events=events, duration_s=duration,
                     on_progress=_progress())
    )  # fmt: skip
    typer.echo(f"produced {stats.sent} messages ({stats.malformed} malformed) in {stats.elapsed_s:.1f} s")


def replay(
    history: Annotated[Path, typer.Option(envvar="LIFTSTREAM_HISTORY", help="history directory to replay")],
    speed: Annotated[
        float | None, typer.Option(help="compress event time X-fold (default: as fast as possible)")
    ] = None,
    malformed: Annotated[bool, typer.Option(help="also send the history's malformed.jsonl payloads")] = False,
    bootstrap: Bootstrap = None,
) -> None:
    """Produces a history directory into the input topics in event-time order."""
    stats = asyncio.run(
        replay_history(_settings(bootstrap), history, speed=speed, include_malformed=malformed,
                       on_progress=_progress())
    )  # fmt: skip
    typer.echo(f"replayed {stats.sent} messages ({stats.malformed} malformed) in {stats.elapsed_s:.1f} s")


def hillstrom(
    csv_path: Annotated[Path, typer.Option("--csv", help="the MineThatData CSV")],
    out: Annotated[Path, typer.Option(help="history directory to write")],
    id_column: Annotated[
        str | None, typer.Option(help="column holding customer ids (default: row index)")
    ] = None,
) -> None:
    """Converts Kevin Hillstrom's MineThatData e-mail data set into a history directory."""
    s = import_hillstrom(csv_path, out, id_column)
    typer.echo(
        f"{out}: {s.profiles} profiles, {s.exposures} exposures, {s.visits} visits, "
        f"{s.conversions} conversions, spend {s.spend:.2f}"
    )


def register(app: typer.Typer) -> None:
    """Adds this package's subcommands to the `liftstream` CLI."""
    app.command("simulate")(simulate)
    app.command("replay")(replay)
    data = typer.Typer(help="Import real data sets into the history format.", no_args_is_help=True)
    data.command("hillstrom")(hillstrom)
    data.command("import")(import_data)
    app.add_typer(data, name="data")
