"""The one settings object: each option has an env var `LIFTSTREAM_<NAME>` (nested: `…_<GROUP>__<NAME>`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.errors import ConfigError


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
        0.005, ge=0, le=1, description="how long the producer gathers outputs into one produce request"
    )


class Windows(BaseModel):
    model_config = ConfigDict(frozen=True)

    feature_windows_s: tuple[int, ...] = (300, 3600, 86400)
    allowed_lateness_s: int = Field(600, ge=0, le=86400 * 7)
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


class Kafka(BaseModel):
    model_config = ConfigDict(frozen=True)

    bootstrap: str = "127.0.0.1:9092"
    security_protocol: str = Field("PLAINTEXT", pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$")
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None


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
    topics: Topics = Topics()
    triton_url: str = Field("127.0.0.1:8001", description="Triton gRPC endpoint host:port")
    model_repo: Path = Path("triton_repo")
    batching: Batching = Batching()
    windows: Windows = Windows()
    drift: Drift = Drift()
    decisions: Decisions = Decisions()
    local: Local = Local()
    metrics_port: int = Field(9464, ge=0, le=65535, description="worker /metrics port (0 disables)")
    alert_cooldown_s: float = Field(
        900.0, gt=0, description="an unchanged drift or Triton alert is raised again after this"
    )
    store: str = Field("memory://", description="Faust table store: memory:// or rocksdb://")
    log_level: str = "INFO"


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
