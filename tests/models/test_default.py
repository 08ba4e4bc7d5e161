"""The default model shipped in models/default/: its own files only, small, reproducing its card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from models import serving_cli
from models.card import render_card
from models.pretrained import CARD_FILE, CHECK_USERS, DEFAULT_DIR, FILES, UNSEEN_WORLDS, check_metrics
from stream.demo.model import ensure_model, served_versions
from stream.demo.run import DEMO_WORLD
from stream.errors import ConfigError
from stream.scoring.signature import OUTCOMES, SCORER

pytestmark = pytest.mark.unit

MAX_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads((DEFAULT_DIR / "model.json").read_text())


def test_the_directory_holds_its_own_small_files_and_no_base_weights(meta: dict) -> None:
    files = sorted(p.name for p in DEFAULT_DIR.iterdir())
    assert files == sorted(FILES)
    assert sum((DEFAULT_DIR / f).stat().st_size for f in files) <= MAX_BYTES
    adapters = torch.load(DEFAULT_DIR / "adapters.pt", weights_only=True)
    # Only the LoRA matrices and the projection: no backbone weight (embeddings, attention, LayerNorm).
    assert adapters and all(".lora_" in name or name.startswith("projection.") for name in adapters)
    assert sum(t.numel() for t in adapters.values()) < 200_000
    assert meta["hyper_parameters"]["lora_rank"] > 0


def test_it_was_trained_on_another_world_than_the_demos(meta: dict) -> None:
    world = meta["default_model"]["world"]
    assert world["seed"] != DEMO_WORLD["seed"]
    assert meta["data"]["source"] == "simulator"
    # The simulator names promotions after the world's seed: none of the demo's (promo6-…) was trained on.
    assert all(p.startswith(f"promo{world['seed']}-") for p in meta["data"]["promotions"])
    assert meta["data"]["train"]["users"] >= 15_000


def test_the_card_records_the_held_out_metrics(meta: dict) -> None:
    card = (DEFAULT_DIR / CARD_FILE).read_text()
    assert card == render_card(meta, None)
    held = meta["default_model"]["held_out"]
    assert held["check"]["world"]["users"] == CHECK_USERS
    for part in ("test", "check"):
        assert f"{held[part]['metrics']['visit']['qini']:.4g}" in card


def test_the_shipped_files_reproduce_the_check_metrics_of_their_card(meta: dict) -> None:
    held = meta["default_model"]["held_out"]["check"]
    rows, metrics = check_metrics(DEFAULT_DIR, meta["default_model"]["world"])
    assert rows == held["rows"]
    for outcome in OUTCOMES:
        recorded = held["metrics"][outcome]
        assert metrics[outcome].keys() == recorded.keys()
        for name, value in recorded.items():
            assert metrics[outcome][name] == pytest.approx(value, rel=1e-4, abs=1e-6), (outcome, name)


def test_export_default_serves_it_and_the_demo_reuses_that(tmp_path: Path) -> None:
    app = typer.Typer()
    serving_cli.register(app)
    repo = tmp_path / "triton_repo"
    result = CliRunner().invoke(app, ["export", "--default", "--repo", str(repo)])
    assert result.exit_code == 0, result.output
    assert served_versions(repo) == [1]
    assert "Held-out metrics" in (repo / SCORER / "1" / "model_card.md").read_text()
    said: list[str] = []
    assert ensure_model(repo, said.append) == 1 and said == []  # served already: reused, not re-exported


def test_export_takes_a_model_dir_or_the_default_not_both(tmp_path: Path) -> None:
    app = typer.Typer()
    serving_cli.register(app)
    for args in (["export"], ["export", "--default", "--model", str(DEFAULT_DIR)]):
        result = CliRunner().invoke(app, [*args, "--repo", str(tmp_path)])
        assert isinstance(result.exception, ConfigError), result.output


def test_the_card_states_what_the_text_adds(meta: dict) -> None:
    """models.pretrained unseen: the model and its attributes-only ablation on other worlds' promotions."""
    unseen = meta["default_model"]["unseen_promotions"]
    assert [w["seed"] for w in unseen["worlds"]] == list(UNSEEN_WORLDS)
    card = (DEFAULT_DIR / CARD_FILE).read_text()
    assert "What the promotion text adds" in card
    for world in unseen["worlds"]:
        assert world["seed"] != meta["default_model"]["world"]["seed"]
        for outcome in OUTCOMES:
            row = world["spearman"][outcome]
            assert {"neural", "attributes_only", "discount_value"} <= row.keys()
            assert f"{row['neural']:+.2f} | {row['attributes_only']:+.2f}" in card
