from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stream.errors import ConfigError
from stream.local import stack
from stream.settings import get_settings, load_settings

local = typer.Typer(
    help="Run the real Kafka, Triton and Prometheus on this machine (pids and logs in the run dir).",
    no_args_is_help=True,
)

ServicesOpt = Annotated[
    list[str] | None,
    typer.Option("--service", "-s", help="kafka, triton or prometheus (repeatable; default: all)"),
]
RunDirOpt = Annotated[Path | None, typer.Option(help="run directory [env LIFTSTREAM_LOCAL__RUN_DIR]")]


def _pick(services: list[str] | None) -> tuple[str, ...]:
    chosen = tuple(services or stack.SERVICES)
    unknown = [s for s in chosen if s not in stack.SERVICES]
    if unknown:
        raise ConfigError(f"unknown service {', '.join(unknown)}; choose from {', '.join(stack.SERVICES)}")
    return chosen


def _settings(run_dir: Path | None):  # type: ignore[no-untyped-def]
    if run_dir is None:
        return get_settings()
    base = get_settings()
    return load_settings(local=base.local.model_copy(update={"run_dir": run_dir}))


@local.command()
def up(
    service: ServicesOpt = None,
    fresh: Annotated[bool, typer.Option(help="start from empty Kafka and Prometheus data")] = False,
    run_dir: RunDirOpt = None,
) -> None:
    """Start the services (idempotent: running ones are left alone)."""
    settings = _settings(run_dir)
    for name, seconds in stack.up(settings, _pick(service), fresh=fresh).items():
        typer.echo(f"{name:<11} ready in {seconds:5.1f}s")
    _print_status(settings, _pick(service))


@local.command()
def down(service: ServicesOpt = None, run_dir: RunDirOpt = None) -> None:
    """Stop exactly what `up` started, by pid."""
    stopped = stack.down(_settings(run_dir), _pick(service))
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@local.command()
def status(service: ServicesOpt = None, run_dir: RunDirOpt = None) -> None:
    """Print each service's endpoint and state."""
    _print_status(_settings(run_dir), _pick(service))


def _print_status(settings, services: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    for st in stack.status(settings, services):
        state = "ready" if st.ready else ("starting" if st.pid else "stopped")
        pid = f"pid {st.pid}" if st.pid else "-"
        typer.echo(f"{st.name:<11} {state:<9} {pid:<11} {st.endpoint}   log {st.log}")


def register(app: typer.Typer) -> None:
    app.add_typer(local, name="local")
