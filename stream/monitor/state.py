"""The monitor's view model: output events folded into per-promotion, drift and alert state, then rows.

Pure: no Kafka and no terminal here, so what the view shows is tested apart from how it is drawn.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from stream.events.models import Alert, CampaignEffect, CampaignStatus, DriftReport, Outcome

SPARK = "▁▂▃▄▅▆▇█"
HISTORY = 40
# Most in need of attention first: decided below its goal, undecided (at risk ones first, see `promotions`),
# and last decided to meet its goal.
_STATUS_ORDER = (
    CampaignStatus.underperforming,
    CampaignStatus.inconclusive,
    CampaignStatus.insufficient_data,
    CampaignStatus.meeting_goal,
)


@dataclass(frozen=True)
class PromotionRow:
    campaign_id: str
    promotion_id: str
    status: CampaignStatus
    at_risk: bool
    outcome: Outcome
    goal: float
    predicted: float | None
    realised: float | None
    ci: tuple[float, float] | None
    """The decision interval: anytime-valid, the model-adjusted one when `adjusted`."""
    adjusted: bool
    exposures_treatment: int
    exposures_holdout: int
    trend: str
    updated: datetime


@dataclass(frozen=True)
class DriftRow:
    scope: str
    window_events: int
    max_psi: float
    drifted: bool
    top: tuple[tuple[str, float], ...]
    updated: datetime


@dataclass
class _Track:
    latest: CampaignEffect
    realised: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))


@dataclass
class MonitorState:
    max_alerts: int = 10
    undecodable: int = 0
    other_schema: int = 0
    """Messages of another schema_version than this monitor reads, e.g. written before an upgrade."""
    _tracks: dict[tuple[str, str], _Track] = field(default_factory=dict)
    _drift: dict[str, DriftReport] = field(default_factory=dict)
    _alerts: dict[str, Alert] = field(default_factory=dict)

    def apply(self, event: BaseModel) -> None:
        if isinstance(event, CampaignEffect):
            self._apply_effect(event)
        elif isinstance(event, DriftReport):
            last = self._drift.get(event.scope)
            if last is None or event.emitted_at >= last.emitted_at:
                self._drift[event.scope] = event
        elif isinstance(event, Alert):
            self._apply_alert(event)

    def _apply_alert(self, alert: Alert) -> None:
        last = self._alerts.get(alert.alert_id)
        # Alerts are published without a key, so a resolution can be read before the alert it resolves.
        if last is not None and last.state == "resolved" and alert.state == "firing":
            return
        self._alerts[alert.alert_id] = alert
        if len(self._alerts) > self.max_alerts:
            oldest = min(self._alerts.values(), key=lambda a: a.raised_at)
            del self._alerts[oldest.alert_id]

    def _apply_effect(self, effect: CampaignEffect) -> None:
        key = (effect.campaign_id, effect.promotion_id)
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(effect)
        elif (effect.emitted_at, effect.window_end) <= (track.latest.emitted_at, track.latest.window_end):
            return  # a replayed or out-of-order copy: the trend already has it
        track.latest = effect
        realised = effect.realised_uplift.get(effect.goal.outcome)
        if realised is not None:
            track.realised.append(realised)

    def promotions(self) -> list[PromotionRow]:
        """Underperforming promotions first, then those at risk, inconclusive, with insufficient data and
        meeting their goal; within each by campaign and promotion."""
        rows = [_promotion_row(t) for t in self._tracks.values()]
        return sorted(rows, key=lambda r: (r.status is not CampaignStatus.underperforming, not r.at_risk,
                                           _STATUS_ORDER.index(r.status), r.campaign_id, r.promotion_id))

    def drift(self, top: int = 3) -> list[DriftRow]:
        rows = []
        for scope in sorted(self._drift, key=lambda s: (s != "overall", s)):
            report = self._drift[scope]
            worst = sorted(report.features, key=lambda f: f.psi, reverse=True)[:top]
            rows.append(DriftRow(scope, report.window_events, report.max_psi, report.drifted,
                                 tuple((f.name, f.psi) for f in worst), report.emitted_at))
        return rows

    def alerts(self) -> list[Alert]:
        """Most recent first; a resolved alert replaces its firing one, stamped with when it resolved."""
        return sorted(self._alerts.values(), key=lambda a: a.raised_at, reverse=True)


def sparkline(values: list[float] | deque[float], width: int = 20) -> str:
    """One block character per value (the last `width`), scaled between their minimum and maximum."""
    tail = list(values)[-width:]
    if not tail:
        return ""
    low, high = min(tail), max(tail)
    if high == low:
        return SPARK[len(SPARK) // 2] * len(tail)
    top = len(SPARK) - 1
    return "".join(SPARK[round((v - low) / (high - low) * top)] for v in tail)


def _promotion_row(track: _Track) -> PromotionRow:
    e = track.latest
    outcome, ci = e.goal.outcome, e.decision.interval
    return PromotionRow(
        campaign_id=e.campaign_id,
        promotion_id=e.promotion_id,
        status=e.status,
        at_risk=e.at_risk,
        outcome=outcome,
        goal=e.goal.target_uplift,
        predicted=e.predicted_uplift.get(outcome),
        realised=e.realised_uplift.get(outcome),
        ci=None if ci is None else (ci.low, ci.high),
        adjusted=e.decision.adjusted,
        exposures_treatment=e.exposures_treatment,
        exposures_holdout=e.exposures_holdout,
        trend=sparkline(track.realised),
        updated=e.emitted_at,
    )
