"""A minimal Faust app with a windowed table on liftstream's app class, run as a worker by test_faust.py.

It is a `LiftstreamApp` for that class's consumer: with plain `faust.App` a restarted worker sometimes never
processed the first messages produced while it was down and still committed past them (`b0` missing from
the outputs, input committed to its end), or stalled on them; see `_SeekFirstConsumer._getmany` in
stream/app.py.
"""

from __future__ import annotations

import os
from datetime import timedelta

import faust

from stream.app import LiftstreamApp

PREFIX = os.environ["COUNTER_PREFIX"]

app = LiftstreamApp(
    f"{PREFIX}-app",
    broker=f"kafka://{os.environ['COUNTER_BROKER']}",
    store="memory://",
    topic_partitions=1,
    web_enabled=False,
    # A restarted worker must not wait a minute for the stopped one's group membership to expire.
    broker_session_timeout=10,
    broker_heartbeat_interval=2,
    datadir=os.environ["COUNTER_DATADIR"],
)
source = app.topic(f"{PREFIX}-in", key_type=str, value_type=str, key_serializer="raw", value_serializer="raw")
sink = app.topic(f"{PREFIX}-out", key_type=str, value_type=str, key_serializer="raw", value_serializer="raw")
counts = app.Table(f"{PREFIX}-counts", default=int, partitions=1).tumbling(
    timedelta(hours=1), expires=timedelta(days=1)
)


@app.agent(source)
async def count(stream: faust.StreamT) -> None:
    async for key, value in stream.items():
        counts[key] += 1
        await sink.send(key=key, value=f"{value}:{counts[key].now()}")


if __name__ == "__main__":
    app.main()
