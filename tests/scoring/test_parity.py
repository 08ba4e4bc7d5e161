"""The CPU twin served by a real local Triton == in-process TorchScript == eager PyTorch, within 1e-5.

Also: dynamic batching merges concurrent requests, and versions roll through Triton's poll mode.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from models.nets import EffectScorer, PromoEncoder, load_model
from stream.errors import ScoringUnavailable
from stream.local.triton import TritonEndpoints, temporary_triton
from stream.scoring import signature as sig
from stream.scoring.inprocess import TorchScriptScorer
from stream.scoring.triton import TritonScorer
from tests.scoring import served

# Async fixtures live on the session loop (pyproject), so the tests that use their clients run there too.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(400), pytest.mark.asyncio(loop_scope="session")]

TOL = 1e-5


@dataclass(frozen=True)
class Served:
    repo: Path
    endpoints: TritonEndpoints
    encoder: PromoEncoder
    scorer: EffectScorer


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # A private copy: the version-roll test adds a version, which other modules' repository must not see.
    repo = tmp_path_factory.mktemp("parity") / "triton_repo"
    shutil.copytree(served.exported(tmp_path_factory).repo, repo)
    encoder, scorer, _ = load_model(served.model_dir(tmp_path_factory))
    with temporary_triton(repo, cpu=True) as endpoints:
        yield Served(repo, endpoints, encoder, scorer)


@pytest.fixture
async def client(triton: Served) -> AsyncIterator[TritonScorer]:
    scorer = TritonScorer(triton.endpoints.grpc, timeout_s=30, retries=3, version_ttl_s=0.5)
    await scorer.wait_ready(120)
    yield scorer
    await scorer.close()


def _eager_scores(s: Served, arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    with torch.inference_mode():
        treated, control = s.scorer(*(torch.from_numpy(a) for a in arrays))
    return treated.numpy(), control.numpy()


def _random_scorer_inputs(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return (
        rng.gamma(1.0, 2.0, (n, len(sig.USER_FEATURES))).astype(np.float32),
        rng.uniform(-1, 1, (n, sig.PROMO_DIM)).astype(np.float32),
        rng.normal(size=(n, len(sig.PROMO_ATTRS))).astype(np.float32),
    )


def _random_tokens(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 29000, (n, sig.MAX_TOKENS))
    mask = (np.arange(sig.MAX_TOKENS)[None, :] < rng.integers(2, sig.MAX_TOKENS + 1, (n, 1))).astype(np.int64)
    return ids * mask, mask


async def test_encoder_parity_on_random_and_real_texts(
    triton: Served, client: TritonScorer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    local = TorchScriptScorer(triton.repo)
    for ids, mask in (_random_tokens(16, 0), served.realistic_tokens(tmp_path_factory)):
        with torch.inference_mode():
            eager = triton.encoder(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        scripted = await local.encode(ids, mask)
        remote = await client.encode(ids, mask)
        assert remote.shape == (len(ids), sig.PROMO_DIM)
        np.testing.assert_allclose(scripted, eager, atol=TOL, rtol=TOL)
        np.testing.assert_allclose(remote, eager, atol=TOL, rtol=TOL)


async def test_scorer_parity_on_random_and_real_rows(
    triton: Served, client: TritonScorer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    local = TorchScriptScorer(triton.repo)
    ds = served.dataset(tmp_path_factory)
    ids, mask = served.realistic_tokens(tmp_path_factory)
    vectors = await client.encode(ids, mask)
    codes = np.searchsorted(np.array(sorted(ds.promo_texts)), ds.promotion_ids)
    real = (ds.user_features, vectors[codes], ds.promo_attrs)
    # 5000 rows exceed effect_scorer's max_batch_size: the client splits them and pins one version.
    for arrays in (_random_scorer_inputs(5000, 1), real):
        want_t, want_c = _eager_scores(triton, arrays)
        scripted = await local.score(*arrays)
        remote = await client.score(*arrays)
        assert remote.model_version == scripted.model_version == 1
        for got in (scripted, remote):
            np.testing.assert_allclose(got.p_treated, want_t, atol=TOL, rtol=TOL)
            np.testing.assert_allclose(got.p_control, want_c, atol=TOL, rtol=TOL)


def _metric(endpoints: TritonEndpoints, name: str, model: str) -> float:
    with urllib.request.urlopen(f"http://{endpoints.metrics}/metrics", timeout=5) as resp:  # noqa: S310
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and f'model="{model}"' in line)


async def test_dynamic_batching_merges_concurrent_requests(triton: Served, client: TritonScorer) -> None:
    def counts() -> tuple[float, float]:
        return (_metric(triton.endpoints, "nv_inference_exec_count", sig.SCORER),
                _metric(triton.endpoints, "nv_inference_request_success", sig.SCORER))

    before = counts()
    rows = _random_scorer_inputs(48, 2)
    results = await asyncio.gather(*(client.score(*(a[i : i + 1] for a in rows)) for i in range(48)))
    want_t, _ = _eager_scores(triton, rows)
    np.testing.assert_allclose(np.concatenate([r.p_treated for r in results]), want_t, atol=TOL, rtol=TOL)

    async def all_counted() -> bool:  # Triton publishes its counters with a short delay
        return counts()[1] - before[1] == 48

    await _until(all_counted, timeout_s=10)
    executions = counts()[0] - before[0]
    assert executions < 48


async def _until(check: object, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "Triton's poll did not pick the change up"
        await asyncio.sleep(0.5)


async def test_versions_roll_and_pinned_versions_stay_served(triton: Served, client: TritonScorer) -> None:
    rows = _random_scorer_inputs(8, 3)
    for model in (sig.ENCODER, sig.SCORER):
        # Staged outside the repository and moved in whole, as `liftstream export` does: Triton polls the
        # repository and would load a half-copied version (its stub then writes __pycache__ into it).
        staging = triton.repo.parent / f".staging-{model}"
        shutil.copytree(triton.repo / model / "1", staging, ignore=shutil.ignore_patterns("__pycache__"))
        staging.rename(triton.repo / model / "2")

    async def rolled() -> bool:
        return await client.model_version() == 2

    await _until(rolled, timeout_s=150)  # a new version loads in a fresh python-backend stub
    assert (await client.score(*rows)).model_version == 2
    # The previous version stays loaded through the roll, so vectors cached under it remain usable.
    assert (await client.score(*rows, version=1)).model_version == 1

    for model in (sig.ENCODER, sig.SCORER):
        shutil.rmtree(triton.repo / model / "1")

    async def retired() -> bool:
        try:
            await client.score(*rows, version=1)
        except ScoringUnavailable as exc:
            return "no longer served" in str(exc)
        return False

    await _until(retired)
