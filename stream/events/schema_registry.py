"""The few Confluent Schema Registry REST calls liftstream makes.

- `versions(subject)` and `schema_id(subject, version)`: the schema ids registered under a topic's subject,
  which framed input messages must carry (stream/events/framing.py).
- `register(subject, schema)`: registers a JSON Schema under a subject (`liftstream schemas register`).

Blocking (urllib, stdlib): the worker calls it off the event loop, and only when a batch carries a schema id
it has not seen (never once per message). Every failure is one `ServiceError` naming the registry and what
it answered.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pydantic import SecretStr

from stream.errors import ServiceError

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SUBJECT_NOT_FOUND = 40401
_MAX_ANSWER_BYTES = 1 << 20


class SchemaRegistryClient:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        username: str | None = None,
        password: SecretStr | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._headers = {"Accept": CONTENT_TYPE, "Content-Type": CONTENT_TYPE}
        if username is not None:
            secret = password.get_secret_value() if password is not None else ""
            token = base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"

    def versions(self, subject: str) -> list[int]:
        """The versions registered under `subject`; none when the registry has no such subject."""
        try:
            answer = self._request("GET", f"/subjects/{_quote(subject)}/versions")
        except _Refused as exc:
            if exc.code == SUBJECT_NOT_FOUND:
                return []
            raise self._error(f"listing the versions of subject {subject!r}", exc) from exc
        return [int(v) for v in answer]

    def schema_id(self, subject: str, version: int) -> int:
        """The schema id of `subject`'s `version`."""
        try:
            answer = self._request("GET", f"/subjects/{_quote(subject)}/versions/{version}")
        except _Refused as exc:
            raise self._error(f"reading version {version} of subject {subject!r}", exc) from exc
        return int(answer["id"])

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """Registers JSON Schema `schema` under `subject`; returns its id (the existing one if unchanged)."""
        body = {"schemaType": "JSON", "schema": json.dumps(schema, sort_keys=True)}
        try:
            answer = self._request("POST", f"/subjects/{_quote(subject)}/versions", body)
        except _Refused as exc:
            raise self._error(f"registering a schema under subject {subject!r}", exc) from exc
        return int(answer["id"])

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data, self._headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:  # noqa: S310
                return json.loads(resp.read(_MAX_ANSWER_BYTES))
        except urllib.error.HTTPError as exc:
            raise _Refused.of(exc) from exc
        except (OSError, ValueError) as exc:  # unreachable, timed out, or an answer that is not JSON
            raise ServiceError(f"schema registry at {self.url} is not usable: {exc}") from exc

    def _error(self, doing: str, exc: _Refused) -> ServiceError:
        return ServiceError(f"schema registry at {self.url} refused {doing}: HTTP {exc.status}, {exc}")


class _Refused(Exception):
    """An HTTP error answer, with the registry's own `error_code` when it sent one."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @classmethod
    def of(cls, exc: urllib.error.HTTPError) -> _Refused:
        text = exc.read(_MAX_ANSWER_BYTES).decode("utf-8", "replace")
        try:
            answer = json.loads(text)
            return cls(exc.code, int(answer["error_code"]), str(answer.get("message", "")))
        except (ValueError, KeyError, TypeError):
            return cls(exc.code, None, text[:200] or exc.reason)


def _quote(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")
