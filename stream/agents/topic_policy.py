"""The topic policy as pure checks: what each topic must look like, and what is wrong with the ones found.

Kept apart from the admin-client calls (stream/agents/topics.py) so the worker, `liftstream doctor` and the
tests judge a cluster's topics by the same rules: co-partitioned inputs and table changelogs have the
partition count of the tables, changelogs are compacted, replication and min.insync.replicas reach the
policy. Each problem is one line that names the topic, what it has and what it needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aiokafka.admin import NewTopic

from stream.settings import TopicPolicy

MIN_ISR = "min.insync.replicas"
CLEANUP = "cleanup.policy"


@dataclass(frozen=True)
class TopicSpec:
    """A topic the engine uses: its partition count (None: any), whether it is a changelog (compacted),
    and whether it is co-partitioned with the per-user tables."""

    name: str
    partitions: int | None
    compacted: bool = False
    copartitioned: bool = False
    configs: Mapping[str, str] = field(default_factory=dict)

    def new_topic(self, policy: TopicPolicy, default_partitions: int) -> NewTopic:
        """The topic as the policy creates it."""
        configs = dict(self.configs)
        if self.compacted:
            configs[CLEANUP] = "compact"
        if policy.min_insync_replicas is not None:
            configs[MIN_ISR] = str(policy.min_insync_replicas)
        return NewTopic(
            self.name, self.partitions or default_partitions, policy.replication_factor, topic_configs=configs
        )


@dataclass(frozen=True)
class TopicState:
    """An existing topic as the cluster describes it; `replicas`: the smallest replica set of a partition."""

    name: str
    partitions: int
    replicas: int
    configs: Mapping[str, str]


def spec_of(topic: NewTopic, *, copartitioned: bool = False) -> TopicSpec:
    """The spec of a topic declared the way Faust would (internal topics: changelogs, leader)."""
    configs = {k: str(v) for k, v in topic.topic_configs.items()}
    compacted = "compact" in configs.pop(CLEANUP, "")
    return TopicSpec(topic.name, topic.num_partitions, compacted, copartitioned, configs)


def problems(
    specs: Iterable[TopicSpec], found: Mapping[str, TopicState], policy: TopicPolicy, copartitions: int
) -> list[str]:
    """Every way the found topics fail the specs and the policy, one line each (empty: all is well)."""
    out: list[str] = []
    for spec in specs:
        state = found.get(spec.name)
        if state is None:
            out.append(f"topic {spec.name} does not exist (topic_policy.mode={policy.mode})")
            continue
        out += _topic_problems(spec, state, policy, copartitions)
    return out


def _topic_problems(spec: TopicSpec, state: TopicState, policy: TopicPolicy, copartitions: int) -> list[str]:
    out = []
    if spec.copartitioned and state.partitions != copartitions:
        out.append(
            f"topic {spec.name} has {state.partitions} partitions; the co-partitioned inputs and tables need "
            f"topics.partitions = {copartitions}"
        )
    elif spec.partitions is not None and state.partitions != spec.partitions:
        out.append(f"topic {spec.name} has {state.partitions} partitions; its table has {spec.partitions}")
    if spec.compacted and "compact" not in state.configs.get(CLEANUP, ""):
        out.append(
            f"topic {spec.name} is a changelog but has {CLEANUP}={state.configs.get(CLEANUP, '?')}; "
            "it needs compact (else table state is lost on recovery)"
        )
    if state.replicas < policy.replication_factor:
        out.append(
            f"topic {spec.name} has replication factor {state.replicas}; "
            f"topic_policy.replication_factor is {policy.replication_factor}"
        )
    need, have = policy.min_insync_replicas, state.configs.get(MIN_ISR)
    if need is not None and (have is None or int(have) < need):
        out.append(f"topic {spec.name} has {MIN_ISR}={have}; topic_policy.min_insync_replicas is {need}")
    return out
