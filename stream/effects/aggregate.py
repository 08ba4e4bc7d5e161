"""Cumulative realised and predicted effect totals of one promotion: plain, JSON-able, mergeable.

The engine keeps one `PromotionTotals` per (promotion, source partition), updated with the `Delta`s of
that partition's events, so a replay of the partition on another worker rebuilds exactly the same
partial. Partials are cumulative snapshots: a downstream agent keyed by promotion keeps the latest
partial of each partition and `merge`s them. Sums are float additions in the given order, so merge
partials in partition order for bit-identical results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass
from typing import Any

from stream.effects.attribution import Delta
from stream.events.models import Arm
from stream.scoring.signature import OUTCOMES

STATE_VERSION = 1
_ZERO = (0.0,) * len(OUTCOMES)


@dataclass(frozen=True, slots=True)
class ArmTotals:
    """Per arm: exposures, exposures with a visit / a conversion, Σ revenue and Σ revenue² per exposure."""

    exposures: int = 0
    visits: int = 0
    conversions: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0

    def plus(self, other: ArmTotals) -> ArmTotals:
        return ArmTotals(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def with_delta(self, d: Delta) -> ArmTotals:
        return ArmTotals(
            self.exposures + d.d_exposures,
            self.visits + d.d_visits,
            self.conversions + d.d_conversions,
            self.revenue + d.d_revenue,
            self.revenue_sq + d.d_revenue_sq,
        )


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(frozen=True, slots=True)
class PromotionTotals:
    treatment: ArmTotals = ArmTotals()
    holdout: ArmTotals = ArmTotals()
    # Predictions of this promotion's exposures (both arms): their count and Σ uplift per outcome.
    predictions: int = 0
    predicted_uplift_sum: tuple[float, ...] = _ZERO
    # Event-time span: the first exposure, and the newest exposure or attributed click.
    first_ts: float | None = None
    last_ts: float | None = None

    def arm(self, arm: Arm) -> ArmTotals:
        return self.treatment if arm == Arm.treatment else self.holdout

    def add(self, delta: Delta) -> PromotionTotals:
        return self.add_many((delta,))

    def add_many(self, deltas: Iterable[Delta]) -> PromotionTotals:
        treatment, holdout, first, last = self.treatment, self.holdout, self.first_ts, self.last_ts
        for d in deltas:
            if d.arm == Arm.treatment:
                treatment = treatment.with_delta(d)
            else:
                holdout = holdout.with_delta(d)
            first, last = _min(first, d.exposure_ts), _max(last, d.ts)
        return PromotionTotals(treatment, holdout, self.predictions, self.predicted_uplift_sum, first, last)

    def add_predictions(self, count: int, uplift_sums: Sequence[float]) -> PromotionTotals:
        """Add `count` predictions whose uplifts sum to `uplift_sums` (OUTCOMES order)."""
        if len(uplift_sums) != len(OUTCOMES):
            raise ValueError(f"uplift_sums needs {len(OUTCOMES)} values, got {len(uplift_sums)}")
        summed = tuple(a + float(b) for a, b in zip(self.predicted_uplift_sum, uplift_sums, strict=True))
        return PromotionTotals(
            self.treatment, self.holdout, self.predictions + count, summed, self.first_ts, self.last_ts
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "treatment": list(astuple(self.treatment)),
            "holdout": list(astuple(self.holdout)),
            "predictions": self.predictions,
            "predicted_uplift_sum": list(self.predicted_uplift_sum),
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PromotionTotals:
        if data.get("v") != STATE_VERSION:
            raise ValueError(f"unsupported promotion totals version {data.get('v')!r}")
        return cls(
            ArmTotals(*data["treatment"]),
            ArmTotals(*data["holdout"]),
            int(data["predictions"]),
            tuple(float(v) for v in data["predicted_uplift_sum"]),
            data["first_ts"],
            data["last_ts"],
        )


EMPTY = PromotionTotals()


def merge(partials: Iterable[PromotionTotals]) -> PromotionTotals:
    """The totals of disjoint partials (one per source partition)."""
    out = EMPTY
    for p in partials:
        out = PromotionTotals(
            out.treatment.plus(p.treatment),
            out.holdout.plus(p.holdout),
            out.predictions + p.predictions,
            tuple(a + b for a, b in zip(out.predicted_uplift_sum, p.predicted_uplift_sum, strict=True)),
            _min(out.first_ts, p.first_ts),
            _max(out.last_ts, p.last_ts),
        )
    return out
