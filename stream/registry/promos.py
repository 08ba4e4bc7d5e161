"""A registry entry: a promotion's defining event, whether it runs, and its vector per model version.

Events apply in (version, ts) order: an older one (a replay, or a late update) changes nothing. `start`
and `update` define the promotion and activate it; `stop` deactivates it and keeps the definition, so
exposures that arrive after the stop still score. Vectors belong to the promotion text: they are kept
while the text is unchanged and dropped when an update rewrites it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from stream.events.models import PromotionAction, PromotionEvent, PromotionGoal
from stream.features.promo import PromoInfo, promo_info


@dataclass(frozen=True, slots=True)
class Promo:
    event: PromotionEvent
    """The start/update that defines the promotion (a stop only when nothing else is known)."""
    active: bool
    last: tuple[int, float]
    """(version, ts) of the newest event applied."""
    vectors: Mapping[int, tuple[float, ...]] = field(default_factory=dict)
    """Model version → promotion vector of `info.text`."""
    info: PromoInfo = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "info", promo_info(self.event))

    @property
    def promotion_id(self) -> str:
        return self.event.promotion_id

    @property
    def campaign_id(self) -> str:
        return self.event.campaign_id

    @property
    def goal(self) -> PromotionGoal:
        return self.event.goal

    def with_vector(self, version: int, vector: Iterable[float]) -> Promo:
        return replace(self, vectors={**self.vectors, version: tuple(float(x) for x in vector)})

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event.model_dump(mode="json"),
            "active": self.active,
            "last": list(self.last),
            "vectors": {str(v): list(vec) for v, vec in self.vectors.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Promo:
        event = PromotionEvent.model_validate(data["event"])
        return cls(
            event,
            bool(data["active"]),
            (int(data["last"][0]), float(data["last"][1])),
            {int(v): tuple(vec) for v, vec in data["vectors"].items()},
        )


def apply_event(current: Promo | None, event: PromotionEvent) -> Promo | None:
    """The entry after `event`, or None when the event is older than what the entry already holds."""
    order = (event.version, event.ts.timestamp())
    if current is not None and order < current.last:
        return None
    if event.action is PromotionAction.stop:
        if current is None:
            return Promo(event, False, order)
        return replace(current, active=False, last=order)
    keep = current is not None and promo_info(event).text == current.info.text
    return Promo(event, True, order, current.vectors if keep and current is not None else {})
