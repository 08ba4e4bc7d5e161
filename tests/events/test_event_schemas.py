from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from stream.events import cli
from stream.events.models import INPUT_EVENTS, OUTPUT_EVENTS
from stream.events.schemas import export_schemas, render_schemas, schema_differences

pytestmark = pytest.mark.unit

COMMITTED = Path(__file__).resolve().parents[2] / "deploy" / "schemas"


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    cli.register(app)
    return app


def test_committed_schema_files_match_the_models() -> None:
    assert schema_differences(COMMITTED) == [], "run `liftstream schemas` and commit deploy/schemas/"


def test_one_schema_per_topic_with_every_field() -> None:
    rendered = render_schemas()
    for topic, model in {**INPUT_EVENTS, **OUTPUT_EVENTS}.items():
        schema = json.loads(rendered[f"{topic}.schema.json"])
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["title"] == model.__name__
        assert set(schema["properties"]) == set(model.model_fields)
        # Inputs are closed (the gate's rule); outputs open: consumers must ignore fields they do not know.
        assert schema.get("additionalProperties") is (False if topic in INPUT_EVENTS else None)
        rule = "Consumers must ignore fields they do not know"
        assert (rule in schema["description"]) is (topic in OUTPUT_EVENTS)
        objects = [d for d in schema.get("$defs", {}).values() if "properties" in d]
        assert all(d.get("additionalProperties") is schema.get("additionalProperties") for d in objects)
        version = model.model_fields["schema_version"].default
        assert schema["properties"]["schema_version"]["const"] == version
        assert f"schema_version {version}." in schema["description"]
    assert len(rendered) == len(INPUT_EVENTS) + len(OUTPUT_EVENTS)
    # Contracts are versioned apart: the effect and alert topics moved on to version 2 alone.
    versions = {t: json.loads(rendered[f"{t}.schema.json"])["properties"]["schema_version"]["const"]
                for t in (*INPUT_EVENTS, *OUTPUT_EVENTS)}
    assert {t for t, v in versions.items() if v == 2} == {"campaign-effects", "alerts"}


def test_input_schemas_state_the_limits_json_schema_cannot() -> None:
    clicks = json.loads(render_schemas()["clicks.schema.json"])
    assert "65536 bytes" in clicks["description"]
    assert set(clicks["required"]) == {"event_id", "user_id", "session_id", "ts", "kind"}


def test_export_then_check(tmp_path: Path) -> None:
    paths = export_schemas(tmp_path)
    assert sorted(p.name for p in paths) == sorted(render_schemas())
    assert schema_differences(tmp_path) == []

    (tmp_path / "alerts.schema.json").write_text("{}\n")
    (tmp_path / "old-topic.schema.json").write_text("{}\n")
    (tmp_path / "drift.schema.json").unlink()
    assert schema_differences(tmp_path) == [
        f"{tmp_path / 'drift.schema.json'}: missing",
        f"{tmp_path / 'alerts.schema.json'}: differs from the models",
        f"{tmp_path / 'old-topic.schema.json'}: no model has this topic",
    ]
    export_schemas(tmp_path)
    assert schema_differences(tmp_path) == []


def test_cli_check_fails_on_stale_files_and_passes_after_export(app: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    stale = runner.invoke(app, ["schemas", "--check", "--out", str(tmp_path)])
    assert stale.exit_code == 1
    assert "run `liftstream schemas`" in stale.output

    written = runner.invoke(app, ["schemas"], env={"LIFTSTREAM_SCHEMAS_DIR": str(tmp_path)})
    assert written.exit_code == 0, written.output
    fresh = runner.invoke(app, ["schemas", "--check", "--out", str(tmp_path)])
    assert fresh.exit_code == 0
    assert "match the models" in fresh.output
