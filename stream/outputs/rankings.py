"""`PromotionRanking`: a user's eligible active promotions, best first by expected incremental revenue.

Built as the msgspec Structs of stream/events/fast_outputs.py, whose bytes are the pydantic model's."""

from __future__ import annotations

import numpy as np

from stream.batching.request import RankGroup
from stream.batching.scoring import Scored
from stream.events.fast_outputs import PromotionRanking, RankedPromotion, encode
from stream.outputs import Output
from stream.scoring.signature import OUTCOMES

REVENUE = OUTCOMES.index("revenue")
CONVERSION = OUTCOMES.index("conversion")


def top_k(promotion_ids: list[str], revenue: np.ndarray, k: int) -> list[int]:
    """Indices of the k largest `revenue` values, ties broken by promotion_id for a stable order."""
    order = sorted(range(len(promotion_ids)), key=lambda i: (-float(revenue[i]), promotion_ids[i]))
    return order[:k]


def ranking(group: RankGroup, scored: Scored, k: int) -> PromotionRanking:
    """The group's candidates by expected incremental revenue; those the batch left unscored are left out."""
    rows = [r for r in range(group.rows.start, group.rows.stop) if r not in scored.failures]
    uplift = scored.uplift[rows]
    promos = [group.promos[r - group.rows.start] for r in rows]
    ids = [p.promotion_id for p in promos]
    ranked = [
        RankedPromotion(
            promotion_id=ids[i],
            campaign_id=promos[i].campaign_id,
            expected_incremental_revenue=float(uplift[i, REVENUE]),
            uplift_conversion=float(uplift[i, CONVERSION]),
        )
        for i in top_k(ids, uplift[:, REVENUE], k)
    ]
    return PromotionRanking(
        user_id=group.item.user_id,
        session_id=group.item.session_id,
        model_version=scored.version,
        ranked=ranked,
        scored_at=scored.scored_at,
    )


def ranking_outputs(scored: Scored, k: int) -> list[Output]:
    return [
        Output("promotion-rankings", g.item.user_id.encode(), encode(ranking(g, scored, k)))
        for g in scored.request.rankings
    ]
