"""Alerts the engine publishes on the `alerts` topic: pure checks, and a gate that keeps them from repeating.

Each check looks at one subject (a promotion, a drift scope, a Triton model) and returns a `Check`: the alert
to raise, or none when the condition is clear. Alert ids are derived from the subject and the input's own
time, so a replay of the same input yields the same ids and consumers can de-duplicate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from stream.events.models import Alert, AlertKind, CampaignEffect, CampaignStatus, DriftReport

_ID_MAX = 128
_TOP_FEATURES = 3


@dataclass(frozen=True)
class Check:
    subject: str
    alert: Alert | None
    """None: the condition is clear for this subject."""


def check_effect(effect: CampaignEffect) -> Check:
    """Underperforming: the effects stage judged realised (or, early on, predicted) uplift below the goal."""
    subject = f"{AlertKind.underperforming.value}:{effect.campaign_id}:{effect.promotion_id}"
    if effect.status is not CampaignStatus.underperforming:
        return Check(subject, None)
    outcome = effect.goal.outcome
    goal = effect.goal.target_uplift
    realised = effect.realised_uplift.get(outcome)
    ci = effect.realised_uplift_ci.get(outcome)
    predicted = effect.predicted_uplift.get(outcome)
    # Critical only when even the optimistic end of the realised interval misses the goal.
    severity: Literal["warning", "critical"] = "critical" if ci is not None and ci.high < goal else "warning"
    parts = [f"promotion {effect.promotion_id} of campaign {effect.campaign_id} is below its {outcome.value}"
             f" uplift goal {goal:+.4g}:"]
    if realised is not None:
        interval = f" (95% CI {ci.low:+.4g} … {ci.high:+.4g})" if ci is not None else ""
        parts.append(f"realised {realised:+.4g}{interval},")
    if predicted is not None:
        parts.append(f"predicted {predicted:+.4g},")
    parts.append(f"exposures {effect.exposures_treatment} treatment / {effect.exposures_holdout} holdout")
    return Check(subject, Alert(
        alert_id=_alert_id(subject, effect.window_end),
        kind=AlertKind.underperforming,
        severity=severity,
        campaign_id=effect.campaign_id,
        promotion_id=effect.promotion_id,
        message=" ".join(parts),
        value=realised if realised is not None else predicted,
        threshold=goal,
        raised_at=effect.emitted_at,
    ))


def check_drift(report: DriftReport, threshold: float) -> Check:
    """Drift: some input feature or prediction of this scope moved away from the training reference."""
    subject = f"{AlertKind.drift.value}:{report.scope}"
    if not report.drifted:
        return Check(subject, None)
    worst = sorted((f for f in report.features if f.drifted), key=lambda f: f.psi, reverse=True)
    shown = ", ".join(f"{f.name} {f.psi:.2f}" for f in worst[:_TOP_FEATURES])
    more = f" and {len(worst) - _TOP_FEATURES} more" if len(worst) > _TOP_FEATURES else ""
    return Check(subject, Alert(
        alert_id=_alert_id(subject, report.emitted_at),
        kind=AlertKind.drift,
        severity="warning",
        message=(f"drift in scope {report.scope} over the last {report.window_events} events:"
                 f" PSI {shown}{more} above {threshold:g} (model v{report.model_version})"),
        value=report.max_psi,
        threshold=threshold,
        raised_at=report.emitted_at,
    ))


def check_triton(model: str, down_since: datetime | None, now: datetime, error: str = "") -> Check:
    """Triton unavailable: `down_since` is when the worker's current run of failed requests began."""
    subject = f"{AlertKind.triton_unavailable.value}:{model}"
    if down_since is None:
        return Check(subject, None)
    down_s = max((now - down_since).total_seconds(), 0.0)
    detail = f": {error[:512]}" if error else ""
    return Check(subject, Alert(
        alert_id=_alert_id(subject, now),
        kind=AlertKind.triton_unavailable,
        severity="critical",
        message=f"Triton model {model} unavailable for {down_s:.0f} s; scoring is backing off{detail}",
        value=down_s,
        raised_at=now,
    ))


class AlertGate:
    """De-bounces checks: a subject's alert is raised when it starts, when its severity changes, and again
    after `cooldown_s` while it persists; a clear check re-arms the subject."""

    def __init__(self, cooldown_s: float) -> None:
        self.cooldown_s = cooldown_s
        self._raised: dict[str, tuple[datetime, str]] = {}

    def offer(self, check: Check) -> Alert | None:
        alert = check.alert
        if alert is None:
            self._raised.pop(check.subject, None)
            return None
        last = self._raised.get(check.subject)
        if last is not None:
            at, severity = last
            if severity == alert.severity and (alert.raised_at - at).total_seconds() < self.cooldown_s:
                return None
        self._raised[check.subject] = (alert.raised_at, alert.severity)
        return alert


def _alert_id(subject: str, at: datetime) -> str:
    text = f"{subject}:{int(at.timestamp())}"
    if len(text) <= _ID_MAX and all((c.isascii() and c.isalnum()) or c in "_.:-" for c in text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return f"{subject.split(':', 1)[0]}:{digest}"
