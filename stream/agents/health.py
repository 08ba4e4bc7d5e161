"""The event-loop side of `/live` and `/ready` (stream/health.py): a heartbeat every second (which also
ticks the write fence, stream/batching/fence.py), and every few seconds the input partitions this worker
owns and whether Triton serves both models."""

from __future__ import annotations

import logging

from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from stream.agents.adapter import rejoin
from stream.agents.engine import Engine
from stream.health import Health
from stream.scoring.signature import ENCODER, SCORER

log = logging.getLogger(__name__)

BEAT_INTERVAL_S = 1.0
READY_INTERVAL_S = 5.0
TRITON_TIMEOUT_S = 3.0


def register(engine: Engine, health: Health) -> None:
    app = engine.app
    triton: dict[str, InferenceServerClient] = {}

    @app.timer(BEAT_INTERVAL_S, name="heartbeat")
    async def heartbeat() -> None:
        health.beat()
        if engine.fence.tick():
            log.warning(
                "the event loop stood still over %gs: the batches taken before are fenced; rejoining",
                engine.fence.stall_s,
            )
            rejoin(app)

    @app.timer(READY_INTERVAL_S, name="readiness")
    async def readiness() -> None:
        health.partitions = len(engine.owned_partitions())
        if not triton:  # created inside the loop that uses it
            triton["client"] = InferenceServerClient(engine.settings.triton_url)
        health.triton = await triton_problem(triton["client"])


async def triton_problem(client: InferenceServerClient) -> str | None:
    """Why Triton cannot score now (server or a model not ready, or unreachable); None when it can."""
    try:
        if not await client.is_server_ready(client_timeout=TRITON_TIMEOUT_S):
            return "server not ready"
        for model in (ENCODER, SCORER):
            if not await client.is_model_ready(model, client_timeout=TRITON_TIMEOUT_S):
                return f"model {model} not ready"
    except InferenceServerException as exc:
        return f"unreachable ({exc.status() or exc})"
    return None
