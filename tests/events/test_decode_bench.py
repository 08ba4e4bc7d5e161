from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from stream.errors import ConfigError, DecodeError
from stream.events import cli, gate
from stream.events.bench import decoders, encoders, invalid_payloads, run, valid_payloads
from stream.events.models import INPUT_EVENTS

pytestmark = pytest.mark.unit


def _reason(raw: bytes) -> str:
    with pytest.raises(DecodeError) as caught:
        gate.decode("clicks", raw)
    return caught.value.reason


def test_valid_payloads_decode_and_are_deterministic() -> None:
    for topic in INPUT_EVENTS:
        payloads = valid_payloads(topic, 20, seed=3)
        assert payloads == valid_payloads(topic, 20, seed=3)
        assert len(set(payloads)) == 20
        events, dead = gate.decode_batch(topic, [(0, i, None, raw) for i, raw in enumerate(payloads)])
        assert (len(events), dead) == (20, [])


def test_invalid_payloads_mix_the_reasons() -> None:
    reasons = {_reason(raw) for raw in invalid_payloads(11)}
    assert reasons == gate.REASONS - {gate.UNKNOWN_TOPIC, gate.INVALID}


def test_run_measures_every_case() -> None:
    results = run(30)
    assert [r.case for r in results] == [*INPUT_EVENTS, "invalid (mixed)"]
    assert all(r.events == 30 and r.seconds > 0 and r.per_second > 0 for r in results)
    assert [r.dead_letters for r in results] == [0, 0, 0, 0, 30]


def test_per_message_costs_of_both_decoders_and_encoders() -> None:
    rows = decoders(20)
    assert [topic for topic, _, _ in rows] == ["clicks", "exposures", "profiles"]
    assert all(slow > 0 and quick > 0 for _, slow, quick in rows)
    assert all(cost > 0 for cost in encoders(20))


def test_cli_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    app = typer.Typer()
    cli.register(app)
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench-decode", "--n", "25", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "events/s" in result.output
    rows = json.loads(out.read_text())
    assert [row["case"] for row in rows] == [*INPUT_EVENTS, "invalid (mixed)"]
    assert all(row["events"] == 25 and row["per_second"] > 0 for row in rows)


def test_cli_rejects_a_bad_count() -> None:
    app = typer.Typer()
    cli.register(app)
    result = CliRunner().invoke(app, ["bench-decode", "--n", "0"])
    assert isinstance(result.exception, ConfigError)
