"""Cumulative realised and predicted effect totals of one promotion: plain, JSON-able, mergeable.

The engine keeps one `PromotionTotals` per (promotion, source partition), updated with the `Delta`s of
that partition's events, so a replay of the partition on another worker rebuilds exactly the same
partial. Partials are cumulative snapshots: a downstream agent keyed by promotion keeps the latest
partial of each partition and `merge`s them. Sums are float additions in the given order, so merge
partials in partition order for bit-identical results.

Besides the realised counts, each arm keeps a covariate block for the regression-adjusted uplift
(stream/effects/sequential.py): over the arm's exposures that were scored when they were opened, their
count and, per outcome, Σx, Σx², Σy, Σy², Σxy with x the exposure's prediction of that outcome. Blocks
reach the totals two ways: `scored_*` from the worker when it scores a batch (stream/batching/covariate.py),
and `cov_*` from the covariate part of the deltas that a user's outbox adds again after a crash. An
exposure's contributions are in exactly one of them, so the model's block is their sum (`covariate`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from stream.effects.attribution import Delta
from stream.effects.sequential import MOMENTS
from stream.events.models import Arm
from stream.scoring.signature import OUTCOMES

STATE_VERSION = 2
_ZERO = (0.0,) * len(OUTCOMES)
COV_WIDTH = 1 + MOMENTS * len(OUTCOMES)
NO_COV = (0.0,) * COV_WIDTH


def add_blocks(a: Sequence[float], b: Sequence[float]) -> tuple[float, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


@dataclass(frozen=True, slots=True)
class ArmTotals:
    """Per arm: exposures, exposures with a visit / a conversion, Σ revenue and Σ revenue² per exposure."""

    exposures: int = 0
    visits: int = 0
    conversions: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0
    cov: tuple[float, ...] = NO_COV
    """The covariate block added through outbox deltas (module doc)."""

    def plus(self, other: ArmTotals) -> ArmTotals:
        return ArmTotals(
            self.exposures + other.exposures,
            self.visits + other.visits,
            self.conversions + other.conversions,
            self.revenue + other.revenue,
            self.revenue_sq + other.revenue_sq,
            add_blocks(self.cov, other.cov),
        )

    def with_delta(self, d: Delta) -> ArmTotals:
        return ArmTotals(
            self.exposures + d.d_exposures,
            self.visits + d.d_visits,
            self.conversions + d.d_conversions,
            self.revenue + d.d_revenue,
            self.revenue_sq + d.d_revenue_sq,
            self.cov if not d.cov else add_blocks(self.cov, d.cov),
        )

    def to_json(self) -> list[Any]:
        return [self.exposures, self.visits, self.conversions, self.revenue, self.revenue_sq, list(self.cov)]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> ArmTotals:
        exposures, visits, conversions, revenue, revenue_sq, *cov = data
        return cls(exposures, visits, conversions, revenue, revenue_sq, tuple(cov[0]) if cov else NO_COV)


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
    predicted_uplift_sq_sum: tuple[float, ...] = _ZERO
    # Covariate blocks added when batches are scored (module doc), per arm.
    scored_treatment: tuple[float, ...] = NO_COV
    scored_holdout: tuple[float, ...] = NO_COV
    # Event-time span: the first exposure, and the newest exposure or attributed click.
    first_ts: float | None = None
    last_ts: float | None = None

    def arm(self, arm: Arm) -> ArmTotals:
        return self.treatment if arm == Arm.treatment else self.holdout

    def covariate(self, arm: Arm) -> tuple[float, ...]:
        """The arm's whole covariate block: from scored batches and from outbox deltas."""
        scored = self.scored_treatment if arm == Arm.treatment else self.scored_holdout
        return add_blocks(scored, self.arm(arm).cov)

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
        return replace(self, treatment=treatment, holdout=holdout, first_ts=first, last_ts=last)

    def add_predictions(
        self, count: int, uplift_sums: Sequence[float], uplift_sq_sums: Sequence[float] | None = None
    ) -> PromotionTotals:
        """Add `count` predictions whose uplifts sum to `uplift_sums` and their squares to `uplift_sq_sums`
        (OUTCOMES order)."""
        sq = _ZERO if uplift_sq_sums is None else uplift_sq_sums
        if len(uplift_sums) != len(OUTCOMES) or len(sq) != len(OUTCOMES):
            raise ValueError(f"uplift sums need {len(OUTCOMES)} values, got {len(uplift_sums)}, {len(sq)}")
        return replace(
            self,
            predictions=self.predictions + count,
            predicted_uplift_sum=add_blocks(self.predicted_uplift_sum, [float(v) for v in uplift_sums]),
            predicted_uplift_sq_sum=add_blocks(self.predicted_uplift_sq_sum, [float(v) for v in sq]),
        )

    def add_scored(self, treatment: Sequence[float], holdout: Sequence[float]) -> PromotionTotals:
        """Add covariate blocks of a scored batch (module doc)."""
        return replace(
            self,
            scored_treatment=add_blocks(self.scored_treatment, treatment),
            scored_holdout=add_blocks(self.scored_holdout, holdout),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "treatment": self.treatment.to_json(),
            "holdout": self.holdout.to_json(),
            "predictions": self.predictions,
            "predicted_uplift_sum": list(self.predicted_uplift_sum),
            "predicted_uplift_sq_sum": list(self.predicted_uplift_sq_sum),
            "scored_treatment": list(self.scored_treatment),
            "scored_holdout": list(self.scored_holdout),
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PromotionTotals:
        # Version 1 (before the covariate blocks) reads as totals with empty blocks.
        if data.get("v") not in (1, STATE_VERSION):
            raise ValueError(f"unsupported promotion totals version {data.get('v')!r}")
        return cls(
            ArmTotals.from_json(data["treatment"]),
            ArmTotals.from_json(data["holdout"]),
            int(data["predictions"]),
            tuple(float(v) for v in data["predicted_uplift_sum"]),
            tuple(float(v) for v in data.get("predicted_uplift_sq_sum", _ZERO)),
            tuple(float(v) for v in data.get("scored_treatment", NO_COV)),
            tuple(float(v) for v in data.get("scored_holdout", NO_COV)),
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
            add_blocks(out.predicted_uplift_sum, p.predicted_uplift_sum),
            add_blocks(out.predicted_uplift_sq_sum, p.predicted_uplift_sq_sum),
            add_blocks(out.scored_treatment, p.scored_treatment),
            add_blocks(out.scored_holdout, p.scored_holdout),
            _min(out.first_ts, p.first_ts),
            _max(out.last_ts, p.last_ts),
        )
    return out
