"""Evaluation on unseen promotions (models/promotion_split.py, `liftstream evaluate --split promotion`)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import typer
from synthetic_uplift import synthetic_dataset
from typer.testing import CliRunner

from models import cli as models_cli
from models.dataset import Dataset
from models.evaluate import ATTRIBUTES_ONLY, NEURAL, NO_TRUTH, evaluate_dataset
from models.promotion_split import (
    DISCOUNT_REFERENCE,
    holdout_promotions,
    promotion_metrics,
    spearman,
    split_by_promotion,
    train_without_held_out,
)
from models.train import TrainConfig, train
from stream.errors import ConfigError
from stream.scoring.signature import OUTCOMES
from stream.simulate.config import SimConfig
from stream.simulate.history_mode import write_simulation

pytestmark = pytest.mark.unit

N = 1600
PROMOS = [f"p{i}" for i in range(8)]
FRACTION, SEED = 0.4, 0  # 3 of 8 promotions held out


def eight_promotions(truth: bool = True) -> Dataset:
    """The synthetic set with its rows spread over eight promotions (a text each)."""
    ds = synthetic_dataset(N, truth=truth)
    ids = np.array(PROMOS)[np.arange(N) % len(PROMOS)]
    texts = {p: f"{10 + 5 * i}% off everything in store, promotion {i}." for i, p in enumerate(PROMOS)}
    return replace(ds, promotion_ids=ids, campaign_ids=np.array([f"c-{p}" for p in ids]), promo_texts=texts)


@pytest.fixture(scope="module")
def unseen_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on the promotions the split keeps in."""
    out = tmp_path_factory.mktemp("unseen-model")
    seen, _ = split_by_promotion(eight_promotions(), FRACTION, SEED)
    train(seen, out, epochs=1, seed=SEED, device="cpu", config=TrainConfig(batch_size=256, hidden=(16,)))
    return out


@pytest.fixture(scope="module")
def ablation_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same training without the promotion text."""
    out = tmp_path_factory.mktemp("ablation-model")
    seen, _ = split_by_promotion(eight_promotions(), FRACTION, SEED)
    train(seen, out, epochs=1, seed=SEED, device="cpu",
          config=TrainConfig(batch_size=256, hidden=(16,), text=False))
    return out


def test_split_holds_out_whole_promotions_deterministically() -> None:
    ds = eight_promotions()
    held = holdout_promotions(ds.promotion_ids, FRACTION, SEED)
    assert len(held) == 3 and np.array_equal(held, holdout_promotions(ds.promotion_ids, FRACTION, SEED))
    seen, unseen = split_by_promotion(ds, FRACTION, SEED)
    assert set(unseen.promotion_ids) == set(held)
    assert not set(seen.promotion_ids) & set(unseen.promotion_ids)
    assert len(seen) + len(unseen) == len(ds)
    assert len({tuple(holdout_promotions(ds.promotion_ids, FRACTION, s)) for s in range(6)}) > 1


@pytest.mark.parametrize(
    ("fraction", "message"),
    [(0.05, "leaves no promotion out"), (0.99, "leaves all 8 promotions out"), (0.25, "needs at least 3"),
     (0.0, r"fraction in \(0, 1\)"), (1.5, r"fraction in \(0, 1\)")],
)
def test_bad_splits_give_one_clear_error(fraction: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        holdout_promotions(np.array(PROMOS), fraction, SEED)


def test_spearman_on_hand_made_cases() -> None:
    assert spearman(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 40, 30])) == pytest.approx(0.8)
    assert spearman(np.array([1.0, 1, 2]), np.array([1.0, 2, 3])) == pytest.approx(np.sqrt(3) / 2)
    assert spearman(np.array([3.0, 2, 1]), np.array([0.1, 0.2, 0.3])) == pytest.approx(-1.0)
    assert np.isnan(spearman(np.array([1.0, 1, 1]), np.array([1.0, 2, 3])))


def test_promotion_metrics_rank_promotion_means() -> None:
    """Four promotions, true mean effects 0.1 < 0.2 < 0.3 < 0.4; rows' predictions vary inside a promotion
    but their promotion means follow (or reverse) the truth."""
    ds = eight_promotions()
    rows = np.isin(ds.promotion_ids, PROMOS[:4])
    ds = ds.subset(rows)
    code = np.searchsorted(PROMOS[:4], ds.promotion_ids)
    tau = np.repeat(((code + 1) / 10.0)[:, None], 3, axis=1).astype(np.float32)
    ds = replace(ds, tau=tau)
    noise = np.random.default_rng(0).normal(0, 0.01, len(ds))
    right = np.repeat((code * 2.0 + noise)[:, None], 3, axis=1)
    out = promotion_metrics(ds, {"right": right, "reversed": -right}, ("visit", "revenue"))
    assert out["visit"]["right"]["spearman"] == pytest.approx(1.0)
    assert out["revenue"]["reversed"]["spearman"] == pytest.approx(-1.0)
    assert out["visit"]["right"]["oracle_truth_qini"] > 0
    assert {"spearman_observed", "truth_qini", "truth_qini_within"} <= set(out["visit"]["right"])


def test_evaluates_only_the_unseen_promotions(unseen_model: Path, ablation_model: Path) -> None:
    ds = eight_promotions()
    ev = evaluate_dataset(unseen_model, ds, split="promotion", holdout_fraction=FRACTION, split_seed=SEED,
                          bootstrap=20, ablation=ablation_model)
    held = set(holdout_promotions(ds.promotion_ids, FRACTION, SEED))
    assert set(ev.test.promotion_ids) == held and len(ev.test) == np.isin(ds.promotion_ids, list(held)).sum()
    unseen = ev.metrics["unseen_promotions"]
    assert unseen["training_promotions"] == 5 and set(unseen["held_out"]) == held
    for outcome in OUTCOMES:
        by_model = unseen["outcomes"][outcome]
        assert set(by_model) == {NEURAL, ATTRIBUTES_ONLY, "t_learner_gbm", "s_learner_gbm",
                                 DISCOUNT_REFERENCE}
        assert "spearman" in by_model[NEURAL] and "truth_qini_within" in by_model[DISCOUNT_REFERENCE]
        assert ATTRIBUTES_ONLY in ev.metrics["bootstrap"][outcome]["versus"]  # the text's lead, paired
    assert unseen["ablation"] == str(ablation_model)


def test_the_ablation_must_be_an_attributes_only_model(unseen_model: Path, ablation_model: Path) -> None:
    ds = eight_promotions()
    with pytest.raises(ConfigError, match="reads the promotion text"):
        evaluate_dataset(unseen_model, ds, split="promotion", holdout_fraction=FRACTION, split_seed=SEED,
                         bootstrap=0, ablation=unseen_model)
    with pytest.raises(ConfigError, match="--ablation needs --split promotion"):
        evaluate_dataset(unseen_model, ds, bootstrap=0, ablation=ablation_model)


def test_a_model_trained_on_the_held_out_promotions_is_refused(unseen_model: Path) -> None:
    ds = eight_promotions()
    other_seed = next(s for s in range(1, 50) if set(holdout_promotions(ds.promotion_ids, FRACTION, s))
                      != set(holdout_promotions(ds.promotion_ids, FRACTION, SEED)))
    with pytest.raises(ConfigError, match="the model was trained on"):
        evaluate_dataset(unseen_model, ds, split="promotion", holdout_fraction=FRACTION,
                         split_seed=other_seed, bootstrap=0)
    with pytest.raises(ConfigError, match="needs --holdout-promotions"):
        evaluate_dataset(unseen_model, ds, split="promotion", bootstrap=0)
    with pytest.raises(ConfigError, match="exclude each other"):
        evaluate_dataset(unseen_model, ds, split="promotion", promotion="p0", holdout_fraction=FRACTION)
    with pytest.raises(ConfigError, match="--split must be"):
        evaluate_dataset(unseen_model, ds, split="campaign")


def test_too_few_users_give_one_clear_error(unseen_model: Path) -> None:
    ds = eight_promotions()
    held = holdout_promotions(ds.promotion_ids, FRACTION, SEED)
    # The held-out promotions keep a single treated row each: no holdout arm to measure against.
    keep = ~np.isin(ds.promotion_ids, held) | (np.arange(len(ds)) < 40) & (ds.arm == 1)
    with pytest.raises(ConfigError, match="too few exposures for the promotion split"):
        evaluate_dataset(unseen_model, ds.subset(keep), split="promotion", holdout_fraction=FRACTION,
                         split_seed=SEED, bootstrap=0)


def test_a_history_without_truth_skips_truth_metrics(unseen_model: Path) -> None:
    ev = evaluate_dataset(unseen_model, eight_promotions(truth=False), split="promotion",
                          holdout_fraction=FRACTION, split_seed=SEED, bootstrap=0)
    assert ev.metrics["test"]["has_truth"] is False
    for by_model in ev.metrics["unseen_promotions"]["outcomes"].values():
        for m in by_model.values():
            assert "spearman_observed" in m and "spearman" not in m and "truth_qini" not in m


def test_cli_on_a_simulated_history_with_and_without_truth(tmp_path: Path) -> None:
    """End to end: train without the held-out promotions, evaluate them; a truth-less copy says one line."""
    history = tmp_path / "history"
    write_simulation(SimConfig(seed=3, users=500, days=3.0, campaigns=2), history)
    model = tmp_path / "model"
    done = train_without_held_out(history, model, 0.4, 0, epochs=1, device="cpu")
    assert len(done["held_out"]) == 3
    ablation = tmp_path / "ablation"
    assert train_without_held_out(history, ablation, 0.4, 0, epochs=1, device="cpu", text=False)["held_out"] \
        == done["held_out"]
    app = typer.Typer()
    models_cli.register(app)
    args = ["evaluate", "--model", str(model), "--split", "promotion", "--bootstrap", "0"]
    result = CliRunner().invoke(app, [*args, "--history", str(history), "--out", str(tmp_path / "eval0"),
                                      "--ablation", str(ablation)])
    assert result.exit_code == 0, result.output
    assert ATTRIBUTES_ONLY in result.output and "text ablation: none given" not in result.output
    result = CliRunner().invoke(app, [*args, "--history", str(history), "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    assert "3 unseen promotions" in result.output and NO_TRUTH not in result.output
    assert "text ablation: none given" in result.output
    bare = tmp_path / "bare"
    shutil.copytree(history, bare)
    (bare / "truth.csv").unlink()
    result = CliRunner().invoke(app, [*args, "--history", str(bare), "--out", str(tmp_path / "eval2")])
    assert result.exit_code == 0, result.output
    assert result.output.count(NO_TRUTH) == 1
    result = CliRunner().invoke(app, [*args, "--history", str(history), "--holdout-promotions", "0.01"])
    assert isinstance(result.exception, ConfigError) and "leaves no promotion out" in str(result.exception)
