"""`TritonScorer`: the `Scorer` protocol over Triton's gRPC API (tritonclient aio).

One infer request per call — callers batch — split only where a call exceeds the model's max_batch_size.
Unreachable or overloaded Triton (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, or a model not
loaded yet) is retried with bounded, jittered exponential backoff and then raised as `ScoringUnavailable`;
any other failure is a `ScoringError`, which the batch scorer takes for deterministic and isolates by
splitting the batch (stream/batching/scoring.py). Both keep the tritonclient exception as their cause.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from stream.errors import ScoringError, ScoringUnavailable
from stream.scoring import signature as sig
from stream.scoring.protocol import ScoreResult, empty_outputs, encoder_inputs, scorer_inputs
from stream.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# NOT_FOUND: the model is not in the repository yet (a fresh server). A pinned version that Triton no longer
# serves (UNAVAILABLE "not at ready state" once unloaded) is told apart through the repository index.
RETRYABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "NOT_FOUND"})
MODELS = (sig.ENCODER, sig.SCORER)


class RequestObserver(Protocol):
    """What the scorer reports per request attempt (`stream.metrics.Metrics` is one)."""

    def observe_triton(self, model: str, seconds: float, error_code: str | None = None) -> None: ...

    def set_triton_up(self, up: bool) -> None: ...


def status_code(exc: InferenceServerException) -> str:
    """The gRPC status name of a tritonclient error ("UNAVAILABLE"), "UNKNOWN" when it has none."""
    return (exc.status() or "StatusCode.UNKNOWN").removeprefix("StatusCode.")


def backoff_delay(attempt: int, base_s: float, max_s: float, rand: float) -> float:
    """Delay before retry `attempt` (0-based): exponential, capped, half jittered by `rand` in [0, 1)."""
    ceiling = min(max_s, base_s * 2.0**attempt)
    return ceiling * (0.5 + 0.5 * rand)


def newest_common_ready(index: dict[str, Any], models: Sequence[str] = MODELS) -> int | None:
    """Newest version that every one of `models` has READY in a repository index (as JSON), else None."""
    ready: dict[str, set[int]] = {m: set() for m in models}
    for entry in index.get("models", []):
        name, version = entry.get("name"), entry.get("version", "")
        if name in ready and entry.get("state") == "READY" and version.isdigit():
            ready[name].add(int(version))
    common = set.intersection(*ready.values()) if ready else set()
    return max(common) if common else None


def chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


class TritonScorer:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        retries: int = 8,
        backoff_base_s: float = 0.1,
        backoff_max_s: float = 5.0,
        version_ttl_s: float = 5.0,
        observer: RequestObserver | None = None,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.version_ttl_s = version_ttl_s
        self.observer = observer
        self._client: InferenceServerClient | None = None
        self._version: int | None = None
        self._version_expires = 0.0
        self._rng = random.Random()

    @classmethod
    def from_settings(cls, settings: Settings, observer: RequestObserver | None = None) -> TritonScorer:
        b = settings.batching
        return cls(settings.triton_url, timeout_s=b.request_timeout_s, retries=b.retries,
                   backoff_base_s=b.backoff_base_s, backoff_max_s=b.backoff_max_s, observer=observer)

    def _grpc(self) -> InferenceServerClient:
        # Created on first use so its channel binds to the event loop that calls it.
        if self._client is None:
            self._client = InferenceServerClient(self.url)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def model_version(self) -> int:
        if self._version is not None and time.monotonic() < self._version_expires:
            return self._version
        index = await self._retrying(
            "repository", lambda: self._grpc().get_model_repository_index(as_json=True,
                                                                           client_timeout=self.timeout_s)
        )
        version = newest_common_ready(index)
        if version is None:
            raise ScoringUnavailable(f"Triton at {self.url} has no version of {' and '.join(MODELS)} ready")
        self._version, self._version_expires = version, time.monotonic() + self.version_ttl_s
        return version

    async def wait_ready(self, timeout_s: float) -> int:
        """The served version once both models are ready; ScoringUnavailable after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return await self.model_version()
            except ScoringUnavailable:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.25)

    async def encode(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, *, version: int | None = None
    ) -> np.ndarray:
        arrays = encoder_inputs(input_ids, attention_mask)
        outputs, _ = await self._call(sig.ENCODER, sig.ENCODER_INPUTS, arrays, sig.ENCODER_OUTPUTS,
                                      sig.ENCODER_MAX_BATCH, version)
        return outputs[0]

    async def score(
        self,
        user_features: np.ndarray,
        promo_vector: np.ndarray,
        promo_attrs: np.ndarray,
        *,
        version: int | None = None,
    ) -> ScoreResult:
        arrays = scorer_inputs(user_features, promo_vector, promo_attrs)
        (p_treated, p_control), served = await self._call(
            sig.SCORER, sig.SCORER_INPUTS, arrays, sig.SCORER_OUTPUTS, sig.SCORER_MAX_BATCH, version
        )
        return ScoreResult(p_treated, p_control, served)

    async def _call(
        self,
        model: str,
        specs: tuple[sig.Tensor, ...],
        arrays: tuple[np.ndarray, ...],
        outputs: tuple[sig.Tensor, ...],
        max_batch: int,
        version: int | None,
    ) -> tuple[list[np.ndarray], int]:
        parts = chunks(len(arrays[0]), max_batch)
        if not parts:
            return empty_outputs(outputs), version if version is not None else await self.model_version()
        if version is None and len(parts) > 1:
            # Every chunk must come from the same version, so an oversized call is pinned to one.
            version = await self.model_version()
        results = await asyncio.gather(
            *(self._infer(model, specs, [a[p] for a in arrays], outputs, version) for p in parts)
        )
        served = results[0][1]
        merged = [np.concatenate([r[0][i] for r in results]) for i in range(len(outputs))]
        return merged, served

    async def _infer(
        self,
        model: str,
        specs: tuple[sig.Tensor, ...],
        arrays: list[np.ndarray],
        outputs: tuple[sig.Tensor, ...],
        version: int | None,
    ) -> tuple[list[np.ndarray], int]:
        inputs = []
        for spec, array in zip(specs, arrays, strict=True):
            tensor = grpcclient.InferInput(spec.name, list(array.shape), spec.dtype)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        wanted = [grpcclient.InferRequestedOutput(o.name) for o in outputs]
        result = await self._retrying(
            model,
            lambda: self._grpc().infer(model, inputs, model_version="" if version is None else str(version),
                                       outputs=wanted, client_timeout=self.timeout_s),
            pinned=version,
        )
        served = int(result.get_response().model_version)
        if version is None and served != self._version:
            self._version_expires = 0.0  # a roll happened: look the newest version up again
        return [result.as_numpy(o.name) for o in outputs], served

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]], pinned: int | None = None) -> T:
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                value = await call()
            except InferenceServerException as exc:
                code = status_code(exc)
                self._observe(what, time.perf_counter() - started, code)
                if pinned is not None and code in RETRYABLE and not await self._served(what, pinned):
                    # The pinned version was rolled out: retrying cannot help, the caller must re-encode.
                    self._version_expires = 0.0
                    raise ScoringUnavailable(f"{what} version {pinned} is no longer served: {exc}") from exc
                if code not in RETRYABLE:
                    raise ScoringError(f"{what} request failed ({code}): {exc}") from exc
                if attempt == self.retries:
                    raise ScoringUnavailable(
                        f"Triton at {self.url} unavailable for {what} after {attempt + 1} attempts "
                        f"({code}): {exc}"
                    ) from exc
                delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._rng.random())
                log.warning("%s request failed (%s), retry %d/%d in %.2fs", what, code, attempt + 1,
                            self.retries, delay)
                await asyncio.sleep(delay)
                attempt += 1
            else:
                self._observe(what, time.perf_counter() - started, None)
                return value

    async def _served(self, model: str, version: int) -> bool:
        """Whether `version` of `model` is still READY; True when that cannot be told (Triton unreachable)."""
        try:
            index = await self._grpc().get_model_repository_index(as_json=True, client_timeout=self.timeout_s)
        except InferenceServerException:
            return True
        return any(
            e.get("name") == model and e.get("version") == str(version) and e.get("state") == "READY"
            for e in index.get("models", [])
        )

    def _observe(self, what: str, seconds: float, code: str | None) -> None:
        if self.observer is not None:
            self.observer.observe_triton(what, seconds, code)
            self.observer.set_triton_up(code is None or code not in RETRYABLE)
