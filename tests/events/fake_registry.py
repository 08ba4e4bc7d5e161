"""A fake of the Confluent Schema Registry REST API: the few endpoints liftstream and Confluent's serializers
call, in memory, on a local stdlib HTTP server.

No Schema Registry program runs offline here (Confluent's is not on Maven Central, none is on PyPI), so the
client is tested against this fake of the protocol as documented
(https://docs.confluent.io/platform/current/schema-registry/develop/api.html): ids are global and the same
schema text gets the same id under every subject; unknown subjects answer 404 with error_code 40401,
unknown ids 40403. `down` makes every request answer 503, as a registry without its backing Kafka does.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class Registry:
    ids: dict[str, int] = field(default_factory=dict)
    """Schema text → its global id."""
    subjects: dict[str, list[int]] = field(default_factory=dict)
    """Subject → the id of each version, version 1 first."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False

    def register(self, subject: str, schema: str) -> int:
        schema_id = self.ids.setdefault(schema, len(self.ids) + 1)
        versions = self.subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id

    def schema(self, schema_id: int) -> str:
        return next(text for text, i in self.ids.items() if i == schema_id)


def _handler(registry: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
            pass

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def _answer(self, method: str) -> None:
            path = urlsplit(self.path).path
            registry.requests.append((method, path))
            if registry.down:
                return self._send(503, {"error_code": 50003, "message": "Error while forwarding the request"})
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
            status, answer = _route(registry, method, path, body)
            self._send(status, answer)

        def _send(self, status: int, answer: Any) -> None:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _route(registry: Registry, method: str, path: str, body: Any) -> tuple[int, Any]:
    if m := re.fullmatch(r"/subjects/([^/]+)/versions", path):
        subject = unquote(m[1])
        if method == "POST":
            schema_id = registry.register(subject, body["schema"])
            version = registry.subjects[subject].index(schema_id) + 1
            return 200, {"id": schema_id, "subject": subject, "version": version, "schemaType": "JSON"}
        if subject not in registry.subjects:
            return 404, {"error_code": 40401, "message": f"Subject '{subject}' not found."}
        return 200, list(range(1, len(registry.subjects[subject]) + 1))
    if m := re.fullmatch(r"/subjects/([^/]+)/versions/(\d+|latest)", path):
        subject = unquote(m[1])
        versions = registry.subjects.get(subject, [])
        version = len(versions) if m[2] == "latest" else int(m[2])
        if not 1 <= version <= len(versions):
            return 404, {"error_code": 40402, "message": "Version not found."}
        schema_id = versions[version - 1]
        schema = registry.schema(schema_id)
        return 200, {"subject": subject, "version": version, "id": schema_id, "schema": schema,
                     "schemaType": "JSON"}  # fmt: skip
    if m := re.fullmatch(r"/schemas/ids/(\d+)", path):
        schema_id = int(m[1])
        if schema_id not in registry.ids.values():
            return 404, {"error_code": 40403, "message": "Schema not found"}
        return 200, {"schema": registry.schema(schema_id), "schemaType": "JSON"}
    return 404, {"error_code": 404, "message": f"HTTP 404 Not Found: {method} {path}"}


@contextmanager
def serve() -> Iterator[tuple[str, Registry]]:
    """(base URL, state) of a fake registry on a free local port, for the block's duration."""
    registry = Registry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
