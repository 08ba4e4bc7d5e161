from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from synthetic_uplift import synthetic_dataset

from models.baselines import s_learner, t_learner
from models.evaluate import NEURAL, Evaluation, evaluate_dataset
from models.report import comparison_lines, console_table, write_report
from models.train import TrainConfig, split_three_ways, train
from stream.errors import ConfigError
from stream.scoring.signature import OUTCOMES

pytestmark = pytest.mark.unit

N = 1200


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    config = TrainConfig(batch_size=256, hidden=(16,))
    train(synthetic_dataset(N), out, epochs=1, seed=0, device="cpu", config=config)
    return out


@pytest.fixture(scope="module")
def evaluation(model_dir: Path) -> Evaluation:
    return evaluate_dataset(model_dir, synthetic_dataset(N), history="synthetic")


def test_evaluates_all_models_on_held_out_users(evaluation: Evaluation, model_dir: Path) -> None:
    meta = json.loads((model_dir / "model.json").read_text())
    assert evaluation.metrics["test"]["rows"] == meta["data"]["test"]["rows"] == len(evaluation.test)
    assert set(evaluation.predictions) == {NEURAL, "t_learner_gbm", "s_learner_gbm"}
    for outcome in OUTCOMES:
        by_model = evaluation.metrics["outcomes"][outcome]
        assert set(by_model) == set(evaluation.predictions)
        for metrics in by_model.values():
            expected = {"qini", "auuc", "uplift_at_10", "uplift_at_30", "auc_treated", "calibration_control"}
            assert expected <= set(metrics)
            assert {"pehe", "oracle_qini"} <= set(metrics)  # the synthetic set carries the true effect
        assert {"qini_to_oracle", "truth_qini_to_oracle"} <= set(evaluation.metrics["verdicts"][outcome])


def test_oracle_qini_is_positive_on_synthetic_effects(evaluation: Evaluation) -> None:
    assert evaluation.metrics["outcomes"]["visit"][NEURAL]["oracle_qini"] > 0


def test_promotion_and_outcome_restrict_the_evaluation(model_dir: Path) -> None:
    ev = evaluate_dataset(model_dir, synthetic_dataset(N), promotion="p-ship", outcomes=("visit",))
    assert set(ev.test.promotion_ids) == {"p-ship"}
    assert set(ev.metrics["outcomes"]) == {"visit"}
    with pytest.raises(ConfigError, match="no held-out rows"):
        evaluate_dataset(model_dir, synthetic_dataset(N), promotion="p-unknown")
    with pytest.raises(ConfigError, match="unknown outcome"):
        evaluate_dataset(model_dir, synthetic_dataset(N), outcomes=("clicks",))


def test_report_is_self_contained_html_with_figures(evaluation: Evaluation, tmp_path: Path) -> None:
    metrics_path, report_path = write_report(evaluation, tmp_path)
    assert json.loads(metrics_path.read_text())["outcomes"].keys() == set(OUTCOMES)
    page = report_path.read_text()
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == len(OUTCOMES)
    assert base64.b64decode(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "src='http" not in page and 'src="http' not in page
    header, rows = console_table(evaluation)
    assert len(rows) == len(OUTCOMES) * 3 and all(len(r) == len(header) for r in rows)
    assert "pehe" in header
    assert "Paired bootstrap over the held-out users" in page
    lines = comparison_lines(evaluation)
    assert len(lines) == len(OUTCOMES) * 2 * 2  # two baselines, two metrics
    assert lines[0].startswith("visit: neural − t_learner_gbm uplift_at_30")


def test_bootstrap_compares_the_neural_model_with_each_baseline(evaluation: Evaluation) -> None:
    resampled = evaluation.metrics["bootstrap"]["visit"]
    assert resampled["resamples"] == 200 and set(resampled["versus"]) == {"t_learner_gbm", "s_learner_gbm"}
    for baseline, by_metric in resampled["versus"].items():
        for metric, v in by_metric.items():
            low, high = v["difference"]
            assert low <= high and 0.0 <= v["share_ahead"] <= 1.0
            lead = (evaluation.metrics["outcomes"]["visit"][NEURAL][metric]
                    - evaluation.metrics["outcomes"]["visit"][baseline][metric])
            assert np.isfinite(lead)
    verdict = evaluation.metrics["verdicts"]["visit"]
    shares = verdict["uplift_at_30_share_ahead"]
    assert set(shares) == {"t_learner_gbm", "s_learner_gbm"}
    assert verdict["uplift_at_30_beats_baselines_at_90"] == all(
        v["uplift_at_30"]["difference"][0] > 0 for v in resampled["versus"].values()
    )


def test_bootstrap_can_be_turned_off(model_dir: Path) -> None:
    ev = evaluate_dataset(model_dir, synthetic_dataset(N), outcomes=("visit",), bootstrap=0)
    assert ev.metrics["bootstrap"] == {} and "uplift_at_30_share_ahead" not in ev.metrics["verdicts"]["visit"]
    assert comparison_lines(ev) == []
    with pytest.raises(ConfigError, match="bootstrap resamples"):
        evaluate_dataset(model_dir, synthetic_dataset(N), bootstrap=-1)


def test_baselines_recover_a_strong_effect() -> None:
    ds = synthetic_dataset(6000, seed=1)
    splits = split_three_ways(ds, 0, 0.2, 0.3)
    tau = splits.test.tau[:, 0]
    for fit in (t_learner, s_learner):
        pred = fit(splits.train, splits.val, splits.test, 0)
        uplift = pred.p_treated[:, 0] - pred.p_control[:, 0]
        assert pred.p_treated.shape == (len(splits.test), len(OUTCOMES))
        assert ((pred.p_treated[:, :2] >= 0) & (pred.p_treated[:, :2] <= 1)).all()
        assert np.corrcoef(uplift, tau)[0, 1] > 0.3
