"""aiokafka client options (bootstrap servers, SASL, SSL) from `Settings.kafka`, for every client opened."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from stream.settings import Kafka


def ssl_context(k: Kafka) -> ssl.SSLContext | None:
    if k.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    return create_ssl_context(cafile=str(k.ssl_cafile) if k.ssl_cafile else None)


def client_options(k: Kafka) -> dict[str, Any]:
    """Keyword arguments for an AIOKafkaConsumer, AIOKafkaProducer or AIOKafkaAdminClient."""
    options: dict[str, Any] = {"bootstrap_servers": k.bootstrap, "security_protocol": k.security_protocol}
    if k.sasl_mechanism:
        options["sasl_mechanism"] = k.sasl_mechanism
        options["sasl_plain_username"] = k.sasl_username
        options["sasl_plain_password"] = k.sasl_password.get_secret_value() if k.sasl_password else None
    context = ssl_context(k)
    if context is not None:
        options["ssl_context"] = context
    return options
