"""Alerts the engine publishes on the `alerts` topic: pure checks, and a gate that keeps them from repeating.

Each check looks at one subject (a promotion's condition, a drift scope, a Triton model) and returns a
`Check`: the alert to raise, or none when the condition is clear. Alert ids are derived from the subject and
the input's own time, so a replay of the same input yields the same ids and consumers can de-duplicate; a
resolved alert carries the id of the alert it resolves. The gate lives in the worker's memory: after a
restart a condition that still holds fires again (with a new id).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from stream.events.models import Alert, AlertKind, CampaignEffect, CampaignStatus, DriftReport

Severity = Literal["info", "warning", "critical"]

_ID_MAX = 128
_TOP_FEATURES = 3


@dataclass(frozen=True)
class Check:
    subject: str
    alert: Alert | None
    """None: the condition is clear for this subject."""
    at: datetime
    """The input's own time: a resolved alert is stamped with it."""


def _effect_alert(effect: CampaignEffect, kind: AlertKind, severity: Severity, message: str) -> Alert:
    subject = f"{kind.value}:{effect.campaign_id}:{effect.promotion_id}"
    d = effect.decision
    return Alert(
        alert_id=_alert_id(subject, effect.window_end),
        kind=kind,
        severity=severity,
        campaign_id=effect.campaign_id,
        promotion_id=effect.promotion_id,
        message=message,
        value=effect.predicted_uplift.get(d.outcome) if kind is AlertKind.at_risk else d.uplift,
        threshold=effect.goal.target_uplift,
        raised_at=effect.emitted_at,
    )


def check_effect(effect: CampaignEffect) -> list[Check]:
    """One check per campaign condition: `underperforming` and `meeting_goal` follow the status (decided on
    the anytime-valid interval), `at_risk` the model's early warning."""
    d, goal = effect.decision, effect.goal
    who = f"promotion {effect.promotion_id} of campaign {effect.campaign_id}"
    target = f"its {d.outcome.value} uplift goal {goal.target_uplift:+.4g}"
    level = f"{1 - d.alpha:.0%}"
    which = "model-adjusted " if d.adjusted else ""
    shown = "" if d.interval is None else (
        f"realised {d.uplift:+.4g}, {which}anytime-valid {level} interval"
        f" {d.interval.low:+.4g} … {d.interval.high:+.4g}"
    )
    exposures = f"exposures {effect.exposures_treatment} treatment / {effect.exposures_holdout} holdout"
    conditions: list[tuple[AlertKind, Severity, bool, str]] = [
        (AlertKind.underperforming, "critical", effect.status is CampaignStatus.underperforming,
         f"{who} is below {target}: {shown}; {exposures}"),
        (AlertKind.meeting_goal, "info", effect.status is CampaignStatus.meeting_goal,
         f"{who} meets {target}: {shown}; {exposures}"),
    ]
    predicted = effect.predicted_uplift_ci.get(d.outcome)
    mean = effect.predicted_uplift.get(d.outcome, 0.0)
    span = "" if predicted is None else f" (interval {predicted.low:+.4g} … {predicted.high:+.4g})"
    conditions.append((AlertKind.at_risk, "info", effect.at_risk,
                       f"{who} is predicted below {target}: predicted {mean:+.4g}{span}, not yet decided"
                       f" by its realised data; {exposures}"))
    return [
        Check(
            f"{kind.value}:{effect.campaign_id}:{effect.promotion_id}",
            _effect_alert(effect, kind, severity, message) if on else None,
            effect.emitted_at,
        )
        for kind, severity, on, message in conditions
    ]


def check_drift(report: DriftReport, threshold: float) -> Check:
    """Drift: some input feature or prediction of this scope moved away from the training reference."""
    subject = f"{AlertKind.drift.value}:{report.scope}"
    if not report.drifted:
        return Check(subject, None, report.emitted_at)
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
    ), report.emitted_at)


def check_triton(model: str, down_since: datetime | None, now: datetime, error: str = "") -> Check:
    """Triton unavailable: `down_since` is when the worker's current run of failed requests began."""
    subject = f"{AlertKind.triton_unavailable.value}:{model}"
    if down_since is None:
        return Check(subject, None, now)
    down_s = max((now - down_since).total_seconds(), 0.0)
    detail = f": {error[:512]}" if error else ""
    return Check(subject, Alert(
        alert_id=_alert_id(subject, now),
        kind=AlertKind.triton_unavailable,
        severity="critical",
        message=f"Triton model {model} unavailable for {down_s:.0f} s; scoring is backing off{detail}",
        value=down_s,
        raised_at=now,
    ), now)


class AlertGate:
    """Turns checks into alert events: a subject's alert fires when its condition starts (or its severity
    changes) and is published again, `resolved`, when the condition clears. Campaign conditions fire once;
    the operational ones (drift, Triton) fire again after `cooldown_s` while they persist."""

    ONCE = frozenset({AlertKind.underperforming, AlertKind.meeting_goal, AlertKind.at_risk})

    def __init__(self, cooldown_s: float) -> None:
        self.cooldown_s = cooldown_s
        self._firing: dict[str, Alert] = {}

    def offer(self, check: Check) -> Alert | None:
        alert, last = check.alert, self._firing.get(check.subject)
        if alert is None:
            if last is None:
                return None
            del self._firing[check.subject]
            return last.model_copy(update={"state": "resolved", "raised_at": check.at})
        if last is not None and last.severity == alert.severity:
            persisting = (alert.raised_at - last.raised_at).total_seconds()
            if alert.kind in self.ONCE or persisting < self.cooldown_s:
                return None
        self._firing[check.subject] = alert
        return alert

    def firing(self) -> list[Alert]:
        return list(self._firing.values())


def _alert_id(subject: str, at: datetime) -> str:
    text = f"{subject}:{int(at.timestamp())}"
    if len(text) <= _ID_MAX and all((c.isascii() and c.isalnum()) or c in "_.:-" for c in text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return f"{subject.split(':', 1)[0]}:{digest}"
