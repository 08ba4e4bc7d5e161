"""Wire contracts: pydantic v2 models for every event liftstream reads or writes.

Inputs are validated strictly at the edge (stream/events/gate.py); inside the engine plain frozen
dataclasses and aggregates are used instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

SCHEMA_VERSION: Final = 1
EFFECT_SCHEMA_VERSION: Final = 2
"""`campaign-effects` and `alerts` since the anytime-valid decisions (docs/monitoring.md: schema versions)."""
MAX_MESSAGE_BYTES = 64 * 1024
MAX_FUTURE = timedelta(days=1)

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
ShortText = Annotated[str, Field(max_length=256)]
LongText = Annotated[str, Field(max_length=4096)]
Money = Annotated[float, Field(ge=0.0, le=1e7, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Real = Annotated[float, Field(allow_inf_nan=False)]


def _utc(ts: datetime) -> datetime:
    # Custom error types let the decoding gate classify these failures without parsing messages.
    if ts.tzinfo is None:
        raise PydanticCustomError("timezone_aware", "timestamp must carry a timezone (UTC)")
    try:
        return ts.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("datetime_out_of_range", "timestamp is out of range") from None


def _not_far_future(ts: datetime) -> datetime:
    ts = _utc(ts)
    if ts - datetime.now(UTC) > MAX_FUTURE:
        raise PydanticCustomError("future_timestamp", "timestamp is more than a day in the future")
    return ts


EventTime = Annotated[datetime, AfterValidator(_not_far_future)]
Timestamp = Annotated[datetime, AfterValidator(_utc)]


class ClickKind(StrEnum):
    view = "view"
    click = "click"
    add_to_cart = "add_to_cart"
    purchase = "purchase"
    visit = "visit"


class PromotionAction(StrEnum):
    start = "start"
    update = "update"
    stop = "stop"


class DiscountType(StrEnum):
    percent = "percent"
    amount_off = "amount_off"
    bogo = "bogo"
    free_shipping = "free_shipping"
    bundle = "bundle"


class Arm(StrEnum):
    treatment = "treatment"
    holdout = "holdout"


class Channel(StrEnum):
    web = "web"
    mobile = "mobile"
    phone = "phone"
    multichannel = "multichannel"


class Region(StrEnum):
    urban = "urban"
    suburban = "suburban"
    rural = "rural"


class Outcome(StrEnum):
    visit = "visit"
    conversion = "conversion"
    revenue = "revenue"


class CampaignStatus(StrEnum):
    insufficient_data = "insufficient_data"
    inconclusive = "inconclusive"
    meeting_goal = "meeting_goal"
    underperforming = "underperforming"


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, str_strip_whitespace=False)

    schema_version: Literal[1] = SCHEMA_VERSION


class ClickEvent(_Wire):
    event_id: Id
    user_id: Id
    session_id: Id
    ts: EventTime
    kind: ClickKind
    item_id: Id | None = None
    category: Annotated[str, Field(max_length=64)] | None = None
    price: Money = 0.0
    quantity: Annotated[int, Field(ge=0, le=1000)] = 1
    promotion_id: Id | None = None


class PromotionGoal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Outcome = Outcome.conversion
    target_uplift: Annotated[float, Field(ge=-1.0, le=1e6, allow_inf_nan=False)] = 0.0
    target_incremental_revenue: Annotated[float, Field(ge=0.0, le=1e9, allow_inf_nan=False)] = 0.0


class PromotionEvent(_Wire):
    promotion_id: Id
    campaign_id: Id
    action: PromotionAction
    ts: EventTime
    version: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    title: ShortText = ""
    description: LongText = ""
    discount_type: DiscountType = DiscountType.percent
    discount_value: Annotated[float, Field(ge=0.0, le=1e5, allow_inf_nan=False)] = 0.0
    categories: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=64)] = []
    start: Timestamp | None = None
    end: Timestamp | None = None
    goal: PromotionGoal = PromotionGoal()
    holdout_fraction: Fraction = 0.1


class ExposureEvent(_Wire):
    event_id: Id
    user_id: Id
    promotion_id: Id
    campaign_id: Id
    ts: EventTime
    arm: Arm


# The typed fields a declared attribute may name: kind, and the values it takes (None: any).
PROFILE_FIELDS: Final[dict[str, tuple[str, tuple[str, ...] | None]]] = {
    "tenure_days": ("numeric", None),
    "lifetime_spend": ("numeric", None),
    "orders": ("numeric", None),
    "recency_days": ("numeric", None),
    "channel": ("categorical", tuple(c.value for c in Channel)),
    "region": ("categorical", tuple(r.value for r in Region)),
    "segment": ("categorical", None),
    "interests": ("multi", None),
    "is_new": ("numeric", None),
}
AttributeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
AttributeValue = (
    bool
    | Real
    | Annotated[str, Field(max_length=64)]
    | Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=32)]
)


class UserProfileEvent(_Wire):
    user_id: Id
    ts: EventTime
    tenure_days: Annotated[int, Field(ge=0, le=36500)] = 0
    lifetime_spend: Money = 0.0
    orders: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    recency_days: Annotated[int, Field(ge=0, le=36500)] = 0
    channel: Channel = Channel.web
    region: Region = Region.urban
    segment: Annotated[str, Field(max_length=64)] = ""
    interests: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=32)] = []
    is_new: bool = False
    attributes: Annotated[
        dict[AttributeName, AttributeValue], Field(max_length=64, exclude_if=lambda value: not value)
    ] = {}
    """Declared attributes other than the typed fields above (docs/attributes.md): a number (or boolean), a
    string, or a list of strings, as each one's declaration says. Left out of the wire bytes when empty, so
    a profile without them is written exactly as before declarations existed."""

    @field_validator("attributes")
    @classmethod
    def _declared(cls, attributes: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
        if attributes:
            # Imported here: the declaration and the signature import this module.
            from stream.features.declaration import check_attributes
            from stream.scoring.signature import DECLARATION

            check_attributes(attributes, DECLARATION)
        return attributes


class OutcomeScores(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    p_treated: Real
    p_control: Real
    uplift: Real


class EffectPrediction(_Wire):
    event_id: Id
    user_id: Id
    promotion_id: Id
    campaign_id: Id
    arm: Arm
    model_version: Annotated[int, Field(ge=0)]
    visit: OutcomeScores
    conversion: OutcomeScores
    revenue: OutcomeScores
    expected_incremental_revenue: Real
    event_ts: Timestamp
    scored_at: Timestamp
    latency_ms: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class RankedPromotion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    promotion_id: Id
    campaign_id: Id
    expected_incremental_revenue: Real
    uplift_conversion: Real


class PromotionRanking(_Wire):
    user_id: Id
    session_id: Id
    model_version: Annotated[int, Field(ge=0)]
    ranked: list[RankedPromotion]
    scored_at: Timestamp


class Interval(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    low: Real
    high: Real


class Decision(BaseModel):
    """What the status was decided on: the goal outcome's anytime-valid interval (docs/monitoring.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Outcome
    uplift: Real | None
    interval: Interval | None
    """None until both arms have an exposure."""
    adjusted: bool
    """True when the interval is the one adjusted by the model's predictions."""
    alpha: Fraction
    mixing_scale: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    reason: LongText | None = None
    """Why no decision can be reached (e.g. a holdout fraction of 0 or 1); None when one can."""


class CampaignEffect(_Wire):
    schema_version: Literal[2] = EFFECT_SCHEMA_VERSION  # type: ignore[assignment]
    campaign_id: Id
    promotion_id: Id
    window_start: Timestamp
    window_end: Timestamp
    exposures_treatment: Annotated[int, Field(ge=0)]
    exposures_holdout: Annotated[int, Field(ge=0)]
    predicted_uplift: dict[Outcome, Real]
    realised_rate_treatment: dict[Outcome, Real]
    realised_rate_holdout: dict[Outcome, Real]
    realised_uplift: dict[Outcome, Real]
    realised_uplift_ci: dict[Outcome, Interval]
    """Fixed-horizon 95% intervals: valid at one planned look only, shown for reference; never decided on."""
    anytime_ci: dict[Outcome, Interval]
    """Anytime-valid intervals of `realised_uplift`: they hold at every snapshot at once."""
    adjusted_uplift: dict[Outcome, Real]
    adjusted_ci: dict[Outcome, Interval]
    """Anytime-valid intervals of `adjusted_uplift`, the realised uplift adjusted by the model's predictions;
    for the outcomes with enough scored exposures in both arms."""
    variance_reduction: dict[Outcome, Real]
    """1 − variance(adjusted) / variance(unadjusted) per outcome in `adjusted_uplift`."""
    predicted_uplift_ci: dict[Outcome, Interval]
    """Anytime-valid intervals of the mean predicted uplift over the promotion's scored exposures."""
    goal: PromotionGoal
    status: CampaignStatus
    decision: Decision
    at_risk: bool = False
    """The model's early warning: the predicted uplift's upper bound is below the goal. Never a status."""
    model_version: Annotated[int, Field(ge=0)]
    emitted_at: Timestamp


class FeatureDrift(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(max_length=128)]
    psi: Real
    ks: Real | None = None
    drifted: bool


class DriftReport(_Wire):
    scope: Annotated[str, Field(max_length=64)]
    arm: Arm | None = None
    window_events: Annotated[int, Field(ge=0)]
    features: list[FeatureDrift]
    max_psi: Real
    drifted: bool
    model_version: Annotated[int, Field(ge=0)]
    emitted_at: Timestamp


class AlertKind(StrEnum):
    underperforming = "underperforming"
    meeting_goal = "meeting_goal"
    at_risk = "at_risk"
    drift = "drift"
    triton_unavailable = "triton_unavailable"


class Alert(_Wire):
    schema_version: Literal[2] = EFFECT_SCHEMA_VERSION  # type: ignore[assignment]
    alert_id: Id
    kind: AlertKind
    severity: Literal["info", "warning", "critical"]
    campaign_id: Id | None = None
    promotion_id: Id | None = None
    message: LongText
    value: Real | None = None
    threshold: Real | None = None
    raised_at: Timestamp
    state: Literal["firing", "resolved"] = "firing"
    """An alert fires once when its subject enters the condition and is published again, resolved, when it
    leaves it; both share the `alert_id`."""


class DeadLetter(_Wire):
    reason: Annotated[str, Field(max_length=64)]
    """Why: a decoding reason (stream/events/gate.py: REASONS, and for the Schema Registry header
    `malformed_frame` / `unknown_schema_id`, stream/events/framing.py); for a valid user event that breaks
    the input contract `wrong_partition` or `future_timestamp` (stream/batching/contract.py); for an exposure
    `unknown_promotion` (stream/batching/pending.py), or `invalid_score` / `scoring_failed` when the model
    answered it invalidly or failed on it alone (stream/batching/scoring.py)."""
    error: LongText
    source_topic: Annotated[str, Field(max_length=249)]
    partition: Annotated[int, Field(ge=-1)]
    offset: Annotated[int, Field(ge=-1)]
    key_b64: str | None = None
    payload_b64: str
    received_at: Timestamp


INPUT_EVENTS: dict[str, type[_Wire]] = {
    "clicks": ClickEvent,
    "promotions": PromotionEvent,
    "exposures": ExposureEvent,
    "profiles": UserProfileEvent,
}

OUTPUT_EVENTS: dict[str, type[_Wire]] = {
    "predictions": EffectPrediction,
    "campaign-effects": CampaignEffect,
    "promotion-rankings": PromotionRanking,
    "drift": DriftReport,
    "alerts": Alert,
    "dead-letter": DeadLetter,
}
