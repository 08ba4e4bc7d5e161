"""The msgspec output Structs write pydantic's bytes, and pydantic reads them back to equal values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.events import fast_outputs as wire
from stream.events import models
from stream.events.models import Arm

from .samples import sample_events

pytestmark = pytest.mark.unit

IDS = st.text("abcXYZ019_.:-", min_size=1, max_size=128)
TIMES = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1), timezones=st.just(UTC))
SMALL = st.floats(
    allow_nan=False, allow_infinity=False, min_value=-1e16, max_value=1e16, exclude_min=True, exclude_max=True
)
REAL = SMALL | st.floats(allow_nan=False, allow_infinity=False)
SCORES = st.builds(wire.OutcomeScores, REAL, REAL, REAL)


def _prediction(reals: st.SearchStrategy[float]) -> st.SearchStrategy[wire.EffectPrediction]:
    scores = st.builds(wire.OutcomeScores, reals, reals, reals)
    return st.builds(
        wire.EffectPrediction,
        event_id=IDS,
        user_id=IDS,
        promotion_id=IDS,
        campaign_id=IDS,
        arm=st.sampled_from(Arm),
        model_version=st.integers(0, 2**63 - 1),
        visit=scores,
        conversion=scores,
        revenue=scores,
        expected_incremental_revenue=reals,
        event_ts=TIMES,
        scored_at=TIMES,
        latency_ms=reals.map(abs),
    )


def _ranking(reals: st.SearchStrategy[float]) -> st.SearchStrategy[wire.PromotionRanking]:
    ranked = st.builds(wire.RankedPromotion, IDS, IDS, reals, reals)
    return st.builds(
        wire.PromotionRanking,
        user_id=IDS,
        session_id=IDS,
        model_version=st.integers(0, 2**63 - 1),
        ranked=st.lists(ranked, max_size=5),
        scored_at=TIMES,
    )


@settings(max_examples=300, deadline=None)
@given(prediction=_prediction(SMALL), ranking=_ranking(SMALL))
def test_bytes_are_pydantics(prediction: wire.EffectPrediction, ranking: wire.PromotionRanking) -> None:
    for struct, model in ((prediction, models.EffectPrediction), (ranking, models.PromotionRanking)):
        raw = wire.encode(struct)
        assert model.model_validate_json(raw, strict=True).model_dump_json().encode() == raw


@settings(max_examples=300, deadline=None)
@given(prediction=_prediction(REAL), ranking=_ranking(REAL))
def test_any_finite_float_reads_back_equal(
    prediction: wire.EffectPrediction, ranking: wire.PromotionRanking
) -> None:
    for struct, model in ((prediction, models.EffectPrediction), (ranking, models.PromotionRanking)):
        read = model.model_validate_json(wire.encode(struct), strict=True)
        assert read == model.model_validate(msgspec.structs.asdict(struct) | _nested(struct))


def _nested(struct: msgspec.Struct) -> dict[str, object]:
    return {
        k: [msgspec.structs.asdict(v) for v in value]
        if isinstance(value, list)
        else msgspec.structs.asdict(value)
        for k, value in msgspec.structs.asdict(struct).items()
        if isinstance(value, msgspec.Struct | list)
    }


@pytest.mark.parametrize("topic", ["predictions", "promotion-rankings"])
def test_the_samples_encode_as_today(topic: str) -> None:
    sample = sample_events()[topic]
    struct = msgspec.json.decode(
        sample.model_dump_json(),
        type=wire.EffectPrediction if topic == "predictions" else wire.PromotionRanking,
    )
    assert wire.encode(struct) == sample.model_dump_json().encode()


def test_fields_are_the_models() -> None:
    for struct, model in (
        (wire.EffectPrediction, models.EffectPrediction),
        (wire.PromotionRanking, models.PromotionRanking),
        (wire.OutcomeScores, models.OutcomeScores),
        (wire.RankedPromotion, models.RankedPromotion),
    ):
        assert struct.__struct_fields__ == tuple(model.model_fields)


def test_a_large_float_is_the_same_number_in_another_spelling() -> None:
    scores = wire.OutcomeScores(0.5, 0.25, 0.25)
    at = datetime(2024, 6, 1, tzinfo=UTC)
    p = wire.EffectPrediction(
        event_id="x",
        user_id="u",
        promotion_id="p",
        campaign_id="c",
        arm=Arm.treatment,
        model_version=1,
        visit=scores,
        conversion=scores,
        revenue=scores,
        expected_incremental_revenue=2e16,
        event_ts=at,
        scored_at=at + timedelta(seconds=1),
        latency_ms=1.0,
    )
    raw = wire.encode(p)
    assert (
        b"2e16" in raw
        and b"2e+16" in models.EffectPrediction.model_validate_json(raw).model_dump_json().encode()
    )
