"""The demo's closing report: one self-contained HTML page with PNG figures embedded as base64."""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from stream.demo.collect import Outputs


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def uplift_figure(effects: list[dict]) -> Figure:
    """Predicted vs realised uplift (with its interval) of each promotion's goal outcome over the run."""
    by_promo: dict[str, list[dict]] = defaultdict(list)
    for e in effects:
        by_promo[e["promotion_id"]].append(e)
    n = max(len(by_promo), 1)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    t0 = min((_ts(e["emitted_at"]) for e in effects), default=0.0)
    for ax, (promo, rows_) in zip(axes, sorted(by_promo.items()), strict=False):
        rows_.sort(key=lambda e: e["emitted_at"])
        outcome = rows_[-1]["goal"]["outcome"]
        t = [_ts(e["emitted_at"]) - t0 for e in rows_]
        realised = [e["realised_uplift"][outcome] for e in rows_]
        low = [e["realised_uplift_ci"][outcome]["low"] for e in rows_]
        high = [e["realised_uplift_ci"][outcome]["high"] for e in rows_]
        ax.fill_between(t, low, high, alpha=0.2, color="tab:blue")
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


def write_report(outputs: Outputs, stats: dict[str, float | int | str], path: Path) -> Path:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in summary(outputs, stats).items()
    )
    alerts = (
        "".join(
            f"<tr><td>{html.escape(a['raised_at'])}</td><td>{html.escape(a['kind'])}</td>"
            f"<td>{html.escape(a['severity'])}</td><td>{html.escape(a['message'])}</td></tr>"
            for a in sorted(outputs.alerts, key=lambda a: a["raised_at"])
        )
        or "<tr><td colspan=4>no alerts</td></tr>"
    )
    latest: dict[str, dict] = {}
    for e in sorted(outputs.effects, key=lambda e: e["emitted_at"]):
        latest[e["promotion_id"]] = e
    status = "".join(
        f"<tr><td>{html.escape(p)}</td><td>{e['exposures_treatment']}</td><td>{e['exposures_holdout']}</td>"
        f"<td>{e['predicted_uplift'][e['goal']['outcome']]:.4f}</td>"
        f"<td>{e['realised_uplift'][e['goal']['outcome']]:.4f}</td><td>{e['goal']['target_uplift']:.4f}</td>"
        f"<td>{html.escape(e['status'])}</td></tr>"
        for p, e in sorted(latest.items())
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>liftstream demo report</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:left}}
table{{border-collapse:collapse}}
tr:nth-child(even){{background:#f4f4f4}}</style></head><body>
<h1>liftstream demo report</h1><table>{rows}</table>
<h2>Promotions (latest report)</h2><table><tr><th>promotion</th><th>treated</th><th>holdout</th>
<th>predicted uplift</th><th>realised uplift</th><th>goal</th><th>status</th></tr>{status}</table>
<h2>Predicted vs realised uplift over time</h2>{_png(uplift_figure(outputs.effects))}
<h2>Throughput, latency and drift</h2>{_png(pipeline_figure(outputs.predictions, outputs.drift))}
<h2>Alerts raised</h2>
<table><tr><th>raised at</th><th>kind</th><th>severity</th><th>message</th></tr>{alerts}</table>
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
