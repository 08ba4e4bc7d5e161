"""The demo's decisions as plain rows, from the published effects: per promotion its goal, the simulator's
true uplift, every status it passed through (time and exposures), its final intervals and its trajectory.

Times are seconds since the live traffic started; exposures are treatment + holdout counted so far.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import numpy as np

from stream.demo.collect import Outputs


def epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def by_promotion(effects: list[dict]) -> dict[str, list[dict]]:
    by_promo: dict[str, list[dict]] = defaultdict(list)
    for e in effects:
        by_promo[e["promotion_id"]].append(e)
    for rows in by_promo.values():
        rows.sort(key=lambda e: e["emitted_at"])
    return dict(sorted(by_promo.items()))


def _origin(outputs: Outputs, started_at: datetime | None) -> float:
    """Seconds since the live traffic started are counted from `started_at`, else from the first report."""
    if started_at is not None:
        return started_at.timestamp()
    return min((epoch(e["emitted_at"]) for e in outputs.effects), default=0.0)


def _interval(value: dict | None) -> dict[str, float] | None:
    return None if value is None else {"low": value["low"], "high": value["high"]}


def _exposures(e: dict) -> int:
    return int(e["exposures_treatment"]) + int(e["exposures_holdout"])


def _adjusted(e: dict) -> dict[str, float] | None:
    return _interval((e.get("adjusted_ci") or {}).get(e["goal"]["outcome"]))


def _unadjusted(e: dict) -> dict[str, float] | None:
    return _interval((e.get("anytime_ci") or {}).get(e["goal"]["outcome"]))


def status_changes(rows: list[dict], t0: float) -> list[dict[str, Any]]:
    """Every status a promotion passed through, in order, with when (s since `t0`) and at how many exposures
    it was reached, and the decision interval at that moment."""
    out: list[dict[str, Any]] = []
    for e in rows:
        if out and out[-1]["status"] == e["status"]:
            continue
        decision = e.get("decision") or {}
        out.append(
            {
                "status": e["status"],
                "t_s": round(epoch(e["emitted_at"]) - t0, 2),
                "exposures": _exposures(e),
                "exposures_treatment": e["exposures_treatment"],
                "exposures_holdout": e["exposures_holdout"],
                "interval": _interval(decision.get("interval")),
                "adjusted": bool(decision.get("adjusted", False)),
                "emitted_at": e["emitted_at"],
            }
        )
    return out


def trajectory(rows: list[dict], t0: float) -> list[dict[str, Any]]:
    """The decision figure's points: one per CampaignEffect report of the promotion."""
    points = []
    for e in rows:
        decision = e.get("decision") or {}
        points.append(
            {
                "t_s": round(epoch(e["emitted_at"]) - t0, 2),
                "exposures": _exposures(e),
                "status": e["status"],
                "uplift": decision.get("uplift"),
                "interval": _interval(decision.get("interval")),
                "adjusted": bool(decision.get("adjusted", False)),
                "unadjusted_interval": _unadjusted(e),
                "adjusted_interval": _adjusted(e),
            }
        )
    return points


def _true_uplift(truth: dict[str, Any] | None, outcome: str) -> float | None:
    if not truth:
        return None
    value = truth.get("true_uplift", {}).get(outcome)
    return None if value is None else float(value)


def promotion_summaries(
    outputs: Outputs, truth: dict[str, dict[str, Any]] | None = None, started_at: datetime | None = None
) -> list[dict[str, Any]]:
    """Per promotion with a CampaignEffect: goal, true uplift, statuses passed through, final intervals."""
    t0 = _origin(outputs, started_at)
    truth = truth or {}
    out = []
    for promo, rows in by_promotion(outputs.effects).items():
        last = rows[-1]
        goal = last["goal"]
        outcome = goal["outcome"]
        known = truth.get(promo)
        true = _true_uplift(known, outcome)
        decision = last.get("decision") or {}
        changes = status_changes(rows, t0)
        out.append(
            {
                "promotion_id": promo,
                "campaign_id": last["campaign_id"],
                "role": known.get("role") if known else None,
                "goal": {"outcome": outcome, "target_uplift": goal["target_uplift"]},
                "true_uplift": true,
                "true_uplift_by_outcome": known.get("true_uplift") if known else None,
                "true_uplift_exposures": known.get("exposures") if known else None,
                "truly_meets_goal": None if true is None else true >= goal["target_uplift"],
                "statuses": changes,
                "ever_underperforming": any(c["status"] == "underperforming" for c in changes),
                "final": {
                    "status": last["status"],
                    "t_s": round(epoch(last["emitted_at"]) - t0, 2),
                    "exposures": _exposures(last),
                    "exposures_treatment": last["exposures_treatment"],
                    "exposures_holdout": last["exposures_holdout"],
                    "uplift": decision.get("uplift"),
                    "interval": _interval(decision.get("interval")),
                    "adjusted": bool(decision.get("adjusted", False)),
                    "unadjusted_interval": _unadjusted(last),
                    "adjusted_uplift": (last.get("adjusted_uplift") or {}).get(outcome),
                    "adjusted_interval": _adjusted(last),
                    "fixed_horizon_interval": _interval((last.get("realised_uplift_ci") or {}).get(outcome)),
                    "at_risk": bool(last.get("at_risk", False)),
                    "alpha": decision.get("alpha"),
                    "mixing_scale": decision.get("mixing_scale"),
                },
                "trajectory": trajectory(rows, t0),
            }
        )
    return out


def checks(promotions: list[dict[str, Any]]) -> dict[str, bool | None]:
    """What the demo is meant to show, checked against the simulator's truth (None: no truth to check)."""
    duds = [p for p in promotions if p["role"] == "dud"]
    meeting = [p for p in promotions if p["truly_meets_goal"]]
    return {
        "dud_ends_underperforming": (
            all(p["final"]["status"] == "underperforming" for p in duds) if duds else None
        ),
        "no_promotion_meeting_its_goal_was_ever_underperforming": (
            not any(p["ever_underperforming"] for p in meeting)
            if any(p["truly_meets_goal"] is not None for p in promotions)
            else None
        ),
    }


def report_data(
    outputs: Outputs,
    stats: dict[str, float | int | str],
    truth: dict[str, dict[str, Any]] | None = None,
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """Everything the JSON beside the HTML holds."""
    t0 = _origin(outputs, started_at)
    promotions = promotion_summaries(outputs, truth, started_at)
    alerts = [
        {
            "t_s": round(epoch(a["raised_at"]) - t0, 2),
            **{
                k: a.get(k)
                for k in (
                    "raised_at",
                    "kind",
                    "state",
                    "severity",
                    "promotion_id",
                    "campaign_id",
                    "message",
                    "value",
                    "threshold",
                    "alert_id",
                )
            },
        }
        for a in sorted(outputs.alerts, key=lambda a: a["raised_at"])
    ]
    return {
        "summary": summary(outputs, stats),
        "started_at": started_at.isoformat() if started_at is not None else None,
        "time_origin": "live traffic start" if started_at is not None else "first report",
        "checks": checks(promotions),
        "promotions": promotions,
        "alerts": alerts,
    }


def summary(outputs: Outputs, stats: dict[str, float | int | str]) -> dict[str, float | int | str]:
    latency = np.array([p["latency_ms"] for p in outputs.predictions]) if outputs.predictions else np.zeros(1)
    return {
        **stats,
        "predictions": len(outputs.predictions),
        "campaign effect reports": len(outputs.effects),
        "alerts": len(outputs.alerts),
        "drift reports": len(outputs.drift),
        "dead letters": len(outputs.dead_letters),
        "latency p50 ms": round(float(np.percentile(latency, 50)), 1),
        "latency p99 ms": round(float(np.percentile(latency, 99)), 1),
    }
