"""Array state of a simulated world → wire events and truth rows, with ids derived from the seed and order."""

from __future__ import annotations

import numpy as np

from stream.events.models import Arm, ClickEvent, ClickKind, ExposureEvent
from stream.history import TruthRow
from stream.simulate.campaigns import Promotion
from stream.simulate.clock import Clock
from stream.simulate.effects import Truth, Variants
from stream.simulate.exposures import Exposures
from stream.simulate.sessions import KINDS, Clicks, Sessions
from stream.simulate.world import Catalogue, Users

_KINDS = tuple(ClickKind(k) for k in KINDS)


def exposure_order(exposures: Exposures) -> np.ndarray:
    return np.lexsort((exposures.user, exposures.t_ms))


def exposure_events(
    seed: int,
    exposures: Exposures,
    order: np.ndarray,
    users: Users,
    promotions: tuple[Promotion, ...],
    clock: Clock,
) -> list[ExposureEvent]:
    return [
        ExposureEvent(
            event_id=f"x{seed}-{rank}",
            user_id=users.ids[exposures.user[i]],
            promotion_id=promotions[exposures.promotion[i]].promotion_id,
            campaign_id=promotions[exposures.promotion[i]].campaign_id,
            ts=clock.at(exposures.t_ms[i]),
            arm=Arm.treatment if exposures.treated[i] else Arm.holdout,
        )
        for rank, i in enumerate(order.tolist())
    ]


def truth_rows(
    events: list[ExposureEvent], exposures: Exposures, order: np.ndarray, truth: Truth
) -> list[TruthRow]:
    tau, mu0 = truth.tau, truth.mu0
    columns = [c[order].tolist() for c in (*tau, *mu0)]
    return [
        TruthRow(e.event_id, e.user_id, e.promotion_id, e.arm.value, *values)
        for e, values in zip(events, zip(*columns, strict=True), strict=True)
    ]


def click_events(
    seed: int,
    sessions: Sessions,
    clicks: Clicks,
    users: Users,
    promotions: tuple[Promotion, ...],
    variants: Variants,
    catalogue: Catalogue,
    clock: Clock,
) -> list[ClickEvent]:
    session_rank = np.empty(len(sessions.user), dtype=np.int64)
    session_rank[np.lexsort((sessions.user, sessions.start_ms))] = np.arange(len(sessions.user))
    rank = session_rank[clicks.session]
    order = np.lexsort((clicks.position, rank, clicks.t_ms))
    promo_of_variant = [promotions[p].promotion_id for p in variants.promotion.tolist()]
    out = []
    for n, i in enumerate(order.tolist()):
        s = int(clicks.session[i])
        c = int(clicks.category[i])
        v = int(sessions.variant[s])
        out.append(
            ClickEvent(
                event_id=f"c{seed}-{n}",
                user_id=users.ids[sessions.user[s]],
                session_id=f"s{seed}-{rank[i]}",
                ts=clock.at(clicks.t_ms[i]),
                kind=_KINDS[clicks.kind[i]],
                item_id=catalogue.item_id(c, int(clicks.item[i])) if c >= 0 else None,
                category=catalogue.categories[c] if c >= 0 else None,
                price=float(clicks.price[i]),
                quantity=int(clicks.quantity[i]),
                promotion_id=promo_of_variant[v] if v >= 0 else None,
            )
        )
    return out
