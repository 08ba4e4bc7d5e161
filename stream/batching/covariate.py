"""The model's predictions as a covariate of the realised uplift: a scored batch's covariate blocks.

The regression-adjusted uplift (stream/effects/sequential.py) needs, per arm and outcome, Σx, Σx², Σy, Σy²
and Σxy over one sample of exposures, with x the exposure's prediction of the outcome, fixed before its
outcome is seen. A prediction is known only once its batch is scored, when later batches may already be
assembled, so covariate contributions are made when a batch is *sent* (in input order), from the batch's
outcome changes (`Delta`s that name their exposure):

- an exposure joins the sample when the batch that opened its attribution row is sent with its
  prediction: the row is stamped with x (`covariate`: per outcome the midpoint of p_treated and p_control,
  the same function of the user for both arms) and contributes n = 1, x, x², and y, y², x·y of the outcomes
  collected so far;
- every later outcome change of a stamped exposure contributes Δy, Δ(y²), x·Δy — its delta carries x when
  its row was stamped before it was assembled, and otherwise the sending agent learned x from the
  earlier batch's send;
- an exposure not scored by the batch that opened it (its promotion was unknown then) stays out for good.
The sample is the scored exposures, chosen independently of the arm, so randomisation keeps the adjusted
estimate unbiased. Blocks are staged on the partials (like prediction counts) and added to the user's
outbox, so a crash between the user values and the partials adds them again with the realised deltas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from stream.effects.aggregate import NO_COV, add_blocks
from stream.effects.attribution import Delta
from stream.events.models import Arm

Change = tuple[str, int, Delta]
"""(user_id, partition, an outcome change the batch made)."""


def covariate(p_treated: Sequence[float], p_control: Sequence[float]) -> tuple[float, ...]:
    return tuple((t + c) / 2.0 for t, c in zip(p_treated, p_control, strict=True))


def contribution(d: Delta, x: Sequence[float], opened: bool) -> tuple[float, ...]:
    """The covariate block of one change of an exposure scored as `x` (`opened`: the change opened it)."""
    block = [1.0 if opened else 0.0]
    for xi, dy, dyy in zip(
        x, (d.d_visits, d.d_conversions, d.d_revenue), (d.d_visits, d.d_conversions, d.d_revenue_sq),
        strict=True,
    ):
        block += (xi, xi * xi) if opened else (0.0, 0.0)
        block += (dy, dyy, xi * dy)
    return tuple(block)


@dataclass
class Blocks:
    """A batch's covariate blocks, by partial (per arm) and by user (as outbox deltas)."""

    partials: dict[tuple[str, str, int], list[tuple[float, ...]]] = field(default_factory=dict)
    """(promotion_id, campaign_id, partition) → [treatment block, holdout block]."""
    users: dict[str, list[Delta]] = field(default_factory=dict)
    stamps: dict[tuple[str, int], tuple[float, ...]] = field(default_factory=dict)
    """(user_id, exposure hash) → x of the exposures this batch brought into the sample."""


def batch_blocks(
    changes: Iterable[Change],
    scored: Callable[[str, int], tuple[float, ...] | None],
    learned: Callable[[str, int], tuple[float, ...] | None],
) -> Blocks:
    """`scored(user, hash)`: x of an exposure scored in this batch; `learned(user, hash)`: x of one stamped
    by an earlier batch after this one was assembled."""
    out = Blocks()
    for uid, partition, d in changes:
        key = (uid, d.exposure_hash)
        opened = d.d_exposures == 1
        x = (scored(*key) if opened else d.x or out.stamps.get(key) or learned(*key)) or None
        if x is None:
            continue
        if opened:
            out.stamps[key] = x
        block = contribution(d, x, opened)
        arms = out.partials.setdefault((d.promotion_id, d.campaign_id, partition), [NO_COV, NO_COV])
        i = 0 if d.arm == Arm.treatment else 1
        arms[i] = add_blocks(arms[i], block)
        out.users.setdefault(uid, []).append(
            Delta(d.promotion_id, d.campaign_id, d.arm, d.exposure_ts, d.ts, cov=block)
        )
    return out
