"""Decisions through the real Kafka, worker and Triton: an A/A promotion is never flagged, a dud is.

Two promotions with no effect at all, exposed to fresh users at random (holdout half): `aa` has a goal of 0
(any status but `underperforming` is right; `meeting_goal` needs an uplift ≥ 0 to be shown, which an A/A
may reach by chance), `dud` has a visit-uplift goal of +0.1 it cannot reach. Exposures and visits stream
in paced, so the worker publishes many snapshots of each promotion while its data grow: the A/A must never
be `underperforming` at any of them, and the dud must end `underperforming` with one firing alert.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream.events.gate import encode
from stream.events.models import Arm, ClickEvent, ClickKind, ExposureEvent, PromotionEvent, PromotionGoal
from stream.settings import Settings
from stream.simulate.emission import Message, message_key
from tests.stream.workers import (
    Outputs,
    consumed,
    engine_settings,
    log_tail,
    send_messages,
    start_worker,
    stop_worker,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

EXPOSURES = 3000
"""Per promotion: at 1,500 per arm the dud's upper bound is near +0.05, well below its +0.1 goal."""
VISIT_RATE = 0.3
GOALS = {"aa": 0.0, "dud": 0.1}


def _message(topic: str, event: Any) -> Message:
    return Message(topic, message_key(topic, event), encode(event), int(event.ts.timestamp() * 1000))


def _traffic(seed: int, now: datetime) -> tuple[list[Message], list[Message]]:
    """(promotion starts, exposures and visits in time order)."""
    rng = np.random.default_rng(seed)
    start = now - timedelta(hours=4)
    promos = [
        _message(
            "promotions",
            PromotionEvent(
                promotion_id=pid,
                campaign_id="c1",
                action="start",
                ts=start,
                title=f"{pid} offer",
                description="10% off everything",
                discount_value=10.0,
                start=start,
                end=now + timedelta(days=1),
                goal=PromotionGoal(outcome="visit", target_uplift=goal),
                holdout_fraction=0.5,
            ),
        )
        for pid, goal in GOALS.items()
    ]
    events: list[Message] = []
    for i in range(EXPOSURES * len(GOALS)):
        pid = list(GOALS)[i % len(GOALS)]
        user, ts = f"u{i}", start + timedelta(seconds=4 * i / len(GOALS))
        arm = Arm.holdout if rng.random() < 0.5 else Arm.treatment
        events.append(
            _message(
                "exposures",
                ExposureEvent(
                    event_id=f"x{i}", user_id=user, promotion_id=pid, campaign_id="c1", ts=ts, arm=arm
                ),
            )
        )
        if rng.random() < VISIT_RATE:  # the same chance in both arms: no effect
            events.append(
                _message(
                    "clicks",
                    ClickEvent(
                        event_id=f"k{i}",
                        user_id=user,
                        session_id=f"s{i}",
                        ts=ts + timedelta(seconds=30),
                        kind=ClickKind.visit,
                    ),
                )
            )
    return promos, events


@pytest.fixture(scope="module")
def outputs(
    test_settings: Settings,
    served_model: Path,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("decisions")
    settings = engine_settings(test_settings, f"d{uuid.uuid4().hex[:10]}", tmp / "run")
    worker = start_worker(settings, tmp / "worker.log")
    try:
        return asyncio.run(_drive(settings, lambda: worker.poll() is None))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker log ---\n{log_tail(tmp / 'worker.log')}") from exc
    finally:
        stop_worker(worker)


async def _drive(settings: Settings, alive: Any) -> dict[str, list[dict[str, Any]]]:
    promos, events = _traffic(seed=5, now=datetime.now(UTC))
    async with Outputs(settings) as out:
        await send_messages(settings, promos)
        await consumed(settings, ("promotions",))
        # ~25 s of traffic: a snapshot of each promotion every second while its data grow.
        await send_messages(settings, events, rate=len(events) / 25)
        await consumed(settings, ("clicks", "exposures"))

        def counted(o: Outputs) -> bool:
            final = o.latest_effects()
            return all(
                p in final and final[p]["exposures_treatment"] + final[p]["exposures_holdout"] == EXPOSURES
                for p in GOALS
            )

        await out.until(counted, 60, alive)
        return dict(out.seen)


def test_the_aa_promotion_is_never_flagged(outputs: dict[str, list[dict[str, Any]]]) -> None:
    aa = [e for e in outputs["campaign-effects"] if e["promotion_id"] == "aa"]
    assert len(aa) >= 10, "too few snapshots to speak of continuous monitoring"
    assert not [e for e in aa if e["status"] == "underperforming"]
    assert not [a for a in outputs["alerts"] if a["promotion_id"] == "aa" and a["kind"] == "underperforming"]
    final = aa[-1]
    assert final["decision"]["interval"]["low"] <= 0.0 <= final["decision"]["interval"]["high"]


def test_the_dud_is_flagged_once(outputs: dict[str, list[dict[str, Any]]]) -> None:
    dud = [e for e in outputs["campaign-effects"] if e["promotion_id"] == "dud"]
    assert dud[-1]["status"] == "underperforming", dud[-1]
    assert dud[-1]["decision"]["interval"]["high"] < GOALS["dud"]
    firing = [a for a in outputs["alerts"] if a["promotion_id"] == "dud" and a["kind"] == "underperforming"]
    assert [a["state"] for a in firing] == ["firing"]
    assert firing[0]["severity"] == "critical" and "anytime-valid" in firing[0]["message"]
