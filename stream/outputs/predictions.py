"""An `EffectPrediction` per scored exposure, keyed by user_id with the exposure's event_id.

Exposures the batch left unscored (`Scored.failures`) get none: they are dead-lettered instead.

Built as the msgspec Structs of stream/events/fast_outputs.py, whose bytes are the pydantic model's.

Latency is measured from the exposure message's Kafka timestamp (when it entered the log) to `scored_at`,
so it covers the time the message waited in Kafka, in the worker's buffers and in Triton.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stream.batching.assemble import ExposureItem
from stream.batching.scoring import Scored
from stream.events.fast_outputs import EffectPrediction, OutcomeScores, encode
from stream.outputs import Output
from stream.scoring.signature import OUTCOMES

REVENUE = OUTCOMES.index("revenue")


def latencies_s(items: Sequence[ExposureItem], scored: Scored) -> np.ndarray:
    at = scored.scored_at.timestamp()
    return np.maximum(at - np.asarray([i.record.timestamp for i in items], dtype=np.float64), 0.0)


def effect_predictions(scored: Scored) -> list[EffectPrediction]:
    exposures = scored.exposures()
    rows = [row for row, _, _ in exposures]
    items = [item for _, item, _ in exposures]
    p_t, p_c = scored.p_treated[rows].tolist(), scored.p_control[rows].tolist()
    latency_ms = (latencies_s(items, scored) * 1000.0).tolist()
    out = []
    for i, item in enumerate(items):
        ev, t, c = item.event, p_t[i], p_c[i]
        scores = {
            o: OutcomeScores(p_treated=t[j], p_control=c[j], uplift=t[j] - c[j])
            for j, o in enumerate(OUTCOMES)
        }
        out.append(
            EffectPrediction(
                event_id=ev.event_id,
                user_id=ev.user_id,
                promotion_id=ev.promotion_id,
                campaign_id=ev.campaign_id,
                arm=ev.arm,
                model_version=scored.version,
                visit=scores["visit"],
                conversion=scores["conversion"],
                revenue=scores["revenue"],
                expected_incremental_revenue=t[REVENUE] - c[REVENUE],
                event_ts=ev.ts,
                scored_at=scored.scored_at,
                latency_ms=latency_ms[i],
            )
        )
    return out


def prediction_outputs(predictions: Sequence[EffectPrediction]) -> list[Output]:
    return [Output("predictions", p.user_id.encode(), encode(p)) for p in predictions]
