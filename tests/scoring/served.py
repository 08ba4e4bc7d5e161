"""Shared, built-once test material for the serving tests: a trained MODEL_DIR, its export, a small history.

Training and export take ~30 s on two cores, so all serving test modules share one of each per session.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.dataset import Dataset, build_dataset
from models.export import Exported, export_model
from models.train import TrainConfig, train
from stream.scoring.tokenize import load_tokenizer, tokenize
from stream.simulate.config import SimConfig
from stream.simulate.history_mode import write_simulation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from synthetic_uplift import synthetic_dataset  # noqa: E402

_cache: dict[str, Any] = {}


def model_dir(tmp: pytest.TempPathFactory) -> Path:
    if "model_dir" not in _cache:
        out = tmp.mktemp("model_dir")
        config = TrainConfig(batch_size=128, hidden=(32,), patience=1, reference_rows=300)
        train(synthetic_dataset(300), out, epochs=1, seed=1, device="cpu", config=config)
        _cache["model_dir"] = out
    return _cache["model_dir"]


def exported(tmp: pytest.TempPathFactory) -> Exported:
    """Version 1 of the trained model in its own repository; tests must not add versions to it."""
    if "exported" not in _cache:
        _cache["exported"] = export_model(model_dir(tmp), tmp.mktemp("repo") / "triton_repo")
    return _cache["exported"]


def history(tmp: pytest.TempPathFactory) -> Path:
    if "history" not in _cache:
        out = tmp.mktemp("history")
        write_simulation(SimConfig(seed=1, users=200, days=1.0), out)
        _cache["history"] = out
    return _cache["history"]


def dataset(tmp: pytest.TempPathFactory) -> Dataset:
    if "dataset" not in _cache:
        _cache["dataset"] = build_dataset(history(tmp))
    return _cache["dataset"]


def realistic_tokens(tmp: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """Tokens of the simulated promotions' texts (long ones truncated, short ones padded)."""
    texts = dataset(tmp).promo_texts
    return tokenize(load_tokenizer(), [texts[k] for k in sorted(texts)])
