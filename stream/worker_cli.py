"""`liftstream worker`: one member of the engine's consumer group (run several to share the partitions)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Annotated, Any

import typer
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from stream.errors import ModelError, ServiceError
from stream.scoring.signature import ENCODER, SCORER, check_served
from stream.scoring.triton import newest_common_ready
from stream.settings import Settings, load_settings

log = logging.getLogger(__name__)

LOAD_WAIT_S = 120.0
GC_THRESHOLD = 50_000
NO_MODEL = (
    "no model is served by Triton at {url} (its repository has no {models}); create one with "
    "`liftstream train --history DIR --out MODEL_DIR && liftstream export --model MODEL_DIR` "
    "or run `liftstream demo`"
)


def register(app: typer.Typer) -> None:
    """Adds this package's subcommands to the `liftstream` CLI."""
    app.command("worker")(worker)


def worker(
    bootstrap: Annotated[
        str | None,
        typer.Option(
            "--bootstrap",
            envvar="LIFTSTREAM_KAFKA__BOOTSTRAP",
            help="Kafka bootstrap servers host:port[,...]",
        ),
    ] = None,
    triton_url: Annotated[
        str | None,
        typer.Option("--triton-url", envvar="LIFTSTREAM_TRITON_URL", help="Triton gRPC endpoint host:port"),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", envvar="LIFTSTREAM_METRICS_PORT", help="/metrics port (0 disables)"),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions",
            envvar="LIFTSTREAM_TOPICS__PARTITIONS",
            help="partitions of topics the worker creates",
        ),
    ] = None,
    app_id: Annotated[
        str | None,
        typer.Option(
            "--app-id",
            envvar="LIFTSTREAM_APP_ID",
            help="consumer group and table prefix; workers sharing it split the work",
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", envvar="LIFTSTREAM_STORE", help="table store: memory:// or rocksdb://"),
    ] = None,
) -> None:
    """Consumes clicks, exposures, profiles, promotions; publishes predictions, effects, rankings, drift."""
    given = {"triton_url": triton_url, "metrics_port": metrics_port, "app_id": app_id, "store": store}
    overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if bootstrap is not None:
        overrides["kafka"] = {"bootstrap": bootstrap}
    if partitions is not None:
        overrides["topics"] = {"partitions": partitions}
    run_worker(load_settings(**overrides))


def run_worker(settings: Settings) -> None:
    import faust
    from prometheus_client import CollectorRegistry

    from stream.agents.topics import ensure_topics
    from stream.app import create_app, internal_topics
    from stream.health import Health
    from stream.kafka_access import check_access, check_connection
    from stream.logs import throttle_libraries
    from stream.metrics import Metrics, serve

    version, config = asyncio.run(_served_version(settings.triton_url))
    log.info("Triton at %s serves model version %d", settings.triton_url, version)
    check_served(settings.model_repo, version, config)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    health = Health(settings.health_stale_s)
    app = create_app(settings, metrics=metrics, health=health)
    internal = internal_topics(app)
    asyncio.run(check_connection(settings))
    asyncio.run(ensure_topics(settings, internal))
    asyncio.run(check_access(settings, [t.name for t in internal]))
    app.engine.encoder.load()
    serve(settings.metrics_port, registry, routes=health.routes())
    throttle_libraries()
    _tune_gc()
    faust.Worker(app, loglevel=settings.log_level, quiet=True).execute_from_commandline()


def _tune_gc() -> None:
    """Keeps the cyclic collector off the hot path: everything loaded so far (torch, transformers, the
    app) is frozen out of its scans, and the youngest generation is collected 50x less often. A full
    scan of the worker's heap takes a few hundred ms and used to land in the middle of a batch."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


async def _served_version(url: str) -> tuple[int, dict[str, Any]]:
    """The newest version both models serve and the scorer's config; one clear error when Triton is away or
    holds no model."""
    client = InferenceServerClient(url)
    deadline = time.monotonic() + LOAD_WAIT_S
    try:
        while True:
            try:
                index = await client.get_model_repository_index(as_json=True, client_timeout=10.0)
            except InferenceServerException as exc:
                raise ServiceError(
                    f"Triton at {url} is not reachable ({exc.status() or exc}); "
                    "start it with `liftstream local up` or pass --triton-url"
                ) from exc
            version = newest_common_ready(index)
            if version is not None:
                config = await client.get_model_config(SCORER, as_json=True, client_timeout=10.0)
                return version, config.get("config", config)
            listed = {entry.get("name") for entry in index.get("models", [])}
            if not {ENCODER, SCORER} <= listed:
                raise ModelError(NO_MODEL.format(url=url, models=f"{ENCODER} and {SCORER}"))
            if time.monotonic() > deadline:
                raise ModelError(
                    f"Triton at {url} lists {ENCODER} and {SCORER} but has no common version "
                    f"ready after {LOAD_WAIT_S:g}s; see Triton's log"
                )
            await asyncio.sleep(1.0)
    finally:
        await client.close()
