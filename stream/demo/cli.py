from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from stream.errors import ConfigError
from stream.settings import get_settings


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    duration: Annotated[
        float, typer.Option("--duration", envvar="LIFTSTREAM_DEMO_DURATION", help="seconds of live traffic")
    ] = 60.0,
    rate: Annotated[
        float, typer.Option("--rate", envvar="LIFTSTREAM_DEMO_RATE", help="events per second of live traffic")
    ] = 1000.0,
) -> None:
    """The whole product on this machine: local stack, model, worker, live traffic, monitor, report."""
    if not 5 <= duration <= 3600:
        raise ConfigError(f"--duration must be between 5 and 3600 seconds, got {duration}")
    if not 1 <= rate <= 100_000:
        raise ConfigError(f"--rate must be between 1 and 100000 events/s, got {rate}")
    from stream.demo.run import run_demo

    console = Console()
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated demo cleans up like a Ctrl-C'd one
    try:
        page, data = run_demo(get_settings(), duration, rate, console)
    except KeyboardInterrupt:
        console.print("interrupted: everything the demo started has been stopped")
        raise typer.Exit(130) from None
    console.print(f"report: {page}", soft_wrap=True)
    console.print(f"report-json: {data}", soft_wrap=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
