"""The batch scorer against fake scorers: poison rows are left unscored (and dead-lettered by the agent),
deterministic errors are isolated by splitting the batch, outages are retried, and the rest is scored."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from stream.agents.users import _unscored
from stream.batching.assemble import ExposureItem, RankItem
from stream.batching.records import Record
from stream.batching.request import build_request
from stream.batching.scoring import INVALID_SCORE, SCORING_FAILED, TRIES, BatchScorer, Failure, Scored
from stream.batching.users import EMPTY
from stream.errors import ScoringError, ScoringUnavailable
from stream.events.gate import encode
from stream.metrics import Metrics
from stream.outputs.predictions import effect_predictions
from stream.outputs.rankings import ranking
from stream.registry.encoder import PromoTextEncoder
from stream.registry.promos import Promo, apply_event
from stream.registry.registry import Registry
from stream.scoring.protocol import ScoreResult
from stream.scoring.signature import PROMO_ATTRS, PROMO_DIM
from tests.features.builders import exposure, promotion
from tests.stream.test_registry import _tokenizer

pytestmark = pytest.mark.unit

COLUMN = PROMO_ATTRS.index("discount_value_log")
DISCOUNTS = {"good": 10.0, "nan": 77.0, "fail": 66.0}


class _Poisoned:
    """Scores every row validly, except: NaN for rows of the 77-off promotion, a deterministic error for
    any request with a row of the 66-off one, `unavailable` outages first, and NaN promotion vectors."""

    def __init__(self, unavailable: int = 0, rows_answered: int | None = None) -> None:
        self.unavailable = unavailable
        self.rows_answered = rows_answered
        self.requests: list[int] = []

    async def model_version(self) -> int:
        return 1

    async def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray, *, version: int | None = None
                     ) -> np.ndarray:
        return np.full((len(input_ids), PROMO_DIM), np.nan, dtype=np.float32)

    async def score(
        self, user_features: np.ndarray, promo_vector: np.ndarray, promo_attrs: np.ndarray, *,
        version: int | None = None,
    ) -> ScoreResult:
        self.requests.append(len(user_features))
        if self.unavailable:
            self.unavailable -= 1
            raise ScoringUnavailable("Triton is away")
        marker = promo_attrs[:, COLUMN]
        if np.isclose(marker, np.log1p(DISCOUNTS["fail"])).any():
            raise ScoringError("effect_scorer request failed (INVALID_ARGUMENT)")
        rows = len(user_features) if self.rows_answered is None else self.rows_answered
        control = np.tile(np.array([0.3, 0.1, 2.0], dtype=np.float32), (rows, 1))
        treated = control + np.float32(0.1)
        treated[np.isclose(marker[:rows], np.log1p(DISCOUNTS["nan"]))] = np.nan
        return ScoreResult(treated, control, version or 1)

    async def close(self) -> None:
        return None


def _promo(pid: str, vector: bool = True) -> Promo:
    promo = apply_event(None, promotion(pid, 0.0, discount_value=DISCOUNTS.get(pid, 10.0), categories=[]))
    assert promo is not None
    return promo.with_vector(1, [0.1] * PROMO_DIM) if vector else promo


def _setup(scorer: _Poisoned, promos: list[Promo]) -> tuple[BatchScorer, Registry, dict[str, Any]]:
    table: dict[str, Any] = {}
    registry = Registry(table, lambda key, value: table.__setitem__(key, value))
    for p in promos:
        registry.put(p)
    encoder = PromoTextEncoder(scorer)
    encoder._tokenizer = _tokenizer()
    return BatchScorer(scorer, registry, encoder, backoff_base_s=0.001, backoff_max_s=0.002), registry, table


def _exposures(pids: list[str], registry: Registry) -> list[tuple[ExposureItem, Promo]]:
    out = []
    for i, pid in enumerate(pids):
        event = exposure(f"u{i}", float(i), promo=pid)
        promo = registry.get(pid)
        assert promo is not None
        out.append((ExposureItem(Record("exposures", 1, 100 + i, b"k", encode(event), 0.0), event), promo))
    return out


async def test_poison_rows_are_left_unscored_and_every_other_row_is_scored() -> None:
    scorer = _Poisoned()
    batches, registry, _ = _setup(scorer, [_promo(p) for p in DISCOUNTS])
    pids = ["good", "nan", "fail", "good", "good", "nan", "good", "good"]
    request = build_request(_exposures(pids, registry), [], lambda _: EMPTY, [])
    scored = await batches.score(request)
    assert {i: f.reason for i, f in scored.failures.items()} == {1: INVALID_SCORE, 5: INVALID_SCORE,
                                                                 2: SCORING_FAILED}
    assert "non-finite score" in scored.failures[1].error and "INVALID_ARGUMENT" in scored.failures[2].error
    assert [row for row, _, _ in scored.exposures()] == [0, 3, 4, 6, 7]
    assert np.allclose(scored.uplift[[0, 3, 4, 6, 7]], [0.1, 0.1, 0.1])
    # The whole batch TRIES times, then halves down to the failing row: a bounded number of requests.
    assert scorer.requests[:TRIES] == [8] * TRIES and len(scorer.requests) <= TRIES + 2 * 3
    assert batches.outage.since is None  # a poison batch is no outage
    predicted = [p.event_id for p in effect_predictions(scored)]
    assert predicted == [request.exposures[i][0].event.event_id for i in (0, 3, 4, 6, 7)]


async def test_a_batch_of_one_failing_row_is_given_up_after_the_tries() -> None:
    scorer = _Poisoned()
    batches, registry, _ = _setup(scorer, [_promo("fail")])
    scored = await batches.score(build_request(_exposures(["fail"], registry), [], lambda _: EMPTY, []))
    assert scorer.requests == [1] * TRIES and scored.failures[0].reason == SCORING_FAILED
    assert scored.exposures() == []


async def test_an_outage_is_retried_until_triton_answers() -> None:
    scorer = _Poisoned(unavailable=2)
    batches, registry, _ = _setup(scorer, [_promo("good")])
    scored = await batches.score(build_request(_exposures(["good"] * 3, registry), [], lambda _: EMPTY, []))
    assert scorer.requests == [3, 3, 3] and not scored.failures and batches.outage.since is None


async def test_an_answer_of_the_wrong_shape_leaves_every_row_unscored() -> None:
    scorer = _Poisoned(rows_answered=2)
    batches, registry, _ = _setup(scorer, [_promo("good")])
    scored = await batches.score(build_request(_exposures(["good"] * 3, registry), [], lambda _: EMPTY, []))
    assert sorted(scored.failures) == [0, 1, 2] and scored.failures[0].reason == INVALID_SCORE
    assert "expected float [3, 3]" in scored.failures[0].error


async def test_an_invalid_promotion_vector_is_never_stored_and_its_exposures_are_unscored() -> None:
    scorer = _Poisoned()
    batches, registry, table = _setup(scorer, [_promo("good"), _promo("fresh", vector=False)])
    request = build_request(_exposures(["fresh", "good"], registry), [], lambda _: EMPTY, [])
    scored = await batches.score(request)
    assert list(scored.failures) == [0] and scored.failures[0].reason == INVALID_SCORE
    assert "no valid vector for fresh" in scored.failures[0].error
    assert table["fresh"]["vectors"] == {}  # the NaN vector the encoder answered was not stored
    assert scorer.requests == [1]  # the good row, scored alone


async def test_rankings_leave_out_unscored_candidates() -> None:
    scorer = _Poisoned()
    promos = [_promo(p) for p in DISCOUNTS]
    batches, _, _ = _setup(scorer, promos)
    rank = RankItem(Record("clicks", 1, 5, b"u", b"{}", 0.0), "u", "s1", 0.0)
    scored = await batches.score(build_request([], [rank], lambda _: EMPTY, promos))
    (group,) = scored.request.rankings
    assert [r.promotion_id for r in ranking(group, scored, k=5).ranked] == ["good"]


def test_unscored_exposures_become_dead_letters_that_name_their_source() -> None:
    registry = CollectorRegistry()
    engine = SimpleNamespace(names={"exposures": "prod-exposures"}, metrics=Metrics(registry))
    promo = _promo("nan")
    exposures = _exposures(["nan", "nan"], Registry({"nan": promo.to_json()}, lambda k, v: None))
    request = build_request(exposures, [], lambda _: EMPTY, [])
    nan = np.full((2, 3), np.nan, dtype=np.float32)
    failures = {0: Failure(INVALID_SCORE, "NaN"), 1: Failure(SCORING_FAILED, "INVALID_ARGUMENT")}
    scored = Scored(request, nan, nan, 1, request.exposures[0][0].event.ts, failures)
    letters = _unscored(engine, scored)  # type: ignore[arg-type]
    assert [(d.reason, d.source_topic, d.partition, d.offset) for d in letters] == [
        (INVALID_SCORE, "prod-exposures", 1, 100), (SCORING_FAILED, "prod-exposures", 1, 101)
    ]
    assert base64.b64decode(letters[0].payload_b64) == request.exposures[0][0].record.value
    sample = registry.get_sample_value
    assert sample("liftstream_dead_letters_total", {"topic": "exposures", "reason": INVALID_SCORE}) == 1.0
    assert sample("liftstream_events_in_total", {"topic": "exposures", "outcome": "dead_letter"}) == 2.0
