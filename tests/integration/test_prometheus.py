"""The local Prometheus scrapes a prometheus-client endpoint and answers PromQL about it."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from stream.settings import Settings

pytestmark = pytest.mark.integration


def _query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310
        body = json.load(resp)
    assert body["status"] == "success"
    return list(body["data"]["result"])


def test_scrape_and_query(prometheus_url: str, test_settings: Settings) -> None:
    registry = CollectorRegistry()
    counter = Counter("liftstream_infra_probe", "probe counter", registry=registry)
    counter.inc(42)
    # The generated config scrapes the worker metrics port (and the next few, for more workers).
    server, thread = start_http_server(test_settings.metrics_port, addr="127.0.0.1", registry=registry)
    try:
        deadline = time.monotonic() + 60
        result: list[dict] = []
        while time.monotonic() < deadline and not result:
            result = _query(prometheus_url, "liftstream_infra_probe_total")
            time.sleep(0.5)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
    assert result, "Prometheus never scraped the endpoint"
    assert float(result[0]["value"][1]) == 42.0
    assert result[0]["metric"]["job"] == "liftstream-worker"
