"""`liftstream doctor`'s Kafka checks: connection and authentication, each topic against the topic policy
(partitions, replication, configs), and the ACLs of the worker's operations."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from stream.agents.topic_policy import MIN_ISR, TopicSpec, TopicState, problems
from stream.agents.topics import describe_topics, topic_specs
from stream.doctor.acls import acl_bindings
from stream.doctor.report import Line, fail, ok
from stream.errors import LiftstreamError
from stream.kafka_access import check_connection, group_readable, missing, needed, topic_operations
from stream.kafka_options import client_options
from stream.settings import Settings

REQUEST_TIMEOUT_MS = 10_000
"""A doctor answers within seconds: a broker that does not is a finding, not a wait."""


async def kafka_lines(settings: Settings, internal: Sequence[NewTopic]) -> list[Line]:
    """The Kafka lines (`internal`: the app's changelogs and leader topic); after a failed connection the
    others are left out (they could only repeat it)."""
    specs = topic_specs(settings, internal)
    k = settings.kafka
    auth = k.security_protocol + (f" {k.sasl_mechanism}" if k.sasl_mechanism else "")
    try:
        await check_connection(settings)  # the worker's own first step: names refused credentials, bad TLS
    except LiftstreamError as exc:
        return [fail("kafka", f"{exc} (over {auth})")]
    admin = AIOKafkaAdminClient(**{**client_options(k), "request_timeout_ms": REQUEST_TIMEOUT_MS})
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    except KafkaError as exc:
        await admin.close()
        return [fail("kafka", f"cannot connect to {k.bootstrap} over {auth}: {exc}")]
    try:
        lines = [ok("kafka", f"connected to {k.bootstrap} over {auth}: cluster {cluster.get('cluster_id')}, "
                             f"{len(cluster.get('brokers', []))} broker(s)")]
        lines += topic_lines(settings, specs, await describe_topics(admin, [s.name for s in specs]))
        lines += await acl_lines(admin, settings, [t.name for t in internal])
        return lines
    except KafkaError as exc:
        return [*lines, fail("kafka", f"{k.bootstrap} stopped answering: {exc}")]
    finally:
        await admin.close()


def topic_lines(settings: Settings, specs: Sequence[TopicSpec], found: dict[str, TopicState]) -> list[Line]:
    """One line per topic, or one per problem of a topic; a missing topic is fine in mode create only."""
    policy = settings.topic_policy
    lines = []
    for spec in specs:
        state = found.get(spec.name)
        if state is None and policy.mode == "create":
            lines.append(ok("topic", f"{spec.name} does not exist yet; the worker creates it (mode create)"))
            continue
        wrong = problems([spec], found, policy, settings.topics.partitions)
        if wrong:
            lines += [fail("topic", line.removeprefix("topic ")) for line in wrong]
        elif state is not None:
            configs = ", ".join(f"{c}={state.configs[c]}" for c in ("cleanup.policy", MIN_ISR)
                                if c in state.configs)
            lines.append(ok("topic", f"{spec.name}: {state.partitions} partitions, replication factor "
                                     f"{state.replicas}, {configs}"))
    return lines


async def acl_lines(admin: AIOKafkaAdminClient, settings: Settings, internal: Sequence[str]) -> list[Line]:
    """"no authorizer", or whether the principal may do what the worker does (topics and group)."""
    try:
        bindings = await acl_bindings(admin)
    except PermissionError as exc:  # the operations below are still asked of the brokers
        listed = f"the principal may not describe the cluster's ACLs ({exc})"
    else:
        if bindings is None:
            return [ok("acls", "no authorizer on the cluster: every operation is allowed")]
        listed = f"authorizer with {bindings} ACL binding(s)"
    need = needed(settings, internal)
    lacking = missing(need, await topic_operations(admin, sorted(need)))
    if not await group_readable(admin, settings.app_id):
        lacking.append(f"READ on group {settings.app_id}")
    if lacking:
        return [fail("acls", f"{listed}; the principal lacks {what}") for what in lacking]
    return [ok("acls", f"{listed}; the principal may do all the worker does on {len(need)} topics and "
                       f"group {settings.app_id}")]
