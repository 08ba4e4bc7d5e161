"""Draws the monitor's state with rich: promotions, drift and recent alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from rich.console import Group
from rich.table import Table
from rich.text import Text

from stream.events.models import Alert, CampaignStatus, Outcome
from stream.monitor.state import MonitorState, PromotionRow

_STATUS_STYLE = {
    CampaignStatus.underperforming: "bold red",
    CampaignStatus.inconclusive: "",
    CampaignStatus.insufficient_data: "dim",
    CampaignStatus.meeting_goal: "green",
}
_AT_RISK_STYLE = "bold yellow"
_SEVERITY_STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}


def uplift(outcome: Outcome, value: float | None) -> str:
    """Visit and conversion uplifts are differences of probabilities (percentage points); revenue is money."""
    if value is None:
        return "–"
    if outcome is Outcome.revenue:
        return f"{value:+.2f}"
    return f"{value * 100:+.2f} pp"


def age(then: datetime, now: datetime) -> str:
    seconds = max((now - then).total_seconds(), 0.0)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def render(state: MonitorState, now: datetime, source: str = "") -> Group:
    header = Text(f"liftstream monitor  {source}  {now:%Y-%m-%d %H:%M:%S} UTC", style="bold")
    parts: list[Text | Table] = [header, _promotions(state, now), _drift(state, now), _alerts(state, now)]
    if state.undecodable:
        parts.append(Text(f"{state.undecodable} messages could not be decoded and were skipped", style="red"))
    if state.other_schema:
        parts.append(Text(f"{state.other_schema} messages of another schema_version were skipped",
                          style="yellow"))
    return Group(*parts)


def _status(row: PromotionRow) -> Text:
    """The status, with the model's early warning beside it: at risk is a flag, never a status."""
    text = Text(row.status.value, style=_STATUS_STYLE[row.status])
    if row.at_risk:
        text.append(", at risk", style=_AT_RISK_STYLE)
    return text


def _interval(row: PromotionRow) -> str:
    if row.ci is None:
        return "–"
    shown = f"{uplift(row.outcome, row.ci[0])} … {uplift(row.outcome, row.ci[1])}"
    return f"{shown} adj." if row.adjusted else shown


def _promotions(state: MonitorState, now: datetime) -> Table:
    table = Table(title="Promotions: predicted vs realised uplift of the goal outcome, decided on its"
                        " anytime-valid interval (adj.: adjusted by the model's predictions)", expand=True)
    left = ("campaign", "promotion", "status", "outcome", "realised trend")
    for column in (*left[:4], "goal", "predicted", "realised", "anytime interval", "realised trend",
                   "exposures T / H", "updated"):
        justify: Literal["left", "right"] = "left" if column in left else "right"
        table.add_column(column, justify=justify, no_wrap=column in ("realised trend", "status"))
    rows = state.promotions()
    for r in rows:
        table.add_row(
            r.campaign_id, r.promotion_id, _status(r),
            r.outcome.value, uplift(r.outcome, r.goal), uplift(r.outcome, r.predicted),
            uplift(r.outcome, r.realised), _interval(r), r.trend,
            f"{r.exposures_treatment:,} / {r.exposures_holdout:,}", age(r.updated, now),
        )
    if not rows:
        table.add_row("no campaign effects yet", *[""] * 10)
    return table


def _drift(state: MonitorState, now: datetime) -> Table:
    table = Table(title="Drift against the training reference", expand=True)
    for column in ("scope", "events", "max PSI", "drifted", "largest PSI", "updated"):
        table.add_column(column, justify="right" if column in ("events", "max PSI", "updated") else "left",
                         ratio=1 if column == "largest PSI" else None)
    rows = state.drift()
    for r in rows:
        flag = Text("DRIFT", style="bold red") if r.drifted else Text("ok", style="green")
        top = ", ".join(f"{name} {psi:.2f}" for name, psi in r.top)
        table.add_row(r.scope, f"{r.window_events:,}", f"{r.max_psi:.3f}", flag, top, age(r.updated, now))
    if not rows:
        table.add_row("no drift reports yet", *[""] * 5)
    return table


def _alerts(state: MonitorState, now: datetime) -> Table:
    table = Table(title="Recent alerts", expand=True)
    for column in ("when", "state", "severity", "kind", "promotion", "message"):
        table.add_column(column, overflow="fold" if column == "message" else "ellipsis",
                         ratio=1 if column == "message" else None)
    alerts = state.alerts()
    for a in alerts:
        subject = "/".join(x for x in (a.campaign_id, a.promotion_id) if x) or "–"
        table.add_row(age(a.raised_at, now), _state(a), Text(a.severity, style=_SEVERITY_STYLE[a.severity]),
                      a.kind.value, subject, Text(a.message, style="dim" if a.state == "resolved" else ""))
    if not alerts:
        table.add_row("no alerts", "", "", "", "", "")
    return table


def _state(alert: Alert) -> Text:
    # A resolved alert keeps its firing message: the state says the condition has cleared since.
    if alert.state == "resolved":
        return Text("resolved", style="green")
    return Text("firing", style=_SEVERITY_STYLE[alert.severity])
