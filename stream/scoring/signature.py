"""The model signature shared by training, export, the Triton configs and the stream.

One place names every tensor, its dtype and width, and the order of the feature columns, so the
exported `config.pbtxt`, the TorchScript modules and the stream's request builder cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOWS = ("5m", "1h", "24h")
WINDOW_SECONDS = (300, 3600, 86400)
CLICK_KINDS = ("view", "click", "add_to_cart", "purchase", "visit")
CHANNELS = ("web", "mobile", "phone", "multichannel")
REGIONS = ("urban", "suburban", "rural")
DISCOUNT_TYPES = ("percent", "amount_off", "bogo", "free_shipping", "bundle")
OUTCOMES = ("visit", "conversion", "revenue")

# Per-user features, in column order (stream/features computes them; models/ trains on them).
USER_FEATURES: tuple[str, ...] = (
    *(f"{w}_{k}_count" for w in WINDOWS for k in CLICK_KINDS),
    *(f"{w}_spend" for w in WINDOWS),
    *(f"{w}_distinct_categories" for w in WINDOWS),
    "recency_log_s",
    "session_events",
    "session_duration_log_s",
    "exposures_24h",
    "distinct_promotions_24h",
    "profile_tenure_log_days",
    "profile_lifetime_spend_log",
    "profile_orders_log",
    "profile_recency_log_days",
    *(f"profile_channel_{c}" for c in CHANNELS),
    *(f"profile_region_{r}" for r in REGIONS),
    "profile_is_new",
    "profile_known",
    "hour_sin",
    "hour_cos",
)

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
