"""The model signature shared by training, export, the Triton configs and the stream.

One place names every tensor, its dtype and width, and the order of the feature columns, so the
exported `config.pbtxt`, the TorchScript modules and the stream's request builder cannot disagree.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.errors import ModelError
from stream.features.declaration import (
    DEFAULT_ATTRIBUTES,
    declaration_hash,
    declared_profile,
    profile_columns,
)

log = logging.getLogger(__name__)

WINDOWS = ("5m", "1h", "24h")
WINDOW_SECONDS = (300, 3600, 86400)
CLICK_KINDS = ("view", "click", "add_to_cart", "purchase", "visit")
DISCOUNT_TYPES = ("percent", "amount_off", "bogo", "free_shipping", "bundle")
OUTCOMES = ("visit", "conversion", "revenue")

# The process's declared profile attributes (stream/features/declaration.py), read once: the width of
# user_features is part of the signature, so it is fixed for the life of the process.
DECLARATION = declared_profile().attributes
DECLARATION_HASH = declaration_hash(DECLARATION)
# What every model recorded before declarations existed was trained on.
DEFAULT_DECLARATION_HASH = declaration_hash(DEFAULT_ATTRIBUTES)
SIGNATURE_FILE = "signature.json"


def user_feature_names(profile: tuple[str, ...]) -> tuple[str, ...]:
    """USER_FEATURES for a declaration's profile columns: behaviour, then profile, then time of day."""
    return (
        *(f"{w}_{k}_count" for w in WINDOWS for k in CLICK_KINDS),
        *(f"{w}_spend" for w in WINDOWS),
        *(f"{w}_distinct_categories" for w in WINDOWS),
        "recency_log_s",
        "session_events",
        "session_duration_log_s",
        "exposures_24h",
        "distinct_promotions_24h",
        *profile,
        "hour_sin",
        "hour_cos",
    )


# Per-user features, in column order (stream/features computes them; models/ trains on them). The default
# declaration gives the 41 the model always had.
USER_FEATURES: tuple[str, ...] = user_feature_names(profile_columns(DECLARATION))

# Per-(user, promotion) attributes other than the text embedding.
PROMO_ATTRS: tuple[str, ...] = (
    *(f"discount_{d}" for d in DISCOUNT_TYPES),
    "discount_value_log",
    "n_categories",
    "interest_match",
    "recent_category_match",
)

PROMO_DIM = 32
MAX_TOKENS = 64


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str  # Triton dtype name
    dims: tuple[int, ...]  # without the batch dimension

    @property
    def config_dtype(self) -> str:
        return f"TYPE_{self.dtype}"


ENCODER = "promo_encoder"
SCORER = "effect_scorer"

ENCODER_INPUTS = (
    Tensor("input_ids", "INT64", (MAX_TOKENS,)),
    Tensor("attention_mask", "INT64", (MAX_TOKENS,)),
)
ENCODER_OUTPUTS = (Tensor("promo_vector", "FP32", (PROMO_DIM,)),)

SCORER_INPUTS = (
    Tensor("user_features", "FP32", (len(USER_FEATURES),)),
    Tensor("promo_vector", "FP32", (PROMO_DIM,)),
    Tensor("promo_attrs", "FP32", (len(PROMO_ATTRS),)),
)
# Per outcome (OUTCOMES order): visit/conversion probabilities and expected revenue, for each arm.
SCORER_OUTPUTS = (
    Tensor("p_treated", "FP32", (len(OUTCOMES),)),
    Tensor("p_control", "FP32", (len(OUTCOMES),)),
)

ENCODER_MAX_BATCH = 64
SCORER_MAX_BATCH = 4096


def signature_record() -> dict[str, Any]:
    """The inputs a model is trained on: model.json `features`, and the served version's signature.json."""
    return {
        "user_features": list(USER_FEATURES),
        "promo_attrs": list(PROMO_ATTRS),
        "outcomes": list(OUTCOMES),
        "declaration": [a.model_dump(mode="json") for a in DECLARATION],
        "declaration_hash": DECLARATION_HASH,
    }


def signature_mismatch(recorded: Mapping[str, Any], what: str) -> str | None:
    """Why `what`, whose recorded signature is `recorded`, cannot run with this process's declaration."""
    recorded_hash = recorded.get("declaration_hash", DEFAULT_DECLARATION_HASH)
    names = list(recorded.get("user_features", USER_FEATURES))
    if recorded_hash == DECLARATION_HASH and names == list(USER_FEATURES):
        return None
    return (
        f"{what} was trained on profile declaration {recorded_hash} ({len(names)} user features) but "
        f"this process declares {DECLARATION_HASH} ({len(USER_FEATURES)}): set LIFTSTREAM_PROFILE__ATTRIBUTES"
        " or LIFTSTREAM_PROFILE__ATTRIBUTES_FILE to the model's declaration, or train and export one on this"
    )


def check_served(repo: Path, version: int, config: Mapping[str, Any] | None = None) -> None:
    """ModelError unless the served `version` was trained on this process's declaration.

    The signature is `REPO/effect_scorer/<version>/signature.json` (written by `liftstream export`); a
    version exported before signatures were recorded has the default declaration. A worker that cannot
    see the repository (Triton's is elsewhere) says so once and checks the user-feature width of the
    scorer's `config` as Triton serves it (`get_model_config`, JSON): a declaration of another width would
    otherwise fail every request."""
    version_dir = repo / SCORER / str(version)
    if not version_dir.is_dir():
        log.warning("cannot check the signature of model version %d: no %s here; checking its input width",
                    version, version_dir)
        if config is None:
            return
        inputs = config.get("input", [])
        width = next((int(i["dims"][-1]) for i in inputs if i.get("name") == "user_features"), None)
        if width != len(USER_FEATURES):
            raise ModelError(f"served model version {version} takes {width} user features, the declared "
                             f"profile attributes give {len(USER_FEATURES)}: export a model trained on this "
                             "declaration")
        return
    path = version_dir / SIGNATURE_FILE
    try:
        recorded = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not a model signature: {exc}") from exc
    wrong = signature_mismatch(recorded, f"served model version {version}")
    if wrong:
        raise ModelError(wrong)
