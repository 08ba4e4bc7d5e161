"""The prediction and ranking outputs of a scored batch: pydantic's bytes, keyed by user."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from stream.batching.assemble import assemble
from stream.batching.records import Record
from stream.batching.request import build_request
from stream.batching.scoring import Scored
from stream.batching.users import EMPTY, UserConfig
from stream.events.models import EffectPrediction, PromotionRanking
from stream.outputs.predictions import effect_predictions, prediction_outputs
from stream.outputs.rankings import ranking_outputs
from stream.registry.promos import apply_event
from tests.features.builders import click, exposure, promotion

pytestmark = pytest.mark.unit


def _scored() -> Scored:
    events = [
        (Record("clicks", 0, 0, b"u", b"", 0.0), click("u", 60.0, category="shoes", session_id="s1")),
        (Record("exposures", 0, 1, b"u", b"", 5.0), exposure("u", 90.0, promo="p1")),
        (Record("exposures", 0, 2, b"v", b"", 7.0), exposure("v", 95.0, promo="p1", arm="holdout")),
    ]
    asm = assemble(events, lambda _: EMPTY, lambda _: None, UserConfig())
    promo = apply_event(None, promotion("p1", 0.0, categories=["shoes"]))
    assert promo is not None
    users = {uid: value for uid, (_, value) in asm.users.items()}
    request = build_request([(x, promo) for x in asm.exposures], list(asm.rankings.values()),
                            lambda uid: users.get(uid, EMPTY), [promo])  # fmt: skip
    rng = np.random.default_rng(0)
    control = rng.uniform(0, 1, (len(request), 3)).astype(np.float32)
    return Scored(request, control + 0.01, control, 7, datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC))


def test_prediction_outputs_are_pydantics_bytes() -> None:
    scored = _scored()
    outputs = prediction_outputs(effect_predictions(scored))
    assert [(o.topic, o.key) for o in outputs] == [("predictions", b"u"), ("predictions", b"v")]
    for o in outputs:
        model = EffectPrediction.model_validate_json(o.value, strict=True)
        assert model.model_dump_json().encode() == o.value
        assert model.latency_ms > 0 and model.model_version == 7


def test_ranking_outputs_are_pydantics_bytes() -> None:
    (output,) = ranking_outputs(_scored(), k=5)
    model = PromotionRanking.model_validate_json(output.value, strict=True)
    assert (output.topic, output.key) == ("promotion-rankings", b"u")
    assert model.model_dump_json().encode() == output.value
