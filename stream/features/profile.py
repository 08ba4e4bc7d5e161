"""Profile columns of the user feature vector, from the latest `UserProfileEvent` of a user.

Which columns there are is the declaration's (stream/features/declaration.py); the default declaration
gives the 13 columns the model always had.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

import numpy as np

from stream.events.models import PROFILE_FIELDS, UserProfileEvent
from stream.features.declaration import Attribute
from stream.features.state import stable_hash
from stream.scoring.signature import DECLARATION, USER_FEATURES

PROFILE_START = USER_FEATURES.index("profile_known") - sum(len(a.columns()) for a in DECLARATION)
PROFILE_FEATURES: tuple[str, ...] = USER_FEATURES[PROFILE_START : USER_FEATURES.index("profile_known") + 1]
NO_INTERESTS: frozenset[int] = frozenset()


def attribute_value(profile: UserProfileEvent, name: str) -> Any:
    """A declared attribute's value: its typed field, else its entry in `attributes` (None when absent)."""
    if name in PROFILE_FIELDS:
        value = getattr(profile, name)
        return value.value if isinstance(value, StrEnum) else value
    return profile.attributes.get(name)


def _columns(attribute: Attribute, value: Any) -> list[float]:
    if attribute.kind == "numeric":
        number = 0.0 if value is None else float(value)
        return [math.log1p(number) if attribute.transform == "log1p" else number]
    members = {value} if attribute.kind == "categorical" else set(value or ())
    return [float(v in members) for v in attribute.vocabulary]


def profile_vector(
    profile: UserProfileEvent | None, declaration: tuple[Attribute, ...] = DECLARATION
) -> np.ndarray:
    """The profile_* columns (the declaration's, then profile_known) as float32; all zero when unknown."""
    if profile is None:
        return np.zeros(sum(len(a.columns()) for a in declaration) + 1, dtype=np.float32)
    values = [x for a in declaration for x in _columns(a, attribute_value(profile, a.name))]
    return np.array([*values, 1.0], dtype=np.float32)


def profile_interests(
    profile: UserProfileEvent | None, declaration: tuple[Attribute, ...] = DECLARATION
) -> frozenset[int]:
    """Hashes of the attribute matched against promotion categories, comparable with category hashes."""
    matched = next((a.name for a in declaration if a.match_categories), None)
    if profile is None or matched is None:
        return NO_INTERESTS
    return frozenset(stable_hash(i) for i in attribute_value(profile, matched) or ())
