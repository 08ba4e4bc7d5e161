from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this package's subcommands to the `liftstream` CLI."""
