"""`liftstream` — one typed CLI. Every subcommand lives beside the code it drives and registers itself here.

Options fall back to `LIFTSTREAM_*` environment variables through `stream.settings.Settings`.
"""

from __future__ import annotations

import logging
import sys

import typer

from stream.errors import LiftstreamError

app = typer.Typer(
    name="liftstream",
    help="Streaming real-time scoring of e-commerce promotion effects.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from models import cli as models_cli
    from models import serving_cli
    from stream import worker_cli
    from stream.bench import cli as bench_cli
    from stream.demo import cli as demo_cli
    from stream.doctor import cli as doctor_cli
    from stream.events import cli as events_cli
    from stream.local import cli as local_cli
    from stream.monitor import cli as monitor_cli
    from stream.simulate import cli as simulate_cli

    for module in (
        local_cli,
        events_cli,
        simulate_cli,
        models_cli,
        serving_cli,
        worker_cli,
        doctor_cli,
        monitor_cli,
        demo_cli,
        bench_cli,
    ):
        module.register(app)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        _register()  # imports the model signature, which reads the declared profile attributes
        app()
    except LiftstreamError as exc:
        typer.secho(f"liftstream: error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)
