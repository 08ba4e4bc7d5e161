from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.nets import (
    EffectScorer,
    PromoEncoder,
    load_backbone,
    load_model,
    predict,
    tokenize,
    tokens_for,
)
from stream.errors import ModelError
from stream.scoring.signature import MAX_TOKENS, OUTCOMES, PROMO_ATTRS, PROMO_DIM, USER_FEATURES

pytestmark = pytest.mark.unit
# Export to Triton's libtorch backend needs TorchScript, which torch now marks as deprecated.
jit_export = pytest.mark.filterwarnings(
    "ignore:`torch.jit.(trace|trace_method|script)` is deprecated:FutureWarning",
    "ignore::torch.jit.TracerWarning",
)

TEXTS = ["20% off running shoes. This week only.", "Free shipping. On every order of home goods over $30."]


@pytest.fixture(scope="module")
def backbone() -> tuple[torch.nn.Module, Any]:
    return load_backbone()


@pytest.fixture(scope="module")
def encoder(backbone: tuple[torch.nn.Module, Any]) -> PromoEncoder:
    torch.manual_seed(0)
    return PromoEncoder(backbone[0]).eval()


def _scorer_inputs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(n, len(USER_FEATURES), generator=g) * 10,
        torch.rand(n, PROMO_DIM, generator=g) * 2 - 1,
        torch.randn(n, len(PROMO_ATTRS), generator=g),
    )


def test_tokenize_pads_and_truncates(backbone: tuple[torch.nn.Module, Any]) -> None:
    ids, mask = tokenize(backbone[1], [TEXTS[0], "word " * 500])
    assert ids.shape == mask.shape == (2, MAX_TOKENS)
    assert ids.dtype == mask.dtype == np.int64
    assert mask[1].all() and not mask[0].all()


def test_encoder_shape_range_and_padding_invariance(
    encoder: PromoEncoder, backbone: tuple[torch.nn.Module, Any]
) -> None:
    ids, mask = (torch.from_numpy(a) for a in tokenize(backbone[1], TEXTS))
    with torch.no_grad():
        full = encoder(ids, mask)
        trimmed = tokens_for(backbone[1], dict(zip(["a", "b"], TEXTS, strict=True)))
        short = encoder(trimmed.input_ids, trimmed.attention_mask)
    assert full.shape == (2, PROMO_DIM)
    assert full.abs().max() <= 1.0
    assert trimmed.input_ids.shape[1] < MAX_TOKENS
    torch.testing.assert_close(short, full, atol=1e-5, rtol=0)
    assert not torch.allclose(full[0], full[1])


@jit_export
def test_encoder_traces_to_same_outputs(encoder: PromoEncoder, backbone: tuple[torch.nn.Module, Any]) -> None:
    ids, mask = (torch.from_numpy(a) for a in tokenize(backbone[1], TEXTS))
    with torch.no_grad():
        traced = torch.jit.trace(encoder, (ids, mask))
        other = [torch.from_numpy(a) for a in tokenize(backbone[1], ["Buy one get one free", "x"])]
        torch.testing.assert_close(traced(*other), encoder(*other), atol=1e-5, rtol=0)


def test_scorer_outputs_shapes_and_ranges() -> None:
    torch.manual_seed(0)
    scorer = EffectScorer().eval()
    with torch.no_grad():
        p_t, p_c = scorer(*_scorer_inputs(64))
    for p in (p_t, p_c):
        assert p.shape == (64, len(OUTCOMES))
        assert ((p[:, :2] > 0) & (p[:, :2] < 1)).all()
        assert (p[:, 2] >= 0).all()


def test_scorer_treated_equals_control_when_uplift_head_is_zero() -> None:
    scorer = EffectScorer().eval()
    with torch.no_grad():
        scorer.uplift_head.weight.zero_()
        scorer.uplift_head.bias.zero_()
        p_t, p_c = scorer(*_scorer_inputs(8))
    torch.testing.assert_close(p_t, p_c)


@pytest.mark.parametrize("text", [True, False])
def test_the_attributes_only_scorer_never_sees_the_promotion_vector(text: bool) -> None:
    torch.manual_seed(0)
    scorer = EffectScorer(text=text).eval()
    user, vector, attrs = _scorer_inputs(8)
    with torch.no_grad():
        same = [torch.equal(a, b) for a, b in zip(scorer(user, vector, attrs), scorer(user, -vector, attrs),
                                                   strict=True)]
        scripted = torch.jit.script(scorer)(user, -vector, attrs)
    assert all(same) is not text  # the text model reads the vector; the ablation ignores it
    torch.testing.assert_close(scripted, scorer(user, -vector, attrs))
    assert "text_gate" not in scorer.state_dict()  # model.json's hyper-parameters rebuild it


def test_scorer_standardisation_lives_in_buffers() -> None:
    scorer = EffectScorer()
    names = {name for name, _ in scorer.named_buffers()}
    assert {"user_mean", "user_std", "attr_mean", "attr_std", "revenue_scale", "log_scaled"} <= names
    # Count columns are log-scaled; cyclic hour columns pass through unchanged.
    raw = torch.zeros(1, len(USER_FEATURES))
    raw[0, USER_FEATURES.index("1h_click_count")] = np.e - 1
    raw[0, USER_FEATURES.index("hour_sin")] = -0.5
    scaled = scorer.scaled_user_features(raw)
    assert scaled[0, USER_FEATURES.index("1h_click_count")].item() == pytest.approx(1.0)
    assert scaled[0, USER_FEATURES.index("hour_sin")].item() == pytest.approx(-0.5)


@jit_export
def test_scorer_scripts_and_traces_to_same_outputs() -> None:
    torch.manual_seed(1)
    scorer = EffectScorer().eval()
    inputs = _scorer_inputs(16, seed=2)
    with torch.no_grad():
        expected = scorer(*inputs)
        for compiled in (torch.jit.script(scorer), torch.jit.trace(scorer, _scorer_inputs(4))):
            for got, want in zip(compiled(*inputs), expected, strict=True):
                torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_predict_restores_training_mode(encoder: PromoEncoder, backbone: tuple[torch.nn.Module, Any]) -> None:
    scorer = EffectScorer().train()
    tokens = tokens_for(backbone[1], {"a": TEXTS[0], "b": TEXTS[1]})
    u, _, a = (x.numpy() for x in _scorer_inputs(10))
    p_t, p_c = predict(encoder, scorer, tokens, u, a, np.array(["a", "b"] * 5))
    assert p_t.shape == p_c.shape == (10, 3) and p_t.dtype == np.float64
    assert scorer.training and not encoder.training
    with pytest.raises(ModelError):
        predict(encoder, scorer, tokens, u, a, np.array(["zzz"] * 10))


def test_load_model_rejects_a_directory_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        load_model(tmp_path)
