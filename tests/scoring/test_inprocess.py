from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from stream.errors import ModelError, ScoringUnavailable
from stream.scoring import signature as sig
from stream.scoring.inprocess import TorchScriptScorer, model_versions, newest_common_version
from tests.scoring import served

pytestmark = pytest.mark.unit


def test_versions_need_a_model_pt_and_both_models(tmp_path: Path) -> None:
    for model, versions in ((sig.ENCODER, (1, 2, 3)), (sig.SCORER, (1, 2))):
        for v in versions:
            (tmp_path / model / str(v)).mkdir(parents=True)
            (tmp_path / model / str(v) / "model.pt").touch()
    (tmp_path / sig.SCORER / "5").mkdir()  # being staged: no model.pt yet
    assert model_versions(tmp_path, sig.ENCODER) == [1, 2, 3]
    assert model_versions(tmp_path, sig.SCORER) == [1, 2]
    assert newest_common_version(tmp_path) == 2
    assert newest_common_version(tmp_path / "missing") is None


def test_an_empty_repository_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="holds no version"):
        TorchScriptScorer(tmp_path)


async def test_scores_with_its_own_version_only(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(served.exported(tmp_path_factory).repo, repo)
    for model in (sig.ENCODER, sig.SCORER):
        shutil.copytree(repo / model / "1", repo / model / "2")
    scorer = TorchScriptScorer(repo)
    assert await scorer.model_version() == 2
    rows = 5
    user = np.ones((rows, len(sig.USER_FEATURES)), np.float32)
    vec = np.zeros((rows, sig.PROMO_DIM), np.float32)
    attrs = np.zeros((rows, len(sig.PROMO_ATTRS)), np.float32)
    result = await scorer.score(user, vec, attrs, version=2)
    assert result.p_treated.shape == (rows, len(sig.OUTCOMES)) and result.model_version == 2
    assert (result.p_treated[:, :2] >= 0).all() and (result.p_treated[:, :2] <= 1).all()
    with pytest.raises(ScoringUnavailable, match="version 1"):
        await scorer.score(user, vec, attrs, version=1)
    assert len(await TorchScriptScorer(repo, version=1).score(user, vec, attrs)) == rows
