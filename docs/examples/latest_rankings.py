"""The latest `PromotionRanking` of every user, from liftstream's `promotion-rankings` topic.

Rankings are keyed by user_id, so each user's are on one partition in the order the worker published them:
the last one read is the latest (a ranking republished after a crash is of the same click, or a newer
one). `catch_up` reads from the beginning to the end offsets of the moment it starts, which fills a
recommender's cache at start; keep calling `RankingView.apply` on later messages to follow.

    python docs/examples/latest_rankings.py BOOTSTRAP [TOPIC]   # prints each user's best promotion
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from aiokafka import AIOKafkaConsumer


class RankingView:
    """user_id → the latest ranking read."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}

    def apply(self, value: bytes) -> None:
        ranking = json.loads(value)
        self.latest[ranking["user_id"]] = ranking

    def best(self, user_id: str) -> str | None:
        """The promotion_id ranked first for `user_id`, None when it has no ranking or an empty one."""
        ranked = self.latest.get(user_id, {}).get("ranked", [])
        return ranked[0]["promotion_id"] if ranked else None


async def catch_up(bootstrap: str, topic: str = "promotion-rankings") -> RankingView:
    """Every ranking on `topic` up to its end offsets now, as a view (no group: nothing is committed)."""
    # Without a group the consumer is assigned every partition of the topic, and commits nothing.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = sorted(consumer.assignment())
        end = await consumer.end_offsets(partitions)
        view = RankingView()
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                for message in messages:
                    view.apply(message.value)
        return view
    finally:
        await consumer.stop()


async def main(bootstrap: str, topic: str = "promotion-rankings") -> None:
    view = await catch_up(bootstrap, topic)
    for user_id in sorted(view.latest):
        print(user_id, view.best(user_id))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
