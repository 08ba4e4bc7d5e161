"""Start-up checks of the worker's Kafka principal, each failing as one clear line: it can connect (the
credentials and the TLS trust are accepted), and it holds the ACLs the engine needs.

aiokafka reports refused credentials only in a log line and then fails with "Unable to bootstrap";
`check_connection` opens one connection itself so the reason is the error. Without the ACL check a
missing WRITE ACL on an output topic shows only when the first batch is published, deep in Faust's
producer, and the worker dies mid-stream on every restart. Kafka tells a client what it may do with each
topic in a metadata response (KIP-430, Metadata v8 `include_topic_authorized_operations`); aiokafka 0.14
speaks Metadata up to v5, so this module carries the v8 request and response. The group is
checked through DescribeGroups' authorized operations, which aiokafka supports.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Mapping, Sequence

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    GroupCoordinatorNotAvailableError,
    GroupLoadInProgressError,
    KafkaError,
    SaslAuthenticationFailed,
)
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int16, Int32, Schema, String

from stream.agents.topics import topic_names
from stream.errors import ConfigError, ServiceError
from stream.events.models import INPUT_EVENTS, OUTPUT_EVENTS
from stream.kafka_options import client_options, let_tls_close, security_options
from stream.outputs.partials import PARTIALS
from stream.settings import Settings

READ, WRITE = 3, 4
"""Kafka's AclOperation codes; an authorized-operations field has bit `code` set for each one allowed."""
OPERATIONS = {READ: "READ", WRITE: "WRITE"}
NOT_REQUESTED = -(2**31)
"""What a broker puts in an authorized-operations field it was not asked for (or cannot tell)."""
TOPIC_AUTHORIZATION_FAILED = 29
COORDINATOR_WAIT_S = 30.0
"""How long a fresh cluster may take to create its offsets topic (no group coordinator before that)."""
CONNECT_TIMEOUT_MS = 10_000


class _MetadataResponseV8(Response):
    API_KEY = 3
    API_VERSION = 8
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("brokers", Array(("node_id", Int32), ("host", String()), ("port", Int32), ("rack", String()))),
        ("cluster_id", String()),
        ("controller_id", Int32),
        (
            "topics",
            Array(
                ("error_code", Int16),
                ("topic", String()),
                ("is_internal", Boolean),
                (
                    "partitions",
                    Array(
                        ("error_code", Int16),
                        ("partition", Int32),
                        ("leader", Int32),
                        ("leader_epoch", Int32),
                        ("replicas", Array(Int32)),
                        ("isr", Array(Int32)),
                        ("offline_replicas", Array(Int32)),
                    ),
                ),
                ("topic_authorized_operations", Int32),
            ),
        ),
        ("cluster_authorized_operations", Int32),
    )


class _MetadataRequestV8(RequestStruct):
    API_KEY = 3
    API_VERSION = 8
    RESPONSE_TYPE = _MetadataResponseV8
    SCHEMA = Schema(
        ("topics", Array(String())),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
    )


class _AuthorizedOperations(Request[_MetadataRequestV8]):
    API_KEY = 3

    def __init__(self, topics: Sequence[str]) -> None:
        self.topics = list(topics)

    def build(self, request_struct_class: type[_MetadataRequestV8]) -> _MetadataRequestV8:
        return request_struct_class(self.topics, False, False, True)


def needed(settings: Settings, internal: Iterable[str]) -> dict[str, set[int]]:
    """Topic → the operations the worker performs on it: it reads its inputs, writes its outputs, and
    reads and writes its internal topics (partials, changelogs, Faust's leader topic)."""
    names = topic_names(settings)
    need = {names[t]: {READ} for t in INPUT_EVENTS} | {names[t]: {WRITE} for t in OUTPUT_EVENTS}
    for name in (names[PARTIALS], *internal):
        need[name] = {READ, WRITE}
    return need


def missing(need: Mapping[str, set[int]], allowed: Mapping[str, int | None]) -> list[str]:
    """What the principal lacks, one phrase per topic; `allowed` maps a topic to its authorized-operations
    bits, None where the broker refused even to describe it (no DESCRIBE ACL)."""
    lacking = []
    for topic, operations in sorted(need.items()):
        names = [OPERATIONS[o] for o in sorted(operations)]
        bits = allowed.get(topic)
        if bits is None:
            lacking.append(f"DESCRIBE/{'/'.join(names)} on topic {topic}")
        elif bits != NOT_REQUESTED:
            absent = [OPERATIONS[o] for o in sorted(operations) if not bits & (1 << o)]
            if absent:
                lacking.append(f"{'/'.join(absent)} on topic {topic}")
    return lacking


async def topic_operations(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> dict[str, int | None]:
    """Topic → the authorized-operations bits the broker reports for this principal (None: refused)."""
    response = await admin._client.send(admin._client.get_random_node(), _AuthorizedOperations(topics))
    allowed: dict[str, int | None] = {}
    for topic in response.to_object()["topics"]:
        refused = topic["error_code"] == TOPIC_AUTHORIZATION_FAILED
        allowed[topic["topic"]] = None if refused else topic["topic_authorized_operations"]
    return allowed


async def group_readable(admin: AIOKafkaAdminClient, group: str) -> bool:
    """Whether the principal may join `group` (READ); waits for a fresh cluster's group coordinator."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + COORDINATOR_WAIT_S
    while True:
        try:
            (response,) = await admin.describe_consumer_groups([group], include_authorized_operations=True)
            break
        except GroupAuthorizationFailedError:
            return False
        except (GroupCoordinatorNotAvailableError, GroupLoadInProgressError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)
    (described,) = response.to_object()["groups"]
    if described["error_code"] == GroupAuthorizationFailedError.errno:
        return False
    bits = described.get("authorized_operations", NOT_REQUESTED)
    return bits == NOT_REQUESTED or bool(bits & (1 << READ))


async def check_access(settings: Settings, internal: Iterable[str]) -> None:
    """Raises ConfigError naming every ACL the worker's principal lacks (topics and consumer group)."""
    need = needed(settings, internal)
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    try:
        await admin.start()
        lacking = missing(need, await topic_operations(admin, sorted(need)))
        if not await group_readable(admin, settings.app_id):
            lacking.append(f"READ on group {settings.app_id}")
    except KafkaError as exc:
        raise ServiceError(f"Kafka at {settings.kafka.bootstrap} is not usable: {exc}") from exc
    finally:
        await admin.close()
        await let_tls_close()
    if lacking:
        raise ConfigError(f"the Kafka principal of this worker lacks ACLs: {'; '.join(lacking)}")


async def check_connection(settings: Settings) -> None:
    """Opens one connection to a bootstrap broker with the worker's security settings: refused credentials
    or an untrusted certificate are a ConfigError naming them, no reachable broker a ServiceError."""
    k = settings.kafka
    options = security_options(k)
    unreachable: list[str] = []
    for address in k.bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            conn = await create_conn(host, int(port), request_timeout_ms=CONNECT_TIMEOUT_MS, **options)
        except SaslAuthenticationFailed as exc:
            who = f", user {k.sasl_username}" if k.sasl_username else ""
            reason = exc.args[0] if exc.args else exc
            raise ConfigError(
                f"Kafka at {address} refused the credentials ({k.sasl_mechanism}{who}): {reason}"
            ) from exc
        except ssl.SSLError as exc:
            raise ConfigError(
                f"TLS with Kafka at {address} failed ({exc}): see kafka.ssl_cafile, ssl_certfile, ssl_keyfile"
            ) from exc
        except (TimeoutError, OSError, KafkaError) as exc:
            unreachable.append(f"{address}: {exc or type(exc).__name__}")
            continue
        conn.close()
        await let_tls_close()
        return
    raise ServiceError(f"no Kafka broker reachable ({'; '.join(unreachable)})")
