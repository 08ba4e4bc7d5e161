"""Every Kafka auth mode maps to the same aiokafka arguments for our clients and for the Faust app."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from stream.errors import ConfigError
from stream.kafka_options import TokenFileProvider, broker_credentials, client_options
from stream.settings import Kafka, get_settings, load_settings

pytestmark = pytest.mark.unit

CA = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")


def _comparable(options: dict[str, Any]) -> dict[str, Any]:
    """Security arguments with the TLS context and token provider reduced to what they are."""
    out = {k: v for k, v in options.items() if k not in ("bootstrap_servers", "ssl_context")}
    out["tls"] = isinstance(options.get("ssl_context"), ssl.SSLContext)
    if "sasl_oauth_token_provider" in out:
        out["sasl_oauth_token_provider"] = type(out["sasl_oauth_token_provider"])
    return out


def _modes(tmp_path: Path) -> dict[str, Kafka]:
    token = tmp_path / "token"
    token.write_text("a.b.\n")
    return {
        "plaintext": Kafka(),
        "tls": Kafka(security_protocol="SSL", ssl_cafile=CA),
        "plain": Kafka(
            security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="p",
            ssl_cafile=CA,
        ),  # type: ignore[arg-type]
        "scram": Kafka(
            security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512", sasl_username="u",
            sasl_password="p",
        ),  # type: ignore[arg-type]
        "oauth": Kafka(security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER", oauth_token_file=token),
    }


def test_each_mode_gives_the_app_the_same_security_as_every_other_client(tmp_path: Path) -> None:
    for name, k in _modes(tmp_path).items():
        ours = client_options(k)
        assert ours["bootstrap_servers"] == k.bootstrap
        faust_side = dict(credentials_to_aiokafka_auth(broker_credentials(k)))
        assert _comparable(faust_side) == _comparable(ours), name
    assert client_options(_modes(tmp_path)["plain"])["sasl_plain_password"] == "p"


def test_mutual_tls_loads_the_client_certificate(tmp_path: Path) -> None:
    from tests.integration.secure_kafka import make_tls

    tls = make_tls(tmp_path)
    k = Kafka(
        security_protocol="SSL", ssl_cafile=tls.ca, ssl_certfile=tls.client_cert, ssl_keyfile=tls.client_key
    )
    context = client_options(k)["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.check_hostname
    with pytest.raises(ConfigError, match="TLS files unusable"):
        client_options(k.model_copy(update={"ssl_keyfile": tls.ca}))


def test_pass_through_options_reach_every_client_but_may_not_replace_managed_ones() -> None:
    k = Kafka(client_options={"client_id": "eu-1", "connections_max_idle_ms": 60000})
    assert client_options(k)["client_id"] == "eu-1"
    assert client_options(k)["connections_max_idle_ms"] == 60000
    with pytest.raises(ConfigError, match="may not set sasl_plain_password"):
        client_options(Kafka(client_options={"sasl_plain_password": "x"}))


def test_the_pass_through_is_json_in_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFTSTREAM_KAFKA__CLIENT_OPTIONS", '{"client_id": "eu-1", "retry_backoff_ms": 250}')
    get_settings.cache_clear()
    try:
        assert get_settings().kafka.client_options == {"client_id": "eu-1", "retry_backoff_ms": 250}
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("kafka", "message"),
    [
        ({"security_protocol": "SASL_SSL"}, "needs kafka.sasl_mechanism"),
        ({"sasl_mechanism": "PLAIN"}, "takes no sasl_mechanism"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256", "sasl_username": "u"},
         "needs sasl_username and sasl_password"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"}, "needs kafka.oauth_token_file"),
        ({"ssl_cafile": "/ca.pem"}, "need SSL or SASL_SSL"),
        ({"security_protocol": "SSL", "ssl_keyfile": "/k.pem"}, "needs kafka.ssl_certfile"),
    ],
)
def test_settings_that_cannot_connect_are_one_clear_error(kafka: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        client_options(Kafka(**kafka))


def test_an_unknown_mechanism_is_refused_when_settings_load() -> None:
    with pytest.raises(ConfigError, match="kafka.sasl_mechanism"):
        load_settings(kafka={"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"})


def test_the_token_file_is_read_again_for_each_connection(tmp_path: Path) -> None:
    path = tmp_path / "token"
    provider = TokenFileProvider(path)
    path.write_text("first\n")
    assert asyncio.run(provider.token()) == "first"
    path.write_text("refreshed")
    assert asyncio.run(provider.token()) == "refreshed"
    path.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        asyncio.run(provider.token())


def test_heartbeats_must_fit_three_times_into_the_session_and_faust_caps_the_session() -> None:
    with pytest.raises(ConfigError, match="more than a third"):
        load_settings(group={"session_timeout_s": 6, "heartbeat_interval_s": 3})
    with pytest.raises(ConfigError, match="group.session_timeout_s"):
        load_settings(group={"session_timeout_s": 120})


def test_the_apps_group_consumer_and_producer_get_membership_settings_and_the_pass_through(
    tmp_path: Path,
) -> None:
    from stream.app import create_app

    settings = load_settings(
        local={"run_dir": tmp_path},
        group={"session_timeout_s": 8, "heartbeat_interval_s": 1, "instance_id": "worker-0"},
        kafka={"client_options": {"client_id": "eu-1"}},
    )
    app = create_app(settings)

    async def consumer_options() -> tuple[Any, ...]:
        consumer = app.consumer._new_consumer_thread()._create_worker_consumer(app.transport)
        try:
            return (
                consumer._group_instance_id,
                consumer._session_timeout_ms,
                consumer._heartbeat_interval_ms,
                consumer._client._client_id,
            )
        finally:
            await consumer.stop()

    assert asyncio.run(consumer_options()) == ("worker-0", 8000, 1000, "eu-1")
    assert app.producer._settings_extra()["client_id"] == "eu-1"


def test_the_apps_group_consumer_is_upstreams_when_nothing_is_passed_through(tmp_path: Path) -> None:
    """Guards the copy of faust's `_create_worker_consumer` in stream/app.py against upstream changes."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    from stream.app import create_app

    app = create_app(load_settings(local={"run_dir": tmp_path}))

    def plain(consumer: Any) -> dict[str, Any]:
        values = {**vars(consumer), **{f"client.{k}": v for k, v in vars(consumer._client).items()}}
        return {k: v for k, v in values.items() if isinstance(v, int | float | str | bool | type(None))}

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        thread = app.consumer._new_consumer_thread()
        ours = thread._create_worker_consumer(app.transport)
        upstream = AIOKafkaConsumerThread._create_worker_consumer(thread, app.transport)
        try:
            return plain(ours), plain(upstream)
        finally:
            await ours.stop()
            await upstream.stop()

    ours, upstream = asyncio.run(both())
    assert ours == upstream
