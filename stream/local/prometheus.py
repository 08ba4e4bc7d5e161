"""Prometheus from Debian's `prometheus` package, with a config generated into the run directory."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from stream.errors import PrerequisiteError
from stream.local.process import Managed, wait_ready

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def binary(name: str = "prometheus") -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        raise PrerequisiteError(f"{name} not found: install it with `apt-get install -y prometheus`")
    return path


def config(worker_targets: list[str], triton_metrics: str, scrape_interval_s: float = 2.0) -> str:
    rules = sorted(str(p) for p in RULES_DIR.glob("*rules*.yml") if "test" not in p.name)
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval_s:g}s",
        f"  evaluation_interval: {scrape_interval_s:g}s",
        "rule_files:",
        *(f"  - {r}" for r in rules),
        *([] if rules else ["  []"]),
        "scrape_configs:",
        "  - job_name: liftstream-worker",
        "    static_configs:",
        f"      - targets: [{', '.join(repr(t) for t in worker_targets)}]",
        "  - job_name: triton",
        "    static_configs:",
        f"      - targets: ['{triton_metrics}']",
        "",
    ]
    return "\n".join(lines)


def start(home: Path, port: int, worker_targets: list[str], triton_metrics: str) -> Managed:
    svc = Managed("prometheus", home)
    if svc.pid() is not None:
        return svc
    exe = binary()
    cfg = home / "prometheus.yml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(config(worker_targets, triton_metrics))
    svc.start(
        [
            exe,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=2d",
        ],
        cwd=home,
    )
    wait_ready(svc, lambda: ready(f"127.0.0.1:{port}"), timeout_s=60)
    return svc


def ready(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/-/ready", timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except OSError:
        return False
