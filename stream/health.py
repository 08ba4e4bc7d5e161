"""`/live` and `/ready` of a worker, served beside `/metrics` on the metrics port.

- `/live`: the worker's event loop is making progress. An asyncio task beats every second
  (stream/agents/health.py); the HTTP server runs in its own thread, so it still answers when the loop is
  stuck, and fails once the last beat is older than `health_stale_s`. A restart is the cure for that.
- `/ready`: the worker is a member of its group with input partitions assigned, and Triton is ready
  with both models. Not ready is no reason to restart: an extra worker beyond the partition count, or one
  waiting for Triton, is healthy but does no work.

200 with a one-line reason when the check holds, 503 with the reason otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Health:
    """What the probes read: written by the event loop, read by the HTTP thread (plain attribute writes)."""

    stale_s: float
    clock: Callable[[], float] = time.monotonic
    beat_at: float | None = None
    partitions: int = 0
    """Input partitions assigned to this worker."""
    triton: str | None = "not checked yet"
    """Why Triton is not ready, None when it is."""
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def beat(self) -> None:
        self.beat_at = self.clock()

    def live(self) -> tuple[bool, str]:
        if self.beat_at is None:
            return False, f"the event loop has not started ({self.clock() - self.started:.0f}s since launch)"
        age = self.clock() - self.beat_at
        if age > self.stale_s:
            return False, f"the event loop last made progress {age:.0f}s ago (limit {self.stale_s:g}s)"
        return True, f"the event loop made progress {age:.1f}s ago"

    def ready(self) -> tuple[bool, str]:
        alive, why = self.live()
        if not alive:
            return False, why
        reasons = []
        if self.partitions == 0:
            reasons.append("no input partitions (joining, rebalancing, or more workers than partitions)")
        if self.triton is not None:
            reasons.append(f"Triton not ready: {self.triton}")
        if reasons:
            return False, "; ".join(reasons)
        return True, f"{self.partitions} input partitions assigned, Triton ready"

    def routes(self) -> dict[str, WSGIApp]:
        """WSGI apps for the metrics server's `/live` and `/ready`."""
        return {"/live": _probe(self.live), "/ready": _probe(self.ready)}


def _probe(check: Callable[[], tuple[bool, str]]) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        ok, why = check()
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
        return [f"{'ok' if ok else 'failing'}: {why}\n".encode()]

    return app
