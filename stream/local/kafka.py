"""Apache Kafka in KRaft mode from Maven Central jars (deploy/local/kafka/pom.xml): the single node of
`liftstream local up`, or a cluster of several nodes (the tests' replication and fail-over runs)."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from stream.errors import PrerequisiteError, ServiceError
from stream.local.process import Managed, wait_ready

POM = Path(__file__).resolve().parents[2] / "deploy" / "local" / "kafka" / "pom.xml"
JAR_CACHE = Path.home() / ".cache" / "liftstream"

_LOG4J = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
"""


def kafka_version(pom: Path = POM) -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not node.text:
        raise ServiceError(f"{pom} does not set <kafka.version>")
    return node.text


def resolve_jars(pom: Path = POM) -> Path:
    """Copy the broker's runtime jars once into ~/.cache/liftstream/kafka-<version>/libs."""
    libs = JAR_CACHE / f"kafka-{kafka_version(pom)}" / "libs"
    if (libs / ".complete").exists():
        return libs
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            pkg = "openjdk-17-jre-headless" if tool == "java" else "maven"
            raise PrerequisiteError(f"{tool} not found: install it with `apt-get install -y {pkg}`")
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}",
        "-DincludeScope=runtime",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise ServiceError(
            f"maven could not resolve the Kafka jars:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    (libs / ".complete").touch()
    return libs


@dataclass(frozen=True)
class Node:
    """One KRaft node (broker and controller in one process) of a local cluster."""

    node_id: int
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def server_properties(
    data: Path, node: Node, nodes: Sequence[Node], overrides: Mapping[str, str] | None = None
) -> str:
    """A combined broker + controller; with several nodes, internal and auto-created topics are replicated
    like a production cluster's (3 replicas, min ISR 2, or as many as there are nodes). `overrides`
    replace or add properties (listeners and security for the tests' secured broker)."""
    replicas = min(3, len(nodes))
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data),
        "num.partitions": "1",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": str(replicas),
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min(2, replicas)),
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min(2, replicas)),
        "group.initial.rebalance.delay.ms": "0",
        "message.max.bytes": "2097152",
        "log.retention.hours": "24",
        **(overrides or {}),
    }
    return "\n".join(f"{key}={value}" for key, value in props.items()) + "\n"


def start(home: Path, port: int, controller_port: int, heap: str = "1g") -> Managed:
    """A single-node cluster (what `liftstream local up` runs)."""
    node = Node(1, port, controller_port)
    svc = launch(home, node, [node], heap, cluster_id(home))
    wait_ready(svc, lambda: ready(node.bootstrap), timeout_s=90)
    return svc


def start_cluster(
    home: Path,
    nodes: Sequence[Node],
    heap: str = "512m",
    overrides: Mapping[str, str] | None = None,
    format_args: Sequence[str] = (),
    probe: Callable[[Node], bool] | None = None,
) -> list[Managed]:
    """A KRaft cluster of `nodes` (each in `home/node<id>`); returns once every broker answers `probe`
    (default: a plaintext metadata request to its port)."""
    cluster = cluster_id(home)
    services = [launch(node_home(home, n), n, nodes, heap, cluster, overrides, format_args) for n in nodes]
    check = probe or (lambda n: ready(n.bootstrap))
    for svc, node in zip(services, nodes, strict=True):
        wait_ready(svc, partial(check, node), timeout_s=120)
    return services


def node_home(home: Path, node: Node) -> Path:
    return home / f"node{node.node_id}"


def launch(
    home: Path,
    node: Node,
    nodes: Sequence[Node],
    heap: str,
    cluster: str,
    overrides: Mapping[str, str] | None = None,
    format_args: Sequence[str] = (),
) -> Managed:
    """Formats the node's storage once and starts it without waiting (a quorum needs its peers up);
    a node that is already running is left alone, a stopped one restarts on its data."""
    svc = Managed("kafka", home)
    if svc.pid() is not None:
        return svc
    libs = resolve_jars()
    data = home / "data"
    props = home / "server.properties"
    props.parent.mkdir(parents=True, exist_ok=True)
    props.write_text(server_properties(data, node, nodes, overrides))
    log4j = home / "log4j2.properties"
    log4j.write_text(_LOG4J.format(log=home / "server.log"))
    java = ["java", f"-Xmx{heap}", f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]
    if not (data / "meta.properties").exists():
        _format(java, props, cluster, format_args)
    _ensure_free(node.port, "kafka")
    svc.start([*java, "kafka.Kafka", str(props)], cwd=home)
    return svc


def cluster_id(home: Path) -> str:
    """The id the nodes of the cluster in `home` are formatted with (made once, kept there)."""
    path = home / "cluster.id"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
    return path.read_text().strip()


def _format(java: list[str], props: Path, cluster_id: str, extra: Sequence[str]) -> None:
    fmt = subprocess.run(  # noqa: S603
        [*java, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", f"--config={props}"]
        + list(extra),
        capture_output=True,
        text=True,
        check=False,
    )
    if fmt.returncode != 0:
        raise ServiceError(f"kafka storage format failed: {fmt.stdout[-1500:]}{fmt.stderr[-1500:]}")


def ready(bootstrap: str, options: Mapping[str, Any] | None = None) -> bool:
    """True when the broker answers a metadata request (with at least one broker listed); `options` are
    the client's security arguments (stream/kafka_options.py) for a secured listener."""
    import asyncio
    import logging

    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    from stream.kafka_options import let_tls_close

    # Refused connections while the broker boots are expected; aiokafka would log each one as an error.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    async def probe() -> bool:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, **(options or {}))
        try:
            await client.bootstrap()
            return bool(client.cluster.brokers())
        except (KafkaError, OSError):
            return False
        finally:
            await client.close()
            if options:
                await let_tls_close()

    return asyncio.run(probe())


def _ensure_free(port: int, name: str) -> None:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            raise ServiceError(f"port {port} for {name} is taken by a process liftstream did not start")
