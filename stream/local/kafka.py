"""Apache Kafka, single node in KRaft mode, from Maven Central jars resolved by deploy/local/kafka/pom.xml."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

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


def server_properties(data: Path, port: int, controller_port: int) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=1",
            "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "message.max.bytes=2097152",
            "log.retention.hours=24",
            "",
        ]
    )


def start(home: Path, port: int, controller_port: int, heap: str = "1g") -> Managed:
    svc = Managed("kafka", home)
    if svc.pid() is not None:
        return svc
    libs = resolve_jars()
    classpath = f"{libs}/*"
    data = home / "data"
    props = home / "server.properties"
    props.parent.mkdir(parents=True, exist_ok=True)
    props.write_text(server_properties(data, port, controller_port))
    log4j = home / "log4j2.properties"
    log4j.write_text(_LOG4J.format(log=home / "server.log"))
    java = ["java", f"-Xmx{heap}", f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath]
    if not (data / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        fmt = subprocess.run(  # noqa: S603
            [*java, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", f"--config={props}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            raise ServiceError(f"kafka storage format failed: {fmt.stdout[-1500:]}{fmt.stderr[-1500:]}")
    _ensure_free(port, "kafka")
    svc.start([*java, "kafka.Kafka", str(props)], cwd=home)
    wait_ready(svc, lambda: ready(f"127.0.0.1:{port}"), timeout_s=90)
    return svc


def ready(bootstrap: str) -> bool:
    """True when the broker answers a metadata request (with at least one broker listed)."""
    import asyncio
    import logging

    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    # Refused connections while the broker boots are expected; aiokafka would log each one as an error.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    async def probe() -> bool:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await client.bootstrap()
            return bool(client.cluster.brokers())
        except (KafkaError, OSError):
            return False
        finally:
            await client.close()

    return asyncio.run(probe())


def _ensure_free(port: int, name: str) -> None:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            raise ServiceError(f"port {port} for {name} is taken by a process liftstream did not start")
