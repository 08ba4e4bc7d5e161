"""Evaluation on unseen promotions: a split by promotion and the per-promotion metrics (issue 17, part 3).

A fraction of a history's promotions is held out, deterministically by seed (`holdout_promotions`). The model
is trained on the other promotions' exposures only:

    uv run python -m models.promotion_split train --history H --out M --holdout-promotions 0.25 --seed 0

(the split is drawn from the whole history, so `liftstream evaluate --split promotion` with the same fraction
and seed holds out the same promotions; model.json records them under "promotion_split"). A model trained on
one world and evaluated on another world's history (`--history OTHER`) sees only unseen promotions: promotion
ids carry the simulator seed.

Metrics per outcome over the held-out promotions (`promotion_metrics`):
- spearman: rank correlation between each promotion's mean predicted uplift and its mean true effect
  (the simulator truth, `Dataset.tau`); spearman_observed: the same against each promotion's observed
  treated-minus-holdout difference (noisy, but defined on any history).
- truth_qini (and its oracle): the Qini on the true effects of the ranking of all held-out rows;
  truth_qini_within: its mean over the held-out promotions, each ranked on its own (targeting inside one
  new promotion).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from models.dataset import Dataset
from models.metrics import average_ranks, truth_qini
from stream.errors import ConfigError
from stream.scoring.signature import OUTCOMES, PROMO_ATTRS

MIN_HELD_OUT = 3  # a rank correlation over fewer promotions is +-1 or undefined
DISCOUNT_REFERENCE = "discount_value"  # ranks every exposure by its promotion's discount value alone
_DISCOUNT_COLUMN = PROMO_ATTRS.index("discount_value_log")


def holdout_promotions(promotion_ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The sorted held-out promotion ids: round(fraction * promotions), drawn by `seed`."""
    promos = np.unique(promotion_ids)
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"--holdout-promotions must be a fraction in (0, 1), got {fraction}")
    k = int(round(len(promos) * fraction))
    if k == 0:
        raise ConfigError(f"--holdout-promotions {fraction} leaves no promotion out of {len(promos)}")
    if k >= len(promos):
        raise ConfigError(f"--holdout-promotions {fraction} leaves all {len(promos)} promotions out: none to "
                          "train on")
    if k < MIN_HELD_OUT:
        raise ConfigError(f"--holdout-promotions {fraction} holds out {k} of {len(promos)} promotions; the "
                          f"per-promotion Spearman needs at least {MIN_HELD_OUT}")
    rng = np.random.default_rng(seed)
    return np.sort(promos[rng.permutation(len(promos))[:k]])


def split_by_promotion(ds: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """(seen, unseen): every promotion's exposures on exactly one side."""
    held = np.isin(ds.promotion_ids, holdout_promotions(ds.promotion_ids, fraction, seed))
    return ds.subset(~held), ds.subset(held)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); nan below two points or for a constant side."""
    if len(x) < 2:
        return float("nan")
    rx, ry = average_ranks(np.asarray(x, float)), average_ranks(np.asarray(y, float))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = float(np.sqrt((rx**2).sum() * (ry**2).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def discount_reference(test: Dataset) -> np.ndarray:
    """[N, outcomes] ranking score of the reference: the promotion's (log) discount value, every outcome."""
    column = test.promo_attrs[:, _DISCOUNT_COLUMN].astype(np.float64)
    return np.repeat(column[:, None], len(OUTCOMES), axis=1)


def _observed_effect(y: np.ndarray, t: np.ndarray) -> float:
    treated = t.astype(bool)
    if not treated.any() or treated.all():
        return float("nan")
    return float(y[treated].mean() - y[~treated].mean())


def promotion_metrics(
    test: Dataset, rankings: dict[str, np.ndarray], outcomes: tuple[str, ...]
) -> dict[str, dict[str, dict[str, float]]]:
    """outcome -> model -> metric over the promotions of `test`; `rankings`: model -> [N, 3] predicted uplift.
    Truth metrics only where `test.tau` exists."""
    promos, codes = np.unique(test.promotion_ids, return_inverse=True)
    counts = np.bincount(codes, minlength=len(promos))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in outcomes:
        o = OUTCOMES.index(name)
        y = test.labels[:, o].astype(np.float64)
        observed = np.array([_observed_effect(y[codes == p], test.arm[codes == p])
                             for p in range(len(promos))])
        defined = np.isfinite(observed)
        true_mean = None if test.tau is None else (
            np.bincount(codes, weights=test.tau[:, o].astype(np.float64), minlength=len(promos)) / counts
        )
        by_model: dict[str, dict[str, float]] = {}
        for model, uplift in rankings.items():
            u = uplift[:, o].astype(np.float64)
            mean_pred = np.bincount(codes, weights=u, minlength=len(promos)) / counts
            m = {"spearman_observed": spearman(mean_pred[defined], observed[defined])}
            if test.tau is not None and true_mean is not None:
                tau = test.tau[:, o].astype(np.float64)
                masks = [codes == p for p in range(len(promos))]
                within = [(truth_qini(u[r], tau[r]), truth_qini(tau[r], tau[r])) for r in masks]
                m.update(
                    spearman=spearman(mean_pred, true_mean),
                    truth_qini=truth_qini(u, tau),
                    oracle_truth_qini=truth_qini(tau, tau),
                    truth_qini_within=float(np.mean([w for w, _ in within])),
                    oracle_truth_qini_within=float(np.mean([w for _, w in within])),
                )
            by_model[model] = m
        out[name] = by_model
    return out


def promotion_table(by_outcome: dict[str, dict[str, dict[str, float]]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows for the console: one row per outcome and model."""
    columns = ["spearman", "spearman_observed", "truth_qini", "oracle_truth_qini", "truth_qini_within",
               "oracle_truth_qini_within"]
    every = [m for by_model in by_outcome.values() for m in by_model.values()]
    present = [c for c in columns if any(c in m for m in every)]

    def fmt(value: Any) -> str:
        missing = value is None or (isinstance(value, float) and not np.isfinite(value))
        return "-" if missing else f"{value:.4f}"

    rows = [[outcome, model, *(fmt(m.get(c)) for c in present)]
            for outcome, by_model in by_outcome.items() for model, m in by_model.items()]
    return ["outcome", "model", *present], rows


def train_without_held_out(
    history: Path, out: Path, fraction: float, seed: int, epochs: int | None, device: str = "auto",
    text: bool = True,
) -> dict[str, Any]:
    """Train on the exposures of the promotions `holdout_promotions` keeps in (labels come from the whole
    history's replay, so no click is re-attributed); record the split in model.json. `text=False` trains
    the attributes-only ablation (`TrainConfig.text`)."""
    from models.dataset import build_dataset
    from models.train import TrainConfig, train

    ds = build_dataset(history)
    held = holdout_promotions(ds.promotion_ids, fraction, seed)
    seen = ds.subset(~np.isin(ds.promotion_ids, held))
    seen = replace(seen, promo_texts={p: t for p, t in ds.promo_texts.items() if p not in set(held.tolist())})
    result = train(seen, out, epochs=epochs, seed=seed, device=device, config=TrainConfig(text=text))
    meta_path = out / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["promotion_split"] = {"history": str(history), "fraction": fraction, "seed": seed,
                               "held_out": held.tolist()}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return {"model_dir": str(out), "held_out": held.tolist(), "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run, "seconds": round(result.seconds, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models.promotion_split")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on a history without its held-out promotions")
    t.add_argument("--history", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--holdout-promotions", type=float, required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--device", default="auto")
    t.add_argument("--no-text", dest="text", action="store_false",
                   help="the attributes-only ablation: a scorer that never sees the promotion text")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        done = train_without_held_out(args.history, args.out, args.holdout_promotions, args.seed, args.epochs,
                                      args.device, args.text)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from exc
    print(f"wrote {done['model_dir']}: held out {len(done['held_out'])} promotions, best epoch "
          f"{done['best_epoch']} of {done['epochs_run']}, {done['seconds']:.0f}s")


if __name__ == "__main__":
    main()
