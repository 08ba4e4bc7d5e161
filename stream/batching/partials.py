"""Per-(promotion, partition) totals together with the input positions they account for.

A partial is keyed `"{promotion_id}/{partition}"` and lives in the partition its events come from. Its
marks hold, per input topic, the position of the newest batch whose deltas it includes (the batch's
highest offset of that topic in the partition: see `stream.batching.outbox`), and under `PREDICTIONS`
the offset of the last exposure whose prediction it counts. Totals and marks live in one table value:
one atomic record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from stream.effects.aggregate import EMPTY, PromotionTotals
from stream.effects.attribution import Delta

PREDICTIONS = "predictions"


def partial_key(promotion_id: str, partition: int) -> str:
    return f"{promotion_id}/{partition}"


@dataclass(frozen=True, slots=True)
class Partial:
    promotion_id: str
    campaign_id: str
    partition: int
    totals: PromotionTotals = EMPTY
    marks: Mapping[str, int] = field(default_factory=dict)

    def counted(self, source: str, offset: int) -> bool:
        return offset <= self.marks.get(source, -1)

    def covers(self, position: Mapping[str, int]) -> bool:
        """Whether the deltas of the batch at `position` are in (a batch that touched this partial)."""
        return all(offset <= self.marks.get(topic, -1) for topic, offset in position.items())

    def add_deltas(self, position: Mapping[str, int], deltas: Iterable[Delta]) -> Partial:
        """Deltas of the batch at `position`; the marks move up to it."""
        marks = dict(self.marks)
        for topic, offset in position.items():
            marks[topic] = max(offset, marks.get(topic, -1))
        return replace(self, totals=self.totals.add_many(deltas), marks=marks)

    def with_predictions_of(self, other: Partial) -> Partial:
        """These realised totals with the prediction count, sums, covariate blocks of scored batches and
        mark of `other` (same key)."""
        o = other.totals
        totals = replace(
            self.totals,
            predictions=o.predictions,
            predicted_uplift_sum=o.predicted_uplift_sum,
            predicted_uplift_sq_sum=o.predicted_uplift_sq_sum,
            scored_treatment=o.scored_treatment,
            scored_holdout=o.scored_holdout,
        )
        marks = dict(self.marks)
        if PREDICTIONS in other.marks:
            marks[PREDICTIONS] = other.marks[PREDICTIONS]
        return replace(self, totals=totals, marks=marks)

    def add_predictions(self, offsets: Sequence[int], uplifts: Sequence[Sequence[float]]) -> Partial:
        """Predictions of exposures at `offsets` (ascending) with their uplifts, skipping counted ones."""
        fresh = [u for o, u in zip(offsets, uplifts, strict=True) if not self.counted(PREDICTIONS, o)]
        if not fresh:
            return self
        sums = [sum(column) for column in zip(*fresh, strict=True)]
        squares = [sum(u * u for u in column) for column in zip(*fresh, strict=True)]
        totals = self.totals.add_predictions(len(fresh), sums, squares)
        return replace(self, totals=totals, marks={**self.marks, PREDICTIONS: offsets[-1]})

    def progress(self) -> int:
        """Grows with every counted event: the newer of two snapshots of one partial has the larger one."""
        return sum(o + 1 for o in self.marks.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "promotion_id": self.promotion_id,
            "campaign_id": self.campaign_id,
            "partition": self.partition,
            "totals": self.totals.to_json(),
            "marks": dict(self.marks),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Partial:
        return cls(
            data["promotion_id"],
            data["campaign_id"],
            int(data["partition"]),
            PromotionTotals.from_json(data["totals"]),
            {k: int(v) for k, v in data["marks"].items()},
        )
