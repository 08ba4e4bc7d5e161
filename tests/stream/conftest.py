"""The session's Triton serving a small trained model (the one the serving tests train, exported here)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from models.export import export_model
from stream.local.triton import TritonEndpoints
from stream.scoring.inprocess import newest_common_version
from stream.scoring.triton import TritonScorer
from stream.settings import Settings
from tests.scoring.served import model_dir


@pytest.fixture(scope="session")
def served_model(
    test_settings: Settings, triton_service: TritonEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """MODEL_DIR of the model served as version 1 (or newer) by the session's Triton."""
    trained = model_dir(tmp_path_factory)
    if newest_common_version(test_settings.model_repo) is None:
        export_model(trained, test_settings.model_repo)
    asyncio.run(_ready(test_settings.triton_url))
    return trained


async def _ready(url: str) -> None:
    scorer = TritonScorer(url)
    try:
        await scorer.wait_ready(timeout_s=180)
    finally:
        await scorer.close()
