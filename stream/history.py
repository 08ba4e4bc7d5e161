"""The history directory: what the simulator and the Hillstrom importer write and training and replay read.

DIR/promotions.jsonl, profiles.jsonl, exposures.jsonl, clicks.jsonl — one wire-format event per line (exactly
the Kafka message value), each file sorted by event time; DIR/truth.csv — the true effect of every exposure
(simulator only); DIR/meta.json — where the history came from; DIR/malformed.jsonl — optional invalid payloads
({"topic", "payload_b64"}), kept apart so the event files only ever hold valid events.
"""

from __future__ import annotations

import base64
import csv
import heapq
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from stream.errors import ConfigError
from stream.events.models import (
    INPUT_EVENTS,
    ClickEvent,
    ExposureEvent,
    PromotionEvent,
    UserProfileEvent,
)

# Replay order on equal timestamps: a promotion must exist before it is shown, a profile before its user acts.
TOPICS: tuple[str, ...] = ("promotions", "profiles", "exposures", "clicks")
TRUTH_FILE = "truth.csv"
META_FILE = "meta.json"
MALFORMED_FILE = "malformed.jsonl"


@dataclass(frozen=True)
class TruthRow:
    """True control expectation and treatment effect of each outcome for one exposure."""

    event_id: str
    user_id: str
    promotion_id: str
    arm: str
    tau_visit: float
    tau_conversion: float
    tau_revenue: float
    mu0_visit: float
    mu0_conversion: float
    mu0_revenue: float


TRUTH_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TruthRow))


@dataclass(frozen=True)
class History:
    promotions: list[PromotionEvent]
    profiles: list[UserProfileEvent]
    exposures: list[ExposureEvent]
    clicks: list[ClickEvent]
    truth: list[TruthRow] | None
    meta: dict[str, Any]


@dataclass(frozen=True)
class MalformedRecord:
    topic: str
    payload: bytes


def _path(directory: Path | str, topic: str) -> Path:
    if topic not in INPUT_EVENTS:
        raise ConfigError(f"unknown topic {topic!r}; expected one of {', '.join(TOPICS)}")
    return Path(directory) / f"{topic}.jsonl"


def _write_events(path: Path, events: Iterable[Any]) -> int:
    ordered = sorted(events, key=lambda e: e.ts)
    with path.open("wb") as out:
        for event in ordered:
            out.write(event.model_dump_json().encode())
            out.write(b"\n")
    return len(ordered)


def _fmt(value: float) -> str:
    return repr(float(value))


def write_truth(path: Path, rows: Iterable[TruthRow]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        out.write(",".join(TRUTH_COLUMNS) + "\n")
        for row in rows:
            values = astuple(row)
            out.write(",".join([*values[:4], *(_fmt(v) for v in values[4:])]) + "\n")


def read_truth(path: Path) -> list[TruthRow]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = tuple(next(reader))
        if header != TRUTH_COLUMNS:
            raise ConfigError(f"{path}: unexpected truth columns {header}")
        return [TruthRow(*r[:4], *(float(v) for v in r[4:])) for r in reader]  # type: ignore[arg-type]


def write_history(
    directory: Path | str,
    promotions: Iterable[PromotionEvent],
    profiles: Iterable[UserProfileEvent],
    exposures: Iterable[ExposureEvent],
    clicks: Iterable[ClickEvent],
    truth_rows: Iterable[TruthRow] | None,
    meta: dict[str, Any],
    malformed: Sequence[MalformedRecord] = (),
) -> dict[str, int]:
    """Write a history directory; returns the number of events written per topic."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    counts = {
        topic: _write_events(_path(out, topic), events)
        for topic, events in zip(TOPICS, (promotions, profiles, exposures, clicks), strict=True)
    }
    if truth_rows is not None:
        write_truth(out / TRUTH_FILE, truth_rows)
    if malformed:
        write_malformed(out / MALFORMED_FILE, malformed)
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return counts


def write_malformed(path: Path, records: Iterable[MalformedRecord]) -> None:
    with path.open("wb") as out:
        for rec in records:
            line = {"topic": rec.topic, "payload_b64": base64.b64encode(rec.payload).decode()}
            out.write(orjson.dumps(line) + b"\n")


def iter_malformed(directory: Path | str) -> Iterator[MalformedRecord]:
    path = Path(directory) / MALFORMED_FILE
    if not path.exists():
        return
    with path.open("rb") as handle:
        for line in handle:
            rec = orjson.loads(line)
            yield MalformedRecord(rec["topic"], base64.b64decode(rec["payload_b64"]))


def require_history(directory: Path | str) -> Path:
    """`directory` as a Path, or a ConfigError naming what makes it not a history directory."""
    base = Path(directory)
    missing = [f"{topic}.jsonl" for topic in TOPICS if not (base / f"{topic}.jsonl").is_file()]
    if missing:
        raise ConfigError(f"{base} is not a history directory: no {', '.join(missing)}")
    return base


def iter_raw(directory: Path | str, topic: str) -> Iterator[bytes]:
    """The stored message values of one topic, in file order, without the line ends."""
    path = _path(directory, topic)
    if not path.exists():
        raise ConfigError(f"{path} does not exist: not a history directory")
    with path.open("rb") as handle:
        for line in handle:
            stripped = line.rstrip(b"\r\n")
            if stripped:
                yield stripped


def iter_events(directory: Path | str, topic: str) -> Iterator[Any]:
    """Validated events of one topic (the model class of `INPUT_EVENTS[topic]`), in file order."""
    _path(directory, topic)
    model = INPUT_EVENTS[topic]
    for raw in iter_raw(directory, topic):
        yield model.model_validate_json(raw)


def read_meta(directory: Path | str) -> dict[str, Any]:
    path = Path(directory) / META_FILE
    if not path.exists():
        raise ConfigError(f"{path} does not exist: not a history directory")
    meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return meta


def read_history(directory: Path | str) -> History:
    base = Path(directory)
    truth_path = base / TRUTH_FILE
    return History(
        promotions=list(iter_events(base, "promotions")),
        profiles=list(iter_events(base, "profiles")),
        exposures=list(iter_events(base, "exposures")),
        clicks=list(iter_events(base, "clicks")),
        truth=read_truth(truth_path) if truth_path.exists() else None,
        meta=read_meta(base),
    )


def _timed(directory: Path, topic: str, rank: int) -> Iterator[tuple[datetime, int, int, str, bytes]]:
    for seq, raw in enumerate(iter_raw(directory, topic)):
        ts = datetime.fromisoformat(orjson.loads(raw)["ts"])
        yield ts, rank, seq, topic, raw


def merged_by_time(directory: Path | str) -> Iterator[tuple[str, datetime, bytes]]:
    """All four event files merged by event time (promotions, then profiles, exposures, clicks on ties)."""
    base = Path(directory)
    streams = [_timed(base, topic, rank) for rank, topic in enumerate(TOPICS)]
    for ts, _rank, _seq, topic, raw in heapq.merge(*streams):
        yield topic, ts, raw
