"""Consuming liftstream's `predictions` downstream: each exposure's prediction once, by `event_id`.

liftstream delivers at least once: after a worker crash or a rebalance the predictions of replayed
exposures are published again, with the exposure's `event_id` (and possibly a newer `model_version`).
Predictions are keyed by user_id, so every copy is on the partition of the first, after it and within one
replay (the messages the worker had not committed): remembering the last `remember` event_ids per partition
catches them. A consumer that restarts forgets what it remembered; a store that must hold each exposure
once writes predictions keyed by event_id (an upsert) instead.

Read the fields you use and ignore the rest: releases add output fields without a new schema_version.

    python docs/examples/consume_predictions.py BOOTSTRAP [TOPIC]   # prints each prediction once
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer


class RecentIds:
    """The last `size` ids seen, oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, event_id: str) -> bool:
        """True the first time `event_id` is seen (since it was last forgotten), False for a copy."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


async def unique_predictions(
    consumer: AIOKafkaConsumer, remember: int = 100_000
) -> AsyncIterator[dict[str, Any]]:
    """Each prediction `consumer` reads, its copies left out (first copy wins)."""
    seen: dict[int, RecentIds] = {}
    async for message in consumer:
        prediction = json.loads(message.value)
        if seen.setdefault(message.partition, RecentIds(remember)).first_time(prediction["event_id"]):
            yield prediction


async def main(bootstrap: str, topic: str = "predictions") -> None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id="recommender", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        async for p in unique_predictions(consumer):
            print(p["event_id"], p["user_id"], p["promotion_id"], p["expected_incremental_revenue"])
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
