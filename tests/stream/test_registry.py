"""Registry entries, the cached view, eligibility, and encoding each text once per model version."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import pytest

from stream.batching.users import EMPTY
from stream.features.state import FeatureConfig, apply_click, click_row, stable_hash
from stream.registry.eligibility import candidates, eligible
from stream.registry.encoder import PromoTextEncoder, registry_vectors
from stream.registry.promos import Promo, apply_event
from stream.registry.registry import Registry
from stream.scoring.protocol import ScoreResult
from stream.scoring.signature import MAX_TOKENS, PROMO_DIM
from tests.features.builders import at, click, promotion

pytestmark = pytest.mark.unit


def _registry() -> tuple[Registry, dict[str, object]]:
    table: dict[str, object] = {}
    return Registry(table, lambda key, value: table.__setitem__(key, value)), table


def test_events_apply_in_version_and_time_order() -> None:
    v1 = apply_event(None, promotion("p", 0.0, version=1))
    assert v1 is not None and v1.active and v1.last == (1, at(0.0).timestamp())
    v2 = apply_event(
        v1.with_vector(1, [0.5] * PROMO_DIM),
        promotion("p", 10.0, action="update", version=2, title="New copy"),
    )
    assert v2 is not None and v2.vectors == {}  # new text: the old vector means nothing for it
    assert apply_event(v2, promotion("p", 5.0, action="update", version=1)) is None
    stopped = apply_event(
        v2.with_vector(1, [0.1] * PROMO_DIM),
        promotion("p", 20.0, action="stop", version=2, title="", description=""),
    )
    assert stopped is not None and not stopped.active
    assert stopped.info.text == v2.info.text and 1 in stopped.vectors  # a stop keeps what it stops
    same_text = apply_event(
        v1.with_vector(3, [0.2] * PROMO_DIM), promotion("p", 1.0, action="update", version=1)
    )
    assert same_text is not None and 3 in same_text.vectors


def test_entries_round_trip_and_the_view_parses_each_stored_value_once() -> None:
    registry, table = _registry()
    promo = apply_event(None, promotion("p", 0.0))
    assert promo is not None
    registry.put(promo.with_vector(2, np.linspace(-1, 1, PROMO_DIM)))
    stored = registry.get("p")
    assert stored is not None and stored == Promo.from_json(orjson.loads(orjson.dumps(table["p"])))
    assert registry.get("p") is stored
    table["p"] = orjson.loads(orjson.dumps(table["p"]))  # a changelog update replaces the value
    assert registry.get("p") is not stored and registry.get("p") == stored
    assert registry.known("p") and not registry.known("q") and registry.get("q") is None


def test_eligible_when_active_in_its_dates_and_targeting_the_users_categories() -> None:
    def make(**fields: object) -> Promo:
        p = apply_event(None, promotion("p", 0.0, **fields))
        assert p is not None
        return p

    shoes, hats = frozenset({stable_hash("shoes")}), frozenset({stable_hash("hats")})
    t = at(100.0).timestamp()
    assert eligible(make(categories=["shoes"]), shoes, t)
    assert not eligible(make(categories=["shoes"]), hats, t)
    assert eligible(make(categories=[]), frozenset(), t)
    assert not eligible(make(start=at(200.0)), shoes, t) and not eligible(make(end=at(50.0)), shoes, t)
    stopped = apply_event(make(), promotion("p", 1.0, action="stop"))
    assert stopped is not None and not eligible(stopped, shoes, t)
    # A click on a hat in the last 24 h makes the user eligible for a hat promotion.
    state, _ = apply_click(EMPTY.features, click_row(click("u", 50.0, category="hats")), FeatureConfig())
    assert [p.promotion_id for p in candidates([make(categories=["hats"])], frozenset(), state, t)] == ["p"]


class _CountingScorer:
    def __init__(self) -> None:
        self.texts: list[int] = []

    async def encode(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, *, version: int | None = None
    ) -> np.ndarray:
        self.texts.append(len(input_ids))
        await asyncio.sleep(0.01)
        return np.full((len(input_ids), PROMO_DIM), float(version or 0), dtype=np.float32)

    async def score(self, *args: object, **kwargs: object) -> ScoreResult:
        raise NotImplementedError

    async def model_version(self) -> int:
        return 1

    async def close(self) -> None:
        return None


async def test_each_text_is_encoded_once_per_version_even_by_concurrent_batches() -> None:
    registry, _ = _registry()
    for pid in ("a", "b"):
        promo = apply_event(None, promotion(pid, 0.0, title=f"Deal {pid}"))
        assert promo is not None
        registry.put(promo)
    scorer = _CountingScorer()
    encoder = PromoTextEncoder(scorer)
    encoder._tokenizer = _tokenizer()
    first, second = await asyncio.gather(
        registry_vectors(registry, encoder, ["a", "b"], 1), registry_vectors(registry, encoder, ["b", "a"], 1)
    )
    assert scorer.texts == [2]
    assert first["a"].vectors[1] == second["a"].vectors[1] == (1.0,) * PROMO_DIM
    await registry_vectors(registry, encoder, ["a", "b"], 1)
    await registry_vectors(registry, encoder, ["a"], 2)
    assert scorer.texts == [2, 1]
    stored = registry.get("a")
    assert stored is not None and set(stored.vectors) == {1, 2}


def _tokenizer() -> object:
    """Stands in for the MiniLM tokenizer: token values do not matter to a counting scorer."""

    def tokenize(texts: list[str], **options: object) -> dict[str, np.ndarray]:
        ones = np.ones((len(texts), MAX_TOKENS), dtype=np.int64)
        return {"input_ids": ones, "attention_mask": ones}

    return tokenize
