"""The cross-fitting protocol with a lockbox (models/crossfit.py, `liftstream crossfit`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from synthetic_uplift import synthetic_dataset
from typer.testing import CliRunner

from models import cli as models_cli
from models import crossfit as cf
from models.baselines import Predictions, dr_learner, t_learner, x_learner
from models.dataset import Dataset
from models.metrics import normalised_qini
from models.significance import nadeau_bengio
from models.train import TrainConfig, split_three_ways
from stream.errors import ConfigError
from stream.scoring.signature import OUTCOMES

pytestmark = pytest.mark.unit

N = 1600  # 800 users of two rows each; ~640 outside the lockbox
PROMOTION = "p-shoes"
TINY = TrainConfig(batch_size=256, hidden=(16,))
SEEN: list[dict[str, Any]] = []  # what the recording learner was given, one entry per fit


def recorder(train: Dataset, val: Dataset, test: Dataset, seed: int) -> Predictions:
    """A baseline that notes its users and ranks at random."""
    SEEN.append({"train": set(train.user_ids.tolist()), "val": set(val.user_ids.tolist()),
                 "test": set(test.user_ids.tolist()), "seed": seed})
    p = np.random.default_rng(seed).random((len(test), len(OUTCOMES)))
    return Predictions(p, np.zeros_like(p))


def run(out: Path, **kwargs: Any) -> dict[str, Any]:
    args = {"promotion": PROMOTION, "folds": 2, "repeats": 1, "epochs": 1, "device": "cpu", "config": TINY,
            "bootstrap": 20, **kwargs}
    return cf.crossfit(synthetic_dataset(N, truth=False), out, **args)


@pytest.fixture(scope="module")
def protocol(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """A cross-fit (2 folds x 2 repeats, a history without truth) and then its lockbox, with the T-learner
    and the recorder as the baselines."""
    out = tmp_path_factory.mktemp("crossfit")
    SEEN.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cf, "META_LEARNERS", {"t_learner_gbm": t_learner, "recorder": recorder})
        result = run(out, repeats=2)
        lockbox = cf.open_lockbox(synthetic_dataset(N, truth=False), out, promotion=PROMOTION, epochs=1,
                                  device="cpu", config=TINY, bootstrap=20)
    return out, result, lockbox


def test_lockbox_rule_is_a_stable_hash_of_the_user_id() -> None:
    users = np.array([f"user-{i}" for i in range(20_000)])
    locked = cf.in_lockbox(users)
    assert 0.19 < locked.mean() < 0.21
    by_hand = [int.from_bytes(hashlib.sha256(f"liftstream-lockbox:{u}".encode()).digest()[:8], "big") / 2**64
               < 0.2 for u in users[:50]]
    assert locked[:50].tolist() == by_hand
    # The same users whatever the order, repetition or subset of the rows.
    picked = np.random.default_rng(0).permutation(len(users))[:5000]
    assert (cf.in_lockbox(np.repeat(users[picked], 2)) == np.repeat(locked[picked], 2)).all()


def test_folds_are_grouped_by_user_and_repeats_refold() -> None:
    rows = np.array([f"u{i // 3}" for i in range(300)])
    plan = cf.grouped_folds(rows, folds=5, repeats=3, seed=7)
    assert [(f.repeat, f.index) for f in plan] == [(r, k) for r in range(3) for k in range(5)]
    for r in range(3):
        parts = [set(f.test_users.tolist()) for f in plan if f.repeat == r]
        assert sum(len(p) for p in parts) == 100 and set().union(*parts) == set(rows.tolist())
        assert all(len(p) == 20 for p in parts)
    assert not np.array_equal(plan[0].test_users, plan[5].test_users)
    assert all(np.array_equal(a.test_users, b.test_users)
               for a, b in zip(plan, cf.grouped_folds(rows, 5, 3, 7), strict=True))
    assert len({f.seed for f in plan}) == len(plan)


def test_every_model_sees_the_same_folds_and_never_the_lockbox(
    protocol: tuple[Path, dict[str, Any], dict[str, Any]],
) -> None:
    out, result, _ = protocol
    ds = synthetic_dataset(N, truth=False)
    lockbox = set(ds.user_ids[cf.in_lockbox(ds.user_ids)].tolist())
    rest = set(ds.user_ids.tolist()) - lockbox
    folds, seen = result["folds"], SEEN[: len(result["folds"])]
    assert len(folds) == 4
    assert all(set(f["metrics"]) == {"neural", "t_learner_gbm", "recorder"} for f in folds)
    for fold, fit in zip(folds, seen, strict=True):
        model = json.loads((out / "models" / f"r{fold['repeat']}-f{fold['fold']}" / "model.json").read_text())
        # The neural model trained on the same training and validation users as the baselines.
        assert model["data"]["train"]["users"] == len(fit["train"]) == fold["train_users"]
        assert model["data"]["val"]["users"] == len(fit["val"]) == fold["val_users"]
        assert model["data"]["test"]["rows"] == 0 and model["seed"] == fit["seed"] == fold["seed"]
        test_users = fit["test"] - lockbox  # the scored rows: the fold's, then the lockbox's
        assert not (fit["train"] | fit["val"]) & (test_users | lockbox)
        held_out = rest - fit["train"] - fit["val"]
        assert test_users <= held_out and len(held_out) == fold["fold_users"]
        assert len(test_users) == fold["test_users"]
    for r in (0, 1):  # each fold's training users are the other fold's: they partition the non-lockbox users
        first, second = (s for f, s in zip(folds, seen, strict=True) if f["repeat"] == r)
        assert not (first["train"] | first["val"]) & (second["train"] | second["val"])
        assert first["train"] | first["val"] | second["train"] | second["val"] == rest
    final = SEEN[len(folds)]  # the lockbox's: every non-lockbox user trains, the lockbox is scored
    assert final["train"] | final["val"] == rest and final["test"] <= lockbox
    assert result["protocol"]["lockbox"]["users"] == len(lockbox)


def test_result_pairs_folds_and_gives_a_verdict(
    protocol: tuple[Path, dict[str, Any], dict[str, Any]],
) -> None:
    out, result, _ = protocol
    paired = result["paired"]["t_learner_gbm"]["uplift_at_30"]
    by_fold = [f["metrics"]["neural"]["uplift_at_30"] - f["metrics"]["t_learner_gbm"]["uplift_at_30"]
               for f in result["folds"]]
    assert paired["differences"] == pytest.approx(by_fold) and paired["folds"] == 4
    assert 0.9 < result["protocol"]["test_to_train"] < 1.1  # two folds: test and training folds alike
    assert len(result["bootstrap"]) == 2
    assert set(result["bootstrap"][0]["versus"]) == {"t_learner_gbm", "recorder"}
    criterion = result["criterion"]
    assert criterion["best_baseline"] == result["best_baseline"]
    assert criterion["met"] == all(criterion[k]["met"] for k in ("mean_difference", "lower_bound",
                                                                 "qini_normalised"))
    assert json.loads((out / cf.CROSSFIT_FILE).read_text())["criterion"] == criterion
    lines = cf.verdict_lines(result)
    assert "not opened" in lines[0] and lines[-2].startswith("criterion against")


def test_lockbox_is_opened_once_with_bagged_fold_models(
    protocol: tuple[Path, dict[str, Any], dict[str, Any]],
) -> None:
    out, result, lockbox = protocol
    assert lockbox["lockbox"]["used"] is True and lockbox["lockbox"]["opened_at"]
    assert lockbox["trained_on"]["users"] == result["protocol"]["users"]
    assert lockbox["best_baseline"] == result["best_baseline"]
    assert lockbox["fold_models"] == 4 and set(lockbox["metrics"]) == {"single", "bagged"}
    assert all(set(m) == {"neural", "t_learner_gbm", "recorder"} for m in lockbox["metrics"].values())
    choice = lockbox["bagging_choice"]
    assert lockbox["final"] == choice["chosen"]
    better = choice["bagged"]["uplift_at_30"] > choice["single"]["uplift_at_30"]
    assert (choice["chosen"] == "bagged") == better
    final = lockbox["metrics"][lockbox["final"]]
    assert lockbox["criterion"]["mean_difference"]["value"] == pytest.approx(
        final["neural"]["uplift_at_30"] - final[lockbox["best_baseline"]]["uplift_at_30"])
    assert "lockbox opened" in cf.verdict_lines(lockbox)[0]
    with pytest.raises(ConfigError, match="used once"):
        cf.open_lockbox(synthetic_dataset(N), out, promotion=PROMOTION, epochs=1, device="cpu", config=TINY)


def test_nadeau_bengio_interval_by_hand() -> None:
    d = np.array([0.01, -0.02, 0.03, 0.00, 0.02])
    # mean 0.008; s^2 = (4 + 784 + 484 + 64 + 144)e-6 / 4 = 370e-6; var = (1/5 + 1/4) s^2 = 166.5e-6;
    # se = 0.0129035; t(0.95, 4 df) = 2.131847: half-width 0.0275084.
    got = nadeau_bengio(d, 0.25)
    assert got["mean"] == pytest.approx(0.008) and got["sd"] == pytest.approx(np.sqrt(370e-6))
    assert got["se"] == pytest.approx(0.0129035, rel=1e-5)
    assert got["interval"] == pytest.approx([0.008 - 0.0275084, 0.008 + 0.0275084], rel=1e-5)
    assert np.isnan(nadeau_bengio(d[:1], 0.25)["interval"][0])


def test_normalised_qini_by_hand() -> None:
    # Ranked: treated responder, treated non-responder, holdout responder, holdout non-responder. Qini curve
    # (counts) 0, 1, 1, -1, 0: area 1 above the flat random line; the perfect ranking (treated responder,
    # a tie of both non-responders, holdout responder) 0, 1, (1 at 3), 0: area 3.
    y, t = np.array([1.0, 0, 1, 0]), np.array([1, 1, 0, 0])
    assert normalised_qini(np.array([4.0, 3, 2, 1]), y, t) == pytest.approx(1 / 3)
    # Three per arm: curve 0, 1, 1, 2, 2, 0.5, 1 (area 7, random 3); perfect 0, (2 at 2), (2 at 5), 1
    # (area 9.5, random 3): (7 - 3) / (9.5 - 3).
    y, t = np.array([1.0, 0, 1, 0, 1, 0]), np.array([1, 1, 1, 0, 0, 0])
    assert normalised_qini(np.array([6.0, 5, 4, 3, 2, 1]), y, t) == pytest.approx(4 / 6.5)
    assert normalised_qini(y * (2 * t - 1), y, t) == pytest.approx(1.0)
    assert np.isnan(normalised_qini(np.ones(4), np.zeros(4), np.array([1, 0, 1, 0])))


def test_x_and_dr_learners_recover_a_strong_effect() -> None:
    ds = synthetic_dataset(2400, seed=1)
    splits = split_three_ways(ds, 0, 0.2, 0.3)
    assert splits.test.tau is not None
    for fit in (x_learner, dr_learner):
        pred = fit(splits.train, splits.val, splits.test, 0)
        assert pred.p_treated.shape == (len(splits.test), len(OUTCOMES))
        assert np.corrcoef(pred.uplift(0), splits.test.tau[:, 0])[0, 1] > 0.3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 1}, "--folds must be 2 or more"),
        ({"repeats": 0}, "--repeats must be 1 or more"),
        ({"outcome": "clicks"}, "unknown outcome"),
        ({"promotion": "p-none"}, "has no exposures"),
        ({"folds": 40}, "fold 1 of 40 .* each arm needs at least 20"),
        ({"bootstrap": -1}, "--bootstrap must be 0 or more"),
    ],
)
def test_bad_arguments_give_one_clear_error(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run(tmp_path, **kwargs)


def test_the_lockbox_needs_the_cross_fit_first(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no cross-fit in"):
        cf.open_lockbox(synthetic_dataset(N), tmp_path, promotion=PROMOTION)


def test_cli_reports_bad_arguments(tmp_path: Path) -> None:
    app = typer.Typer()
    models_cli.register(app)
    result = CliRunner().invoke(app, ["crossfit", "--history", str(tmp_path), "--promotion", PROMOTION])
    assert isinstance(result.exception, ConfigError) and "not a history directory" in str(result.exception)
    assert "--lockbox" in CliRunner().invoke(app, ["crossfit", "--help"]).output
