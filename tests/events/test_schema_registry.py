"""Registering the output schemas (`liftstream schemas register`) and the registry client's errors, against
the fake registry of tests/events/fake_registry.py (a fake of the REST protocol: no registry runs offline)."""

from __future__ import annotations

import json

import pytest
import typer
from confluent_kafka.schema_registry import SchemaRegistryClient as ConfluentClient
from typer.testing import CliRunner

from stream.errors import ConfigError, ServiceError
from stream.events import cli
from stream.events.models import INPUT_EVENTS, OUTPUT_EVENTS
from stream.events.registration import register_topic_schemas
from stream.events.schema_registry import SchemaRegistryClient
from stream.events.schemas import topic_schema
from stream.settings import load_settings

from .fake_registry import serve

pytestmark = pytest.mark.unit


def test_output_schemas_are_registered_under_topic_value_subjects_once() -> None:
    settings = load_settings(topic_policy={"prefix": "eu."})
    with serve() as (url, registry):
        first = register_topic_schemas(settings, url)
        again = register_topic_schemas(settings, url)
        # What a consumer on Confluent's client reads back is the committed schema.
        confluent = ConfluentClient({"url": url})
        latest = confluent.get_latest_version("eu.predictions-value")
    assert [s for s, _ in first] == [f"eu.{t}-value" for t in OUTPUT_EVENTS]
    assert again == first
    assert all(len(versions) == 1 for versions in registry.subjects.values())
    assert latest.schema.schema_type == "JSON"
    assert json.loads(latest.schema.schema_str) == topic_schema("predictions")
    assert "Consumers must ignore fields they do not know" in topic_schema("predictions")["description"]


def test_inputs_are_registered_on_request() -> None:
    with serve() as (url, registry):
        register_topic_schemas(load_settings(), url, inputs=True)
    assert set(registry.subjects) == {f"{t}-value" for t in (*OUTPUT_EVENTS, *INPUT_EVENTS)}


def test_the_command_registers_and_prints_each_subject() -> None:
    app = typer.Typer()
    cli.register(app)
    with serve() as (url, registry):
        result = CliRunner().invoke(app, ["schemas", "register", "--registry", url])
    assert result.exit_code == 0, result.output
    assert "predictions-value: schema id" in result.output
    assert set(registry.subjects) == {f"{t}-value" for t in OUTPUT_EVENTS}


def test_a_bad_url_or_an_unreachable_registry_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="invalid Schema Registry URL"):
        register_topic_schemas(load_settings(), "registry:8081")
    with pytest.raises(ServiceError, match=r"schema registry at http://127.0.0.1:9 is not usable"):
        SchemaRegistryClient("http://127.0.0.1:9", timeout_s=1).versions("clicks-value")


def test_refusals_name_the_registry_status_and_message() -> None:
    with serve() as (url, registry):
        client = SchemaRegistryClient(url)
        assert client.versions("clicks-value") == []  # 40401: no such subject yet
        with pytest.raises(ServiceError, match=r"version 3 of subject 'clicks-value'.*HTTP 404.*not found"):
            client.schema_id("clicks-value", 3)
        registry.down = True
        with pytest.raises(ServiceError, match=r"HTTP 503, Error while forwarding"):
            client.register("clicks-value", {"type": "object"})


def test_basic_auth_is_sent_when_configured() -> None:
    client = SchemaRegistryClient("http://r", username="key", password=load_settings(
        schema_registry={"password": "secret"}).schema_registry.password)  # fmt: skip
    assert client._headers["Authorization"] == "Basic a2V5OnNlY3JldA=="
