"""Decode throughput of the gate on one core: valid events of each input topic, and invalid messages.

Messages go through `decode_batch` in batches, as an agent sees them, so the invalid case includes
building the dead letters. `python -m stream.events.bench` prints the cost per message of the two
decoders (pydantic, msgspec) and per prediction of the two output builders.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from pydantic import BaseModel

from stream.events import fast, fast_outputs
from stream.events.gate import Record, decode_batch, encode
from stream.events.models import (
    INPUT_EVENTS,
    MAX_MESSAGE_BYTES,
    Arm,
    ClickEvent,
    ClickKind,
    DiscountType,
    EffectPrediction,
    ExposureEvent,
    OutcomeScores,
    PromotionAction,
    PromotionEvent,
    UserProfileEvent,
)

BATCH = 512
_START = datetime(2024, 6, 1, tzinfo=UTC)


@dataclass(frozen=True)
class BenchResult:
    case: str
    events: int
    dead_letters: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def _click(rng: random.Random, i: int) -> ClickEvent:
    kind = rng.choice(list(ClickKind))
    return ClickEvent(
        event_id=f"c-{i}",
        user_id=f"u{rng.randrange(100_000)}",
        session_id=f"s{rng.randrange(1_000_000)}",
        ts=_START + timedelta(seconds=i),
        kind=kind,
        item_id=f"item-{rng.randrange(5000)}",
        category=rng.choice(("shoes", "books", "garden", "toys")),
        price=round(rng.uniform(1, 300), 2) if kind == ClickKind.purchase else 0.0,
        quantity=rng.randint(1, 3),
        promotion_id=f"p{rng.randrange(50)}" if rng.random() < 0.3 else None,
    )


def _promotion(rng: random.Random, i: int) -> PromotionEvent:
    return PromotionEvent(
        promotion_id=f"p{i}",
        campaign_id=f"camp{i % 7}",
        action=PromotionAction.start,
        ts=_START + timedelta(seconds=i),
        title=f"{rng.randint(5, 50)}% off summer shoes",
        description="Save on every pair of sandals and trainers this week only. " * rng.randint(1, 4),
        discount_type=rng.choice(list(DiscountType)),
        discount_value=float(rng.randint(5, 50)),
        categories=["shoes", "summer"],
        start=_START,
        end=_START + timedelta(days=14),
        holdout_fraction=0.1,
    )


def _exposure(rng: random.Random, i: int) -> ExposureEvent:
    return ExposureEvent(
        event_id=f"x-{i}",
        user_id=f"u{rng.randrange(100_000)}",
        promotion_id=f"p{rng.randrange(50)}",
        campaign_id=f"camp{rng.randrange(7)}",
        ts=_START + timedelta(seconds=i),
        arm=Arm.holdout if rng.random() < 0.1 else Arm.treatment,
    )


def _profile(rng: random.Random, i: int) -> UserProfileEvent:
    return UserProfileEvent(
        user_id=f"u{i}",
        ts=_START + timedelta(seconds=i),
        tenure_days=rng.randrange(3000),
        lifetime_spend=round(rng.uniform(0, 5000), 2),
        orders=rng.randrange(200),
        recency_days=rng.randrange(365),
        segment="loyal",
        interests=["shoes", "garden"],
        is_new=rng.random() < 0.2,
    )


_BUILDERS: dict[str, Callable[[random.Random, int], BaseModel]] = {
    "clicks": _click,
    "promotions": _promotion,
    "exposures": _exposure,
    "profiles": _profile,
}


def valid_payloads(topic: str, n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    build = _BUILDERS[topic]
    return [encode(build(rng, i)) for i in range(n)]


def invalid_payloads(n: int, seed: int = 0) -> list[bytes]:
    """Click messages broken in one way each, cycling through the dead-letter reasons."""
    click = _click(random.Random(seed), 0)
    good = encode(click)
    fields = click.model_dump(mode="json")

    def changed(**changes: object) -> bytes:
        return json.dumps({**fields, **changes}, allow_nan=True).encode()

    breakages = [
        good[:-7],
        changed(kind="teleport"),
        changed(quantity="1"),
        changed(quantity=-1),
        json.dumps({k: v for k, v in fields.items() if k != "session_id"}).encode(),
        changed(schema_version=2),
        changed(price=float("nan")),
        changed(ts="2999-01-01T00:00:00Z"),
        good.replace(b'"c-0"', b'"c-\xff"'),
        b"[" + good + b"]",
        good + b" " * MAX_MESSAGE_BYTES,
    ]
    return [breakages[i % len(breakages)] for i in range(n)]


def measure(case: str, topic: str, payloads: list[bytes]) -> BenchResult:
    batches: list[list[Record]] = [
        [(0, offset, None, raw) for offset, raw in enumerate(payloads[i : i + BATCH], start=i)]
        for i in range(0, len(payloads), BATCH)
    ]
    dead = 0
    started = time.perf_counter()
    for batch in batches:
        dead += len(decode_batch(topic, batch)[1])
    return BenchResult(case, len(payloads), dead, time.perf_counter() - started)


def run(n: int, seed: int = 0) -> list[BenchResult]:
    results = [measure(topic, topic, valid_payloads(topic, n, seed)) for topic in INPUT_EVENTS]
    results.append(measure("invalid (mixed)", "clicks", invalid_payloads(n, seed)))
    return results


def _micros(work: Callable[[Any], object], items: list[Any]) -> float:
    """Best of five runs of `work` on each of `items`, in µs per item."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for item in items:
            work(item)
        best = min(best, time.perf_counter() - started)
    return 1e6 * best / len(items)


def decoders(n: int, seed: int = 0) -> list[tuple[str, float, float]]:
    """(topic, pydantic µs/message, msgspec µs/message) of valid messages of each user-event topic."""
    rows = []
    for topic in ("clicks", "exposures", "profiles"):
        payloads = valid_payloads(topic, n, seed)
        pydantic = partial(INPUT_EVENTS[topic].model_validate_json, strict=True)
        rows.append((topic, _micros(pydantic, payloads), _micros(partial(fast.decode, topic), payloads)))
    return rows


_Values = tuple[str, str, float, float, float]


def _prediction_fields(values: _Values, scores: object) -> dict[str, object]:
    event_id, user_id, t, c, latency = values
    return {
        "event_id": event_id,
        "user_id": user_id,
        "promotion_id": "p1",
        "campaign_id": "camp1",
        "arm": Arm.treatment,
        "model_version": 3,
        "visit": scores,
        "conversion": scores,
        "revenue": scores,
        "expected_incremental_revenue": t - c,
        "event_ts": _START,
        "scored_at": _START,
        "latency_ms": latency,
    }


def _pydantic_prediction(values: _Values) -> bytes:
    t, c = values[2], values[3]
    scores = OutcomeScores(p_treated=t, p_control=c, uplift=t - c)
    return encode(EffectPrediction(**_prediction_fields(values, scores)))  # type: ignore[arg-type]


def _msgspec_prediction(values: _Values) -> bytes:
    t, c = values[2], values[3]
    scores = fast_outputs.OutcomeScores(p_treated=t, p_control=c, uplift=t - c)
    return fast_outputs.encode(fast_outputs.EffectPrediction(**_prediction_fields(values, scores)))  # type: ignore[arg-type]


def encoders(n: int) -> tuple[float, float]:
    """(pydantic, msgspec) µs per prediction built from plain values and encoded, as the outputs do."""
    values = [(f"x-{i}", f"u{i}", 0.1 + i * 1e-6, 0.09, 12.5) for i in range(n)]
    assert [_pydantic_prediction(v) for v in values[:100]] == [_msgspec_prediction(v) for v in values[:100]]
    return _micros(_pydantic_prediction, values), _micros(_msgspec_prediction, values)


if __name__ == "__main__":
    N = 20_000
    for topic, slow, quick in decoders(N):
        print(f"decode {topic:<10} pydantic {slow:5.2f} µs  msgspec {quick:5.2f} µs  x{slow / quick:.1f}")
    slow, quick = encoders(N)
    print(f"prediction build+encode  pydantic {slow:5.2f} µs  msgspec {quick:5.2f} µs  x{slow / quick:.1f}")
