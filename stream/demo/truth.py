"""The simulator's ground truth for the promotions of a demo run, over the exposures the run actually sent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from stream.history import TruthRow
from stream.simulate.emission import Message

OUTCOMES = ("visit", "conversion", "revenue")


def sent_exposure_ids(messages: Iterable[Message]) -> set[str]:
    """Event ids of the valid exposures among `messages` (malformed copies carry no usable id)."""
    return {orjson.loads(m.value)["event_id"] for m in messages if m.valid and m.topic == "exposures"}


def true_uplifts(
    truth: Sequence[TruthRow], meta: dict[str, Any], sent: set[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per promotion: its role, planned goal and true uplift per outcome (the mean treatment effect per
    exposure, like the goal's target) over the exposures in `sent` (all of them when None)."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    counts: dict[str, int] = defaultdict(int)
    for row in truth:
        if sent is not None and row.event_id not in sent:
            continue
        acc = sums[row.promotion_id]
        acc[0] += row.tau_visit
        acc[1] += row.tau_conversion
        acc[2] += row.tau_revenue
        counts[row.promotion_id] += 1
    out = {}
    for pid, planned in meta.get("promotions", {}).items():
        n = counts.get(pid, 0)
        by_outcome = {o: (sums[pid][i] / n if n else None) for i, o in enumerate(OUTCOMES)}
        out[pid] = {
            "role": planned.get("role"),
            "goal_outcome": planned.get("goal_outcome"),
            "target_uplift": planned.get("target_uplift"),
            "exposures": n,
            "true_uplift": by_outcome,
        }
    return out
