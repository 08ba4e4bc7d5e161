"""docs/integrate.md's worked example of a promotion's lifecycle, run as the worker runs it.

The messages are read from the page itself, so the page cannot drift from what the engine does: each goes
through the gate on the partition its key gives; promotions update the registry entry, user events go
through the worker's batch assembly (features, attribution, partials) with the default settings.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stream.batching.assemble import assemble
from stream.batching.contract import partition_for
from stream.batching.partials import Partial
from stream.batching.records import Record, decode_records
from stream.batching.users import EMPTY, UserConfig
from stream.events.models import Arm, PromotionEvent
from stream.features.state import stable_hash
from stream.registry.eligibility import eligible
from stream.registry.promos import Promo, apply_event
from stream.settings import load_settings

pytestmark = pytest.mark.unit

PAGE = Path(__file__).resolve().parents[2] / "docs" / "integrate.md"
PARTITIONS = 4
NAMES = {t: t for t in ("clicks", "exposures", "profiles", "promotions")}


def _example() -> list[Record]:
    block = re.search(r"```jsonl\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    assert block is not None, "docs/integrate.md lost its worked example"
    records = []
    for offset, line in enumerate(block[1].splitlines()):
        topic, key, value = line.split(" ", 2)
        partition = partition_for(key.encode(), PARTITIONS)
        records.append(Record(topic, partition, offset, key.encode(), value.encode(), 0.0))
    return records


def _lifecycle(events: list[PromotionEvent]) -> tuple[Promo, list[Promo | None]]:
    promo: Promo | None = None
    steps = []
    for event in events:
        step = apply_event(promo, event)
        steps.append(step)
        promo = step or promo
    assert promo is not None
    return promo, steps


def _totals(partials: dict[str, Partial], arm: Arm) -> tuple[int, int, int, float]:
    arms = [p.totals.treatment if arm is Arm.treatment else p.totals.holdout for p in partials.values()]
    return (
        sum(a.exposures for a in arms),
        sum(a.visits for a in arms),
        sum(a.conversions for a in arms),
        sum(a.revenue for a in arms),
    )


def test_the_worked_example_does_what_the_page_says() -> None:
    decoded = decode_records(_example(), NAMES, datetime.now(UTC))
    assert decoded.dead == [], "every message of the example is valid"
    promotions = [e for r, e in decoded.valid if r.topic == "promotions"]
    user_events = [(r, e) for r, e in decoded.valid if r.topic != "promotions"]

    promo, steps = _lifecycle(promotions)  # type: ignore[arg-type]
    start, update, stale, stop = steps
    assert start is not None and update is not None and stop is not None
    assert stale is None  # the version 1 update after version 2 changes nothing
    assert update.info.text != start.info.text
    assert not promo.active and promo.event.description == "25% off all shoes"
    shoes = frozenset((stable_hash("shoes"),))
    assert eligible(update, shoes, datetime(2026, 3, 2, tzinfo=UTC).timestamp())
    assert not eligible(promo, shoes, datetime(2026, 3, 3, 2, tzinfo=UTC).timestamp())

    config = UserConfig.from_settings(load_settings())
    asm = assemble(user_events, lambda _: EMPTY, lambda _: None, config, rankable=False)
    assert [i.event.event_id for i in asm.exposures] == ["x-1", "x-2", "x-3"]  # x-3, after the stop, scores
    assert _totals(asm.partials, Arm.treatment) == (2, 1, 1, 60.0)
    assert _totals(asm.partials, Arm.holdout) == (1, 0, 0, 0.0)

    # A resent exposure (same event_id and ts, a new offset) is a duplicate, counted once.
    x1 = next((r, e) for r, e in user_events if getattr(e, "event_id", "") == "x-1")
    resent = (Record("exposures", x1[0].partition, 99, x1[0].key, x1[0].value, 0.0), x1[1])
    twice = assemble([x1, resent], lambda _: EMPTY, lambda _: None, config, rankable=False)
    assert twice.outcomes["exposures", "ok"] == twice.outcomes["exposures", "duplicate"] == 1
    assert _totals(twice.partials, Arm.treatment)[0] == 1
