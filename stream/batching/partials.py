"""Per-(promotion, partition) totals together with the offsets they account for.

A partial is keyed `"{promotion_id}/{partition}"` and lives in the partition its events come from. Its
marks hold, per input topic, the offset of the last event whose deltas it includes, and under
`PREDICTIONS` the offset of the last exposure whose prediction it counts. The agent persists partials
before the user values of the same batch, so a replay after a crash recomputes deltas that partials may
already hold; the marks make adding them a no-op. Both live in one table value: one atomic record.
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

    def add_deltas(self, source: str, offset: int, deltas: Iterable[Delta]) -> Partial:
        """The deltas of the event at `offset` of topic `source`, unless already counted."""
        if self.counted(source, offset):
            return self
        return replace(self, totals=self.totals.add_many(deltas), marks={**self.marks, source: offset})

    def add_predictions(self, offsets: Sequence[int], uplifts: Sequence[Sequence[float]]) -> Partial:
        """Predictions of exposures at `offsets` (ascending) with their uplifts, skipping counted ones."""
        fresh = [u for o, u in zip(offsets, uplifts, strict=True) if not self.counted(PREDICTIONS, o)]
        if not fresh:
            return self
        sums = [sum(column) for column in zip(*fresh, strict=True)]
        totals = self.totals.add_predictions(len(fresh), sums)
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
