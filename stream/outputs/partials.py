"""Campaign effects from per-partition partials, exact with any number of workers.

Each worker publishes cumulative snapshots of the partials it owns on the internal `campaign-partials`
topic, keyed by promotion. The merging agent keeps, per promotion, the newest snapshot of every source
partition (a snapshot with more counted offsets replaces an older one; a stale or repeated one changes
nothing), merges them in partition order and publishes the promotion's `CampaignEffect`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from stream.batching.partials import Partial
from stream.effects.aggregate import PromotionTotals, merge
from stream.effects.report import Policy, campaign_effect
from stream.events.gate import encode
from stream.events.models import CampaignEffect, PromotionGoal
from stream.outputs import Output

PARTIALS = "campaign-partials"


def snapshot(partial: Partial) -> Output:
    return Output(PARTIALS, partial.promotion_id.encode(), orjson.dumps(partial.to_json()))


def read_snapshot(value: bytes) -> Partial:
    return Partial.from_json(orjson.loads(value))


def offer(stored: Mapping[str, Any] | None, partial: Partial) -> dict[str, Any] | None:
    """The merged value with `partial` in it; None when it already holds this snapshot or a newer one."""
    parts = dict(stored["parts"]) if stored else {}
    old = parts.get(str(partial.partition))
    if old is not None and Partial.from_json(old).progress() >= partial.progress():
        return None
    parts[str(partial.partition)] = partial.to_json()
    return {"parts": parts}


def merged_totals(stored: Mapping[str, Any]) -> PromotionTotals:
    parts = stored["parts"]
    return merge(Partial.from_json(parts[k]).totals for k in sorted(parts, key=int))


def effect(
    stored: Mapping[str, Any],
    goal: PromotionGoal,
    model_version: int,
    now: datetime,
    policy: Policy,
    holdout_fraction: float | None = None,
) -> CampaignEffect:
    first = Partial.from_json(next(iter(stored["parts"].values())))
    return campaign_effect(
        merged_totals(stored),
        goal,
        first.campaign_id,
        first.promotion_id,
        model_version,
        now,
        policy,
        holdout_fraction,
    )


def effect_output(e: CampaignEffect) -> Output:
    return Output("campaign-effects", e.promotion_id.encode(), encode(e))
