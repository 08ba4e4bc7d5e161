"""`liftstream demo`: the whole product on this machine, on embedded defaults.

Local stack up → model (cached in triton_repo/) → worker → simulated live traffic with a strong promotion,
a regular one and a dud (zero true effect), and a drift episode, watched in the live monitor → HTML report
of the decisions and their JSON, with the simulator's true uplifts → everything it started is stopped, also
on Ctrl-C.
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
from stream.demo.truth import sent_exposure_ids, true_uplifts
from stream.errors import ServiceError
from stream.events.models import Alert, CampaignEffect, DriftReport
from stream.local import stack
from stream.local.process import Managed
from stream.monitor.source import OutputReader
from stream.monitor.state import MonitorState
from stream.monitor.view import render
from stream.settings import Settings, Topics
from stream.simulate.config import SimConfig
from stream.simulate.emission import Message
from stream.simulate.kafka_out import Progress as SendProgress
from stream.simulate.live import LiveStats, live_simulation, produce_live

log = logging.getLogger(__name__)

# The live world, shaped so that decisions come within the run (README, "liftstream demo"): one campaign of
# three promotions shown throughout, all judged on visits (the outcome with the highest base rate, so the one
# that decides fastest): the strong promotion (scale 6: it lifts visits by ~35 points, so the goals, half of
# each planned effect, are large), a regular one whose copy changes half-way, and the dud (zero true effect,
# its goal planned like the others': the median of theirs). Half of every promotion's exposures are held out
# (the smallest variance for a given number of exposures), users are shown a promotion again a few hours
# after the one-day attribution window of the last has closed, and the visits an exposure brings come
# within ten minutes of it, so an exposure's outcome is known a fraction of a second after it is sent, not a
# simulated day later: counted exposures still waiting for their outcomes would pull both arms' rates, and a
# real effect, towards zero. A drift episode (a new user cohort) runs from 40% to 80% of the exposure period.
# At the default 1000 events/s for 60 s the run sends about seven of the world's 7.5 simulated days (a
# simulated day passes in ~8.5 s). tests/demo/test_world.py replays it offline through the decision code.
DEMO_WORLD = {
    "seed": 6,
    "days": 7.5,
    "campaigns": 1,
    "promotions_per_campaign": 3,
    "strong_scale": 6.0,
    "goal_outcome": "visit",
    "holdout_fraction": 0.5,
    "exposure_rate": 10.0,
    "response_s": 600,
    "drift_start": 0.4,
    "drift_end": 0.8,
    "malformed_rate": 0.002,
}
WORLD_USERS = 2000
"""Users at the default run (1000 events/s for 60 s); other runs scale them with rate x duration."""
DEFAULT_EVENTS = 1000 * 60
MAX_WORLD_USERS = 20_000  # ~600,000 events: ten minutes at the default rate
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


def live_world(rate: float, duration_s: float) -> SimConfig:
    """The demo world sized to the run: WORLD_USERS at the default, scaled with the events the run sends (up
    to MAX_WORLD_USERS: a longer run ends when its world runs out)."""
    users = min(max(50, round(WORLD_USERS * rate * duration_s / DEFAULT_EVENTS)), MAX_WORLD_USERS)
    return SimConfig(users=users, **DEMO_WORLD)  # type: ignore[arg-type]


def run_demo(base: Settings, duration_s: float, rate: float, console: Console) -> tuple[Path, Path]:
    """Runs the demo; returns the paths of the HTML report and of its JSON."""
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

            version = ensure_model(base.model_repo, say)
            console.log(f"model version {version} in {base.model_repo}")
            status.update("starting the worker")
            worker.start([sys.executable, "-m", "stream", "worker"], env=worker_env(settings))
            config = live_world(rate, duration_s)
            say(f"simulating the live world ({config.users} users x {config.days:g} days)")
            sim, messages = live_simulation(config, datetime.now(UTC))
            deadline = time.monotonic() + 180
            while not _metrics_up(settings.metrics_port):
                if worker.pid() is None or time.monotonic() > deadline:
                    raise ServiceError(
                        f"the worker did not start; log {worker.log_file}:\n{worker.log_tail()}"
                    )
                time.sleep(0.5)
            console.log(f"worker running (pid {worker.pid()}, log {worker.log_file})")
        started_at = datetime.now(UTC)
        live = asyncio.run(_traffic(settings, config, messages, duration_s, rate, console))
        truth = true_uplifts(sim.truth, sim.meta, sent_exposure_ids(messages[: live.sent]))
        with console.status(f"letting the worker drain ({DRAIN_S:.0f}s)"):
            time.sleep(DRAIN_S)
            outputs = asyncio.run(read_outputs(settings))
        stats: dict[str, float | int | str] = {
            "run": run_id,
            "model version": version,
            "traffic seconds": duration_s,
            "events per second": rate,
            "events sent": live.sent,
            "simulated world": f"{config.users} users x {config.days:g} days, seed {config.seed}",
            "wall seconds": round(time.monotonic() - began, 1),
        }
        return write_report(outputs, stats, work / "reports" / f"{run_id}.html", truth, started_at)
    finally:
        worker.stop()
        stopped = stack.down(base, tuple(s for s in stack.SERVICES if s not in already))
        console.log(f"stopped {', '.join(['worker', *stopped])}")


async def _traffic(
    settings: Settings,
    config: SimConfig,
    messages: list[Message],
    duration_s: float,
    rate: float,
    console: Console,
) -> LiveStats:
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
                config,
                rate=rate,
                duration_s=duration_s,
                on_progress=progress,
                messages=messages,
            )
        )
        with Live(console=console, auto_refresh=False) as live:
            while not producing.done():
                await reader.poll(1.0)
                live.update(Group(bar, render(state, datetime.now(UTC), settings.app_id)), refresh=True)
        return await producing
