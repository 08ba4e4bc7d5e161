from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from stream.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Adds this package's subcommands to the `liftstream` CLI."""
    group = typer.Typer(invoke_without_command=True, no_args_is_help=False)
    group.callback()(schemas)
    group.command("register")(register_schemas)
    app.add_typer(group, name="schemas")
    app.command("bench-decode")(bench_decode)


def schemas(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--out", envvar="LIFTSTREAM_SCHEMAS_DIR", help="directory of the schema files")
    ] = Path("deploy/schemas"),
    check: Annotated[bool, typer.Option("--check", help="compare, exit 1 if the files are stale")] = False,
) -> None:
    """Exports one JSON Schema per event topic (inputs and outputs) for producers and consumers."""
    from stream.events.schemas import export_schemas, schema_differences

    if ctx.invoked_subcommand is not None:
        return
    if check:
        problems = schema_differences(out)
        if problems:
            for line in problems:
                typer.echo(line, err=True)
            typer.echo("schema files are stale: run `liftstream schemas` and commit the result", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out}: schema files match the models")
        return
    paths = export_schemas(out)
    typer.echo(f"wrote {len(paths)} schema files to {out}")


def register_schemas(
    registry: Annotated[
        str | None,
        typer.Option("--registry", envvar="LIFTSTREAM_SCHEMA_REGISTRY__URL", help="Schema Registry URL"),
    ] = None,
    inputs: Annotated[bool, typer.Option("--inputs", help="register the input topics' schemas too")] = False,
) -> None:
    """Registers the output topics' JSON Schemas under the subjects `<topic>-value` (schemaType JSON).

    Topic names and the subject template come from the settings (LIFTSTREAM_TOPICS__*,
    LIFTSTREAM_TOPIC_POLICY__PREFIX, LIFTSTREAM_SCHEMA_REGISTRY__*)."""
    from stream.events.registration import register_topic_schemas
    from stream.settings import get_settings

    if registry is None:
        raise ConfigError("no Schema Registry: pass --registry URL or set LIFTSTREAM_SCHEMA_REGISTRY__URL")
    for subject, schema_id in register_topic_schemas(get_settings(), registry, inputs=inputs):
        typer.echo(f"{subject}: schema id {schema_id}")


def bench_decode(
    n: Annotated[int, typer.Option("--n", help="messages per case")] = 20_000,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the results as JSON")] = None,
) -> None:
    """Measures decode throughput (events/s, one core) of valid events per input topic and of invalid ones."""
    from stream.events.bench import run

    if not 1 <= n <= 10_000_000:
        raise ConfigError(f"--n must be between 1 and 10000000, got {n}")
    results = run(n)
    table = Table(title=f"decode throughput, one core, {n} messages per case")
    for column in ("case", "messages", "dead letters", "events/s", "µs/event"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for r in results:
        micros = 1e6 * r.seconds / r.events
        table.add_row(r.case, str(r.events), str(r.dead_letters), f"{r.per_second:,.0f}", f"{micros:.2f}")
    Console().print(table)
    if json_out is not None:
        rows = [{**asdict(r), "per_second": r.per_second} for r in results]
        json_out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
