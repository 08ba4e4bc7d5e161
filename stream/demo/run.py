"""`liftstream demo`: the whole product on this machine, on embedded defaults.

Local stack up → model (cached in triton_repo/) → worker → simulated live traffic with an underperforming
promotion and a drift episode, watched in the live monitor → HTML report → everything it started is stopped,
also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from stream.demo.collect import read_outputs
from stream.demo.model import ensure_model
from stream.demo.report import write_report
from stream.errors import ServiceError
from stream.events.models import Alert, CampaignEffect, DriftReport
from stream.local import stack
from stream.local.process import Managed
from stream.monitor.source import OutputReader
from stream.monitor.state import MonitorState
from stream.monitor.view import render
from stream.settings import Settings, Topics
from stream.simulate.config import SimConfig
from stream.simulate.kafka_out import Progress as SendProgress
from stream.simulate.live import produce_live

log = logging.getLogger(__name__)

# The live world: the dud promotion (zero true effect) is exposed from the first seconds, the drift
# episode (a new user cohort) runs from 40% to 80% of the simulated span.
LIVE_WORLD = {
    "seed": 3,
    "users": 2500,
    "days": 2.0,
    "drift_start": 0.4,
    "drift_end": 0.8,
    "malformed_rate": 0.002,
}
DRAIN_S = 20.0


def run_settings(base: Settings, run_id: str) -> Settings:
    """This run's topics and consumer group, so runs never mix and no data has to be wiped."""
    topics = {
        name: f"{run_id}-{value}"
        for name, value in base.topics.model_dump().items()
        if isinstance(value, str)
    }
    return base.model_copy(
        update={"topics": Topics(**topics, partitions=base.topics.partitions), "app_id": run_id}
    )


def worker_env(settings: Settings) -> dict[str, str]:
    env = {f"LIFTSTREAM_TOPICS__{k.upper()}": str(v) for k, v in settings.topics.model_dump().items()}
    return {
        **env,
        "LIFTSTREAM_APP_ID": settings.app_id,
        "LIFTSTREAM_KAFKA__BOOTSTRAP": settings.kafka.bootstrap,
        "LIFTSTREAM_TRITON_URL": settings.triton_url,
        "LIFTSTREAM_METRICS_PORT": str(settings.metrics_port),
        "LIFTSTREAM_MODEL_REPO": str(settings.model_repo.resolve()),
    }


def _metrics_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except OSError:
        return False


def run_demo(base: Settings, duration_s: float, rate: float, console: Console) -> Path:
    run_id = f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    work = base.local.run_dir.resolve() / "demo"
    settings = run_settings(base, run_id)
    already = {s.name for s in stack.status(base) if s.pid is not None}
    worker = Managed(f"worker-{run_id}", work / "logs")
    began = time.monotonic()
    try:
        with console.status("starting Kafka, Triton and Prometheus") as status:
            for name, seconds in stack.up(base).items():
                console.log(f"{name} ready ({seconds:.1f}s)")
            def say(msg: str) -> None:
                status.update(msg)
                console.log(msg)

            version = ensure_model(base.model_repo, work, say)
            console.log(f"model version {version} in {base.model_repo}")
            status.update("starting the worker")
            worker.start([sys.executable, "-m", "stream", "worker"], env=worker_env(settings))
            deadline = time.monotonic() + 180
            while not _metrics_up(settings.metrics_port):
                if worker.pid() is None or time.monotonic() > deadline:
                    raise ServiceError(
                        f"the worker did not start; log {worker.log_file}:\n{worker.log_tail()}"
                    )
                time.sleep(0.5)
            console.log(f"worker running (pid {worker.pid()}, log {worker.log_file})")
        sent = asyncio.run(_traffic(settings, duration_s, rate, console))
        with console.status(f"letting the worker drain ({DRAIN_S:.0f}s)"):
            time.sleep(DRAIN_S)
            outputs = asyncio.run(read_outputs(settings))
        stats: dict[str, float | int | str] = {
            "run": run_id,
            "model version": version,
            "traffic seconds": duration_s,
            "events sent": sent,
            "wall seconds": round(time.monotonic() - began, 1),
        }
        return write_report(outputs, stats, work / "reports" / f"{run_id}.html")
    finally:
        worker.stop()
        stopped = stack.down(base, tuple(s for s in stack.SERVICES if s not in already))
        console.log(f"stopped {', '.join(['worker', *stopped])}")


async def _traffic(settings: Settings, duration_s: float, rate: float, console: Console) -> int:
    """Produce the live world while the monitor view and a progress bar refresh every second."""
    state = MonitorState(max_alerts=8)
    topics: dict[str, type[BaseModel]] = {
        settings.topics.campaign_effects: CampaignEffect,
        settings.topics.alerts: Alert,
        settings.topics.drift: DriftReport,
    }
    bar = Progress(
        TextColumn("live traffic"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}s"),
        TextColumn("{task.fields[sent]} events"),
        TimeElapsedColumn(),
    )
    task = bar.add_task("traffic", total=duration_s, sent=0)

    def progress(p: SendProgress) -> None:
        bar.update(task, completed=min(p.elapsed_s, duration_s), sent=p.sent)

    async with OutputReader(settings.kafka, topics, state, from_beginning=True) as reader:
        producing = asyncio.create_task(
            produce_live(
                settings,
                SimConfig(**LIVE_WORLD),  # type: ignore[arg-type]
                rate=rate,
                duration_s=duration_s,
                on_progress=progress,
            )
        )
        with Live(console=console, auto_refresh=False) as live:
            while not producing.done():
                await reader.poll(1.0)
                live.update(Group(bar, render(state, datetime.now(UTC), settings.app_id)), refresh=True)
        return (await producing).sent
