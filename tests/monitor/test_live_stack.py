"""Monitoring on the real stack: one worker, scraped by the session's Prometheus, fed a simulated world.

The world is one campaign of the simulator's strong promotion and its dud (zero true effect), with malformed
messages and a drift episode (a cohort of new users) over the second half of the exposure day. It is sent in
three parts: everything before the episode, the episode with the attribution tail, then one re-delivered and
two late events. Between the parts the test reads what the worker published and what it exports.

Choices that keep the claims checkable in a few minutes:
- the drift reference is the part before the episode (as if the model had been trained on it), scored by the
  served model, so the quiet part is the model's own population; window and minimum are that part's size, so
  a report covers the whole part (a window of a few hours of a day would drift on `hour_sin` alone);
- the attribution window is 8 h, so outcomes mature within the day: with 24 h the strong promotion's realised
  uplift trails its true effect for most of a compressed day and is judged underperforming early on;
- the dud's goal is the one the simulator plans for it: the median goal of its campaign's promotions with
  the same goal outcome, as if it had been expected to work.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from models.dataset import build_dataset
from models.score import promo_tokens, score_rows
from stream.drift.reference import build_reference, save_reference
from stream.errors import DecodeError
from stream.events.gate import decode, encode
from stream.events.models import ClickEvent, UserProfileEvent
from stream.history import write_history
from stream.monitor.grafana import panel_queries
from stream.scoring import signature as sig
from stream.scoring.triton import TritonScorer
from stream.settings import Settings
from stream.simulate.config import SimConfig
from stream.simulate.emission import Message
from tests.stream.workers import (
    ROOT,
    Outputs,
    World,
    consumed,
    engine_settings,
    log_tail,
    ready_version,
    send_messages,
    start_worker,
    stop_worker,
    world,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

WORLD = SimConfig(
    seed=86,
    users=1500,
    days=1.0,
    campaigns=1,
    promotions_per_campaign=2,
    exposure_rate=3.0,
    attribution_window_s=8 * 3600,
    malformed_rate=0.01,
    drift_start=0.5,
    drift_kind="new_segment",
)
# The simulated day follows a UTC daily rhythm, so a world is the same only when it ends at the same time of
# day: this one ends at the latest 02:00 UTC (its outcomes, checked offline, are then the same on every run).
WORLD_ENDS = clock_time(2, 0)
DASHBOARD = ROOT / "deploy" / "grafana" / "liftstream-dashboard.json"
SHIFTED = ("profile_is_new", "profile_tenure_log_days")
INPUTS = ("clicks", "exposures", "profiles", "promotions")
# Sent at a pace the worker keeps up with, as live traffic is: a backlog lets it consume one topic ahead of
# another, and exposures scored before their user's profile or clicks drift from the reference.
RATE = 300.0
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass(frozen=True)
class Plan:
    """What the test sends, in order, and the simulation behind it."""

    world: World
    strong: str
    dud: str
    goal: float
    starts: list[Message]
    before: list[Message]
    during: list[Message]
    extra: list[Message]

    @property
    def sent(self) -> list[Message]:
        return [*self.starts, *self.before, *self.during, *self.extra]

    def exposure_ids(self, messages: list[Message]) -> set[str]:
        return {json.loads(m.value)["event_id"] for m in messages if m.valid and m.topic == "exposures"}


@dataclass
class Run:
    plan: Plan
    outputs: dict[str, list[dict[str, Any]]]
    quiet_reports: list[dict[str, Any]]
    alerts_before_shift: list[dict[str, Any]]
    quiet_psi: float
    shifted_report: dict[str, Any]
    shifted_psi: float
    threshold: float
    panels: list[tuple[str, str, list[dict[str, Any]]]]
    worker: Samples
    prometheus: Samples


@pytest.fixture(scope="module")
def run(
    test_settings: Settings,
    served_model: Path,
    kafka_bootstrap: str,
    prometheus_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    tmp = tmp_path_factory.mktemp("live_stack")
    plan = make_plan(world(WORLD, _latest(WORLD_ENDS)))
    served_version = asyncio.run(ready_version(test_settings.triton_url))
    repo = tmp / "repo"
    asyncio.run(_write_reference(test_settings.triton_url, plan, served_version, tmp / "history", repo))
    settings = engine_settings(test_settings, f"t{uuid.uuid4().hex[:10]}", tmp / "run")
    settings = settings.model_copy(update={"model_repo": repo})
    quiet_rows = str(len(plan.exposure_ids(plan.before)))
    log = tmp / "worker.log"
    worker = start_worker(
        settings,
        log,
        metrics_port=test_settings.metrics_port,
        LIFTSTREAM_DRIFT__WINDOW_EVENTS=quiet_rows,
        LIFTSTREAM_DRIFT__MIN_EVENTS=quiet_rows,
        LIFTSTREAM_DRIFT__REPORT_INTERVAL_S="1",
        LIFTSTREAM_WINDOWS__ATTRIBUTION_WINDOW_S=str(WORLD.attribution_window_s),
    )
    try:
        return asyncio.run(_drive(settings, plan, worker, test_settings.metrics_port, prometheus_url))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker log ---\n{log_tail(log)}") from exc
    finally:
        stop_worker(worker)


def _latest(at: clock_time) -> datetime:
    now = datetime.now(UTC)
    end = datetime.combine(now.date(), at, UTC)
    return end if end <= now else end - timedelta(days=1)


def make_plan(w: World) -> Plan:
    meta = w.sim.meta
    strong, dud = meta["strong_promotion_id"], meta["dud_promotion_id"]
    goal = float(meta["promotions"][dud]["target_uplift"])
    messages = w.messages()
    episode = w.sim.config.start + timedelta(milliseconds=(WORLD.drift_ms or (0, 0))[0])
    cut = next(i for i, m in enumerate(messages) if m.valid and m.ts_ms >= episode.timestamp() * 1000)
    before, during = messages[:cut], messages[cut:]
    starts = [m for m in before if m.valid and m.topic == "promotions"]
    return Plan(w, strong, dud, goal, starts, before, during, _redelivered_and_late(before))


def _redelivered_and_late(before: list[Message]) -> list[Message]:
    """A click sent again, a click older than the lateness (2 days), a profile older than the user's."""
    click = next(m for m in before if m.valid and m.topic == "clicks")
    profile = next(m for m in before if m.valid and m.topic == "profiles")
    old_click = ClickEvent.model_validate_json(click.value)
    late_click = old_click.model_copy(
        update={"event_id": f"{old_click.event_id}-late", "ts": old_click.ts - timedelta(days=3)}
    )
    old_profile = UserProfileEvent.model_validate_json(profile.value)
    late_profile = old_profile.model_copy(update={"ts": old_profile.ts - timedelta(days=1)})
    return [
        click,
        replace(click, value=encode(late_click), ts_ms=int(late_click.ts.timestamp() * 1000)),
        replace(profile, value=encode(late_profile), ts_ms=int(late_profile.ts.timestamp() * 1000)),
    ]


async def _write_reference(triton_url: str, plan: Plan, version: int, history: Path, repo: Path) -> None:
    """The drift reference of the part before the episode, scored by `version` of the served model."""
    sim = plan.world.sim
    write_history(history, sim.promotions, sim.profiles, sim.exposures, sim.clicks, sim.truth, sim.meta)
    ds = build_dataset(history)
    ds = ds.subset(np.isin(ds.event_ids, sorted(plan.exposure_ids(plan.before))))
    tokens = promo_tokens(ds.promo_texts)
    scorer = TritonScorer(triton_url)
    try:
        vectors = await scorer.encode(tokens.input_ids, tokens.attention_mask, version=version)
        scored = await score_rows(
            scorer, ds, tokens.promotion_ids, vectors,
            batch_size=sig.SCORER_MAX_BATCH, max_in_flight=2, version=version,
        )  # fmt: skip
    finally:
        await scorer.close()
    out = repo / sig.SCORER / str(version)
    out.mkdir(parents=True)
    reference = build_reference(ds.user_features, ds.promo_attrs, ds.arm, scored.p_treated, scored.p_control)
    save_reference(reference, out / "reference.json")


async def _drive(
    settings: Settings, plan: Plan, worker: subprocess.Popen[bytes], port: int, prometheus: str
) -> Run:
    def alive() -> bool:
        return worker.poll() is None

    threshold = settings.drift.psi_threshold
    async with Outputs(settings) as out:
        await send_messages(settings, plan.starts)
        await consumed(settings, ("promotions",))

        await send_messages(settings, plan.before, RATE)
        quiet_ids = plan.exposure_ids(plan.before)
        await out.until(lambda o: quiet_ids <= _predicted(o), 240, alive)
        await out.until(lambda o: bool(o.seen["drift"]), 60, alive)
        quiet_reports, alerts_before_shift = list(out.seen["drift"]), list(out.seen["alerts"])
        quiet_psi = _samples(port)[_key("liftstream_drift_max_psi", scope="overall")]

        await send_messages(settings, plan.during, RATE)
        every_id = plan.world.exposure_ids
        await out.until(lambda o: every_id <= _predicted(o), 240, alive)
        await consumed(settings, INPUTS)
        shifted_since = datetime.now(UTC)
        panels = await _dashboard(prometheus, len(every_id))
        await out.until(lambda o: _report_after(o, shifted_since) is not None, 60, alive)
        shifted_report = _report_after(out, shifted_since)
        assert shifted_report is not None
        shifted_psi = _samples(port)[_key("liftstream_drift_max_psi", scope="overall")]
        await out.until(lambda o: _alerted(o, plan.dud), 60, alive)

        await send_messages(settings, plan.extra)
        await consumed(settings, INPUTS)
        await out.until(lambda o: _effects_complete(o, plan), 60, alive)
        worker_samples = _samples(port)
        raised = {
            (dict(labels)["kind"], dict(labels)["state"]): v
            for (name, labels), v in worker_samples.items() if name == "liftstream_alerts_total"
        }
        await out.until(lambda o: _alert_counts(o, raised) == raised, 30, alive)
        prometheus_samples = await _scraped(prometheus, worker_samples)
        return Run(
            plan, dict(out.seen), quiet_reports, alerts_before_shift, quiet_psi, shifted_report,
            shifted_psi, threshold, panels, worker_samples, prometheus_samples,
        )  # fmt: skip


def _predicted(out: Outputs) -> set[str]:
    return {p["event_id"] for p in out.seen["predictions"]}


def _report_after(out: Outputs, since: datetime) -> dict[str, Any] | None:
    later = [r for r in out.seen["drift"] if datetime.fromisoformat(r["emitted_at"]) > since]
    return later[-1] if later else None


def _alerted(out: Outputs, promotion_id: str) -> bool:
    return any(
        a["kind"] == "underperforming" and a["promotion_id"] == promotion_id for a in out.seen["alerts"]
    )


def _alert_counts(out: Outputs, kinds: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """Published alerts by (kind, state), as `liftstream_alerts_total` counts them."""
    counts = Counter((a["kind"], a["state"]) for a in out.seen["alerts"])
    return {kind: float(counts[kind]) for kind in kinds}


def _effects_complete(out: Outputs, plan: Plan) -> bool:
    """The latest effect of each promotion accounts for all of its exposures."""
    exposed = Counter(e.promotion_id for e in plan.world.sim.exposures)
    effects = out.latest_effects()
    return all(
        p in effects and effects[p]["exposures_treatment"] + effects[p]["exposures_holdout"] == n
        for p, n in exposed.items()
    )


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def _samples(port: int) -> Samples:
    """Every sample of the worker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:  # noqa: S310
        text = resp.read().decode()
    return {
        _key(s.name, **s.labels): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _query(base: str, promql: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
    with urllib.request.urlopen(f"{base}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=10) as resp:  # noqa: S310
        body = json.load(resp)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(r["value"][1])) for r in result)


async def _until_scraped(base: str, promql: str, done: Callable[[list[dict[str, Any]]], bool]) -> None:
    deadline = time.monotonic() + 60
    while not done(result := await asyncio.to_thread(_query, base, promql)):
        assert time.monotonic() < deadline, f"Prometheus never answered {promql} as expected: {result}"
        await asyncio.sleep(1.0)


async def _dashboard(base: str, predictions: int) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Every panel query, evaluated once Prometheus has scraped the finished run (rates over the last minute
    still cover it); retried a little, as series first seen at the last scrape need a second sample."""
    await _until_scraped(
        base,
        'sum(liftstream_events_out_total{job="liftstream-worker", topic="predictions"})',
        lambda r: bool(r) and float(r[0]["value"][1]) >= predictions,
    )
    queries = panel_queries(DASHBOARD)
    deadline = time.monotonic() + 20
    while True:
        at = time.time()
        results = [(title, q, await asyncio.to_thread(_query, base, q, at)) for title, q in queries]
        if all(_finite(r) for _, _, r in results) or time.monotonic() > deadline:
            return results
        await asyncio.sleep(2.0)


def _settled(key: tuple[str, frozenset[tuple[str, str]]]) -> bool:
    """Counters that no longer change once the input is processed (drift reports go on every second)."""
    name, labels = key
    if name == "liftstream_events_out_total":
        return dict(labels)["topic"] in ("predictions", "dead-letter")
    return name in ("liftstream_events_in_total", "liftstream_dead_letters_total")


async def _scraped(base: str, worker: Samples) -> Samples:
    """The worker's settled counters as Prometheus holds them, once it has caught up."""
    names = ("liftstream_events_in_total", "liftstream_events_out_total", "liftstream_dead_letters_total")
    want = {k: v for k, v in worker.items() if _settled(k)}

    def current() -> Samples:
        got: Samples = {}
        for name in names:
            for r in _query(base, f'{name}{{job="liftstream-worker"}}'):
                labels = {k: v for k, v in r["metric"].items() if k not in ("__name__", "job", "instance")}
                got[_key(name, **labels)] = float(r["value"][1])
        return {k: v for k, v in got.items() if _settled(k)}

    deadline = time.monotonic() + 60
    while (got := await asyncio.to_thread(current)) != want and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
    return got


def _expected_inputs(plan: Plan) -> dict[tuple[str, str], int]:
    """(topic, outcome) → messages, from what was sent: the extras are one duplicate and two late events."""
    counts = Counter((m.topic, "ok" if m.valid else "dead_letter") for m in plan.sent)
    counts["clicks", "ok"] -= 2
    counts["profiles", "ok"] -= 1
    counts.update({("clicks", "duplicate"): 1, ("clicks", "late"): 1, ("profiles", "late"): 1})
    return {(t, o): counts[t, o] for t in INPUTS for o in ("ok", "dead_letter", "late", "duplicate")}


def _expected_dead_letters(plan: Plan) -> Counter[tuple[str, str]]:
    reasons: Counter[tuple[str, str]] = Counter()
    for m in plan.sent:
        if m.valid:
            continue
        try:
            decode(m.topic, m.value)
        except DecodeError as exc:
            reasons[m.topic, exc.reason] += 1
        else:
            raise AssertionError(f"a malformed message decodes: {m.value[:200]!r}")
    return reasons


def _top(report: dict[str, Any], n: int = 5) -> list[tuple[str, float]]:
    ranked = sorted(report["features"], key=lambda f: f["psi"], reverse=True)
    return [(f["name"], round(f["psi"], 3)) for f in ranked[:n]]


def test_every_dashboard_panel_query_returns_data(run: Run) -> None:
    assert len(run.panels) >= 20
    empty = [f"{title!r}: {query}" for title, query, result in run.panels if not _finite(result)]
    assert not empty, "panel queries without data:\n" + "\n".join(empty)


def test_input_counters_match_what_was_sent(run: Run) -> None:
    expected = _expected_inputs(run.plan)
    for source in (run.worker, run.prometheus):
        got = {
            (t, o): source.get(_key("liftstream_events_in_total", topic=t, outcome=o), 0.0)
            for t, o in expected
        }
        assert got == expected
    assert expected["clicks", "dead_letter"] > 0 and expected["exposures", "ok"] > 1000


def test_dead_letters_are_counted_by_reason(run: Run) -> None:
    expected = _expected_dead_letters(run.plan)
    for source in (run.worker, run.prometheus):
        got = {
            (dict(labels)["topic"], dict(labels)["reason"]): v
            for (name, labels), v in source.items()
            if name == "liftstream_dead_letters_total" and v
        }
        assert got == expected
    assert run.worker[_key("liftstream_events_out_total", topic="dead-letter")] == sum(expected.values())
    assert len(run.outputs["dead-letter"]) == sum(expected.values())


def test_predictions_and_exposures_per_arm_match_the_world(run: Run) -> None:
    exposures = run.plan.world.sim.exposures
    for source in (run.worker, run.prometheus):
        assert source[_key("liftstream_events_out_total", topic="predictions")] == len(exposures)
    assert len(run.outputs["predictions"]) == len(exposures)
    by_arm = Counter((e.campaign_id, e.promotion_id, e.arm.value) for e in exposures)
    got = {
        (c, p, a): run.worker[_key("liftstream_exposures", campaign=c, promotion=p, arm=a)]
        for c, p, a in by_arm
    }
    assert got == by_arm and len(by_arm) == 4


def test_drift_stays_quiet_before_the_shift_and_fires_after_it(run: Run) -> None:
    quiet_rows = len(run.plan.exposure_ids(run.plan.before))
    assert run.quiet_reports and all(r["window_events"] == quiet_rows for r in run.quiet_reports)
    loudest = max(run.quiet_reports, key=lambda r: r["max_psi"])
    assert not loudest["drifted"] and loudest["max_psi"] < run.threshold, _top(loudest)
    assert run.quiet_psi < run.threshold
    assert not [a for a in run.alerts_before_shift if a["kind"] == "drift"]

    report = run.shifted_report
    assert report["drifted"] and report["max_psi"] > run.threshold
    psi = {f["name"]: f["psi"] for f in report["features"]}
    assert all(psi[f] > run.threshold for f in SHIFTED), _top(report)
    assert run.shifted_psi > run.threshold
    drift_alerts = [a for a in run.outputs["alerts"] if a["kind"] == "drift"]
    assert drift_alerts and all(a["value"] > run.threshold for a in drift_alerts)


def test_the_dud_raises_an_underperforming_alert_and_the_strong_promotion_none(run: Run) -> None:
    underperforming = [a for a in run.outputs["alerts"] if a["kind"] == "underperforming"]
    assert {a["promotion_id"] for a in underperforming} == {run.plan.dud}
    assert all(a["threshold"] == pytest.approx(run.plan.goal) for a in underperforming)
    effects = {e["promotion_id"]: e for e in run.outputs["campaign-effects"]}
    assert effects[run.plan.dud]["status"] == "underperforming"
    assert effects[run.plan.strong]["status"] in ("meeting_goal", "inconclusive")
    alerts = Counter((a["kind"], a["state"]) for a in run.outputs["alerts"])
    for (kind, state), n in alerts.items():
        assert run.worker[_key("liftstream_alerts_total", kind=kind, state=state)] == n
