"""Exact state on a 3-broker KRaft cluster (replication 3, min ISR 2) while brokers die: kill -9 of the
leader of an input partition, then of the leader of a changelog partition, mid-stream. Every exposure is
predicted and the exactness oracle of tests/stream/test_exactness.py (features, partials, effects) passes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from stream.agents.topics import ensure_topics
from stream.local import kafka
from stream.local.process import Managed
from stream.local.triton import free_ports
from stream.settings import Kafka, Settings
from tests.stream.test_exactness import Workers, _check, _drive, _world
from tests.stream.workers import engine_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

DOWN_S = 5.0
"""How long a killed broker stays down before it is restarted (on its data, as a pod would be)."""


@dataclass
class Cluster:
    home: Path
    nodes: list[kafka.Node]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    def service(self, node_id: int) -> Managed:
        return Managed("kafka", kafka.node_home(self.home, self.nodes[node_id - 1]))

    async def leader(self, topic: str, partition: int) -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        return next(int(p["leader"]) for p in described["partitions"] if p["partition"] == partition)

    async def in_sync(self, topics: list[str], timeout_s: float = 90) -> None:
        """Waits until every partition of `topics` has all its replicas in sync again."""
        deadline = time.monotonic() + timeout_s
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            while True:
                described = await admin.describe_topics(topics)
                if all(len(p["isr"]) == len(p["replicas"]) for d in described for p in d["partitions"]):
                    return
                assert time.monotonic() < deadline, f"replicas not back in sync: {described}"
                await asyncio.sleep(1.0)
        finally:
            await admin.close()

    async def kill_and_restart(self, node_id: int) -> None:
        """kill -9 of one broker; after DOWN_S it starts again on its data and rejoins the ISR."""
        svc = self.service(node_id)
        pid = svc.pid()
        assert pid is not None, f"broker {node_id} is not running"
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(DOWN_S)
        node = self.nodes[node_id - 1]
        home = kafka.node_home(self.home, node)
        await asyncio.to_thread(kafka.launch, home, node, self.nodes, "512m", kafka.cluster_id(self.home))
        await asyncio.to_thread(kafka.wait_ready, svc, lambda: kafka.ready(node.bootstrap), 120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    ports = free_ports(6)
    nodes = [kafka.Node(i + 1, ports[2 * i], ports[2 * i + 1]) for i in range(3)]
    home = tmp_path_factory.mktemp("cluster")
    services = kafka.start_cluster(home, nodes)
    try:
        yield Cluster(home, nodes)
    finally:
        for svc in services:
            svc.stop()


def test_kill_9_of_the_leaders_of_an_input_and_a_changelog_partition_leaves_exact_state(
    cluster: Cluster, test_settings: Settings, served_model: Path, tmp_path: Path
) -> None:
    base = test_settings.model_copy(update={"kafka": Kafka(bootstrap=cluster.bootstrap)})
    settings = engine_settings(
        base, f"t{os.urandom(5).hex()}", tmp_path / "run",
        topic_policy={"replication_factor": 3, "min_insync_replicas": 2},
    )
    # The input topics are created once, before any broker dies; the test's own sends then skip the topic
    # policy (its admin requests go to a random broker, which may be the dead one). The workers apply it.
    asyncio.run(ensure_topics(settings))
    unchecked = settings.topic_policy.model_copy(update={"mode": "none"})
    feed = settings.model_copy(update={"topic_policy": unchecked})
    w = _world(63)
    changelog = f"{settings.app_id}-users-changelog"
    killed: list[int] = []

    async def kill_input_leader() -> None:
        killed.append(await cluster.leader(settings.topics.exposures, 0))
        await cluster.kill_and_restart(killed[-1])
        await cluster.in_sync([settings.topics.exposures, changelog])

    async def kill_changelog_leader() -> None:
        killed.append(await cluster.leader(changelog, 1))
        await cluster.kill_and_restart(killed[-1])

    with Workers(settings, tmp_path).running() as workers:
        workers.start()
        run = asyncio.run(
            _drive(feed, w, workers, [(0.3, 0.55, kill_input_leader), (0.6, 0.85, kill_changelog_leader)])
        )
    print(f"killed broker {killed[0]} (leading exposures-0), then {killed[1]} (leading {changelog}-1)")  # noqa: T201
    _check(run)
