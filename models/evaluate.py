"""Held-out evaluation of a trained model against gradient-boosting baselines fitted in the same run.

The history is rebuilt into a Dataset and split by user with the model's own seed and fractions, so the
test users are exactly the ones training never saw (neither for weights nor for early stopping). The
baselines are fitted on the model's training users, with its validation users for early stopping.

With `split="promotion"` the test rows are every exposure of the promotions `models/promotion_split.py`
holds out (none of which the model may have trained on); the baselines are fitted on the other promotions'
exposures, and metrics["unseen_promotions"] adds the per-promotion metrics and the discount-value reference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.baselines import BASELINES, Predictions
from models.dataset import Dataset, build_dataset, split_by_user
from models.metrics import outcome_metrics
from models.modeldir import json_safe
from models.nets import N_BINARY, load_model, load_tokenizer, predict, tokens_for
from models.promotion_split import (
    DISCOUNT_REFERENCE,
    discount_reference,
    holdout_promotions,
    promotion_metrics,
)
from models.significance import paired_bootstrap
from models.train import split_three_ways
from stream.errors import ConfigError
from stream.scoring.signature import OUTCOMES

log = logging.getLogger(__name__)

NEURAL = "neural"
ATTRIBUTES_ONLY = "attributes_only"  # the ablation: the same network trained without the promotion text
BOOTSTRAP_RESAMPLES = 200
SPLITS = ("user", "promotion")
NO_TRUTH = "no simulator truth in this history (truth.csv): truth metrics skipped"


@dataclass(frozen=True)
class Evaluation:
    test: Dataset  # held-out rows evaluated (restricted to one promotion when asked)
    predictions: dict[str, Predictions]  # model name -> predictions on `test`
    outcomes: tuple[str, ...]
    metrics: dict[str, Any]  # what metrics.json holds


def score_metrics(
    test: Dataset, predictions: dict[str, Predictions], outcomes: tuple[str, ...]
) -> dict[str, dict[str, dict[str, float]]]:
    """outcome -> model -> metric -> value."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in outcomes:
        o = OUTCOMES.index(name)
        truth = None if test.tau is None else test.tau[:, o]
        out[name] = {
            model: outcome_metrics(
                p.p_treated[:, o], p.p_control[:, o], test.labels[:, o].astype(np.float64), test.arm,
                binary=o < N_BINARY, true_tau=truth,
            )
            for model, p in predictions.items()
        }
    return out


def bootstrap_metrics(
    test: Dataset, predictions: dict[str, Predictions], outcomes: tuple[str, ...], resamples: int, seed: int
) -> dict[str, dict[str, Any]]:
    """outcome -> paired bootstrap of the neural model against every baseline (models/significance.py)."""
    out = {}
    for name in outcomes:
        o = OUTCOMES.index(name)
        rankings = {model: p.uplift(o) for model, p in predictions.items()}
        out[name] = paired_bootstrap(rankings, test.labels[:, o].astype(np.float64), test.arm, test.user_ids,
                                     reference=NEURAL, resamples=resamples, seed=seed)
    return out


def _verdicts(
    metrics: dict[str, dict[str, dict[str, float]]], bootstrap: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per outcome: does the neural model beat every baseline (on this split, and beyond its noise), and how
    close is it to the oracle."""
    out = {}
    for outcome, by_model in metrics.items():
        neural = by_model[NEURAL]
        others = [m for name, m in by_model.items() if name != NEURAL]
        verdict: dict[str, Any] = {
            "uplift_at_30_beats_baselines": all(neural["uplift_at_30"] > m["uplift_at_30"] for m in others),
            "qini_beats_baselines": all(neural["qini"] > m["qini"] for m in others),
            "qini_positive": neural["qini"] > 0,
        }
        if outcome in bootstrap:
            versus = bootstrap[outcome]["versus"]
            verdict["uplift_at_30_beats_baselines_at_90"] = all(
                v["uplift_at_30"]["difference"][0] > 0 for v in versus.values()
            )
            verdict["uplift_at_30_share_ahead"] = {
                b: v["uplift_at_30"]["share_ahead"] for b, v in versus.items()
            }
        if "oracle_qini" in neural:
            verdict["qini_to_oracle"] = {name: m["qini"] / m["oracle_qini"] for name, m in by_model.items()}
            verdict["truth_qini_to_oracle"] = {
                name: m["truth_qini"] / m["oracle_truth_qini"] for name, m in by_model.items()
            }
            verdict["pehe"] = {name: m["pehe"] for name, m in by_model.items()}
        out[outcome] = verdict
    return out


def evaluate(
    model_dir: Path | str,
    history_dir: Path | str,
    *,
    promotion: str | None = None,
    outcomes: tuple[str, ...] = OUTCOMES,
    bootstrap: int | None = None,
    split: str = "user",
    holdout_fraction: float | None = None,
    split_seed: int | None = None,
    ablation: Path | str | None = None,
) -> Evaluation:
    """Rebuild the history's Dataset and evaluate the model on its held-out users (or promotions)."""
    dataset = build_dataset(history_dir)
    return evaluate_dataset(model_dir, dataset, history=str(history_dir), promotion=promotion,
                            outcomes=outcomes, bootstrap=bootstrap, split=split,
                            holdout_fraction=holdout_fraction, split_seed=split_seed, ablation=ablation)


def evaluate_dataset(
    model_dir: Path | str,
    dataset: Dataset,
    *,
    history: str = "",
    promotion: str | None = None,
    outcomes: tuple[str, ...] = OUTCOMES,
    bootstrap: int | None = None,
    split: str = "user",
    holdout_fraction: float | None = None,
    split_seed: int | None = None,
    ablation: Path | str | None = None,
) -> Evaluation:
    """`bootstrap` resamples of the held-out users give intervals of the comparisons (0: none; None:
    BOOTSTRAP_RESAMPLES). `split="promotion"`: held-out promotions, `holdout_fraction` of them drawn by
    `split_seed` (both default to what model.json's "promotion_split" records; the seed else to the
    model's); `ablation`, a MODEL_DIR trained with the text off (`TrainConfig.text`), is scored next to the
    model on the held-out promotions as ATTRIBUTES_ONLY."""
    bootstrap = BOOTSTRAP_RESAMPLES if bootstrap is None else bootstrap
    if bootstrap < 0:
        raise ConfigError(f"bootstrap resamples must be 0 or more, got {bootstrap}")
    unknown = [o for o in outcomes if o not in OUTCOMES]
    if unknown:
        raise ConfigError(f"unknown outcome {unknown[0]!r}; choose from {', '.join(OUTCOMES)}")
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "promotion" and promotion is not None:
        raise ConfigError("--promotion and --split promotion exclude each other: the promotion split "
                          "ranks several held-out promotions")
    if ablation is not None and split != "promotion":
        raise ConfigError("--ablation needs --split promotion")
    encoder, scorer, meta = load_model(model_dir)
    hyper, seed = meta["hyper_parameters"], int(meta["seed"])
    if split == "promotion":
        return _evaluate_promotions(encoder, scorer, meta, dataset, model_dir=str(model_dir), history=history,
                                    outcomes=outcomes, bootstrap=bootstrap, fraction=holdout_fraction,
                                    split_seed=split_seed, ablation=ablation)
    splits = split_three_ways(dataset, seed, hyper["val_fraction"], hyper["test_fraction"])
    if len(splits.train) != meta["data"]["train"]["rows"]:
        log.warning("%s is not the history the model was trained on: test users may overlap its training",
                    history or "the dataset")
    test = splits.test
    if promotion is not None:
        test = test.subset(test.promotion_ids == promotion)
    if len(test) == 0 or len(np.unique(test.arm)) < 2:
        where = f" for promotion {promotion}" if promotion else ""
        raise ConfigError(f"no held-out rows with both arms{where}")
    tokens = tokens_for(load_tokenizer(), dataset.promo_texts)
    p_t, p_c = predict(encoder, scorer, tokens, test.user_features, test.promo_attrs, test.promotion_ids)
    predictions = {NEURAL: Predictions(p_t, p_c)}
    for name, fit in BASELINES.items():
        predictions[name] = fit(splits.train, splits.val, test, seed)
    by_outcome = score_metrics(test, predictions, outcomes)
    resampled = bootstrap_metrics(test, predictions, outcomes, bootstrap, seed) if bootstrap else {}
    metrics = {
        "model_dir": str(model_dir),
        "model_version": meta["version"],
        "history": history,
        "source": dataset.meta.get("source"),
        "promotion": promotion,
        "split": "user",
        "test": _test_summary(test),
        "outcomes": by_outcome,
        "verdicts": _verdicts(by_outcome, resampled),
        "bootstrap": resampled,
    }
    return Evaluation(test, predictions, tuple(outcomes), json_safe(metrics))


def _both_arms(ds: Dataset, what: str) -> None:
    if len(ds) == 0 or len(np.unique(ds.arm)) < 2 or len(np.unique(ds.user_ids)) < 2:
        raise ConfigError(f"too few exposures for the promotion split: {what} has {len(ds)} rows of "
                          f"{len(np.unique(ds.user_ids))} users and needs both arms; use a larger history "
                          "or another --holdout-promotions")


def _evaluate_promotions(
    encoder: Any,
    scorer: Any,
    meta: dict[str, Any],
    dataset: Dataset,
    *,
    model_dir: str,
    history: str,
    outcomes: tuple[str, ...],
    bootstrap: int,
    fraction: float | None,
    split_seed: int | None,
    ablation: Path | str | None,
) -> Evaluation:
    recorded = meta.get("promotion_split") or {}
    fraction = recorded.get("fraction") if fraction is None else fraction
    if fraction is None:
        raise ConfigError("--split promotion needs --holdout-promotions (the fraction of promotions to hold "
                          "out)")
    seed = int(recorded.get("seed", meta["seed"]) if split_seed is None else split_seed)
    held = holdout_promotions(dataset.promotion_ids, float(fraction), seed)
    _never_trained_on(meta, held, "the model")
    models = {NEURAL: (encoder, scorer)}
    if ablation is not None:
        models[ATTRIBUTES_ONLY] = _ablation_model(ablation, held)
    in_test = np.isin(dataset.promotion_ids, held)
    test, rest = dataset.subset(in_test), dataset.subset(~in_test)
    _both_arms(test, "the held-out promotions")
    base_train, base_val = split_by_user(rest, meta["hyper_parameters"]["val_fraction"], seed)
    _both_arms(base_train, "the baselines' training promotions")
    _both_arms(base_val, "the baselines' validation users")
    tokens = tokens_for(load_tokenizer(), dataset.promo_texts)
    predictions = {
        name: Predictions(*predict(enc, sc, tokens, test.user_features, test.promo_attrs, test.promotion_ids))
        for name, (enc, sc) in models.items()
    }
    for name, fit in BASELINES.items():
        predictions[name] = fit(base_train, base_val, test, seed)
    by_outcome = score_metrics(test, predictions, outcomes)
    resampled = bootstrap_metrics(test, predictions, outcomes, bootstrap, seed) if bootstrap else {}
    rankings = {name: np.column_stack([p.uplift(o) for o in range(len(OUTCOMES))])
                for name, p in predictions.items()}
    rankings[DISCOUNT_REFERENCE] = discount_reference(test)
    metrics = {
        "model_dir": model_dir,
        "model_version": meta["version"],
        "history": history,
        "source": dataset.meta.get("source"),
        "promotion": None,
        "split": "promotion",
        "test": _test_summary(test),
        "outcomes": by_outcome,
        "verdicts": _verdicts(by_outcome, resampled),
        "bootstrap": resampled,
        "unseen_promotions": {
            "fraction": fraction,
            "seed": seed,
            "held_out": held.tolist(),
            "training_promotions": len(np.unique(rest.promotion_ids)),
            "baselines_fitted_on": {"rows": len(base_train) + len(base_val),
                                    "promotions": len(np.unique(rest.promotion_ids))},
            "outcomes": promotion_metrics(test, rankings, outcomes),
            "ablation": None if ablation is None else str(ablation),
        },
    }
    return Evaluation(test, predictions, tuple(outcomes), json_safe(metrics))


def _never_trained_on(meta: dict[str, Any], held: np.ndarray, what: str) -> None:
    trained_on = set(meta["data"].get("promotions", [])) & set(held.tolist())
    if trained_on:
        raise ConfigError(
            f"{what} was trained on {len(trained_on)} of the {len(held)} held-out promotions (e.g. "
            f"{sorted(trained_on)[0]}): train it with `python -m models.promotion_split train` and the same "
            "--holdout-promotions and --seed, or evaluate it on another world's history"
        )


def _ablation_model(model_dir: Path | str, held: np.ndarray) -> tuple[Any, Any]:
    """The attributes-only model's networks, refused unless it is one and never saw a held-out promotion."""
    encoder, scorer, meta = load_model(model_dir)
    if meta["hyper_parameters"].get("text", True):
        raise ConfigError(f"--ablation {model_dir} reads the promotion text: train the ablation with "
                          "--no-text")
    _never_trained_on(meta, held, f"the ablation {model_dir}")
    return encoder, scorer


def _test_summary(test: Any) -> dict[str, Any]:
    return {"rows": len(test), "users": len(np.unique(test.user_ids)), "treated": int(test.arm.sum()),
            "holdout": int(len(test) - test.arm.sum()), "has_truth": test.tau is not None}
