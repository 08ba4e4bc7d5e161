from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_uplift import synthetic_dataset

from models.nets import (
    BACKBONE_PACKAGE,
    EffectScorer,
    LoRALinear,
    backbone_version,
    load_backbone,
    load_model,
    load_tokenizer,
    merge_lora,
    predict,
    tokens_for,
)
from models.objective import batch_loss, tweedie_loss
from models.train import TrainConfig, TrainResult, split_three_ways, train
from stream.errors import ConfigError, ModelError
from stream.scoring.signature import OUTCOMES, PROMO_ATTRS, PROMO_DIM, USER_FEATURES

pytestmark = pytest.mark.unit

FAST = TrainConfig(batch_size=128, hidden=(32,), patience=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path]:
    out = tmp_path_factory.mktemp("model")
    return train(synthetic_dataset(400), out, epochs=2, seed=3, device="cpu", config=FAST), out


def test_train_writes_a_loadable_model_dir(trained: tuple[TrainResult, Path]) -> None:
    result, out = trained
    files = {p.name for p in out.iterdir()}
    assert files == {"adapters.pt", "scorer.pt", "model.json", "reference_matrix.npz"}
    assert 1 <= result.best_epoch <= result.epochs_run <= 2
    encoder, scorer, meta = load_model(out)
    assert not encoder.training and not scorer.training
    assert meta["seed"] == 3 and meta["hyper_parameters"]["hidden"] == [32]
    assert meta["features"]["user_features"] == list(USER_FEATURES)
    assert set(meta["validation_metrics"]) == set(OUTCOMES)
    assert meta["data"]["train"]["rows"] + meta["data"]["val"]["rows"] + meta["data"]["test"]["rows"] == 400
    assert meta["training"]["device"] == "cpu"


def test_a_model_dir_holds_only_adapters_and_heads_and_is_small(trained: tuple[TrainResult, Path]) -> None:
    _, out = trained
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    assert sum(sizes.values()) <= 5 * 2**20, sizes
    adapters = torch.load(out / "adapters.pt", weights_only=True)
    assert adapters and all(".lora_" in k or k.startswith("projection.") for k in adapters)
    meta = json.loads((out / "model.json").read_text())
    hyper = meta["hyper_parameters"]
    assert (hyper["lora_rank"], hyper["lora_alpha"], hyper["lora_targets"]) == (8, 16.0, ["query", "value"])
    assert meta["backbone"] == {"package": BACKBONE_PACKAGE, "version": backbone_version()}


def test_a_loaded_model_is_the_package_backbone_with_the_trained_adapters(
    trained: tuple[TrainResult, Path],
) -> None:
    _, out = trained
    encoder, _, _ = load_model(out)
    package = {f"backbone.{k}": v for k, v in load_backbone()[0].state_dict().items()}
    for name, value in encoder.state_dict().items():
        if ".lora_" not in name and not name.startswith("projection."):
            assert torch.equal(value, package[name.replace(".base.", ".")]), name
    b = [m.lora_b for m in encoder.modules() if isinstance(m, LoRALinear)]
    assert len(b) == 12 and all(x.abs().max() > 0 for x in b)  # trained away from their zero start


def test_a_full_encoder_state_dict_still_loads(trained: tuple[TrainResult, Path], tmp_path: Path) -> None:
    # As written before LoRA, and by stream/bench/random_model.py: no LoRA hyper-parameters, encoder.pt whole.
    _, out = trained
    meta = json.loads((out / "model.json").read_text())
    for key in ("lora_rank", "lora_alpha", "lora_targets"):
        del meta["hyper_parameters"][key]
    (tmp_path / "model.json").write_text(json.dumps(meta))
    shutil.copy(out / "scorer.pt", tmp_path / "scorer.pt")
    eager, _, _ = load_model(out)
    torch.save(merge_lora(eager).state_dict(), tmp_path / "encoder.pt")
    legacy, _, _ = load_model(tmp_path)
    assert not any(isinstance(m, LoRALinear) for m in legacy.modules())
    tokens = tokens_for(load_tokenizer(), synthetic_dataset(400).promo_texts)
    with torch.no_grad():
        torch.testing.assert_close(legacy(tokens.input_ids, tokens.attention_mask),
                                   eager(tokens.input_ids, tokens.attention_mask), atol=1e-5, rtol=0)


def test_adapters_that_do_not_fit_model_json_are_refused(
    trained: tuple[TrainResult, Path], tmp_path: Path
) -> None:
    _, out = trained
    for name in ("model.json", "scorer.pt", "reference_matrix.npz"):
        shutil.copy(out / name, tmp_path / name)
    adapters = torch.load(out / "adapters.pt", weights_only=True)
    torch.save({k: v for k, v in adapters.items() if "layer.5." not in k}, tmp_path / "adapters.pt")
    with pytest.raises(ModelError, match="weights do not match model.json: trainable parameters differ"):
        load_model(tmp_path)


def test_reference_matrix_holds_training_rows_and_predictions(trained: tuple[TrainResult, Path]) -> None:
    _, out = trained
    ref = np.load(out / "reference_matrix.npz")
    n = len(ref["arm"])
    assert ref["user_features"].shape == (n, len(USER_FEATURES))
    assert ref["promo_attrs"].shape == (n, len(PROMO_ATTRS))
    assert ref["p_treated"].shape == ref["p_control"].shape == (n, len(OUTCOMES))
    encoder, scorer, _ = load_model(out)
    tokens = tokens_for(load_tokenizer(), synthetic_dataset(400).promo_texts)
    p_t, _ = predict(encoder, scorer, tokens, ref["user_features"], ref["promo_attrs"], ref["promotion_ids"])
    np.testing.assert_allclose(p_t, ref["p_treated"], atol=1e-5)


def test_training_is_deterministic_for_a_seed(trained: tuple[TrainResult, Path], tmp_path: Path) -> None:
    _, first = trained
    train(synthetic_dataset(400), tmp_path, epochs=2, seed=3, device="cpu", config=FAST)
    for file in ("scorer.pt", "adapters.pt"):
        a = torch.load(first / file, weights_only=True)
        b = torch.load(tmp_path / file, weights_only=True)
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(a[name], b[name], atol=0, rtol=0)


def test_splits_are_disjoint_by_user_and_stable() -> None:
    ds = synthetic_dataset(400)
    s1, s2 = split_three_ways(ds, 5, 0.2, 0.2), split_three_ways(ds, 5, 0.2, 0.2)
    users = [set(part.user_ids) for part in (s1.train, s1.val, s1.test)]
    assert not (users[0] & users[1]) and not (users[0] & users[2]) and not (users[1] & users[2])
    assert sum(len(p) for p in (s1.train, s1.val, s1.test)) == len(ds)
    np.testing.assert_array_equal(s1.test.event_ids, s2.test.event_ids)


def test_tweedie_loss_is_smallest_at_the_mean() -> None:
    y = torch.tensor([0.0, 0.0, 0.0, 4.0])
    grid = torch.linspace(-3, 3, 601)
    losses = torch.stack([tweedie_loss(torch.full_like(y, g), y).mean() for g in grid])
    assert grid[losses.argmin()].exp().item() == pytest.approx(1.0, rel=0.02)


def test_the_heterogeneity_penalty_measures_the_effect_in_outcome_units() -> None:
    # A constant logit offset over rows with different baseline rates is a varying probability effect:
    # penalised. No offset at all: no penalty.
    torch.manual_seed(0)
    scorer = EffectScorer(hidden=(8,)).eval()
    n = 64
    batch = {
        "user": torch.rand(n, len(USER_FEATURES)) * 5,
        "attrs": torch.randn(n, len(PROMO_ATTRS)),
        "arm": torch.arange(n) % 2,
        "labels": torch.zeros(n, len(OUTCOMES)),
        "weight": torch.ones(n),
    }
    vectors, ones = torch.zeros(n, PROMO_DIM), torch.ones(len(OUTCOMES))
    with torch.no_grad():
        scorer.control_head.weight.normal_(0.0, 3.0)
        scorer.uplift_head.weight.zero_()
        scorer.uplift_head.bias.zero_()
        none = [batch_loss(scorer, vectors, batch, w, ones).item() for w in (0.0, 10.0)]
        scorer.uplift_head.bias.fill_(1.0)
        constant_logit = [batch_loss(scorer, vectors, batch, w, ones).item() for w in (0.0, 10.0)]
    assert none[1] == pytest.approx(none[0])
    assert constant_logit[1] > constant_logit[0] + 1e-3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"device": "tpu"}, "device"),
        ({"config": replace(FAST, select_outcome="clicks")}, "select_outcome"),
    ],
)
def test_bad_arguments_raise_config_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        train(synthetic_dataset(50), tmp_path, **{"seed": 0, **kwargs})
