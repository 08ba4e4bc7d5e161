"""What a user's latest batch added to the partials, kept in the user value until the partials hold it.

User values and partials are separate table records, so a crash can persist one and not the other.
The agent persists a batch's user values first and its partials after them (stream/agents/users.py), so
after a crash the partials are never ahead of the user values, and at most one batch (the last one whose
user values were written) can be missing from the partials. A replay recomputes what the user values do
not hold. What they hold but the partials may miss is the user's outbox: the realised-effect deltas of
the user's events in the user's latest batch, tagged with that batch's position.

A batch's position, per partition, is the highest offset of each input topic among its events. A partial
marks the highest position of every batch whose deltas it took (`Partial.covers`), so a partial that
missed the batch has a lower mark on at least one topic of it. The first time a later batch touches the
user, an outbox the partials do not cover is added again and retagged with the new batch; this also
holds in the middle of a replay, since no batch can reach a position past an event it has not read.

Why not recompute instead: attribution pairs clicks with exposures from two topics, and which of the
two events carries the delta depends on the order they are read in, which a replay need not repeat.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass
from typing import Any

from stream.batching.records import Record
from stream.effects.attribution import Delta
from stream.events.models import Arm

Position = Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Outbox:
    position: Position
    deltas: tuple[Delta, ...]

    def to_json(self) -> dict[str, Any]:
        return {"pos": dict(self.position), "d": [list(astuple(d)) for d in self.deltas]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outbox:
        deltas = tuple(_delta(*row) for row in data["d"])
        return cls({k: int(v) for k, v in data["pos"].items()}, deltas)


def _delta(pid: str, cid: str, arm: str, *rest: Any) -> Delta:
    # Outboxes written before the covariate blocks have no exposure_hash, cov and x columns.
    exposure_ts, ts, d_exposures, d_visits, d_conversions, d_revenue, d_revenue_sq, *extra = rest
    return Delta(
        pid, cid, Arm(arm), exposure_ts, ts, d_exposures, d_visits, d_conversions, d_revenue, d_revenue_sq,
        cov=tuple(extra[1]) if len(extra) > 1 else (),
    )


def _add_cov(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    if not a or not b:
        return a or b
    return tuple(x + y for x, y in zip(a, b, strict=True))


def aggregate(deltas: Iterable[Delta]) -> tuple[Delta, ...]:
    """One delta per (promotion, arm) with the same effect on totals: bounds an outbox's size."""
    out: dict[tuple[str, Arm], Delta] = {}
    for d in deltas:
        key = (d.promotion_id, d.arm)
        a = out.get(key)
        # Built field by field rather than with `replace`: this runs for every user of every batch.
        if a is None:
            out[key] = Delta(
                d.promotion_id, d.campaign_id, d.arm, d.exposure_ts, d.ts, d.d_exposures, d.d_visits,
                d.d_conversions, d.d_revenue, d.d_revenue_sq, 0, d.cov, (),
            )  # fmt: skip
        else:
            out[key] = Delta(
                a.promotion_id, a.campaign_id, a.arm, min(a.exposure_ts, d.exposure_ts), max(a.ts, d.ts),
                a.d_exposures + d.d_exposures, a.d_visits + d.d_visits, a.d_conversions + d.d_conversions,
                a.d_revenue + d.d_revenue, a.d_revenue_sq + d.d_revenue_sq, a.exposure_hash,
                _add_cov(a.cov, d.cov), a.x,
            )  # fmt: skip
    return tuple(out.values())


def positions(records: Iterable[Record]) -> dict[int, dict[str, int]]:
    """Per partition, the highest offset of each topic among `records`: the batch's position."""
    out: dict[int, dict[str, int]] = {}
    for r in records:
        position = out.setdefault(r.partition, {})
        if r.offset > position.get(r.topic, -1):
            position[r.topic] = r.offset
    return out
