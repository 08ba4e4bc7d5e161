"""`liftstream doctor`: what a worker with these settings would find, one line per check, before it runs.

Exit status 0 when every line is `ok`, 1 when any is `FAIL`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

import typer

from stream.doctor.kafka import kafka_lines
from stream.doctor.report import Line
from stream.doctor.triton import triton_lines
from stream.settings import Settings, load_settings


def register(app: typer.Typer) -> None:
    """Adds this package's subcommands to the `liftstream` CLI."""
    app.command("doctor")(doctor)


def doctor(
    bootstrap: Annotated[
        str | None,
        typer.Option("--bootstrap", envvar="LIFTSTREAM_KAFKA__BOOTSTRAP", help="Kafka bootstrap servers"),
    ] = None,
    triton_url: Annotated[
        str | None,
        typer.Option("--triton-url", envvar="LIFTSTREAM_TRITON_URL", help="Triton gRPC endpoint host:port"),
    ] = None,
    app_id: Annotated[
        str | None,
        typer.Option("--app-id", envvar="LIFTSTREAM_APP_ID", help="consumer group and table prefix"),
    ] = None,
) -> None:
    """Checks Kafka (connection, auth, topics and their configs, ACLs) and Triton (models, versions)."""
    given = {"triton_url": triton_url, "app_id": app_id}
    overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if bootstrap is not None:
        overrides["kafka"] = {"bootstrap": bootstrap}
    lines = run(load_settings(**overrides))
    raise typer.Exit(1 if any(line.status == "FAIL" for line in lines) else 0)


def run(settings: Settings) -> list[Line]:
    """Runs every check, printing each line as it is known."""
    from stream.app import create_app, internal_topics  # Faust and torch: only once the options parse

    # The clients log each failed connection attempt; the doctor's own line already says it, once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    internal = internal_topics(create_app(settings))
    lines = []
    for check in (kafka_lines(settings, internal), triton_lines(settings.triton_url)):
        for line in asyncio.run(check):
            typer.echo(str(line))
            lines.append(line)
    return lines
