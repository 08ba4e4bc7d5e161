"""How every Kafka client liftstream opens connects and authenticates, from `Settings.kafka`.

One mapping for all clients: admin, producers and consumers get `client_options`; the Faust app gets the same
security settings as `broker_credentials` (Faust turns them back into these aiokafka arguments) and the same
pass-through options through its transport (stream/app.py). Modes:

- PLAINTEXT, or SSL with a CA file (server authentication only);
- mutual TLS: SSL with `ssl_certfile` / `ssl_keyfile` (the broker maps the certificate to a principal);
- SASL_PLAINTEXT / SASL_SSL with PLAIN or SCRAM-SHA-256/512 (username and password);
- SASL_SSL / SASL_PLAINTEXT with OAUTHBEARER: the token is read from `oauth_token_file` for every new
  connection, so whatever refreshes that file (a Kubernetes projected token, an identity sidecar) is picked up
  without a restart;
- `client_options`: further aiokafka keyword arguments passed through as given (e.g. `client_id`,
  `sasl_kerberos_service_name`, `connections_max_idle_ms`), for what the settings above do not name.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.helpers import create_ssl_context

from stream.errors import ConfigError
from stream.settings import Kafka

SASL_PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
MANAGED_OPTIONS = frozenset(
    {
        "bootstrap_servers",
        "security_protocol",
        "ssl_context",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "sasl_oauth_token_provider",
    }
)
"""Client arguments the settings own: the pass-through may not set them (one source per option)."""


TLS_CLOSE_GRACE_S = 0.2


async def let_tls_close() -> None:
    """Gives closed TLS connections time to finish their shutdown before a short-lived event loop ends:
    asyncio closes a TLS socket only after the close_notify exchange, so a loop closed right after a client
    leaves the socket open until it is collected (a ResourceWarning)."""
    await asyncio.sleep(TLS_CLOSE_GRACE_S)


class TokenFileProvider(AbstractTokenProvider):
    """OAUTHBEARER tokens from a file, read again for every new connection."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def token(self) -> str:
        try:
            token = self.path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the OAUTHBEARER token file {self.path}: {exc}") from exc
        if not token:
            raise ConfigError(f"the OAUTHBEARER token file {self.path} is empty")
        return token


def check(k: Kafka) -> None:
    """One clear error for settings that cannot connect: a mechanism without its secrets, and the like."""
    sasl = k.security_protocol.startswith("SASL_")
    if sasl != bool(k.sasl_mechanism):
        raise ConfigError(
            f"kafka.security_protocol {k.security_protocol} "
            + ("needs kafka.sasl_mechanism" if sasl else f"takes no sasl_mechanism ({k.sasl_mechanism})")
        )
    if k.sasl_mechanism in SASL_PASSWORD_MECHANISMS and not (k.sasl_username and k.sasl_password):
        raise ConfigError(f"kafka.sasl_mechanism {k.sasl_mechanism} needs sasl_username and sasl_password")
    if k.sasl_mechanism == "OAUTHBEARER" and k.oauth_token_file is None:
        raise ConfigError("kafka.sasl_mechanism OAUTHBEARER needs kafka.oauth_token_file")
    tls = k.security_protocol in ("SSL", "SASL_SSL")
    if not tls and (k.ssl_cafile or k.ssl_certfile or k.ssl_keyfile):
        raise ConfigError(f"kafka.ssl_* files need SSL or SASL_SSL, not {k.security_protocol}")
    if k.ssl_keyfile and not k.ssl_certfile:
        raise ConfigError("kafka.ssl_keyfile needs kafka.ssl_certfile (the client certificate)")
    clash = sorted(MANAGED_OPTIONS & k.client_options.keys())
    if clash:
        raise ConfigError(f"kafka.client_options may not set {', '.join(clash)}: use the kafka settings")


def ssl_context(k: Kafka) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL: the CA to trust and, for mutual TLS, the client certificate."""
    if k.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    password = k.ssl_key_password.get_secret_value() if k.ssl_key_password else None
    try:
        context = create_ssl_context(
            cafile=k.ssl_cafile, certfile=k.ssl_certfile, keyfile=k.ssl_keyfile, password=password
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"kafka TLS files unusable ({exc}): see kafka.ssl_cafile/certfile/keyfile") from exc
    context.check_hostname = k.ssl_check_hostname
    return context


def token_provider(k: Kafka) -> TokenFileProvider | None:
    return TokenFileProvider(k.oauth_token_file) if k.oauth_token_file else None


def security_options(k: Kafka) -> dict[str, Any]:
    """The aiokafka arguments for the security protocol, TLS and SASL (no bootstrap, no pass-through)."""
    check(k)
    options: dict[str, Any] = {"security_protocol": k.security_protocol}
    if k.sasl_mechanism:
        options["sasl_mechanism"] = k.sasl_mechanism
    if k.sasl_mechanism in SASL_PASSWORD_MECHANISMS:
        options["sasl_plain_username"] = k.sasl_username
        options["sasl_plain_password"] = k.sasl_password.get_secret_value() if k.sasl_password else None
    if k.sasl_mechanism == "OAUTHBEARER":
        options["sasl_oauth_token_provider"] = token_provider(k)
    context = ssl_context(k)
    if context is not None:
        options["ssl_context"] = context
    return options


def client_options(k: Kafka) -> dict[str, Any]:
    """Keyword arguments for an AIOKafkaConsumer, AIOKafkaProducer or AIOKafkaAdminClient."""
    return {"bootstrap_servers": k.bootstrap, **security_options(k), **k.client_options}


def broker_credentials(k: Kafka) -> Any:
    """The same security settings as Faust's `broker_credentials` (None for PLAINTEXT)."""
    import faust  # only the worker needs it; the simulator's and monitor's clients stay light

    options = security_options(k)
    context = options.get("ssl_context")
    if k.sasl_mechanism == "OAUTHBEARER":
        return faust.OAuthCredentials(oauth_cb=options["sasl_oauth_token_provider"], ssl_context=context)
    if k.sasl_mechanism:
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            ssl_context=context,
            mechanism=k.sasl_mechanism,
        )
    return None if context is None else faust.SSLCredentials(context)
