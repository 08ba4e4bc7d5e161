"""What training optimises: per-arm losses, the uplift regulariser, head initialisation, pooled-text cache.

Each row's loss is taken on the head of its own arm (treated rows: control + offset; holdout rows:
control), weighted so both arms of every promotion count equally: binary cross-entropy for visit and
conversion, Tweedie deviance for revenue.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from models.dataset import Dataset
from models.nets import N_BINARY, EffectScorer, PromoEncoder, PromoTokens

_TWEEDIE_POWER = 1.5


def tweedie_loss(log_mean: torch.Tensor, y: torch.Tensor, power: float = _TWEEDIE_POWER) -> torch.Tensor:
    """Tweedie deviance (up to terms constant in the prediction) of a log-link mean; zero-inflated revenue."""
    a, b = 1.0 - power, 2.0 - power
    return -y * torch.exp(log_mean * a) / a + torch.exp(log_mean * b) / b


def _link_of_means(labels: np.ndarray, weights: np.ndarray, revenue_scale: float) -> np.ndarray:
    """Each outcome's weighted mean on the heads' link scale (logit; log of scaled revenue)."""
    mean = np.average(labels, axis=0, weights=weights).clip(1e-4, None)
    rates = mean[:N_BINARY].clip(None, 1 - 1e-4)
    return np.concatenate([np.log(rates / (1 - rates)), np.log(mean[N_BINARY:] / revenue_scale)])


def prepare_scorer(scorer: EffectScorer, train: Dataset, weights: np.ndarray) -> None:
    """Input scaling from the training rows; head biases at each arm's weighted mean outcome.

    Starting the offset head at the average effect matters: from zero, Adam's bounded steps need
    hundreds of updates just to reach it, and early stopping on a ranking metric would not wait.
    """
    with torch.no_grad():
        logged = scorer.scaled_user_features(torch.from_numpy(train.user_features))
        scorer.user_mean.copy_(logged.mean(0))
        scorer.user_std.copy_(logged.std(0).clamp(min=1e-3))
        attrs = torch.from_numpy(train.promo_attrs)
        scorer.attr_mean.copy_(attrs.mean(0))
        scorer.attr_std.copy_(attrs.std(0).clamp(min=1e-3))
        revenue = train.labels[:, N_BINARY]
        scorer.revenue_scale.fill_(float(revenue[revenue > 0].mean()) if (revenue > 0).any() else 1.0)
        treated = train.arm == 1
        scale = scorer.revenue_scale.item()
        control = _link_of_means(train.labels[~treated], weights[~treated], scale)
        offset = _link_of_means(train.labels[treated], weights[treated], scale) - control
        scorer.control_head.bias.copy_(torch.from_numpy(control.astype(np.float32)))
        scorer.uplift_head.weight.zero_()
        scorer.uplift_head.bias.copy_(torch.from_numpy(offset.astype(np.float32)))


class PooledCache:
    """Backbone outputs per promotion, recomputed (with gradients) only on the steps that train the backbone.

    The backbone is the expensive part of a step and the cheap part of the model to learn: it moves
    slowly at its small learning rate, so between its updates the projection and scorer train on the
    pooled outputs of its last update, which are exactly what it would compute again.
    """

    def __init__(self, encoder: PromoEncoder, tokens: PromoTokens) -> None:
        with torch.no_grad():
            self.values = torch.cat([
                encoder.pool(tokens.input_ids[i : i + 64], tokens.attention_mask[i : i + 64])
                for i in range(0, len(tokens.promotion_ids), 64)
            ])

    def vectors(
        self, encoder: PromoEncoder, tokens: PromoTokens, unique: torch.Tensor, fresh: bool
    ) -> torch.Tensor:
        if not fresh:
            return encoder.project(self.values[unique])
        pooled = encoder.pool(tokens.input_ids[unique], tokens.attention_mask[unique])
        self.values[unique] = pooled.detach()
        return encoder.project(pooled)


def batch_loss(
    scorer: EffectScorer,
    vectors: torch.Tensor,
    batch: dict[str, torch.Tensor],
    uplift_l2: float,
    outcome_weights: torch.Tensor,
) -> torch.Tensor:
    treated, control, _ = scorer.logits(batch["user"], vectors, batch["attrs"])
    link = torch.where(batch["arm"].unsqueeze(1) > 0, treated, control)
    y = batch["labels"]
    binary = F.binary_cross_entropy_with_logits(link[:, :N_BINARY], y[:, :N_BINARY], reduction="none")
    revenue = tweedie_loss(link[:, N_BINARY:], y[:, N_BINARY:] / scorer.revenue_scale)
    per_row = torch.cat([binary, revenue], dim=1) @ outcome_weights
    w = batch["weight"]
    # Shrinks the effect's variation across rows, not its average: a constant effect *in outcome units*
    # is the prior (a constant logit offset would still rank users by their baseline rate).
    effect = scorer.expected(treated) - scorer.expected(control)
    effect = torch.cat([effect[:, :N_BINARY], effect[:, N_BINARY:] / scorer.revenue_scale], dim=1)
    heterogeneity = (effect - effect.mean(dim=0)).pow(2).mean()
    return (per_row * w).sum() / w.sum() + uplift_l2 * heterogeneity
