"""`liftstream bench`: the side-by-side engine benchmark, or (`--triton-only`) Triton's own throughput;
`liftstream bench decisions`: the Monte-Carlo of the status rules (stream/bench/decisions.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stream.effects.report import DEFAULT_MIN_PURCHASES_PER_ARM
from stream.errors import ConfigError
from stream.settings import get_settings

if TYPE_CHECKING:
    from stream.bench.run import BenchConfig
    from stream.bench.worker import Target

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Adds this package's subcommands to the `liftstream` CLI: `bench` runs the engine benchmark when no
    subcommand follows it, `bench decisions` the decision-rule Monte-Carlo."""
    group = typer.Typer(add_completion=False)
    group.callback(invoke_without_command=True)(bench)
    group.command("decisions")(decisions)
    app.add_typer(group, name="bench")


def bench(
    ctx: typer.Context,
    events: Annotated[
        int, typer.Option(help="backlog size: simulated input events every contender consumes")
    ] = 30_000,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
    bootstrap: Annotated[
        str | None,
        typer.Option("--bootstrap", envvar="LIFTSTREAM_KAFKA__BOOTSTRAP", help="Kafka bootstrap host:port"),
    ] = None,
    triton_url: Annotated[
        str | None, typer.Option("--triton-url", envvar="LIFTSTREAM_TRITON_URL", help="Triton gRPC host:port")
    ] = None,
    model_repo: Annotated[
        Path | None,
        typer.Option(
            "--model-repo",
            envvar="LIFTSTREAM_MODEL_REPO",
            help="the repository Triton serves (drift reference)",
        ),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(envvar="LIFTSTREAM_TOPICS__PARTITIONS", help="partitions of every contender's topics"),
    ] = None,
    latency_seconds: Annotated[float, typer.Option(help="length of the latency phase (0 skips it)")] = 20.0,
    contenders: Annotated[
        str, typer.Option(help="which of raw,naive,liftstream to run")
    ] = "raw,naive,liftstream",
    profile: Annotated[
        Path | None, typer.Option(help="sample the worker with py-spy; summary (markdown) here")
    ] = None,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 0,
    timeout: Annotated[float, typer.Option(help="seconds each contender may take")] = 600.0,
    triton_only: Annotated[
        bool, typer.Option("--triton-only", help="only Triton's throughput per model")
    ] = False,
    batch_sizes: Annotated[str, typer.Option(help="--triton-only: rows per request")] = "1,64,512,4096",
    concurrency: Annotated[str, typer.Option(help="--triton-only: requests in flight")] = "1,4,16",
    seconds: Annotated[float, typer.Option(help="--triton-only: seconds per measurement")] = 3.0,
    worker_env: Annotated[
        list[str] | None,
        typer.Option(
            help="KEY=VALUE for the liftstream worker (repeatable), e.g. LIFTSTREAM_BATCHING__MAX_SIZE=2048"
        ),
    ] = None,
) -> None:
    """Throughput, latency and memory of liftstream against raw aiokafka and a hand-rolled Faust agent
    (`bench decisions`: how often the status rules are wrong under continuous monitoring)."""
    if ctx.invoked_subcommand is not None:
        return
    # The contenders' clients log every group join and metadata change; the bench reports its own progress.
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = get_settings()
    url = triton_url or settings.triton_url
    if triton_only:
        _triton_only(url, batch_sizes, concurrency, seconds, json_out)
        return
    from stream.bench.run import BenchConfig
    from stream.bench.worker import Target, parse_env

    if latency_seconds < 0 or timeout <= 0:
        raise ConfigError("--latency-seconds must be >= 0 and --timeout > 0")
    config = BenchConfig(
        events=events, seed=seed, partitions=partitions or settings.topics.partitions,
        latency_s=latency_seconds, timeout_s=timeout, profile=profile is not None,
        contenders=tuple(c.strip() for c in contenders.split(",") if c.strip()),
    )  # fmt: skip
    repo = (model_repo or settings.model_repo).resolve()
    target = Target(bootstrap or settings.kafka.bootstrap, url, repo, parse_env(worker_env or []))
    _engine_bench(config, target, settings.local.run_dir / "bench", json_out, profile)


def decisions(
    runs: Annotated[
        int, typer.Option(help="simulated campaigns per scenario; Hillstrom replays half as many")
    ] = 1000,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    hillstrom: Annotated[
        Path | None,
        typer.Option(
            envvar="LIFTSTREAM_HILLSTROM_CSV",
            help="Hillstrom CSV (default: ../shared/data/hillstrom.csv from the repo; skipped if absent)",
        ),
    ] = None,
    min_purchases: Annotated[
        int,
        typer.Option(
            "--min-purchases",
            help="a revenue goal is decided once each arm has this many exposures with a purchase "
            "(LIFTSTREAM_DECISIONS__MIN_PURCHASES_PER_ARM of the worker)",
        ),
    ] = DEFAULT_MIN_PURCHASES_PER_ARM,
) -> None:
    """False alerts, duds flagged and exposures to decision of the old, anytime-valid and covariate-adjusted
    status rules, monitored continuously on simulated campaigns and on Hillstrom replayed as a campaign."""
    if runs < 2:
        raise ConfigError("--runs must be at least 2")
    if min_purchases < 0:
        raise ConfigError("--min-purchases must be at least 0")
    from stream.bench.decisions import DEFAULT_HILLSTROM, Config, run
    from stream.bench.decisions_report import show

    hillstrom = hillstrom or DEFAULT_HILLSTROM
    result = run(Config(runs=runs, seed=seed, hillstrom=hillstrom, min_purchases=min_purchases))
    show(result)
    if json_out is not None:
        _write(json_out, result)


def _engine_bench(
    config: BenchConfig, target: Target, work_root: Path, json_out: Path | None, profile: Path | None
) -> None:
    from stream.bench.profile import markdown
    from stream.bench.report import bench_tables, show
    from stream.bench.run import run_bench

    result, engine = asyncio.run(run_bench(target, config, work_root))
    if profile is not None and engine is not None and engine.profile is not None:
        profile.write_text(markdown(engine.profile))
        result.meta["profile"] = str(profile)
    show(bench_tables(result))
    if json_out is not None:
        _write(json_out, result.to_json())


def _triton_only(url: str, batch_sizes: str, concurrency: str, seconds: float, json_out: Path | None) -> None:
    from stream.bench.report import show, triton_table
    from stream.bench.triton_bench import int_list, triton_grid

    if seconds <= 0:
        raise ConfigError("--seconds must be positive")
    batches, levels = int_list(batch_sizes, "--batch-sizes"), int_list(concurrency, "--concurrency")
    started, load = datetime.now(UTC).isoformat(timespec="seconds"), os.getloadavg()

    def progress(cell: Any) -> None:
        log.info("%s batch %d x %d in flight: %.0f rows/s", cell.model, cell.batch, cell.concurrency,
                 cell.rows_per_s)  # fmt: skip

    grid = asyncio.run(triton_grid(url, batches, levels, seconds, progress))
    show([triton_table(grid.cells)])
    for model, error in grid.errors.items():
        typer.echo(f"{model}: not measured: {error}", err=True)
    if json_out is not None:
        _write(json_out, {
            "effect_scorer_rows_per_s": grid.best("effect_scorer"),
            "promo_encoder_texts_per_s": grid.best("promo_encoder"),
            "cells": [c.to_json() for c in grid.cells],
            "errors": grid.errors,
            "meta": {"triton": url, "model_version": grid.version, "seconds_per_cell": seconds,
                     "started_at": started, "cores": os.cpu_count(), "host": platform.node(),
                     "load_average_at_start": [round(x, 2) for x in load]},
        })  # fmt: skip


def _write(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    typer.echo(f"wrote {path}")
