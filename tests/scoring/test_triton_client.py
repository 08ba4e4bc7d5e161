"""TritonScorer's pure parts, and its retry path against a port where nothing listens (no server needed)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from stream.errors import ScoringError, ScoringUnavailable
from stream.local.triton import free_ports
from stream.scoring import signature as sig
from stream.scoring.triton import TritonScorer, backoff_delay, chunks, newest_common_ready, status_code

pytestmark = pytest.mark.unit


def test_backoff_grows_exponentially_is_capped_and_jittered() -> None:
    assert backoff_delay(0, 0.1, 5.0, 0.0) == pytest.approx(0.05)
    assert backoff_delay(0, 0.1, 5.0, 0.999) == pytest.approx(0.1, rel=1e-2)
    assert backoff_delay(3, 0.1, 5.0, 0.0) == pytest.approx(0.4)
    assert backoff_delay(20, 0.1, 5.0, 0.999) <= 5.0
    assert backoff_delay(20, 0.1, 5.0, 0.0) == pytest.approx(2.5)


def test_newest_common_ready_needs_both_models_ready() -> None:
    index = {
        "models": [
            {"name": sig.ENCODER, "version": "1", "state": "READY"},
            {"name": sig.ENCODER, "version": "2", "state": "READY"},
            {"name": sig.SCORER, "version": "1", "state": "READY"},
            {"name": sig.SCORER, "version": "2", "state": "LOADING"},
            {"name": "other", "version": "9", "state": "READY"},
        ]
    }
    assert newest_common_ready(index) == 1
    index["models"][3]["state"] = "READY"
    assert newest_common_ready(index) == 2
    assert newest_common_ready({"models": [{"name": sig.SCORER, "state": "UNAVAILABLE"}]}) is None
    assert newest_common_ready({}) is None


def test_status_code_strips_the_grpc_prefix() -> None:
    assert status_code(InferenceServerException("x", status="StatusCode.UNAVAILABLE")) == "UNAVAILABLE"
    assert status_code(InferenceServerException("x")) == "UNKNOWN"


def test_chunks_cover_every_row_once() -> None:
    assert chunks(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert chunks(4, 4) == [slice(0, 4)]
    assert chunks(0, 4) == []


async def test_unreachable_triton_is_retried_then_unavailable_with_cause() -> None:
    (port,) = free_ports(1)
    seen: list[str | None] = []

    class Observer:
        def observe_triton(self, model: str, seconds: float, error_code: str | None = None) -> None:
            seen.append(error_code)

        def set_triton_up(self, up: bool) -> None:
            seen.append("up" if up else "down")

    scorer = TritonScorer(
        f"127.0.0.1:{port}", timeout_s=2, retries=2, backoff_base_s=0.01, backoff_max_s=0.02,
        observer=Observer(),
    )
    user = np.zeros((3, len(sig.USER_FEATURES)), np.float32)
    vec = np.zeros((3, sig.PROMO_DIM), np.float32)
    attrs = np.zeros((3, len(sig.PROMO_ATTRS)), np.float32)
    started = time.monotonic()
    try:
        with pytest.raises(ScoringUnavailable, match="after 3 attempts") as caught:
            await scorer.score(user, vec, attrs)
    finally:
        await scorer.close()
    assert time.monotonic() - started < 5
    assert isinstance(caught.value.__cause__, InferenceServerException)
    assert seen == ["UNAVAILABLE", "down"] * 3


async def test_empty_calls_never_reach_the_server() -> None:
    (port,) = free_ports(1)
    scorer = TritonScorer(f"127.0.0.1:{port}", retries=0)
    try:
        vectors = await scorer.encode(np.zeros((0, sig.MAX_TOKENS)), np.zeros((0, sig.MAX_TOKENS)), version=4)
        result = await scorer.score(np.zeros((0, len(sig.USER_FEATURES))), np.zeros((0, sig.PROMO_DIM)),
                                    np.zeros((0, len(sig.PROMO_ATTRS))), version=4)
    finally:
        await scorer.close()
    assert vectors.shape == (0, sig.PROMO_DIM)
    assert result.p_treated.shape == (0, len(sig.OUTCOMES)) and result.model_version == 4


async def test_other_triton_errors_are_scoring_errors_at_once() -> None:
    scorer = TritonScorer("127.0.0.1:1", retries=5)
    calls: list[int] = []

    async def rejected() -> None:
        calls.append(1)
        raise InferenceServerException("unexpected shape", status="StatusCode.INVALID_ARGUMENT")

    with pytest.raises(ScoringError, match="INVALID_ARGUMENT") as caught:
        await scorer._retrying(sig.SCORER, rejected)
    assert not isinstance(caught.value, ScoringUnavailable)
    assert isinstance(caught.value.__cause__, InferenceServerException)
    assert calls == [1]
