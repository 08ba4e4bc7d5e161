"""Container health check of the liftstream worker: exit 0 when its `/live` answers 200, else 1.

`/live` (stream/health.py) fails when the worker's event loop has stopped making progress; a process that
still serves `/metrics` from its HTTP thread is then reported unhealthy. Pass `/ready` as the argument to
check readiness instead (a member of the group with partitions, Triton ready).

Standard library only: it runs with the image's Python and imports nothing of liftstream (fast, and healthy
does not depend on the worker's imports).
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main(path: str = "/live") -> int:
    url = f"http://127.0.0.1:{os.environ.get('LIFTSTREAM_METRICS_PORT', '9464')}{path}"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except (OSError, ValueError) as exc:  # URLError and HTTPError (503: failing) are OSErrors
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
