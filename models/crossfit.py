"""Repeated cross-fitting by user with a lockbox: how real data judges the model (issue 17, point 4).

Lockbox: a user is in it when the first 8 bytes of sha256("liftstream-lockbox:" + user_id), read as a
big-endian integer over 2^64, fall below 0.2 (`in_lockbox`). The rule reads the user id alone, so it puts
the same users aside on every run, machine and subset of a history, about 20% of them. Lockbox users are in
no fold; `open_lockbox` trains on every other user and scores the lockbox once (lockbox.json records it,
and a second opening of the same output directory is refused).

Cross-fitting: the other users are split into K folds with all of a user's exposures in one fold, R times
(the repeat r permutes the users with seed + r). In each fold every model trains on the other K - 1 folds
and is scored on the fold's exposures of one promotion: the neural model through `models.train.train`,
which carves its early-stopping validation users (`val_fraction` of them) from those folds, and the
gradient-boosting T-, S-, X- and DR-learners (`META_LEARNERS`) on the same training and validation users.
All models of a fold share its users and seed (seed + r * K + k), so their differences are paired.

Per fold and model: uplift@30, the normalised Qini (scikit-uplift's `qini_auc_score` x 100, the scale the
published Hillstrom figures use) and the Qini coefficient. The neural model minus each baseline per fold
gets the Nadeau-Bengio corrected t interval; next to it, the paired bootstrap of each repeat's pooled
out-of-fold predictions (every non-lockbox user is scored once per repeat). The criterion (`CRITERION`),
against the baseline with the highest mean uplift@30: mean paired difference >= -0.003, its 90% lower
bound >= -0.012, and the neural model's mean normalised Qini >= 7.0.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.baselines import META_LEARNERS
from models.dataset import Dataset
from models.metrics import normalised_qini, qini_coefficient, uplift_at_k
from models.modeldir import json_safe
from models.nets import PromoTokens, load_model, load_tokenizer, predict, tokens_for
from models.significance import LEVEL, Metric, nadeau_bengio, paired_bootstrap
from models.train import TrainConfig, split_three_ways, train
from stream.errors import ConfigError
from stream.scoring.signature import OUTCOMES

log = logging.getLogger(__name__)

NEURAL = "neural"
LOCKBOX_SALT = "liftstream-lockbox"
LOCKBOX_SHARE = 0.2
MIN_TEST_USERS = 20  # per fold (and in the lockbox), in each arm: fewer leave uplift@30 to a handful of rows
CROSSFIT_FILE, LOCKBOX_FILE, LOCKBOX_SCORES = "crossfit.json", "lockbox.json", "lockbox_scores.npz"
METRICS: dict[str, Metric] = {
    "uplift_at_30": lambda u, y, t: uplift_at_k(u, y, t, 0.3),
    "qini_normalised": lambda u, y, t: 100.0 * normalised_qini(u, y, t),
    "qini": qini_coefficient,
}
CRITERION = {"mean_difference": -0.003, "lower_bound": -0.012, "qini_normalised": 7.0}


def in_lockbox(user_ids: np.ndarray) -> np.ndarray:
    """Per row: is its user in the lockbox (the hash rule in the module docstring)."""
    users, inverse = np.unique(np.asarray(user_ids).astype(str), return_inverse=True)
    digests = (hashlib.sha256(f"{LOCKBOX_SALT}:{u}".encode()).digest()[:8] for u in users)
    share = np.array([int.from_bytes(d, "big") for d in digests], dtype=np.float64) / 2.0**64
    return (share < LOCKBOX_SHARE)[inverse]


@dataclass(frozen=True)
class Fold:
    repeat: int
    index: int
    seed: int  # every model's seed in this fold
    test_users: np.ndarray  # sorted user ids


def grouped_folds(user_ids: np.ndarray, folds: int, repeats: int, seed: int) -> list[Fold]:
    """K folds of the users, R times; within a repeat every user is in exactly one fold."""
    users = np.unique(user_ids)
    plan = []
    for r in range(repeats):
        order = np.random.default_rng(seed + r).permutation(len(users))
        for k, part in enumerate(np.array_split(order, folds)):
            plan.append(Fold(r, k, seed + r * folds + k, np.sort(users[part])))
    return plan


def _users(ds: Dataset) -> int:
    return len(np.unique(ds.user_ids))


def _check_scored(ds: Dataset, what: str, hint: str) -> None:
    arms = [_users(ds.subset(ds.arm == a)) for a in (1, 0)]
    if min(arms) < MIN_TEST_USERS:
        raise ConfigError(f"{what} has {arms[0]} treated and {arms[1]} holdout users; each arm needs at "
                          f"least {MIN_TEST_USERS}: {hint}")


def _check_args(dataset: Dataset, promotion: str, outcome: str, folds: int, repeats: int) -> None:
    if folds < 2:
        raise ConfigError(f"--folds must be 2 or more, got {folds}")
    if repeats < 1:
        raise ConfigError(f"--repeats must be 1 or more, got {repeats}")
    if outcome not in OUTCOMES:
        raise ConfigError(f"unknown outcome {outcome!r}; choose from {', '.join(OUTCOMES)}")
    if promotion not in set(dataset.promotion_ids.tolist()):
        known = ", ".join(sorted(set(dataset.promotion_ids.tolist()))[:5])
        raise ConfigError(f"promotion {promotion!r} has no exposures in the history (e.g. {known})")


def _no_test_share(ds: Dataset) -> float:
    """A test fraction that holds out no user (round(users * f) = 0): `train` then carves only its
    validation users from what it is given, the training folds."""
    return 0.25 / max(_users(ds), 1)


def _fit_models(
    train_part: Dataset,
    score: Dataset,
    *,
    seed: int,
    config: TrainConfig,
    epochs: int | None,
    device: str,
    model_dir: Path,
    tokens: PromoTokens,
    o: int,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every model trained on `train_part` (validation carved inside it, the same users for all), and its
    predicted uplift of outcome o on `score`."""
    fold_config = replace(config, test_fraction=_no_test_share(train_part))
    splits = split_three_ways(train_part, seed, fold_config.val_fraction, fold_config.test_fraction)
    if _users(splits.val) == 0 or len(np.unique(splits.train.arm)) < 2:
        raise ConfigError("the training folds are too small to carve validation users from: use a larger "
                          "history or fewer --folds")
    result = train(train_part, model_dir, epochs=epochs, seed=seed, device=device, config=fold_config)
    encoder, scorer, _ = load_model(model_dir)
    p_t, p_c = predict(encoder, scorer, tokens, score.user_features, score.promo_attrs, score.promotion_ids)
    uplift = {NEURAL: p_t[:, o] - p_c[:, o]}
    for name, fit in META_LEARNERS.items():
        uplift[name] = fit(splits.train, splits.val, score, seed).uplift(o)
    info = {"train_users": _users(splits.train), "val_users": _users(splits.val),
            "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
            "neural_seconds": round(result.seconds, 1)}
    return uplift, info


def _score(ds: Dataset, uplift: dict[str, np.ndarray], o: int) -> dict[str, dict[str, float]]:
    y = ds.labels[:, o].astype(np.float64)
    return {name: {m: fn(u, y, ds.arm) for m, fn in METRICS.items()} for name, u in uplift.items()}


def _summary(folds: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    models = folds[0]["metrics"]
    return {
        name: {m: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")}
               for m in METRICS for v in [np.array([f["metrics"][name][m] for f in folds])]}
        for name in models
    }


def _paired(folds: list[dict[str, Any]], test_to_train: float) -> dict[str, dict[str, Any]]:
    """Neural minus each baseline, per metric: the folds' differences and their corrected interval."""
    out: dict[str, dict[str, Any]] = {}
    for name in folds[0]["metrics"]:
        if name == NEURAL:
            continue
        out[name] = {}
        for m in METRICS:
            d = np.array([f["metrics"][NEURAL][m] - f["metrics"][name][m] for f in folds])
            out[name][m] = {**nadeau_bengio(d, test_to_train), "differences": d.tolist()}
    return out


def _criterion(best: str, difference: float, lower: float, qini: float, interval: str) -> dict[str, Any]:
    checks: dict[str, dict[str, Any]] = {
        "mean_difference": {"value": difference, "threshold": CRITERION["mean_difference"]},
        "lower_bound": {"value": lower, "threshold": CRITERION["lower_bound"], "interval": interval},
        "qini_normalised": {"value": qini, "threshold": CRITERION["qini_normalised"]},
    }
    for check in checks.values():
        check["met"] = bool(check["value"] >= check["threshold"])  # nan never meets a threshold
    return {"best_baseline": best, **checks, "met": all(c["met"] for c in checks.values())}


def crossfit(
    dataset: Dataset,
    out_dir: Path | str,
    *,
    promotion: str,
    outcome: str = "visit",
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    epochs: int | None = None,
    device: str = "auto",
    config: TrainConfig | None = None,
    bootstrap: int = 200,
    history: str = "",
) -> dict[str, Any]:
    """Run the protocol; writes OUT/crossfit.json (returned), the fold models under OUT/models/ and the fold
    models' predictions for the lockbox users (OUT/lockbox_scores.npz; no lockbox outcome is read)."""
    _check_args(dataset, promotion, outcome, folds, repeats)
    if bootstrap < 0:
        raise ConfigError(f"--bootstrap must be 0 or more, got {bootstrap}")
    config, out, o = config or TrainConfig(), Path(out_dir), OUTCOMES.index(outcome)
    locked = in_lockbox(dataset.user_ids)
    rest_rows = np.flatnonzero(~locked)
    lockbox_rows = np.flatnonzero(locked & (dataset.promotion_ids == promotion))
    rest, lockbox = dataset.subset(rest_rows), dataset.subset(lockbox_rows)
    target = rest.promotion_ids == promotion
    plan = grouped_folds(rest.user_ids, folds, repeats, seed)
    for fold in plan[:folds]:  # every repeat has the same fold sizes
        in_test = np.isin(rest.user_ids, fold.test_users)
        _check_scored(rest.subset(in_test & target), f"fold {fold.index + 1} of {folds} ({promotion})",
                      "use fewer --folds or a larger history")
    tokens = tokens_for(load_tokenizer(), dataset.promo_texts)
    records: list[dict[str, Any]] = []
    # repeat -> model -> out-of-fold uplift per row of `rest`
    pooled: dict[int, dict[str, np.ndarray]] = {r: {} for r in range(repeats)}
    lock_scores: dict[str, list[np.ndarray]] = {}
    for fold in plan:
        in_test = np.isin(rest.user_ids, fold.test_users)
        test_rows = np.flatnonzero(in_test & target)
        # The fold's test rows, then the lockbox's: one prediction call per model, no lockbox outcome read.
        score = dataset.subset(np.concatenate([rest_rows[test_rows], lockbox_rows]))
        uplift, info = _fit_models(rest.subset(~in_test), score, seed=fold.seed, config=config, epochs=epochs,
                                   device=device, model_dir=out / "models" / f"r{fold.repeat}-f{fold.index}",
                                   tokens=tokens, o=o)
        n = len(test_rows)
        for name, u in uplift.items():
            pooled[fold.repeat].setdefault(name, np.full(len(rest), np.nan))[test_rows] = u[:n]
            lock_scores.setdefault(name, []).append(u[n:])
        metrics = _score(rest.subset(test_rows), {k: u[:n] for k, u in uplift.items()}, o)
        records.append({"repeat": fold.repeat, "fold": fold.index, "seed": fold.seed,
                        "fold_users": len(fold.test_users), "test_rows": n,
                        "test_users": _users(rest.subset(test_rows)), **info, "metrics": metrics})
        log.info("fold r%d/f%d: uplift@30 neural %.4f, %s", fold.repeat, fold.index,
                 metrics[NEURAL]["uplift_at_30"],
                 ", ".join(f"{k} {v['uplift_at_30']:.4f}" for k, v in metrics.items() if k != NEURAL))
    test_to_train = float(np.mean([r["fold_users"] / (r["train_users"] + r["val_users"]) for r in records]))
    summary = _summary(records)
    best = max((n for n in summary if n != NEURAL), key=lambda n: summary[n]["uplift_at_30"]["mean"])
    paired = _paired(records, test_to_train)
    difference = paired[best]["uplift_at_30"]
    scored = rest.subset(target)
    y = scored.labels[:, o].astype(np.float64)
    resampled = [
        paired_bootstrap({name: u[target] for name, u in by_model.items()}, y, scored.arm, scored.user_ids,
                         reference=NEURAL, resamples=bootstrap, seed=seed + r, metrics=METRICS)
        for r, by_model in pooled.items()
    ] if bootstrap else []
    result = {
        "history": history,
        "source": dataset.meta.get("source"),
        "promotion": promotion,
        "outcome": outcome,
        "protocol": {
            "folds": folds, "repeats": repeats, "seed": seed, "epochs": epochs or config.epochs,
            "val_fraction": config.val_fraction, "grouped_by": "user_id", "test_to_train": test_to_train,
            "lockbox": {"rule": f"sha256('{LOCKBOX_SALT}:' + user_id)[:8] / 2^64 < {LOCKBOX_SHARE}",
                        "users": int(_users(dataset.subset(locked))), "rows": int(locked.sum()),
                        "promotion_rows": len(lockbox), "opened": False},
            "users": _users(rest), "rows": len(rest), "promotion_rows": int(target.sum()),
        },
        "folds": records,
        "summary": summary,
        "best_baseline": best,
        "paired": paired,
        "bootstrap": resampled,
        "criterion": _criterion(best, difference["mean"], difference["interval"][0],
                                summary[NEURAL]["qini_normalised"]["mean"],
                                f"Nadeau-Bengio corrected t, {LEVEL:.0%} two-sided"),
    }
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / LOCKBOX_SCORES, event_ids=lockbox.event_ids.astype(str),
                        **{name: np.stack(u) for name, u in lock_scores.items()})
    return _write(out / CROSSFIT_FILE, result)


def _write(path: Path, result: dict[str, Any]) -> dict[str, Any]:
    safe = json_safe({**result, "written": str(path)})
    path.write_text(json.dumps(safe, indent=2) + "\n")
    return safe


def _recorded(out: Path, promotion: str, outcome: str) -> dict[str, Any]:
    """The cross-fit's record in OUT, which must exist and be for the same promotion and outcome."""
    opened = out / LOCKBOX_FILE
    if opened.exists():
        when = json.loads(opened.read_text()).get("lockbox", {}).get("opened_at", "?")
        raise ConfigError(f"{opened} exists: the lockbox was opened at {when} and is used once")
    try:
        record = json.loads((out / CROSSFIT_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"no cross-fit in {out} ({exc}); run it first (without --lockbox)") from exc
    if (record["promotion"], record["outcome"]) != (promotion, outcome):
        raise ConfigError(f"the cross-fit in {out} judged {record['promotion']} / {record['outcome']}, not "
                          f"{promotion} / {outcome}")
    return record


def _bagged(out: Path, lockbox: Dataset) -> tuple[dict[str, np.ndarray], int]:
    """The fold models' lockbox predictions averaged per model (cross-fit bagging), and how many."""
    try:
        scores = np.load(out / LOCKBOX_SCORES)
    except OSError as exc:
        raise ConfigError(f"{out / LOCKBOX_SCORES}: {exc}; run the cross-fit again") from exc
    if not np.array_equal(scores["event_ids"], lockbox.event_ids.astype(str)):
        raise ConfigError(f"{out / LOCKBOX_SCORES} scored other lockbox rows than this history's")
    names = [n for n in scores.files if n != "event_ids"]
    return {n: scores[n].mean(axis=0) for n in names}, int(scores[NEURAL].shape[0])


def bagging_choice(
    dataset: Dataset, record: dict[str, Any], out: Path, tokens: PromoTokens
) -> dict[str, Any]:
    """Whether the lockbox's final figure bags the fold models (issue 17, point 5), decided on out-of-fold
    predictions only. In each repeat one fold model did not see a given user, so the mean of the user's R
    out-of-fold predictions is a bag of R models none of which saw them: bagging is chosen when that bag's
    neural uplift@30 over the non-lockbox users beats the single fold models' (the mean over repeats of
    each repeat's pooled figure). The saved neural fold models are scored again; their per-fold uplift@30
    must reproduce the cross-fit's."""
    p, o = record["protocol"], OUTCOMES.index(record["outcome"])
    rest = dataset.subset(~in_lockbox(dataset.user_ids))
    target = rest.promotion_ids == record["promotion"]
    at = np.cumsum(target) - 1  # position of each target row among the scored rows
    oof = np.zeros((p["repeats"], int(target.sum())))
    plan = grouped_folds(rest.user_ids, p["folds"], p["repeats"], p["seed"])
    for fold, recorded in zip(plan, record["folds"], strict=True):
        rows = np.isin(rest.user_ids, fold.test_users) & target
        encoder, scorer, _ = load_model(out / "models" / f"r{fold.repeat}-f{fold.index}")
        test = rest.subset(rows)
        p_t, p_c = predict(encoder, scorer, tokens, test.user_features, test.promo_attrs, test.promotion_ids)
        oof[fold.repeat, at[rows]] = p_t[:, o] - p_c[:, o]
        again = METRICS["uplift_at_30"](oof[fold.repeat, at[rows]], test.labels[:, o], test.arm)
        # Float noise between batchings can swap near-tied rows at the cut; another model moves it by 1e-2.
        if not np.isclose(again, recorded["metrics"][NEURAL]["uplift_at_30"], atol=1e-3):
            raise ConfigError(f"the fold model r{fold.repeat}-f{fold.index} in {out} gives uplift@30 "
                              f"{again:.5f}, the cross-fit recorded "
                              f"{recorded['metrics'][NEURAL]['uplift_at_30']:.5f}")
    scored = rest.subset(target)
    y = scored.labels[:, o].astype(np.float64)
    single = {m: float(np.mean([fn(u, y, scored.arm) for u in oof])) for m, fn in METRICS.items()}
    bagged = {m: fn(oof.mean(axis=0), y, scored.arm) for m, fn in METRICS.items()}
    chosen = p["repeats"] > 1 and bagged["uplift_at_30"] > single["uplift_at_30"]
    return {"rule": "bagged when the out-of-fold bag of the repeats ranks better (neural uplift@30)",
            "single": single, "bagged": bagged, "chosen": "bagged" if chosen else "single"}


def open_lockbox(
    dataset: Dataset,
    out_dir: Path | str,
    *,
    promotion: str,
    outcome: str = "visit",
    seed: int = 0,
    epochs: int | None = None,
    device: str = "auto",
    config: TrainConfig | None = None,
    bootstrap: int = 200,
    history: str = "",
) -> dict[str, Any]:
    """Score the lockbox users' exposures of `promotion` once, with every model trained on all non-lockbox
    users ("single") and with the fold models' predictions averaged ("bagged").

    Needs the cross-fit's crossfit.json and fold models in `out_dir`. Decided before any lockbox outcome is
    read: the baseline the criterion compares with (the cross-fit's best) and the final variant
    (`bagging_choice`); the criterion's interval here is the paired bootstrap of the lockbox users.
    Writes OUT/lockbox.json, and refuses to run again while it exists."""
    out = Path(out_dir)
    record = _recorded(out, promotion, outcome)
    _check_args(dataset, promotion, outcome, 2, 1)
    config, o = config or TrainConfig(), OUTCOMES.index(outcome)
    locked = in_lockbox(dataset.user_ids)
    lockbox = dataset.subset(locked & (dataset.promotion_ids == promotion))
    _check_scored(lockbox, f"the lockbox ({promotion})", "use a larger history")
    tokens = tokens_for(load_tokenizer(), dataset.promo_texts)
    bagged, fold_models = _bagged(out, lockbox)
    choice = bagging_choice(dataset, record, out, tokens)
    single, info = _fit_models(dataset.subset(~locked), lockbox, seed=seed, config=config, epochs=epochs,
                               device=device, model_dir=out / "models" / "all", tokens=tokens, o=o)
    variants = {"single": single, "bagged": bagged}
    opened_at = datetime.now(UTC).isoformat()
    metrics = {name: _score(lockbox, uplift, o) for name, uplift in variants.items()}
    final, best = choice["chosen"], record["best_baseline"]
    y = lockbox.labels[:, o].astype(np.float64)
    resampled = paired_bootstrap(variants[final], y, lockbox.arm, lockbox.user_ids, reference=NEURAL,
                                 resamples=bootstrap, seed=seed, metrics=METRICS) if bootstrap else {}
    lower = resampled["versus"][best]["uplift_at_30"]["difference"][0] if resampled else float("nan")
    chosen = metrics[final]
    result = {
        "history": history,
        "source": dataset.meta.get("source"),
        "promotion": promotion,
        "outcome": outcome,
        "lockbox": {**record["protocol"]["lockbox"], "used": True, "opened": True, "opened_at": opened_at,
                    "users": _users(dataset.subset(locked)), "promotion_users": _users(lockbox)},
        "trained_on": {"users": _users(dataset.subset(~locked)), "seed": seed,
                       "epochs": epochs or config.epochs, **info},
        "fold_models": fold_models,
        "bagging_choice": choice,
        "final": final,
        "metrics": metrics,
        "best_baseline": best,
        "bootstrap": resampled,
        "criterion": _criterion(best, chosen[NEURAL]["uplift_at_30"] - chosen[best]["uplift_at_30"], lower,
                                chosen[NEURAL]["qini_normalised"],
                                f"paired bootstrap of the lockbox users, {LEVEL:.0%} two-sided"),
    }
    return _write(out / LOCKBOX_FILE, result)


def _mark(met: bool) -> str:
    return "met" if met else "NOT met"


def verdict_lines(result: dict[str, Any]) -> list[str]:
    """The console summary of a cross-fit or a lockbox result."""
    c = result["criterion"]
    what = f"{result['promotion']} / {result['outcome']}"
    if "folds" in result:
        p = result["protocol"]
        lines = [f"{what}: {len(result['folds'])} folds ({p['folds']} x {p['repeats']} repeats) of "
                 f"{p['users']} users; lockbox: {p['lockbox']['users']} users aside, not opened"]
        lines += [f"  {name}: uplift@30 {m['uplift_at_30']['mean']:.4f} ± {m['uplift_at_30']['sd']:.4f}, "
                  f"normalised Qini {m['qini_normalised']['mean']:.2f} ± {m['qini_normalised']['sd']:.2f}"
                  for name, m in result["summary"].items()]
        for name, by_metric in result["paired"].items():
            d = by_metric["uplift_at_30"]
            lines.append(f"  neural − {name} uplift@30 {d['mean']:+.4f} (90% corrected t "
                         f"{d['interval'][0]:+.4f} … {d['interval'][1]:+.4f})")
    else:
        lines = [f"{what}: lockbox opened at {result['lockbox']['opened_at']} "
                 f"({result['lockbox']['promotion_users']} users); final figure: {result['final']} (chosen "
                 "out of fold)"]
        lines += [f"  {variant} {name}: uplift@30 {m['uplift_at_30']:.4f}, normalised Qini "
                  f"{m['qini_normalised']:.2f}"
                  for variant, by_model in result["metrics"].items() for name, m in by_model.items()]
    lines.append(
        f"criterion against {c['best_baseline']}: mean difference {c['mean_difference']['value']:+.4f} ≥ "
        f"{c['mean_difference']['threshold']} {_mark(c['mean_difference']['met'])}; 90% lower bound "
        f"{c['lower_bound']['value']:+.4f} ≥ {c['lower_bound']['threshold']} "
        f"{_mark(c['lower_bound']['met'])}; "
        f"normalised Qini {c['qini_normalised']['value']:.2f} ≥ {c['qini_normalised']['threshold']} "
        f"{_mark(c['qini_normalised']['met'])} → {_mark(c['met']).upper()}"
    )
    lines.append(f"wrote {result['written']}")
    return lines
