"""Training: fine-tune the promotion encoder and train the effect scorer end to end on a Dataset.

The encoder's backbone is frozen and adapted with LoRA (rank `lora_rank`; 0 fine-tunes every weight).
Each mini-batch encodes only the promotions it contains (a history has few) and gathers their vectors
per row; the objective is in models/objective.py. Validation scores an exponential moving average of
the trainable weights, and early stopping keeps the epoch whose average has the best validation Qini.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from models.dataset import Dataset, arm_weights, split_by_user
from models.metrics import qini_coefficient
from models.modeldir import hyper_parameters, write_model_dir
from models.nets import (
    EffectScorer,
    PromoEncoder,
    PromoTokens,
    build_model,
    load_tokenizer,
    load_trainable,
    predict,
    tokens_for,
    trainable_state,
)
from models.objective import PooledCache, batch_loss, prepare_scorer
from stream.errors import ConfigError
from stream.scoring.signature import OUTCOMES, PROMO_DIM

log = logging.getLogger(__name__)

FORMULATION = "shared-trunk T-learner: control head + treated-minus-control offset head per outcome"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 1024
    lr: float = 1e-3
    lora_rank: int = 8  # 0: no adapters, every backbone weight trains (at backbone_lr)
    lora_alpha: float = 16.0  # the update is scaled by alpha / rank
    lora_targets: tuple[str, ...] = ("query", "value")  # Linear layers of each transformer layer (add_lora)
    lora_lr: float = 5e-4  # adapters start at zero and need larger steps than pretrained weights
    backbone_lr: float = 3e-5  # full fine-tuning only (lora_rank 0)
    weight_decay: float = 1e-4
    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    uplift_l2: float = 10.0  # weight of the effect-heterogeneity penalty (docs/model.md: Formulation)
    outcome_weights: tuple[float, ...] = (1.0, 1.0, 1.0)
    backbone_every: int = 4  # steps per adapter update (see PooledCache)
    ema_decay: float = 0.99
    patience: int = 10  # validation Qini dips for several epochs and climbs again (docs/model.md)
    val_fraction: float = 0.15
    test_fraction: float = 0.25
    select_outcome: str = "visit"
    text: bool = True  # False: the attributes-only ablation (the scorer never sees the promotion text)
    reference_rows: int = 20_000


@dataclass(frozen=True)
class Splits:
    train: Dataset  # fits the weights
    val: Dataset  # early stopping
    test: Dataset  # held out for `liftstream evaluate`


def split_three_ways(ds: Dataset, seed: int, val_fraction: float, test_fraction: float) -> Splits:
    """Disjoint users in train / validation / test, the same for the same seed and fractions."""
    rest, test = split_by_user(ds, test_fraction, seed)
    train, val = split_by_user(rest, val_fraction / (1.0 - test_fraction), seed + 1)
    return Splits(train, val, test)


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    best_epoch: int
    epochs_run: int
    val_score: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
        raise ConfigError(f"device must be auto, cpu or cuda (with a GPU present), got {device!r}")
    return torch.device(device)


def _val_qini(
    encoder: PromoEncoder, scorer: EffectScorer, tokens: PromoTokens, val: Dataset, o: int
) -> float:
    p_t, p_c = predict(encoder, scorer, tokens, val.user_features, val.promo_attrs, val.promotion_ids)
    return qini_coefficient(p_t[:, o] - p_c[:, o], val.labels[:, o], val.arm)


class _Ema:
    """Exponential moving average of the trainable parameters, in a copy of the model.

    Frozen weights are constants, so averaging them (as torch's AveragedModel would, 22M of them every
    step) costs time and changes nothing.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model)
        self.decay, self.updates = decay, 0
        pairs = zip(self.module.parameters(), model.parameters(), strict=True)
        self.pairs = [(mine, theirs) for mine, theirs in pairs if theirs.requires_grad]

    @torch.no_grad()
    def update(self) -> None:
        for mine, theirs in self.pairs:
            if self.updates == 0:  # the first update copies, as AveragedModel's does
                mine.copy_(theirs)
            else:
                mine.lerp_(theirs, 1.0 - self.decay)
        self.updates += 1


def make_optimiser(encoder: PromoEncoder, scorer: EffectScorer, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters only: LoRA A/B (or every backbone weight at rank 0) and heads."""
    backbone = [p for p in encoder.backbone.parameters() if p.requires_grad]
    head = list(encoder.projection.parameters()) + list(scorer.parameters())
    return torch.optim.AdamW(
        [{"params": backbone, "lr": config.lora_lr if config.lora_rank else config.backbone_lr},
         {"params": head, "lr": config.lr}],
        weight_decay=config.weight_decay,
        fused=True,  # one kernel over all parameters: ~8x faster steps on CPU than the default (rank 0)
    )


def _tensors(ds: Dataset, promo_codes: np.ndarray, weights: np.ndarray, device: torch.device) -> dict:
    arrays = {
        "user": ds.user_features,
        "attrs": ds.promo_attrs,
        "promo": promo_codes,
        "arm": ds.arm.astype(np.int64),
        "labels": ds.labels.astype(np.float32),
        "weight": weights,
    }
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in arrays.items()}


def train(
    dataset: Dataset,
    out_dir: Path | str,
    *,
    epochs: int | None = None,
    seed: int = 0,
    device: str = "auto",
    config: TrainConfig | None = None,
) -> TrainResult:
    """Train on `dataset` (split by user into train/validation/test by `seed`) and write MODEL_DIR."""
    config = config or TrainConfig()
    epochs = config.epochs if epochs is None else epochs
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    if config.select_outcome not in OUTCOMES:
        raise ConfigError(f"select_outcome must be one of {OUTCOMES}, got {config.select_outcome!r}")
    dev = resolve_device(device)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        return _train(dataset, Path(out_dir), epochs, seed, dev, config)
    finally:
        torch.use_deterministic_algorithms(deterministic)


def _train(
    dataset: Dataset, out_dir: Path, epochs: int, seed: int, dev: torch.device, config: TrainConfig
) -> TrainResult:
    started = time.perf_counter()
    splits = split_three_ways(dataset, seed, config.val_fraction, config.test_fraction)
    train_ds, val_ds = splits.train, splits.val
    if len(train_ds) == 0 or len(val_ds) == 0 or len(np.unique(train_ds.arm)) < 2:
        raise ConfigError("the history is too small to train on: need both arms and users for validation")
    encoder, scorer = build_model(hyper_parameters(config))
    tokens = tokens_for(load_tokenizer(), dataset.promo_texts, dev)
    weights = arm_weights(train_ds)
    prepare_scorer(scorer, train_ds, weights)
    encoder.to(dev)
    scorer.to(dev)
    data = _tensors(train_ds, tokens.codes(train_ds.promotion_ids), weights, dev)
    optimiser = make_optimiser(encoder, scorer, config)
    model = nn.ModuleDict({"encoder": encoder, "scorer": scorer})
    # Validation and the saved weights use an exponential moving average of the weights: uplift is
    # a small difference of two noisy heads, and averaging over steps steadies its ranking.
    averaged = _Ema(model, config.ema_decay)
    ema_encoder = cast(PromoEncoder, averaged.module.get_submodule("encoder"))
    ema_scorer = cast(EffectScorer, averaged.module.get_submodule("scorer"))
    outcome_weights = torch.tensor(config.outcome_weights, dtype=torch.float32, device=dev)
    generator = torch.Generator().manual_seed(seed)
    outcome = OUTCOMES.index(config.select_outcome)
    best: tuple[float, int, dict[str, torch.Tensor]] = (-np.inf, 0, {})
    cache, step = PooledCache(encoder, tokens), 0
    history: list[dict[str, float]] = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train_ds), generator=generator).to(dev)
        losses = []
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            batch = {k: v[rows] for k, v in data.items()}
            unique, inverse = torch.unique(batch["promo"], return_inverse=True)
            # The ablation's scorer multiplies the vectors by zero: the encoder's forward and backward
            # passes would cost most of the step and change nothing.
            fresh = step % config.backbone_every == 0
            vectors = (cache.vectors(encoder, tokens, unique, fresh) if config.text
                       else torch.zeros(len(unique), PROMO_DIM, device=dev))[inverse]
            loss = batch_loss(scorer, vectors, batch, config.uplift_l2, outcome_weights)
            step += 1
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            averaged.update()
            losses.append(loss.item())
        score = _val_qini(ema_encoder, ema_scorer, tokens, val_ds, outcome)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_qini": score})
        log.info("epoch %d: loss %.5f, validation Qini (%s) %.5f", epoch, history[-1]["loss"],
                 config.select_outcome, score)
        if score > best[0]:  # buffers and frozen weights do not change during training
            best = (score, epoch, trainable_state(averaged.module))
        elif epoch - best[1] >= config.patience:
            break
    load_trainable(model, best[2])
    seconds = time.perf_counter() - started
    training = {"best_epoch": best[1], "epochs_run": len(history), "history": history,
                "seconds": round(seconds, 2), "device": str(dev), "torch_threads": torch.get_num_threads()}
    write_model_dir(out_dir, encoder, scorer, tokens, splits,
                    seed=seed, config=config, formulation=FORMULATION, training=training)
    log.info("trained in %.1fs (best epoch %d of %d) -> %s", seconds, best[1], len(history), out_dir)
    return TrainResult(out_dir, best[1], len(history), float(best[0]), seconds, history)

