"""The engine as a contender: a `python -m stream worker` configured through LIFTSTREAM_* variables
with the run's own app id and topics, and what the benchmark reads off its /metrics."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from stream.errors import ConfigError
from stream.settings import Settings, Topics, load_settings

TOPIC_FIELDS = [name for name in Topics.model_fields if name != "partitions"]
EVENTS_IN = "liftstream_events_in_total"


@dataclass(frozen=True)
class Target:
    """The stack the benchmark runs on, and extra environment for the worker (tuning experiments)."""

    bootstrap: str
    triton_url: str
    model_repo: Path
    worker_env: dict[str, str] = field(default_factory=dict)


def worker_settings(
    target: Target, prefix: str, partitions: int, run_dir: Path, metrics_port: int
) -> Settings:
    topics = {f: f"{prefix}-{Topics.model_fields[f].default}" for f in TOPIC_FIELDS}
    return load_settings(
        app_id=prefix,
        kafka={"bootstrap": target.bootstrap},
        triton_url=target.triton_url,
        model_repo=target.model_repo,
        metrics_port=metrics_port,
        local={"run_dir": run_dir},
        topics={"partitions": partitions, **topics},
    )


def worker_env(s: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "LIFTSTREAM_APP_ID": s.app_id,
        "LIFTSTREAM_KAFKA__BOOTSTRAP": s.kafka.bootstrap,
        "LIFTSTREAM_TRITON_URL": s.triton_url,
        "LIFTSTREAM_MODEL_REPO": str(s.model_repo),
        "LIFTSTREAM_METRICS_PORT": str(s.metrics_port),
        "LIFTSTREAM_LOCAL__RUN_DIR": str(s.local.run_dir),
        "LIFTSTREAM_TOPICS__PARTITIONS": str(s.topics.partitions),
        "LIFTSTREAM_LOG_LEVEL": "INFO",
        **{f"LIFTSTREAM_TOPICS__{f.upper()}": getattr(s.topics, f) for f in TOPIC_FIELDS},
        **(extra or {}),
    }


def events_in(metrics_text: str) -> float:
    """Input messages a worker consumed so far: every sample of `liftstream_events_in_total` added up."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text.splitlines()
        if line.startswith(EVENTS_IN + "{") or line.startswith(EVENTS_IN + " ")
    )


def scrape(port: int) -> float | None:
    """The worker's consumed count, None while its /metrics is not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:  # noqa: S310
            return events_in(resp.read().decode())
    except OSError:
        return None


def parse_env(items: list[str]) -> dict[str, str]:
    """`KEY=VALUE` strings → a dict; anything else is a ConfigError."""
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--worker-env takes KEY=VALUE, got {item!r}")
        env[key.strip()] = value
    return env
