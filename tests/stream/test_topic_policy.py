"""The topic policy: its pure rules, and create / verify / none against the real Kafka."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.agents.topic_policy import TopicSpec, TopicState, problems
from stream.agents.topics import describe_topics, described, ensure_topics, topic_names, topic_specs
from stream.errors import ConfigError
from stream.settings import Settings, TopicPolicy, load_settings
from tests.stream.workers import engine_settings, start_worker, stop_worker


def _state(name: str, partitions: int = 4, replicas: int = 3, **configs: str) -> TopicState:
    return TopicState(name, partitions, replicas, {"cleanup.policy": "delete", **configs})


@pytest.mark.unit
def test_a_cluster_that_meets_the_policy_has_no_problems() -> None:
    policy = TopicPolicy(replication_factor=3, min_insync_replicas=2)
    specs = [TopicSpec("clicks", None, copartitioned=True), TopicSpec("alerts", None),
             TopicSpec("app-users-changelog", 4, compacted=True)]
    found = {
        "clicks": _state("clicks", **{"min.insync.replicas": "2"}),
        "alerts": _state("alerts", partitions=1, **{"min.insync.replicas": "3"}),
        "app-users-changelog": _state("app-users-changelog", **{"cleanup.policy": "compact",
                                                                 "min.insync.replicas": "2"}),
    }
    assert problems(specs, found, policy, copartitions=4) == []


@pytest.mark.unit
def test_each_problem_is_one_line_naming_the_topic() -> None:
    policy = TopicPolicy(mode="verify", replication_factor=3, min_insync_replicas=2)
    specs = [TopicSpec("clicks", None, copartitioned=True), TopicSpec("exposures", None, copartitioned=True),
             TopicSpec("app-users-changelog", 4, compacted=True), TopicSpec("alerts", None)]
    found = {
        "clicks": _state("clicks", partitions=8, **{"min.insync.replicas": "2"}),
        "exposures": _state("exposures", replicas=1, **{"min.insync.replicas": "1"}),
        "app-users-changelog": _state("app-users-changelog", partitions=2, **{"min.insync.replicas": "2"}),
    }
    assert problems(specs, found, policy, copartitions=4) == [
        "topic clicks has 8 partitions; the co-partitioned inputs and tables need topics.partitions = 4",
        "topic exposures has replication factor 1; topic_policy.replication_factor is 3",
        "topic exposures has min.insync.replicas=1; topic_policy.min_insync_replicas is 2",
        "topic app-users-changelog has 2 partitions; its table has 4",
        "topic app-users-changelog is a changelog but has cleanup.policy=delete; "
        "it needs compact (else table state is lost on recovery)",
        "topic alerts does not exist (topic_policy.mode=verify)",
    ]


@pytest.mark.unit
def test_created_topics_carry_the_policy() -> None:
    policy = TopicPolicy(replication_factor=3, min_insync_replicas=2)
    topic = TopicSpec("app-users-changelog", 4, compacted=True).new_topic(policy, 8)
    assert (topic.num_partitions, topic.replication_factor) == (4, 3)
    assert topic.topic_configs == {"cleanup.policy": "compact", "min.insync.replicas": "2"}
    assert TopicSpec("alerts", None).new_topic(policy, 8).num_partitions == 8


@pytest.mark.unit
def test_the_prefix_reaches_every_topic_and_the_group_once() -> None:
    settings = load_settings(topic_policy={"prefix": "team-a."})
    assert settings.app_id == "team-a.liftstream"
    assert all(name.startswith("team-a.") for name in topic_names(settings).values())
    assert topic_names(settings)["clicks"] == "team-a.clicks"
    # A child process gets the resolved names back as environment variables: no second prefix.
    again = load_settings(app_id=settings.app_id, topics=settings.topics.model_dump(),
                          topic_policy={"prefix": "team-a."})
    assert topic_names(again) == topic_names(settings)


@pytest.mark.unit
def test_a_min_isr_above_the_replicas_is_one_clear_config_error() -> None:
    with pytest.raises(ConfigError, match="min_insync_replicas 3 exceeds replication_factor 2"):
        load_settings(topic_policy={"replication_factor": 2, "min_insync_replicas": 3})


def _settings(test_settings: Settings, topic_prefix: str, tmp_path: Path, **policy: object) -> Settings:
    return engine_settings(test_settings, topic_prefix, tmp_path, topic_policy=policy)


async def _admin(settings: Settings) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    return admin


@pytest.mark.integration
async def test_create_makes_every_topic_with_the_policy_then_verify_accepts_them(
    test_settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = _settings(test_settings, topic_prefix, tmp_path, min_insync_replicas=1)
    compact = {"cleanup.policy": "compact"}
    changelog = NewTopic(f"{settings.app_id}-users-changelog", 4, 1, topic_configs=compact)
    await ensure_topics(settings, [changelog])
    admin = await _admin(settings)
    try:
        found = await describe_topics(admin, [s.name for s in topic_specs(settings, [changelog])])
    finally:
        await admin.close()
    assert len(found) == len(topic_names(settings)) + 1
    assert found[changelog.name].configs["cleanup.policy"] == "compact"
    assert {found[n].configs["min.insync.replicas"] for n in found} == {"1"}
    assert found[settings.topics.clicks].partitions == settings.topics.partitions
    verify = _settings(test_settings, topic_prefix, tmp_path, mode="verify", min_insync_replicas=1)
    await ensure_topics(verify, [changelog])


@pytest.mark.integration
async def test_verify_refuses_wrong_topics_with_a_line_each_and_creates_nothing(
    test_settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = _settings(test_settings, topic_prefix, tmp_path, mode="verify", replication_factor=2,
                         min_insync_replicas=2)
    names = topic_names(settings)
    changelog = NewTopic(f"{settings.app_id}-users-changelog", 4, 1)  # not compacted
    admin = await _admin(settings)
    try:
        made = [NewTopic(names["clicks"], 2, 1), NewTopic(names["exposures"], 4, 1), changelog]
        await admin.create_topics(made)
        await described(admin, [t.name for t in made], wait=True)
        spec = NewTopic(changelog.name, 4, 1, topic_configs={"cleanup.policy": "compact"})
        with pytest.raises(ConfigError) as caught:
            await ensure_topics(settings, [spec])
        listed = set(await admin.list_topics())
    finally:
        await admin.close()
    assert listed & set(names.values()) == {names["clicks"], names["exposures"]}
    lines = str(caught.value).splitlines()
    assert all(line.startswith("topic policy: topic ") for line in lines)
    text = str(caught.value)
    assert f"topic {names['clicks']} has 2 partitions; the co-partitioned inputs" in text
    assert f"topic {names['profiles']} does not exist (topic_policy.mode=verify)" in text
    assert f"topic {changelog.name} is a changelog but has cleanup.policy=delete" in text
    exposures = f"topic {names['exposures']} has"
    assert f"{exposures} replication factor 1; topic_policy.replication_factor is 2" in text
    assert f"{exposures} min.insync.replicas=1; topic_policy.min_insync_replicas is 2" in text
    assert sum("does not exist" in line for line in lines) == len(names) - 2


@pytest.mark.integration
async def test_create_names_the_topics_the_broker_refuses(
    test_settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = _settings(test_settings, topic_prefix, tmp_path, replication_factor=2)  # one broker
    with pytest.raises(ConfigError) as caught:
        await ensure_topics(settings)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(topic_names(settings))
    assert lines[0].startswith(f"topic policy: cannot create topic {topic_prefix}-")
    assert all(": InvalidReplicationFactorError (" in line for line in lines), lines


@pytest.mark.integration
async def test_none_neither_creates_nor_checks(
    test_settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = _settings(test_settings, topic_prefix, tmp_path, mode="none")
    await ensure_topics(settings)
    admin = await _admin(settings)
    try:
        assert not set(await admin.list_topics()) & set(topic_names(settings).values())
    finally:
        await admin.close()


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_worker_in_mode_verify_without_its_topics_exits_with_one_line_each(
    test_settings: Settings, served_model: Path, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = _settings(test_settings, topic_prefix, tmp_path / "run")
    log = tmp_path / "worker.log"
    proc = start_worker(settings, log, LIFTSTREAM_TOPIC_POLICY__MODE="verify")
    try:
        code = proc.wait(timeout=180)
    finally:
        stop_worker(proc)
    text = log.read_text()
    assert code == 2, text
    assert "Traceback" not in text, text
    missing = [line for line in text.splitlines() if "does not exist (topic_policy.mode=verify)" in line]
    assert missing[0].startswith("liftstream: error: topic policy: topic ")
    assert len(missing) == len(topic_names(settings)) + 5  # and the changelogs and Faust's leader topic
