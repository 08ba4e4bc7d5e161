"""Replay of a recorded history through the feature state, as the stream's agents would apply it.

Events are applied in event-time order, ties broken like the history's own merge (promotions,
profiles, exposures, clicks), then file order. Each exposure keeps its user's state *before* the
exposure is applied, plus the profile and promotion in force at that moment; states are immutable,
so keeping them is cheap and the features can be computed afterwards in vectorised batches.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.events.models import Arm, PromotionAction
from stream.features.profile import profile_interests, profile_vector
from stream.features.promo import PromoInfo, promo_info
from stream.features.state import (
    EMPTY,
    FeatureConfig,
    UserState,
    apply_click,
    apply_exposure,
    click_row,
    exposure_row,
)
from stream.history import TOPICS, History

log = logging.getLogger(__name__)

_RANK = {topic: rank for rank, topic in enumerate(TOPICS)}


@dataclass(frozen=True)
class Replay:
    """Per exposure (row order = event-time order): ids, arm and the inputs of the feature functions."""

    event_ids: np.ndarray
    user_ids: np.ndarray
    promotion_ids: np.ndarray
    campaign_ids: np.ndarray
    ts: np.ndarray
    arm: np.ndarray
    states: list[UserState]
    profile_vecs: np.ndarray
    interests: list[frozenset[int]]
    promos: list[PromoInfo]
    # Every click of the history, in event-time order, for labelling.
    click_users: np.ndarray
    click_ts: np.ndarray
    click_kind: np.ndarray
    click_amount: np.ndarray
    promo_texts: dict[str, str]
    applied: Counter[str]
    skipped: int


def _timeline(history: History) -> list[tuple[float, int, int, Any]]:
    items: list[tuple[float, int, int, Any]] = []
    for topic in TOPICS:
        rank = _RANK[topic]
        for seq, event in enumerate(getattr(history, topic)):
            items.append((event.ts.timestamp(), rank, seq, event))
    items.sort(key=lambda item: item[:3])
    return items


def replay(history: History, config: FeatureConfig) -> Replay:
    states: dict[str, UserState] = {}
    profiles: dict[str, tuple[np.ndarray, frozenset[int]]] = {}
    current: dict[str, PromoInfo] = {}
    first: dict[str, PromoInfo] = {}
    applied: Counter[str] = Counter()
    exposures: list[tuple[Any, UserState, np.ndarray, frozenset[int], PromoInfo | None]] = []
    clicks: list[tuple[str, tuple[float, int, float, int, int, int]]] = []
    no_profile = (profile_vector(None), profile_interests(None))

    for _ts, rank, _seq, event in _timeline(history):
        topic = TOPICS[rank]
        if topic == "promotions":
            # A stop keeps the promotion's last definition: late exposures still describe it.
            if event.action != PromotionAction.stop:
                current[event.promotion_id] = promo_info(event)
                first.setdefault(event.promotion_id, current[event.promotion_id])
        elif topic == "profiles":
            profiles[event.user_id] = (profile_vector(event), profile_interests(event))
        elif topic == "clicks":
            row = click_row(event)
            clicks.append((event.user_id, row))
            states[event.user_id], status = apply_click(states.get(event.user_id, EMPTY), row, config)
            applied[f"clicks_{status}"] += 1
        else:
            before = states.get(event.user_id, EMPTY)
            vec, interests = profiles.get(event.user_id, no_profile)
            exposures.append((event, before, vec, interests, current.get(event.promotion_id)))
            states[event.user_id], status = apply_exposure(before, exposure_row(event), config)
            applied[f"exposures_{status}"] += 1

    # The stream holds an exposure of an unannounced promotion until it arrives: use its first definition.
    kept = [
        (e, s, v, i, p if p is not None else first[e.promotion_id])
        for e, s, v, i, p in exposures
        if p is not None or e.promotion_id in first
    ]
    skipped = len(exposures) - len(kept)
    if skipped:
        log.warning("replay: %d exposures of promotions never defined in the history were skipped", skipped)
    ev = [k[0] for k in kept]
    return Replay(
        event_ids=np.array([e.event_id for e in ev], dtype=str),
        user_ids=np.array([e.user_id for e in ev], dtype=str),
        promotion_ids=np.array([e.promotion_id for e in ev], dtype=str),
        campaign_ids=np.array([e.campaign_id for e in ev], dtype=str),
        ts=np.array([e.ts.timestamp() for e in ev], dtype=np.float64),
        arm=np.array([e.arm == Arm.treatment for e in ev], dtype=np.int8),
        states=[k[1] for k in kept],
        profile_vecs=np.array([k[2] for k in kept], dtype=np.float32).reshape(len(kept), len(no_profile[0])),
        interests=[k[3] for k in kept],
        promos=[k[4] for k in kept],
        click_users=np.array([u for u, _ in clicks], dtype=str),
        click_ts=np.array([r[0] for _, r in clicks], dtype=np.float64),
        click_kind=np.array([r[1] for _, r in clicks], dtype=np.int64),
        click_amount=np.array([r[2] for _, r in clicks], dtype=np.float64),
        promo_texts={pid: info.text for pid, info in current.items()},
        applied=applied,
        skipped=skipped,
    )
