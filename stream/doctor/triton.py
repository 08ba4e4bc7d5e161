"""`liftstream doctor`'s Triton checks: the server is ready, and which versions of both models it serves."""

from __future__ import annotations

from typing import Any

from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from stream.doctor.report import Line, fail, ok
from stream.scoring.signature import ENCODER, SCORER
from stream.scoring.triton import newest_common_ready

TIMEOUT_S = 5.0


async def triton_lines(url: str) -> list[Line]:
    """The server line, one line per model, and the version the worker would serve."""
    client = InferenceServerClient(url)
    try:
        ready = await client.is_server_ready(client_timeout=TIMEOUT_S)
        meta = await client.get_server_metadata(as_json=True, client_timeout=TIMEOUT_S)
        index = await client.get_model_repository_index(as_json=True, client_timeout=TIMEOUT_S)
    except InferenceServerException as exc:
        return [fail("triton", f"not reachable at {url}: {exc.status() or exc}")]
    finally:
        await client.close()
    server = f"{url}, server {meta.get('version', '?')}"
    lines = [ok("triton", f"ready at {server}") if ready else fail("triton", f"not ready at {server}")]
    lines += [_model_line(name, index) for name in (ENCODER, SCORER)]
    version = newest_common_ready(index)
    lines.append(
        ok("models", f"the worker serves version {version} of both")
        if version is not None
        else fail("models", f"no version of {ENCODER} and {SCORER} is ready in both")
    )
    return lines


def _model_line(name: str, index: dict[str, Any]) -> Line:
    entries = [e for e in index.get("models", []) if e.get("name") == name]
    states = {e.get("version", "?"): e.get("state", "?") for e in entries}
    if not states:
        return fail("model", f"{name} is not in Triton's repository")
    ready = sorted((v for v, s in states.items() if s == "READY"), key=lambda v: (len(v), v))
    others = ", ".join(f"{v} {s}" for v, s in sorted(states.items()) if s != "READY")
    detail = f"{name}: version(s) {', '.join(ready) or 'none'} ready" + (f"; {others}" if others else "")
    return ok("model", detail) if ready else fail("model", detail)
