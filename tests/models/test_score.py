"""`liftstream score`: every exposure, in order, one model version, through a real local Triton."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from models import serving_cli
from models.export import Exported
from models.score import COLUMNS, promo_tokens, score_history, score_rows, write_predictions
from stream.errors import ConfigError, ModelError
from stream.scoring import signature as sig
from stream.scoring.inprocess import TorchScriptScorer
from stream.scoring.protocol import ScoreResult
from tests.scoring import served


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return served.exported(tmp_path_factory)


async def _in_process(repo: Path, tmp: pytest.TempPathFactory, batch_size: int) -> ScoreResult:
    ds = served.dataset(tmp)
    scorer = TorchScriptScorer(repo)
    tokens = promo_tokens(ds.promo_texts)
    vectors = await scorer.encode(tokens.input_ids, tokens.attention_mask)
    return await score_rows(scorer, ds, tokens.promotion_ids, vectors, batch_size=batch_size,
                            max_in_flight=3, version=scorer.version)


@pytest.mark.unit
async def test_batches_in_flight_keep_row_order(
    exported: Exported, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ds = served.dataset(tmp_path_factory)
    whole = await _in_process(exported.repo, tmp_path_factory, batch_size=len(ds))
    batched = await _in_process(exported.repo, tmp_path_factory, batch_size=7)
    assert len(batched) == len(ds) and batched.model_version == 1
    # Batch shapes change the BLAS blocking, so equal only up to float32 rounding.
    np.testing.assert_allclose(batched.p_treated, whole.p_treated, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(batched.p_control, whole.p_control, atol=1e-5, rtol=1e-5)


@pytest.mark.unit
def test_predictions_csv_has_one_row_per_exposure(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    ds = served.dataset(tmp_path_factory)
    rng = np.random.default_rng(0)
    result = ScoreResult(rng.random((len(ds), 3), np.float32), rng.random((len(ds), 3), np.float32), 7)
    write_predictions(tmp_path / "out" / "pred.csv", ds, result)
    with (tmp_path / "out" / "pred.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS and len(rows) == len(ds)
    assert [r["event_id"] for r in rows] == ds.event_ids.tolist()
    assert {r["model_version"] for r in rows} == {"7"}
    assert [r["arm"] for r in rows] == ["treatment" if a else "holdout" for a in ds.arm]
    for i, o in enumerate(sig.OUTCOMES):
        treated = np.array([float(r[f"p_treated_{o}"]) for r in rows])
        control = np.array([float(r[f"p_control_{o}"]) for r in rows])
        np.testing.assert_allclose(treated, result.p_treated[:, i], rtol=1e-6)
        effect = np.array([float(r[f"uplift_{o}"]) for r in rows])
        np.testing.assert_allclose(effect, treated - control, atol=1e-6)
    assert not list((tmp_path / "out").glob(".*.tmp"))


@pytest.mark.unit
def test_bad_arguments_and_empty_repositories_fail_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch-size"):
        score_history(tmp_path, tmp_path, tmp_path / "p.csv", batch_size=0)
    runner = CliRunner()
    app = typer.Typer()
    serving_cli.register(app)
    result = runner.invoke(app, ["score", "--history", str(tmp_path), "--out", str(tmp_path / "p.csv")])
    assert isinstance(result.exception, ConfigError)


@pytest.mark.unit
def test_scoring_needs_an_exported_model(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no exported model"):
        score_history(tmp_path / "empty_repo", served.history(tmp_path_factory), tmp_path / "p.csv")


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_cli_scores_through_a_temporary_triton_like_in_process(
    exported: Exported, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    out = tmp_path / "pred.csv"
    app = typer.Typer()
    serving_cli.register(app)
    args = ["score", "--model-repo", str(exported.repo), "--history", str(served.history(tmp_path_factory)),
            "--out", str(out), "--batch-size", "16"]
    result = CliRunner().invoke(app, args, env={"LIFTSTREAM_TRITON_URL": None})
    assert result.exit_code == 0, result.output
    assert "rows/s through Triton" in result.output
    want = asyncio.run(_in_process(exported.repo, tmp_path_factory, batch_size=64))
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["model_version"] for r in rows} == {"1"}
    for i, o in enumerate(sig.OUTCOMES):
        for arm, expected in (("treated", want.p_treated), ("control", want.p_control)):
            got = [float(r[f"p_{arm}_{o}"]) for r in rows]
            np.testing.assert_allclose(got, expected[:, i], atol=1e-5, rtol=1e-5)
