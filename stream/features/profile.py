"""Profile columns of the user feature vector, from the latest `UserProfileEvent` of a user."""

from __future__ import annotations

import math

import numpy as np

from stream.events.models import UserProfileEvent
from stream.features.state import stable_hash
from stream.scoring.signature import CHANNELS, REGIONS, USER_FEATURES

PROFILE_START = USER_FEATURES.index("profile_tenure_log_days")
PROFILE_FEATURES: tuple[str, ...] = USER_FEATURES[PROFILE_START : USER_FEATURES.index("profile_known") + 1]
NO_INTERESTS: frozenset[int] = frozenset()


def profile_vector(profile: UserProfileEvent | None) -> np.ndarray:
    """The profile_* columns (PROFILE_FEATURES order) as float32; all zero, profile_known=0, when unknown."""
    if profile is None:
        return np.zeros(len(PROFILE_FEATURES), dtype=np.float32)
    values = {
        "profile_tenure_log_days": math.log1p(profile.tenure_days),
        "profile_lifetime_spend_log": math.log1p(profile.lifetime_spend),
        "profile_orders_log": math.log1p(profile.orders),
        "profile_recency_log_days": math.log1p(profile.recency_days),
        **{f"profile_channel_{c}": float(profile.channel.value == c) for c in CHANNELS},
        **{f"profile_region_{r}": float(profile.region.value == r) for r in REGIONS},
        "profile_is_new": float(profile.is_new),
        "profile_known": 1.0,
    }
    return np.array([values[name] for name in PROFILE_FEATURES], dtype=np.float32)


def profile_interests(profile: UserProfileEvent | None) -> frozenset[int]:
    """Interest category hashes, comparable with promotion and click category hashes."""
    if profile is None:
        return NO_INTERESTS
    return frozenset(stable_hash(i) for i in profile.interests)
