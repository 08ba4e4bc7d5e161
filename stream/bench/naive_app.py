"""The hand-rolled baseline: the Faust agent a user writes without liftstream, run as its own worker.

One agent over the four input topics; for every event a JSON decode, an update of the per-key table
(its changelog write included) and an awaited `topic.send()` of a small result — no batching anywhere.

    LIFTSTREAM_BENCH_NAIVE='{"app_id": ..., "bootstrap": ..., ...}' python -m stream.bench.naive_app
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import faust

ENV = "LIFTSTREAM_BENCH_NAIVE"


@dataclass(frozen=True)
class NaiveConfig:
    app_id: str
    bootstrap: str
    inputs: tuple[str, ...]
    output: str
    partitions: int
    datadir: str

    def to_env(self) -> dict[str, str]:
        return {ENV: json.dumps({**self.__dict__, "inputs": list(self.inputs)})}

    @classmethod
    def from_env(cls) -> NaiveConfig:
        raw = json.loads(os.environ[ENV])
        return cls(**{**raw, "inputs": tuple(raw["inputs"])})


def create_app(config: NaiveConfig) -> faust.App:
    app = faust.App(
        config.app_id,
        broker=f"kafka://{config.bootstrap}",
        store="memory://",
        topic_partitions=config.partitions,
        datadir=config.datadir,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    source = app.topic(*config.inputs, **raw)
    sink = app.topic(config.output, **raw)
    state = app.Table("state", default=dict, partitions=config.partitions)

    @app.agent(source)
    async def per_event(stream: faust.StreamT[bytes]) -> None:
        async for key, value in stream.items():
            event = json.loads(value)
            user = key.decode()
            seen = state[user]
            clicks = seen.get("clicks", 0) + (event.get("kind") is not None)
            exposures = seen.get("exposures", 0) + (event.get("arm") is not None)
            state[user] = {"clicks": clicks, "exposures": exposures, "last_ts": event["ts"]}
            out = {"event_id": event.get("event_id"), "clicks": clicks, "exposures": exposures}
            await sink.send(key=key, value=json.dumps(out).encode())

    return app


if __name__ == "__main__":
    naive = create_app(NaiveConfig.from_env())
    faust.Worker(naive, loglevel="WARNING", quiet=True).execute_from_commandline()
