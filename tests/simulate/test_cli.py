from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from stream.errors import ConfigError
from stream.simulate import cli

pytestmark = pytest.mark.unit


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    cli.register(app)
    return app


def test_simulate_writes_a_history(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "h"
    args = ["simulate", "--seed", "5", "--users", "40", "--days", "1", "--history-out", str(out)]
    result = CliRunner().invoke(app, [*args, "--malformed-rate", "0.1"])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["seed"], meta["n_users"], meta["source"]) == (5, 40, "simulator")
    assert meta["n_malformed"] > 0 and (out / "malformed.jsonl").exists()


def test_live_options_with_history_out_are_rejected(app: typer.Typer, tmp_path: Path) -> None:
    args = ["simulate", "--users", "10", "--history-out", str(tmp_path), "--events", "5"]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, ConfigError)


def test_bad_config_is_a_config_error(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "--malformed-rate", "0.7", "--history-out", str(tmp_path)])
    assert isinstance(result.exception, ConfigError)


def test_data_hillstrom(app: typer.Typer, tmp_path: Path) -> None:
    source = tmp_path / "h.csv"
    source.write_text(
        "recency,history_segment,history,mens,womens,zip_code,newbie,channel,segment,visit,conversion,spend\n"
        "10,2) $100 - $200,142.44,1,0,Surburban,0,Phone,Womens E-Mail,1,1,35.5\n"
        "6,3) $200 - $350,329.08,1,1,Rural,1,Web,No E-Mail,0,0,0\n"
    )
    result = CliRunner().invoke(
        app, ["data", "hillstrom", "--csv", str(source), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert "2 profiles, 3 exposures, 1 visits, 1 conversions, spend 35.50" in result.output


def test_replay_speed_must_be_positive(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["replay", "--history", str(tmp_path), "--speed", "0"])
    assert isinstance(result.exception, ConfigError)


def test_simulate_records_a_drift_episode(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "h"
    args = ["simulate", "--seed", "5", "--users", "40", "--days", "1", "--history-out", str(out)]
    drift = ["--drift-start", "0.4", "--drift-end", "0.8", "--drift-kind", "both"]
    drift += ["--drift-price-factor", "1.5"]
    result = CliRunner().invoke(app, [*args, *drift])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["drift"]["kind"] == "both" and meta["drift"]["price_factor"] == 1.5
    assert (meta["drift"]["start_fraction"], meta["drift"]["end_fraction"]) == (0.4, 0.8)
    assert meta["drift"]["cohort_users"] == 40 and meta["n_users"] == 80


def test_unknown_drift_kind_is_a_config_error(app: typer.Typer, tmp_path: Path) -> None:
    args = ["simulate", "--drift-start", "0.5", "--drift-kind", "holiday", "--history-out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, ConfigError)
