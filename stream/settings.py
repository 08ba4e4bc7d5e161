"""The one settings object: each option has an env var `LIFTSTREAM_<NAME>` (nested: `…_<GROUP>__<NAME>`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.errors import ConfigError
from stream.features.declaration import Profile


class Topics(BaseModel):
    model_config = ConfigDict(frozen=True)

    clicks: str = "clicks"
    promotions: str = "promotions"
    exposures: str = "exposures"
    profiles: str = "profiles"
    predictions: str = "predictions"
    campaign_effects: str = "campaign-effects"
    promotion_rankings: str = "promotion-rankings"
    drift: str = "drift"
    alerts: str = "alerts"
    dead_letter: str = "dead-letter"
    partitions: int = Field(4, ge=1, le=1024, description="partitions of the input topics the worker creates")


TOPIC_NAMES = tuple(name for name in Topics.model_fields if name != "partitions")


class TopicPolicy(BaseModel):
    """How the worker treats its topics on a shared cluster (see docs/deploy.md, "Topic policy")."""

    model_config = ConfigDict(frozen=True)

    mode: Literal["create", "verify", "none"] = Field(
        "create",
        description="create: create missing topics, then verify all; verify: create nothing, refuse to start "
        "unless every topic exists and meets the policy; none: neither create nor check",
    )
    replication_factor: int = Field(
        1, ge=1, le=32, description="replicas of every topic created; existing topics need at least this many"
    )
    min_insync_replicas: int | None = Field(
        None, ge=1, le=32,
        description="min.insync.replicas of every topic created, and the least an existing one may have "
        "(unset: the broker's default, not checked)",
    )
    prefix: str = Field(
        "", pattern=r"^[A-Za-z0-9._-]*$",
        description="prepended to every topic name and to app_id (the consumer group, and so the changelogs);"
        " names that already start with it are left as they are",
    )

    @model_validator(mode="after")
    def _replicas_hold_min_isr(self) -> TopicPolicy:
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas {self.min_insync_replicas} exceeds replication_factor "
                f"{self.replication_factor}: no write could ever succeed"
            )
        return self


class Batching(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_size: int = Field(512, ge=1, le=65536, description="most exposures in one Triton request")
    max_wait_s: float = Field(0.02, gt=0, le=10, description="longest a partial batch waits")
    max_in_flight: int = Field(4, ge=1, le=256, description="Triton requests in flight per worker")
    retries: int = Field(
        8, ge=0, le=100, description="retries of a retryable Triton error before backing off"
    )
    backoff_base_s: float = Field(0.1, gt=0, le=60)
    backoff_max_s: float = Field(5.0, gt=0, le=600)
    request_timeout_s: float = Field(10.0, gt=0, le=600)
    producer_linger_s: float = Field(
        0.0, ge=0, le=1,
        description="how long the producer lingers before it sends a batch: the engine hands it one batch "
        "per partition already (stream/agents/produce.py), and each batch of a partition waits for the "
        "one before it, so a linger is paid once per batch in series",
    )


class Windows(BaseModel):
    model_config = ConfigDict(frozen=True)

    feature_windows_s: tuple[int, ...] = (300, 3600, 86400)
    allowed_lateness_s: int = Field(
        600, ge=0, le=86400 * 7,
        description="how far an event may be behind its user's newest event (else counted `late`) or ahead "
        "of its message's Kafka timestamp (else dead-lettered `future_timestamp`)",
    )
    attribution_window_s: int = Field(86400, ge=1, le=86400 * 60)
    unknown_promotion_wait_s: float = Field(30.0, ge=0, le=3600)
    ranking_interval_s: int = Field(300, ge=1, le=86400)
    ranking_top_k: int = Field(5, ge=1, le=100)


class Drift(BaseModel):
    model_config = ConfigDict(frozen=True)

    window_events: int = Field(5000, ge=100, le=10_000_000)
    psi_threshold: float = Field(0.25, gt=0)
    report_interval_s: float = Field(30.0, gt=0)
    min_events: int = Field(200, ge=1, description="fewest live rows a scope (overall, an arm) needs")


class Decisions(BaseModel):
    model_config = ConfigDict(frozen=True)

    alpha: float = Field(
        0.05, gt=0, lt=0.5,
        description="error rate of a status over a promotion's whole life, however often it is looked at",
    )
    min_exposures_per_arm: int = Field(
        50, ge=2, le=1_000_000, description="exposures each arm needs before any status but insufficient_data"
    )
    min_purchases_per_arm: int = Field(
        30, ge=1, le=1_000_000,
        description="exposures with a purchase each arm needs before a revenue goal is decided (heavy tails)",
    )


class Events(BaseModel):
    """What the input gate accepts beyond the schemas (docs/integrate.md, "Producer contract")."""

    model_config = ConfigDict(frozen=True)

    extra_fields: Literal["dead_letter", "ignore"] = Field(
        "dead_letter",
        description="input fields the schema does not name: dead_letter refuses the message (reason "
        "invalid), ignore drops the fields and keeps the event (producers ahead of this version)",
    )


class SchemaRegistry(BaseModel):
    """Confluent Schema Registry: checks the schema id of framed input (stream/events/framing.py)."""

    model_config = ConfigDict(frozen=True)

    url: str | None = Field(
        None, pattern=r"^https?://",
        description="registry base URL; set, the schema id of every framed input message must be registered "
        "under its topic's subject (else dead letter unknown_schema_id); unset, the header is stripped "
        "unchecked",
    )
    subject_template: str = Field(
        "{topic}-value", pattern=r"^[^{}]*\{topic\}[^{}]*$",
        description="subject of a topic's value schemas, {topic} the Kafka topic name (TopicNameStrategy)",
    )
    timeout_s: float = Field(5.0, gt=0, le=120, description="timeout of one registry request")
    username: str | None = Field(None, description="HTTP basic auth user (e.g. a Confluent Cloud API key)")
    password: SecretStr | None = Field(None, description="HTTP basic auth password")

    def subject(self, topic: str) -> str:
        """The value subject of Kafka topic `topic`."""
        return self.subject_template.replace("{topic}", topic)


class Kafka(BaseModel):
    model_config = ConfigDict(frozen=True)

    bootstrap: str = Field("127.0.0.1:9092", description="the brokers, host:port[,host:port...]")
    security_protocol: str = Field(
        "PLAINTEXT", pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$",
        description="SSL: TLS (mutual with ssl_certfile); SASL_*: with sasl_mechanism",
    )
    sasl_mechanism: str | None = Field(
        None, pattern="^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512|OAUTHBEARER)$",
        description="SASL mechanism of SASL_PLAINTEXT / SASL_SSL (docs/deploy.md, \"Kafka authentication\")",
    )
    sasl_username: str | None = Field(None, description="PLAIN and SCRAM: the user")
    sasl_password: SecretStr | None = Field(None, description="PLAIN and SCRAM: the user's password")
    oauth_token_file: Path | None = Field(
        None, description="OAUTHBEARER: file holding the bearer token, read again for every new connection"
    )
    ssl_cafile: Path | None = Field(None, description="SSL / SASL_SSL: the CA bundle (PEM) of the brokers")
    ssl_certfile: Path | None = Field(
        None, description="mutual TLS: the client certificate (PEM, may hold the chain and the key)"
    )
    ssl_keyfile: Path | None = Field(None, description="mutual TLS: the client key (PEM) unless in certfile")
    ssl_key_password: SecretStr | None = Field(None, description="mutual TLS: password of an encrypted key")
    ssl_check_hostname: bool = Field(True, description="check the broker's certificate names its host")
    client_options: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="further aiokafka client arguments, passed through to every client (JSON), e.g. "
        '{"client_id": "liftstream-eu"}',
    )


class Group(BaseModel):
    """Consumer-group membership: how soon a dead worker's partitions move (docs/deploy.md, "Fail-over")."""

    model_config = ConfigDict(frozen=True)

    session_timeout_s: float = Field(
        8.0, ge=6, le=90,
        description="a worker that sends no heartbeat for this long is dead and its partitions move; "
        "shorter fails over sooner but risks needless rebalances (at least the broker's "
        "group.min.session.timeout.ms, at most Faust's 90 s request timeout)",
    )
    heartbeat_interval_s: float = Field(
        1.0, gt=0, le=600,
        description="how often a worker tells the group it lives (at most a third of the session timeout)",
    )
    rebalance_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="how long a rebalance waits for every member to rejoin"
    )
    revoke_drain_s: float = Field(
        5.0, ge=0, le=300,
        description="on a revoke, how long the batches in flight may finish before they are abandoned "
        "(their input is replayed by the next owner); the group's rebalance waits this long at most",
    )
    instance_id: str | None = Field(
        None, min_length=1,
        description="static membership (group.instance.id, unique per worker, e.g. the StatefulSet pod "
        "name): a restart within the session timeout keeps its partitions without a rebalance",
    )

    @model_validator(mode="after")
    def _heartbeats_fit_the_session(self) -> Group:
        if 3 * self.heartbeat_interval_s > self.session_timeout_s:
            raise ValueError(
                f"heartbeat_interval_s {self.heartbeat_interval_s:g} is more than a third of "
                f"session_timeout_s {self.session_timeout_s:g}: one lost heartbeat would end the session"
            )
        return self


class Local(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_dir: Path = Path(".liftstream")
    kafka_port: int = Field(9092, ge=1, le=65535)
    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    triton_http_port: int = Field(8000, ge=1, le=65535)
    triton_grpc_port: int = Field(8001, ge=1, le=65535)
    triton_metrics_port: int = Field(8002, ge=1, le=65535)
    prometheus_port: int = Field(9090, ge=1, le=65535)
    kafka_heap: str = "1g"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIFTSTREAM_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    app_id: str = "liftstream"
    kafka: Kafka = Kafka()
    group: Group = Group()
    topics: Topics = Topics()
    topic_policy: TopicPolicy = TopicPolicy()
    triton_url: str = Field("127.0.0.1:8001", description="Triton gRPC endpoint host:port")
    model_repo: Path = Path("triton_repo")
    batching: Batching = Batching()
    windows: Windows = Windows()
    profile: Profile = Profile()
    drift: Drift = Drift()
    decisions: Decisions = Decisions()
    events: Events = Events()
    schema_registry: SchemaRegistry = SchemaRegistry()
    local: Local = Local()
    metrics_port: int = Field(
        9464, ge=0, le=65535, description="worker /metrics, /live and /ready port (0 disables all three)"
    )
    health_stale_s: float = Field(
        30.0, gt=1, le=3600,
        description="/live fails once the worker's event loop has not beaten for this long",
    )
    alert_cooldown_s: float = Field(
        900.0, gt=0, description="an unchanged drift or Triton alert is raised again after this"
    )
    store: str = Field(
        "memory://", pattern="^(memory|rocksdb)://", description="Faust table store: memory:// or rocksdb://"
    )
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _apply_prefix(self) -> Settings:
        """Resolves `topic_policy.prefix` once, so every reader of `topics` and `app_id` sees the real names.

        Idempotent (a prefixed name is left alone): settings handed to a child process as environment
        variables, already prefixed, must not be prefixed twice."""
        prefix = self.topic_policy.prefix
        if prefix:
            names = {f: _prefixed(prefix, getattr(self.topics, f)) for f in TOPIC_NAMES}
            object.__setattr__(self, "topics", self.topics.model_copy(update=names))  # frozen
            object.__setattr__(self, "app_id", _prefixed(prefix, self.app_id))
        return self


def _prefixed(prefix: str, name: str) -> str:
    return name if name.startswith(prefix) else prefix + name


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Build the settings once per process, turning validation errors into one clear line."""
    return load_settings()


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from exc
