"""LoRA on the promotion encoder: exact at initialisation, only adapters train, merging changes nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from synthetic_uplift import PROMO_TEXTS, synthetic_dataset

from models.dataset import arm_weights
from models.modeldir import hyper_parameters
from models.nets import (
    LoRALinear,
    PromoEncoder,
    add_lora,
    build_model,
    load_backbone,
    merge_lora,
    tokens_for,
)
from models.objective import PooledCache, batch_loss, prepare_scorer
from models.train import TrainConfig, _tensors, make_optimiser
from stream.errors import ModelError
from stream.scoring.signature import OUTCOMES

pytestmark = pytest.mark.unit

CONFIG = TrainConfig(hidden=(16,), lora_rank=4, lora_alpha=8.0)


@pytest.fixture(scope="module")
def backbone() -> tuple[torch.nn.Module, Any]:
    return load_backbone()


@pytest.fixture(scope="module")
def tokens(backbone: tuple[torch.nn.Module, Any]) -> Any:
    return tokens_for(backbone[1], PROMO_TEXTS)


def _package_weights(backbone: tuple[torch.nn.Module, Any]) -> dict[str, torch.Tensor]:
    return {f"backbone.{k}": v for k, v in backbone[0].state_dict().items()}


def _base_name(name: str) -> str:
    """An adapted encoder's parameter name as the plain backbone calls it."""
    return name.replace(".base.", ".")


def test_fresh_adapters_compute_the_pretrained_encoder_exactly(
    backbone: tuple[torch.nn.Module, Any], tokens: Any
) -> None:
    torch.manual_seed(0)
    plain = PromoEncoder(copy.deepcopy(backbone[0])).eval()
    adapted = copy.deepcopy(plain)
    wrapped = add_lora(adapted.backbone, 8, 16.0, ("query", "value", "dense"))
    assert wrapped == 6 * 5  # six layers: query, value and three dense layers each
    with torch.no_grad():
        want = plain(tokens.input_ids, tokens.attention_mask)
        got = adapted.eval()(tokens.input_ids, tokens.attention_mask)
    assert torch.equal(got, want)  # B = 0: not close, identical


def test_unknown_targets_are_refused(backbone: tuple[torch.nn.Module, Any]) -> None:
    with pytest.raises(ModelError, match="match no Linear"):
        add_lora(copy.deepcopy(backbone[0]), 8, 16.0, ("qeury",))


def test_a_training_step_changes_only_adapters_projection_and_scorer(
    backbone: tuple[torch.nn.Module, Any], tokens: Any
) -> None:
    torch.manual_seed(0)
    encoder, scorer = build_model(hyper_parameters(CONFIG))
    ds = synthetic_dataset(200)
    weights = arm_weights(ds)
    prepare_scorer(scorer, ds, weights)
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable == {n for n in trainable if ".lora_" in n or n.startswith("projection.")}
    assert len([n for n in trainable if ".lora_" in n]) == 6 * 2 * 2  # A and B of query and value per layer
    before = {**{f"e.{n}": p.detach().clone() for n, p in encoder.named_parameters()},
              **{f"s.{n}": p.detach().clone() for n, p in scorer.named_parameters()}}
    optimiser = make_optimiser(encoder, scorer, CONFIG)
    batch = _tensors(ds, tokens.codes(ds.promotion_ids), weights, torch.device("cpu"))
    unique, inverse = torch.unique(batch["promo"], return_inverse=True)
    for _ in range(2):  # the second step moves A too (at B = 0 its gradient is zero)
        vectors = PooledCache(encoder, tokens).vectors(encoder, tokens, unique, fresh=True)[inverse]
        loss = batch_loss(scorer, vectors, batch, 10.0, torch.ones(len(OUTCOMES)))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    after = {**{f"e.{n}": p.detach() for n, p in encoder.named_parameters()},
             **{f"s.{n}": p.detach() for n, p in scorer.named_parameters()}}
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed == {f"e.{n}" for n in trainable} | {n for n in before if n.startswith("s.")}
    package = _package_weights(backbone)
    frozen = [n for n, p in encoder.named_parameters() if not p.requires_grad]
    assert len(frozen) == len(list(backbone[0].parameters()))
    for name in frozen:
        assert torch.equal(after[f"e.{name}"], package[_base_name(name)]), name  # bit-identical


def test_merged_encoder_equals_the_unmerged_one_and_has_the_plain_shape(
    backbone: tuple[torch.nn.Module, Any], tokens: Any
) -> None:
    torch.manual_seed(1)
    encoder, _ = build_model(hyper_parameters(CONFIG))
    with torch.no_grad():  # adapters as far from zero as training moves them, and further
        for module in encoder.modules():
            if isinstance(module, LoRALinear):
                module.lora_b.normal_(0.0, 0.02)
    encoder.eval()
    merged = merge_lora(encoder)
    assert not any(isinstance(m, LoRALinear) for m in merged.modules())
    assert any(isinstance(m, LoRALinear) for m in encoder.modules())  # the original is left as it was
    assert set(merged.state_dict()) == set(PromoEncoder(backbone[0]).state_dict())
    with torch.no_grad():
        want = encoder(tokens.input_ids, tokens.attention_mask)
        got = merged(tokens.input_ids, tokens.attention_mask)
        plain = PromoEncoder(backbone[0])
        plain.projection.load_state_dict(encoder.projection.state_dict())
        untouched = plain.eval()(tokens.input_ids, tokens.attention_mask)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert (untouched - want).abs().max() > 1e-3  # the adapters did change the function
