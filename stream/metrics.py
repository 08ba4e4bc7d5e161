"""Every Prometheus metric liftstream exports, declared in one place on an injected registry.

Labels stay low-cardinality: topics are the logical topic names (keys of `INPUT_EVENTS` / `OUTPUT_EVENTS`,
independent of how a deployment renames the Kafka topics), models, outcomes, arms, campaigns and promotions,
drift scopes and feature names. Never a user or event id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from stream.events.models import (
    INPUT_EVENTS,
    OUTPUT_EVENTS,
    Alert,
    AlertKind,
    Arm,
    CampaignEffect,
    CampaignStatus,
    DriftReport,
    Interval,
    Outcome,
)
from stream.health import WSGIApp
from stream.scoring.signature import ENCODER, SCORER

log = logging.getLogger(__name__)

TOPICS = frozenset(INPUT_EVENTS) | frozenset(OUTPUT_EVENTS)
INPUT_OUTCOMES = ("ok", "dead_letter", "late", "duplicate")
ALERT_STATES = ("firing", "resolved")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
TRITON_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The worker's metrics. Methods are called once per batch or per emitted output, never per event."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._campaign_updated: dict[tuple[str, str], float] = {}
        ns = "liftstream"

        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
            return Counter(name, doc, tuple(labels), namespace=ns, registry=registry)

        def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
            return Gauge(name, doc, tuple(labels), namespace=ns, registry=registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...], labels: Iterable[str] = ()
                      ) -> Histogram:
            return Histogram(name, doc, tuple(labels), namespace=ns, registry=registry, buckets=buckets)

        self.events_in = counter("events_in_total", "input messages by topic and outcome",
                                 ("topic", "outcome"))
        self.events_out = counter("events_out_total", "output events published by topic", ("topic",))
        self.dead_letters = counter("dead_letters_total", "messages sent to the dead-letter topic",
                                    ("topic", "reason"))
        self.batch_size = histogram("batch_size", "exposures per scoring batch", BATCH_BUCKETS)
        self.triton_seconds = histogram("triton_request_seconds", "Triton request duration, failed ones too",
                                        TRITON_BUCKETS, ("model",))
        self.triton_errors = counter("triton_errors_total", "failed Triton requests by error code",
                                     ("model", "code"))
        self.triton_up = gauge("triton_up", "1 while the worker reaches Triton, 0 while it backs off")
        self.prediction_latency = histogram("prediction_latency_seconds",
                                            "exposure event time to published prediction", LATENCY_BUCKETS)
        self.consumer_lag = gauge("consumer_lag", "messages behind the log end", ("topic", "partition"))
        self.inflight = gauge("inflight_requests", "Triton requests in flight")
        self.model_version = gauge("model_version", "model version being served", ("model",))
        promo = ("campaign", "promotion")
        per_outcome = (*promo, "outcome")
        self.exposures = gauge("exposures", "exposures in the effect window by arm", (*promo, "arm"))
        self.predicted_uplift = gauge("predicted_uplift", "mean predicted uplift", per_outcome)
        self.realised_uplift = gauge("realised_uplift", "treatment minus holdout rate", per_outcome)
        fixed = "fixed-horizon 95% interval of the realised uplift (for reference, never decided on)"
        self.realised_low = gauge("realised_uplift_low", f"{fixed}, lower bound", per_outcome)
        self.realised_high = gauge("realised_uplift_high", f"{fixed}, upper bound", per_outcome)
        anytime = "anytime-valid interval of the realised uplift"
        self.anytime_low = gauge("anytime_uplift_low", f"{anytime}, lower bound", per_outcome)
        self.anytime_high = gauge("anytime_uplift_high", f"{anytime}, upper bound", per_outcome)
        self.adjusted_uplift = gauge("adjusted_uplift", "realised uplift adjusted by the model's predictions",
                                     per_outcome)
        adjusted = "anytime-valid interval of the adjusted uplift"
        self.adjusted_low = gauge("adjusted_uplift_low", f"{adjusted}, lower bound", per_outcome)
        self.adjusted_high = gauge("adjusted_uplift_high", f"{adjusted}, upper bound", per_outcome)
        self.variance_reduction = gauge("variance_reduction", "share of the uplift's variance the adjustment"
                                        " removes", per_outcome)
        self.goal_uplift = gauge("goal_uplift", "target uplift of the promotion's goal outcome", per_outcome)
        self.campaign_status = gauge("campaign_status", "1 for the promotion's current status, else 0",
                                     (*promo, "status"))
        self.at_risk = gauge("at_risk", "1 while the model predicts the promotion below its goal and the"
                             " realised data has not decided yet, else 0", promo)
        self.drift_psi = gauge("drift_psi", "population stability index per feature", ("feature", "scope"))
        self.drift_max_psi = gauge("drift_max_psi", "largest feature PSI", ("scope",))
        self.drift_window = gauge("drift_window_events", "live rows the drift scores are computed over",
                                  ("scope",))
        self.drift_threshold = gauge("drift_threshold", "PSI above which a feature counts as drifted")
        self.alerts = counter("alerts_total", "alert events published by kind and state", ("kind", "state"))
        self.alert_firing = gauge("alert_firing", "1 while an alert of this kind fires for the promotion"
                                  " (empty labels for drift and Triton), 0 once resolved", ("kind", *promo))
        self._initialise()

    def _initialise(self) -> None:
        # Series that exist from the start make rate() and ratios well defined before the first event.
        for topic in INPUT_EVENTS:
            for outcome in INPUT_OUTCOMES:
                self.events_in.labels(topic, outcome)
        for topic in OUTPUT_EVENTS:
            self.events_out.labels(topic)
        for model in (ENCODER, SCORER):
            self.triton_seconds.labels(model)
        for kind in AlertKind:
            for state in ALERT_STATES:
                self.alerts.labels(kind.value, state)
        self.triton_up.set(1)

    def observe_input(self, topic: str, ok: int = 0, late: int = 0, duplicate: int = 0) -> None:
        """Counts a consumed batch of `topic`; dead letters are counted by `dead_letter`."""
        _check_topic(topic)
        for outcome, n in (("ok", ok), ("late", late), ("duplicate", duplicate)):
            if n:
                self.events_in.labels(topic, outcome).inc(n)

    def dead_letter(self, topic: str, reason: str, n: int = 1) -> None:
        """Counts `n` input messages of `topic` routed to the dead-letter topic for `reason`."""
        _check_topic(topic)
        self.events_in.labels(topic, "dead_letter").inc(n)
        self.dead_letters.labels(topic, reason).inc(n)

    def published(self, topic: str, n: int = 1) -> None:
        _check_topic(topic)
        self.events_out.labels(topic).inc(n)

    def observe_batch(self, size: int, latencies_s: Iterable[float] | np.ndarray) -> None:
        """One scored and published batch: its size and each prediction's event→prediction latency."""
        self.batch_size.observe(size)
        for seconds in np.asarray(latencies_s, dtype=np.float64).ravel():
            self.prediction_latency.observe(max(float(seconds), 0.0))

    def observe_triton(self, model: str, seconds: float, error_code: str | None = None) -> None:
        """One Triton request (including failed attempts); `error_code` e.g. a gRPC status name."""
        self.triton_seconds.labels(model).observe(seconds)
        if error_code is not None:
            self.triton_errors.labels(model, error_code).inc()

    def set_triton_up(self, up: bool) -> None:
        self.triton_up.set(1 if up else 0)

    def track_inflight(self) -> AbstractContextManager[None]:
        """Context manager around one Triton request: counts it as in flight while inside."""
        return self.inflight.track_inprogress()  # type: ignore[no-any-return]

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        _check_topic(topic)
        self.consumer_lag.labels(topic, str(partition)).set(max(lag, 0))

    def set_model_version(self, model: str, version: int) -> None:
        self.model_version.labels(model).set(version)

    def set_campaign(self, effect: CampaignEffect) -> None:
        """The latest effect of one promotion replaces its previous values."""
        key = (effect.campaign_id, effect.promotion_id)
        self.exposures.labels(*key, Arm.treatment.value).set(effect.exposures_treatment)
        self.exposures.labels(*key, Arm.holdout.value).set(effect.exposures_holdout)
        for gauge, values in ((self.predicted_uplift, effect.predicted_uplift),
                              (self.realised_uplift, effect.realised_uplift),
                              (self.adjusted_uplift, effect.adjusted_uplift),
                              (self.variance_reduction, effect.variance_reduction)):
            _set_outcomes(gauge, key, values)
        for low, high, intervals in ((self.realised_low, self.realised_high, effect.realised_uplift_ci),
                                     (self.anytime_low, self.anytime_high, effect.anytime_ci),
                                     (self.adjusted_low, self.adjusted_high, effect.adjusted_ci)):
            _set_intervals(low, high, key, intervals)
        for outcome in Outcome:
            if outcome is not effect.goal.outcome:
                _remove(self.goal_uplift, *key, outcome.value)
        self.goal_uplift.labels(*key, effect.goal.outcome.value).set(effect.goal.target_uplift)
        for status in CampaignStatus:
            self.campaign_status.labels(*key, status.value).set(1 if status is effect.status else 0)
        self.at_risk.labels(*key).set(1 if effect.at_risk else 0)
        self._campaign_updated[key] = time.monotonic()

    def retire_campaigns(self, stopped: Iterable[tuple[str, str]], idle_s: float) -> int:
        """Drops the series of stopped promotions, (campaign_id, promotion_id), whose effect has not changed
        for `idle_s` (their attribution window has closed); returns how many."""
        since = self._campaign_updated
        now = time.monotonic()
        idle = [k for k in stopped if k in since and now - since[k] >= idle_s]
        for key in idle:
            self.remove_campaign(*key)
        return len(idle)

    def remove_campaign(self, campaign_id: str, promotion_id: str) -> None:
        """Drops a stopped promotion's series so dashboards and rules stop seeing it."""
        key = (campaign_id, promotion_id)
        self._campaign_updated.pop(key, None)
        for arm in Arm:
            _remove(self.exposures, *key, arm.value)
        for outcome in Outcome:
            for gauge in self._per_outcome():
                _remove(gauge, *key, outcome.value)
        for status in CampaignStatus:
            _remove(self.campaign_status, *key, status.value)
        _remove(self.at_risk, *key)
        for kind in AlertKind:
            _remove(self.alert_firing, kind.value, *key)

    def _per_outcome(self) -> tuple[Gauge, ...]:
        return (self.predicted_uplift, self.realised_uplift, self.realised_low, self.realised_high,
                self.anytime_low, self.anytime_high, self.adjusted_uplift, self.adjusted_low,
                self.adjusted_high, self.variance_reduction, self.goal_uplift)

    def set_drift(self, report: DriftReport, threshold: float) -> None:
        self.drift_threshold.set(threshold)
        self.drift_max_psi.labels(report.scope).set(report.max_psi)
        self.drift_window.labels(report.scope).set(report.window_events)
        for feature in report.features:
            self.drift_psi.labels(feature.name, report.scope).set(feature.psi)

    def alert(self, alert: Alert) -> None:
        """One published alert event: counted, and its firing gauge follows it so resolution is visible."""
        self.alerts.labels(alert.kind.value, alert.state).inc()
        firing = self.alert_firing.labels(alert.kind.value, alert.campaign_id or "", alert.promotion_id or "")
        firing.set(1 if alert.state == "firing" else 0)


def serve(
    port: int, registry: CollectorRegistry, addr: str = "0.0.0.0", routes: Mapping[str, WSGIApp] | None = None
) -> WSGIServer | None:
    """Starts /metrics, and `routes` (path → WSGI app: the worker's /live and /ready, stream/health.py), in
    a daemon thread; port 0 disables it. Returns the server (to `shutdown()`)."""
    if port == 0:
        log.info("metrics endpoint disabled (metrics_port=0)")
        return None
    metrics, paths = make_wsgi_app(registry), dict(routes or {})

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return paths.get(environ.get("PATH_INFO", ""), metrics)(environ, start_response)

    server = make_server(addr, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics%s", addr, port, "".join(f", {p}" for p in paths))
    return server


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes and scrapes every few seconds: no access log."""


def _check_topic(topic: str) -> None:
    if topic not in TOPICS:
        raise ValueError(f"unknown topic label {topic!r}: use the logical name, one of {sorted(TOPICS)}")


def _set_outcomes(gauge: Gauge, key: tuple[str, str], values: Mapping[Outcome, float]) -> None:
    # An outcome missing from this effect (e.g. no adjusted estimate any more) must not keep a stale value.
    for outcome in Outcome:
        if outcome in values:
            gauge.labels(*key, outcome.value).set(values[outcome])
        else:
            _remove(gauge, *key, outcome.value)


def _set_intervals(low: Gauge, high: Gauge, key: tuple[str, str], intervals: Mapping[Outcome, Interval]
                   ) -> None:
    _set_outcomes(low, key, {o: ci.low for o, ci in intervals.items()})
    _set_outcomes(high, key, {o: ci.high for o, ci in intervals.items()})


def _remove(metric: Gauge, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        return
