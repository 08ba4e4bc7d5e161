from __future__ import annotations

import re
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from stream.events.models import (
    Alert,
    AlertKind,
    CampaignEffect,
    CampaignStatus,
    Decision,
    DriftReport,
    FeatureDrift,
    Interval,
    Outcome,
    PromotionGoal,
)
from stream.metrics import Metrics, serve
from stream.monitor.grafana import dashboard_queries

pytestmark = pytest.mark.unit
NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def effect(status: CampaignStatus = CampaignStatus.meeting_goal, goal_outcome: Outcome = Outcome.conversion,
           *, adjusted: tuple[Outcome, ...] = (Outcome.visit, Outcome.conversion), at_risk: bool = False,
           ) -> CampaignEffect:
    per = {Outcome.visit: 0.05, Outcome.conversion: 0.01, Outcome.revenue: 0.8}
    return CampaignEffect(
        campaign_id="c1", promotion_id="p1", window_start=NOW, window_end=NOW,
        exposures_treatment=900, exposures_holdout=100,
        predicted_uplift=per, realised_rate_treatment=per, realised_rate_holdout=per,
        realised_uplift={o: v / 2 for o, v in per.items()},
        realised_uplift_ci={o: Interval(low=-v, high=v) for o, v in per.items()},
        anytime_ci={o: Interval(low=-2 * v, high=2 * v) for o, v in per.items()},
        adjusted_uplift={o: per[o] / 4 for o in adjusted},
        adjusted_ci={o: Interval(low=-per[o], high=1.5 * per[o]) for o in adjusted},
        variance_reduction={o: 0.3 for o in adjusted},
        predicted_uplift_ci={o: Interval(low=v - 0.01, high=v + 0.01) for o, v in per.items()},
        goal=PromotionGoal(outcome=goal_outcome, target_uplift=0.02),
        status=status,
        decision=Decision(outcome=goal_outcome, uplift=per[goal_outcome] / 2,
                          interval=Interval(low=-per[goal_outcome], high=per[goal_outcome]),
                          adjusted=goal_outcome in adjusted, alpha=0.05, mixing_scale=0.01),
        at_risk=at_risk, model_version=3, emitted_at=NOW,
    )


def test_input_and_output_counts(metrics: Metrics) -> None:
    metrics.observe_input("exposures", ok=10, late=2, duplicate=1)
    metrics.observe_input("exposures", ok=5)
    metrics.dead_letter("clicks", "malformed_json", 3)
    metrics.published("predictions", 15)
    assert value(metrics, "liftstream_events_in_total", topic="exposures", outcome="ok") == 15
    assert value(metrics, "liftstream_events_in_total", topic="exposures", outcome="late") == 2
    assert value(metrics, "liftstream_events_in_total", topic="exposures", outcome="duplicate") == 1
    assert value(metrics, "liftstream_events_in_total", topic="clicks", outcome="dead_letter") == 3
    assert value(metrics, "liftstream_dead_letters_total", topic="clicks", reason="malformed_json") == 3
    assert value(metrics, "liftstream_events_out_total", topic="predictions") == 15


def test_series_exist_before_any_event(metrics: Metrics) -> None:
    assert value(metrics, "liftstream_events_in_total", topic="profiles", outcome="dead_letter") == 0
    assert value(metrics, "liftstream_events_out_total", topic="alerts") == 0
    assert value(metrics, "liftstream_triton_request_seconds_count", model="effect_scorer") == 0
    assert value(metrics, "liftstream_triton_up") == 1


def test_topic_label_must_be_logical(metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="logical name"):
        metrics.observe_input("user-1234", ok=1)


def test_batch_and_latency(metrics: Metrics) -> None:
    metrics.observe_batch(3, np.array([0.004, 0.2, 7.0]))
    metrics.observe_batch(1, [0.02])
    assert value(metrics, "liftstream_batch_size_count") == 2
    assert value(metrics, "liftstream_batch_size_sum") == 4
    assert value(metrics, "liftstream_prediction_latency_seconds_count") == 4
    assert value(metrics, "liftstream_prediction_latency_seconds_bucket", le="0.005") == 1
    assert value(metrics, "liftstream_prediction_latency_seconds_bucket", le="0.25") == 3
    assert value(metrics, "liftstream_prediction_latency_seconds_sum") == pytest.approx(7.224)


def test_triton(metrics: Metrics) -> None:
    metrics.observe_triton("effect_scorer", 0.01)
    metrics.observe_triton("effect_scorer", 0.5, error_code="UNAVAILABLE")
    metrics.set_triton_up(False)
    with metrics.track_inflight():
        assert value(metrics, "liftstream_inflight_requests") == 1
    assert value(metrics, "liftstream_inflight_requests") == 0
    assert value(metrics, "liftstream_triton_request_seconds_count", model="effect_scorer") == 2
    assert value(metrics, "liftstream_triton_errors_total", model="effect_scorer", code="UNAVAILABLE") == 1
    assert value(metrics, "liftstream_triton_up") == 0


def test_lag_and_model_version(metrics: Metrics) -> None:
    metrics.set_lag("exposures", 2, 120)
    metrics.set_lag("exposures", 3, -4)
    metrics.set_model_version("effect_scorer", 7)
    assert value(metrics, "liftstream_consumer_lag", topic="exposures", partition="2") == 120
    assert value(metrics, "liftstream_consumer_lag", topic="exposures", partition="3") == 0
    assert value(metrics, "liftstream_model_version", model="effect_scorer") == 7


def test_campaign_gauges_follow_the_latest_effect(metrics: Metrics) -> None:
    metrics.set_campaign(effect(CampaignStatus.meeting_goal, Outcome.visit))
    metrics.set_campaign(effect(CampaignStatus.underperforming, Outcome.conversion))
    key = {"campaign": "c1", "promotion": "p1"}
    assert value(metrics, "liftstream_exposures", **key, arm="treatment") == 900
    assert value(metrics, "liftstream_exposures", **key, arm="holdout") == 100
    assert value(metrics, "liftstream_predicted_uplift", **key, outcome="revenue") == 0.8
    assert value(metrics, "liftstream_realised_uplift", **key, outcome="revenue") == 0.4
    assert value(metrics, "liftstream_realised_uplift_low", **key, outcome="visit") == -0.05
    assert value(metrics, "liftstream_realised_uplift_high", **key, outcome="visit") == 0.05
    assert value(metrics, "liftstream_goal_uplift", **key, outcome="conversion") == 0.02
    assert value(metrics, "liftstream_goal_uplift", **key, outcome="visit") is None
    assert value(metrics, "liftstream_campaign_status", **key, status="underperforming") == 1
    for status in ("meeting_goal", "inconclusive", "insufficient_data"):
        assert value(metrics, "liftstream_campaign_status", **key, status=status) == 0
    metrics.remove_campaign("c1", "p1")
    assert value(metrics, "liftstream_exposures", **key, arm="treatment") is None
    assert value(metrics, "liftstream_campaign_status", **key, status="underperforming") is None


def test_campaign_gauges_export_the_anytime_and_adjusted_intervals(metrics: Metrics) -> None:
    key = {"campaign": "c1", "promotion": "p1"}
    metrics.set_campaign(effect(CampaignStatus.inconclusive, at_risk=True))
    assert value(metrics, "liftstream_anytime_uplift_low", **key, outcome="visit") == -0.1
    assert value(metrics, "liftstream_anytime_uplift_high", **key, outcome="revenue") == 1.6
    assert value(metrics, "liftstream_adjusted_uplift", **key, outcome="visit") == 0.0125
    assert value(metrics, "liftstream_adjusted_uplift_low", **key, outcome="conversion") == -0.01
    assert value(metrics, "liftstream_adjusted_uplift_high", **key, outcome="conversion") == 0.015
    assert value(metrics, "liftstream_variance_reduction", **key, outcome="conversion") == 0.3
    assert value(metrics, "liftstream_adjusted_uplift", **key, outcome="revenue") is None
    assert value(metrics, "liftstream_at_risk", **key) == 1
    assert value(metrics, "liftstream_campaign_status", **key, status="inconclusive") == 1
    # An outcome whose adjusted estimate is gone must not keep its last value.
    metrics.set_campaign(effect(CampaignStatus.inconclusive, adjusted=(Outcome.visit,)))
    assert value(metrics, "liftstream_adjusted_uplift", **key, outcome="visit") == 0.0125
    for name in ("adjusted_uplift", "adjusted_uplift_low", "adjusted_uplift_high", "variance_reduction"):
        assert value(metrics, f"liftstream_{name}", **key, outcome="conversion") is None, name
    assert value(metrics, "liftstream_at_risk", **key) == 0


def test_stopped_promotions_retire_once_their_effect_stops_changing(metrics: Metrics) -> None:
    base = effect(CampaignStatus.meeting_goal, Outcome.visit)
    for pid in ("p1", "p2"):
        metrics.set_campaign(base.model_copy(update={"promotion_id": pid}))
        metrics.alert(campaign_alert(AlertKind.meeting_goal, promotion=pid))
    assert metrics.retire_campaigns([("c1", "p1")], idle_s=3600) == 0  # updated just now
    assert metrics.retire_campaigns([("c1", "p1"), ("c1", "p9")], idle_s=0) == 1  # p9 never had series
    p1, p2 = {"campaign": "c1", "promotion": "p1"}, {"campaign": "c1", "promotion": "p2"}
    assert value(metrics, "liftstream_exposures", **p1, arm="treatment") is None
    assert value(metrics, "liftstream_exposures", **p2, arm="treatment") is not None
    retired = [s for family in metrics.registry.collect() for s in family.samples
               if s.labels.get("promotion") == "p1"]
    assert retired == []
    assert value(metrics, "liftstream_alert_firing", kind="meeting_goal", **p2) == 1


def test_drift_and_alerts(metrics: Metrics) -> None:
    report = DriftReport(
        scope="treatment", window_events=500, max_psi=0.4, drifted=True, model_version=1, emitted_at=NOW,
        features=[FeatureDrift(name="24h_spend", psi=0.4, ks=0.2, drifted=True),
                  FeatureDrift(name="hour_sin", psi=0.01, drifted=False)],
    )
    metrics.set_drift(report, threshold=0.25)
    alert = Alert(alert_id="a1", kind=AlertKind.drift, severity="warning", message="m", raised_at=NOW)
    metrics.alert(alert)
    metrics.alert(alert)
    metrics.alert(alert.model_copy(update={"state": "resolved"}))
    assert value(metrics, "liftstream_drift_psi", feature="24h_spend", scope="treatment") == 0.4
    assert value(metrics, "liftstream_drift_max_psi", scope="treatment") == 0.4
    assert value(metrics, "liftstream_drift_window_events", scope="treatment") == 500
    assert value(metrics, "liftstream_drift_threshold") == 0.25
    assert value(metrics, "liftstream_alerts_total", kind="drift", state="firing") == 2
    assert value(metrics, "liftstream_alerts_total", kind="drift", state="resolved") == 1
    assert value(metrics, "liftstream_alert_firing", kind="drift", campaign="", promotion="") == 0


def campaign_alert(kind: AlertKind, promotion: str = "p1") -> Alert:
    return Alert(alert_id=f"{kind.value}:c1:{promotion}:1", kind=kind, severity="info", campaign_id="c1",
                 promotion_id=promotion, message="m", raised_at=NOW)


def test_alert_firing_follows_firing_and_resolved_alerts(metrics: Metrics) -> None:
    key = {"campaign": "c1", "promotion": "p1"}
    assert value(metrics, "liftstream_alerts_total", kind="at_risk", state="resolved") == 0
    at_risk = campaign_alert(AlertKind.at_risk)
    metrics.alert(at_risk)
    metrics.alert(campaign_alert(AlertKind.underperforming))
    assert value(metrics, "liftstream_alert_firing", kind="at_risk", **key) == 1
    assert value(metrics, "liftstream_alert_firing", kind="underperforming", **key) == 1
    metrics.alert(at_risk.model_copy(update={"state": "resolved"}))
    assert value(metrics, "liftstream_alert_firing", kind="at_risk", **key) == 0
    assert value(metrics, "liftstream_alert_firing", kind="underperforming", **key) == 1
    assert value(metrics, "liftstream_alerts_total", kind="at_risk", state="firing") == 1
    assert value(metrics, "liftstream_alerts_total", kind="at_risk", state="resolved") == 1


def test_serve_exposes_the_registry(metrics: Metrics, unused_tcp_port: int) -> None:
    metrics.observe_input("clicks", ok=4)
    assert serve(0, metrics.registry) is None
    server = serve(unused_tcp_port, metrics.registry, addr="127.0.0.1")
    assert server is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{unused_tcp_port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'liftstream_events_in_total{outcome="ok",topic="clicks"} 4.0' in body


def exposed() -> dict[str, set[str]]:
    """Every series name the metrics expose → its label names (`le` for histogram buckets)."""
    names: dict[str, set[str]] = {}
    for metric in vars(Metrics(CollectorRegistry())).values():
        if isinstance(metric, MetricWrapperBase):
            for suffix in SUFFIXES[metric._type]:
                extra = {"le"} if suffix == "_bucket" else set()
                names[metric._name + suffix] = set(metric._labelnames) | extra
    return names


def referenced_queries() -> list[str]:
    queries = dashboard_queries(ROOT / "deploy" / "grafana" / "liftstream-dashboard.json")
    for path in (ROOT / "deploy" / "prometheus").glob("*rules*.yml"):
        if "test" not in path.name:
            groups = yaml.safe_load(path.read_text())["groups"]
            queries += [rule["expr"] for group in groups for rule in group["rules"]]
    return queries


def test_dashboard_and_rules_use_only_declared_metrics_and_labels() -> None:
    names = exposed()
    queries = referenced_queries()
    assert len(queries) > 20
    for query in queries:
        used = set(re.findall(r"\bliftstream_[a-z0-9_]+", query))
        assert used <= set(names), (query, used - set(names))
        for name, matchers in re.findall(r"\b(liftstream_[a-z0-9_]+)\{([^}]*)\}", query):
            labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
            assert labels <= names[name] | {"job", "instance"}, (query, labels - names[name])
        known = set().union(*(names[n] for n in used)) | {"job", "instance"}
        for grouping in re.findall(r"\b(?:by|without|ignoring|on)\s*\(([^)]*)\)", query):
            labels = {label.strip() for label in grouping.split(",") if label.strip()}
            assert labels <= known, (query, labels - known)
