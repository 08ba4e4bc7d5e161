"""The demo's closing report: one self-contained HTML page with PNG figures embedded as base64, and the same
figures as JSON beside it.

Per promotion the report follows its decision (stream/effects/report.py): the anytime-valid interval of the
goal outcome's uplift that the status is decided on (`decision.interval`; the model-adjusted one when it
exists, and the adjusted interval drawn beside the unadjusted one), against the exposures counted so far
(treatment + holdout), with the goal line, the simulator's true uplift and a marker where each status was
reached. Times are seconds since the live traffic started.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from stream.demo.collect import Outputs

STATUS_COLOURS = {
    "insufficient_data": "tab:gray",
    "inconclusive": "tab:orange",
    "meeting_goal": "tab:green",
    "underperforming": "tab:red",
}


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _by_promotion(effects: list[dict]) -> dict[str, list[dict]]:
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
    return min((_ts(e["emitted_at"]) for e in outputs.effects), default=0.0)


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
                "t_s": round(_ts(e["emitted_at"]) - t0, 2),
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
                "t_s": round(_ts(e["emitted_at"]) - t0, 2),
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
    for promo, rows in _by_promotion(outputs.effects).items():
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
                    "t_s": round(_ts(last["emitted_at"]) - t0, 2),
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
            "t_s": round(_ts(a["raised_at"]) - t0, 2),
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


def _ylim(promo: dict[str, Any], points: list[dict[str, Any]]) -> tuple[float, float]:
    """The first intervals are very wide: frame those from 5% of the final exposures on, the goal, the truth
    and 0 (earlier ones run off the frame)."""
    last = points[-1]["exposures"] if points else 0
    late = [p["interval"] for p in points if p["exposures"] >= 0.05 * last] or [p["interval"] for p in points]
    values = [0.0, promo["goal"]["target_uplift"]]
    values += [v for v in (promo["true_uplift"],) if v is not None]
    values += [i["low"] for i in late] + [i["high"] for i in late]
    lo, hi = min(values), max(values)
    pad = 0.06 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def _decision_panel(ax: Any, promo: dict[str, Any]) -> None:
    points = [p for p in promo["trajectory"] if p["interval"] is not None and p["exposures"] > 0]
    if not points:
        ax.set_title(f"{promo['promotion_id']}: no interval yet", fontsize=9)
        return
    x = np.array([p["exposures"] for p in points], dtype=float)
    low = np.array([p["interval"]["low"] for p in points])
    high = np.array([p["interval"]["high"] for p in points])
    status = np.array([p["status"] for p in points])
    # The band is the interval decided on, coloured by the status it gave; each status's stretch runs on to
    # the next report so that the stretches join.
    for name, colour in STATUS_COLOURS.items():
        where = status == name
        where[1:] |= where[:-1]
        if where.any():
            label = f"decision interval: {name.replace('_', ' ')}"
            ax.fill_between(
                x, low, high, where=where, step="post", color=colour, alpha=0.25, lw=0, label=label
            )
    ax.plot(
        x, [p["uplift"] for p in points], color="tab:blue", lw=1, drawstyle="steps-post", label="estimate"
    )
    if any(p["adjusted"] and p["unadjusted_interval"] for p in points):
        plain = [p for p in points if p["unadjusted_interval"] is not None]
        for side in ("low", "high"):
            ax.plot(
                [p["exposures"] for p in plain],
                [p["unadjusted_interval"][side] for p in plain],
                color="tab:purple",
                lw=0.8,
                ls="--",
                drawstyle="steps-post",
                label="unadjusted interval" if side == "low" else None,
            )
    goal = promo["goal"]["target_uplift"]
    ax.axhline(goal, color="black", ls="--", lw=1.2, label=f"goal {goal:+.4g}")
    if promo["true_uplift"] is not None:
        true = promo["true_uplift"]
        ax.axhline(true, color="tab:green", ls=":", lw=1.6, label=f"true uplift {true:+.4g}")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlim(x[0], x[-1] * 1.05)
    ax.set_ylim(*_ylim(promo, points))
    lines = []
    for change in promo["statuses"]:
        colour = STATUS_COLOURS.get(change["status"], "black")
        if change["exposures"] > 0:
            ax.axvline(change["exposures"], color=colour, lw=1.0, alpha=0.8)
        lines.append(
            f"{change['status'].replace('_', ' ')}: {change['t_s']:.1f} s, {change['exposures']} exp."
        )
    ax.text(0.02, 0.98, "\n".join(lines), transform=ax.transAxes, fontsize=7, va="top",
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8, "lw": 0.5})  # fmt: skip
    role = f" [{promo['role']}]" if promo["role"] else ""
    adjusted = " (adjusted by the model)" if promo["final"]["adjusted"] else ""
    ax.set_title(f"{promo['promotion_id']}{role} — {promo['final']['status']}{adjusted}", fontsize=9)
    ax.set_xlabel("exposures, treatment + holdout (log scale)", fontsize=8)
    ax.set_ylabel(f"{promo['goal']['outcome']} uplift", fontsize=8)
    ax.tick_params(labelsize=7)


def decision_figure(promotions: list[dict[str, Any]]) -> Figure:
    """Per promotion: the anytime-valid decision interval narrowing against exposures, the goal line, the true
    uplift, and where (and when) each status was reached."""
    n = max(len(promotions), 1)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(5.4 * cols, 4.0 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, promo in zip(axes, promotions, strict=False):
        _decision_panel(ax, promo)
    for ax in axes[len(promotions) :]:
        ax.set_visible(False)
    legend: dict[str, Any] = {}
    for ax in axes[: len(promotions)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label.startswith(("goal ", "true uplift ")):
                label = label.split(" +")[0].split(" -")[0]
            legend.setdefault(label, handle)
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=5, fontsize=7,
                   bbox_to_anchor=(0.5, -0.16 / rows), frameon=False)  # fmt: skip
    return fig


def uplift_figure(effects: list[dict]) -> Figure:
    """Predicted vs realised uplift (with its fixed-horizon interval) of each promotion's goal outcome."""
    by_promo = _by_promotion(effects)
    n = max(len(by_promo), 1)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    t0 = min((_ts(e["emitted_at"]) for e in effects), default=0.0)
    for ax, (promo, rows_) in zip(axes, by_promo.items(), strict=False):
        outcome = rows_[-1]["goal"]["outcome"]
        t = [_ts(e["emitted_at"]) - t0 for e in rows_]
        realised = [e["realised_uplift"][outcome] for e in rows_]
        low = [e["realised_uplift_ci"][outcome]["low"] for e in rows_]
        high = [e["realised_uplift_ci"][outcome]["high"] for e in rows_]
        ax.fill_between(t, low, high, alpha=0.2, color="tab:blue", label="fixed-horizon 95%")
        ax.plot(t, realised, color="tab:blue", label="realised")
        ax.plot(t, [e["predicted_uplift"][outcome] for e in rows_], color="tab:orange", label="predicted")
        ax.axhline(rows_[-1]["goal"]["target_uplift"], color="grey", ls="--", lw=1, label="goal")
        ax.set_title(f"{promo} ({outcome}) — {rows_[-1]['status']}", fontsize=9)
        ax.set_xlabel("s since first report", fontsize=8)
    for ax in axes[len(by_promo) :]:
        ax.set_visible(False)
    if by_promo:
        axes[0].legend(fontsize=7)
    return fig


def pipeline_figure(predictions: list[dict], drift: list[dict]) -> Figure:
    """Throughput (predictions/s), event→prediction latency percentiles and drift PSI over the run."""
    fig = Figure(figsize=(15, 3.4))
    thr_ax, lat_ax, drift_ax = fig.subplots(1, 3)
    if predictions:
        scored = np.array([_ts(p["scored_at"]) for p in predictions])
        latency = np.array([p["latency_ms"] for p in predictions])
        t0 = scored.min()
        sec = np.floor(scored - t0).astype(int)
        thr_ax.plot(np.bincount(sec), lw=1)
        buckets = defaultdict(list)
        for s, lat in zip(sec // 5 * 5, latency, strict=True):
            buckets[int(s)].append(lat)
        keys = sorted(buckets)
        for q, label in ((50, "p50"), (99, "p99")):
            lat_ax.plot(keys, [np.percentile(buckets[k], q) for k in keys], label=label)
        lat_ax.legend(fontsize=7)
    thr_ax.set_title("predictions per second", fontsize=9)
    lat_ax.set_title("event→prediction latency (ms), 5 s buckets", fontsize=9)
    scopes: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for d in drift:
        scopes[d["scope"]].append((_ts(d["emitted_at"]), d["max_psi"]))
    t0 = min((p[0] for v in scopes.values() for p in v), default=0.0)
    for scope, points in sorted(scopes.items()):
        points.sort()
        drift_ax.plot([p[0] - t0 for p in points], [p[1] for p in points], label=scope)
    drift_ax.set_title("drift: max PSI per scope", fontsize=9)
    if scopes:
        drift_ax.legend(fontsize=7)
    return fig


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


def _num(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def _span(interval: dict[str, float] | None) -> str:
    return "–" if interval is None else f"{interval['low']:+.4f} … {interval['high']:+.4f}"


def _cells(*values: object) -> str:
    return "".join(f"<td>{html.escape(str(v))}</td>" for v in values)


def _verdict(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "NO")


def json_path(html_path: Path) -> Path:
    return html_path.with_suffix(".json")


def write_report(
    outputs: Outputs,
    stats: dict[str, float | int | str],
    path: Path,
    truth: dict[str, dict[str, Any]] | None = None,
    started_at: datetime | None = None,
) -> tuple[Path, Path]:
    """Writes the HTML page at `path` and its figures as JSON beside it (`json_path`); returns both paths."""
    data = report_data(outputs, stats, truth, started_at)
    promotions = data["promotions"]
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in data["summary"].items()
    )
    alerts = (
        "".join(
            "<tr>"
            + _cells(f"{a['t_s']:.1f}", a["kind"], a["state"] or "firing", a["severity"], a["message"])
            + "</tr>"
            for a in data["alerts"]
        )
        or "<tr><td colspan=5>no alerts</td></tr>"
    )
    final = "".join(
        "<tr>"
        + _cells(
            p["promotion_id"],
            p["role"] or "–",
            p["goal"]["outcome"],
            _num(p["goal"]["target_uplift"]),
            _num(p["true_uplift"]),
            p["final"]["exposures_treatment"],
            p["final"]["exposures_holdout"],
            _num(p["final"]["uplift"]),
            _span(p["final"]["interval"]) + (" adj." if p["final"]["adjusted"] else ""),
            _span(p["final"]["adjusted_interval"]),
            p["final"]["status"],
        )
        + "</tr>"
        for p in promotions
    )
    decisions = "".join(
        "<tr>"
        + _cells(p["promotion_id"], c["status"], f"{c['t_s']:.1f}", c["exposures"], _span(c["interval"]))
        + "</tr>"
        for p in promotions
        for c in p["statuses"]
    )
    check_rows = "".join(
        f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{_verdict(v)}</td></tr>"
        for k, v in data["checks"].items()
    )
    figure = _png(decision_figure(promotions)) if promotions else "<p>no campaign effect reports</p>"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>liftstream demo report</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:left}}
table{{border-collapse:collapse}}
tr:nth-child(even){{background:#f4f4f4}}</style></head><body>
<h1>liftstream demo report</h1><table>{rows}</table>
<h2>Decisions: the anytime-valid interval against exposures</h2>
<p>The band is the anytime-valid interval each status is decided on (adjusted by the model's predictions
once both arms have enough scored exposures; the dashed purple lines are then the unadjusted one), coloured
by the status it gave: meeting the goal once the whole interval is at or above the goal line (dashed),
underperforming once it is below it. Vertical lines mark where each status was reached; the box says when
(seconds since the live traffic started) and after how many exposures. The dotted green line is the
simulator's true uplift over the exposures sent.</p>
{figure}
<table>{check_rows}</table>
<h2>Promotions (latest report)</h2><table><tr><th>promotion</th><th>role</th><th>outcome</th><th>goal</th>
<th>true uplift</th><th>treated</th><th>holdout</th><th>decided uplift</th><th>decision interval</th>
<th>adjusted interval</th><th>status</th></tr>{final}</table>
<h2>Statuses reached</h2><table><tr><th>promotion</th><th>status</th><th>s since start</th><th>exposures</th>
<th>decision interval</th></tr>{decisions}</table>
<h2>Predicted vs realised uplift over time</h2>{_png(uplift_figure(outputs.effects))}
<h2>Throughput, latency and drift</h2>{_png(pipeline_figure(outputs.predictions, outputs.drift))}
<h2>Alerts raised</h2>
<table><tr><th>s since start</th><th>kind</th><th>state</th><th>severity</th><th>message</th></tr>
{alerts}</table>
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    data_path = json_path(path)
    data_path.write_text(json.dumps(data, indent=1, default=str))
    return path, data_path
