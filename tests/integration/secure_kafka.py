"""A real Kafka with authentication and ACLs for the auth tests: certificates made with openssl, one broker
with a SASL_SSL listener (PLAIN, SCRAM-SHA-256, unsecured-JWT OAUTHBEARER) and an SSL listener that requires
a client certificate, StandardAuthorizer with `admin` as the super user, ACLs created over the wire."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest

from stream.kafka_options import client_options, let_tls_close, security_options
from stream.local import kafka
from stream.local.triton import free_ports
from stream.settings import Kafka

ADMIN, USER = "admin", "alice"
PASSWORDS = {ADMIN: "admin-secret", USER: "alice-secret"}
TOPIC, GROUP = 2, 3
"""Kafka's ACL resource types."""
LITERAL, PREFIXED = 3, 4
ALL, WRITE = 2, 4
DENY, ALLOW = 2, 3


@dataclass(frozen=True)
class Tls:
    ca: Path
    broker: Path
    """The broker's key and certificate chain, one PEM file (Kafka's PEM keystore)."""
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)  # noqa: S603


def make_tls(home: Path) -> Tls:
    """A CA, a broker certificate for 127.0.0.1 and a client certificate for CN=alice, all signed by it."""
    home.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=liftstream-test-ca", cwd=home)
    (home / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn in (("broker", "broker"), ("client", USER)):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={cn}", cwd=home)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", "san.ext", cwd=home)
    keystore = home / "broker-keystore.pem"
    keystore.write_text((home / "broker.key").read_text() + (home / "broker.pem").read_text())
    return Tls(home / "ca.pem", keystore, home / "client.pem", home / "client.key")


def _plain_jaas(user: str) -> str:
    users = " ".join(f'user_{u}="{p}"' for u, p in PASSWORDS.items())
    return (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{user}" password="{PASSWORDS[user]}" {users};'
    )


def broker_overrides(node: kafka.Node, sasl_port: int, ssl_port: int, tls: Tls) -> dict[str, str]:
    """Listeners: SASL_SSL (clients and the broker itself), SSL with client certificates, and a SASL
    controller listener, so that every principal is authenticated and the authorizer sees real names."""
    c = node.controller_port
    return {
        "listeners": f"SASL_SSL://127.0.0.1:{sasl_port},SSL://127.0.0.1:{ssl_port},CONTROLLER://127.0.0.1:{c}",
        "advertised.listeners": f"SASL_SSL://127.0.0.1:{sasl_port},SSL://127.0.0.1:{ssl_port}",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": _plain_jaas(ADMIN),
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,OAUTHBEARER",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": _plain_jaas(ADMIN),
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        # No server callback handler: Kafka validates OAUTHBEARER tokens as unsecured JWTs (alg none).
        "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config":
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            f'unsecuredLoginStringClaim_sub="{ADMIN}";',
        "listener.name.ssl.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls.broker),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN}",
        "auto.create.topics.enable": "false",
    }


@dataclass(frozen=True)
class SecureKafka:
    sasl_bootstrap: str
    ssl_bootstrap: str
    tls: Tls
    home: Path

    def scram(self, user: str = USER, password: str | None = None) -> Kafka:
        return Kafka(
            bootstrap=self.sasl_bootstrap, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256",
            sasl_username=user, sasl_password=password or PASSWORDS[user], ssl_cafile=self.tls.ca,
        )  # type: ignore[arg-type]

    def plain(self, user: str = USER) -> Kafka:
        return Kafka(
            bootstrap=self.sasl_bootstrap, security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
            sasl_username=user, sasl_password=PASSWORDS[user], ssl_cafile=self.tls.ca,
        )  # type: ignore[arg-type]

    def mtls(self) -> Kafka:
        return Kafka(
            bootstrap=self.ssl_bootstrap, security_protocol="SSL", ssl_cafile=self.tls.ca,
            ssl_certfile=self.tls.client_cert, ssl_keyfile=self.tls.client_key,
        )

    def oauth(self, user: str = USER) -> Kafka:
        token = self.home / f"{user}.jwt"
        token.write_text(unsecured_jwt(user))
        return Kafka(
            bootstrap=self.sasl_bootstrap, security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER",
            oauth_token_file=token, ssl_cafile=self.tls.ca,
        )


def unsecured_jwt(subject: str, lifetime_s: int = 3600) -> str:
    """An unsigned JWT (alg none) as Kafka's unsecured OAUTHBEARER validator accepts it."""

    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    now = int(time.time())
    return f"{part({'alg': 'none'})}.{part({'sub': subject, 'iat': now, 'exp': now + lifetime_s})}."


@contextmanager
def secure_kafka(home: Path) -> Iterator[SecureKafka]:
    tls = make_tls(home / "tls")
    port, controller, sasl_port, ssl_port = free_ports(4)
    node = kafka.Node(1, port, controller)
    secured = SecureKafka(f"127.0.0.1:{sasl_port}", f"127.0.0.1:{ssl_port}", tls, home)
    admin = security_options(secured.plain(ADMIN))
    scram = f"SCRAM-SHA-256=[name={USER},password={PASSWORDS[USER]}]"
    (svc,) = kafka.start_cluster(
        home / "kafka", [node], overrides=broker_overrides(node, sasl_port, ssl_port, tls),
        format_args=["--add-scram", scram], probe=lambda _: kafka.ready(secured.sasl_bootstrap, admin),
    )
    try:
        yield secured
    finally:
        svc.stop()


async def grant(admin: Kafka, acls: list[tuple[int, str, int, int, int]]) -> None:
    """Creates ACLs for `USER`: (resource type, name, pattern type, operation, permission)."""
    client = AIOKafkaAdminClient(**client_options(admin))
    await client.start()
    try:
        for resource, name, pattern, operation, permission in acls:
            request = CreateAclsRequest(resource, name, pattern, f"User:{USER}", "*", operation, permission)
            response = await client._send_request(request)
            errors = [r for r in response.to_object()["creation_responses"] if r["error_code"]]
            assert not errors, errors
    finally:
        await client.close()
        await let_tls_close()


def kafka_env(k: Kafka) -> dict[str, str]:
    """`k` as the environment variables of a worker process."""
    env = {}
    for name, value in k.model_dump(exclude_none=True, exclude={"bootstrap", "client_options"}).items():
        secret = getattr(value, "get_secret_value", None)
        env[f"LIFTSTREAM_KAFKA__{name.upper()}"] = str(secret() if secret else value)
    return env
