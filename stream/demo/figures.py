"""The demo report's figures: per promotion the decision interval against exposures, predicted vs realised
uplift over time, and the pipeline's throughput, latency and drift.

The decision panel follows stream/effects/report.py: the anytime-valid interval of the goal outcome's uplift
that the status is decided on (`decision.interval`; the model-adjusted one when it exists, drawn beside the
unadjusted one), with the goal line, the simulator's true uplift and a marker where each status was reached.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from stream.demo.decisions import by_promotion, epoch

STATUS_COLOURS = {
    "insufficient_data": "tab:gray",
    "inconclusive": "tab:orange",
    "meeting_goal": "tab:green",
    "underperforming": "tab:red",
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
    by_promo = by_promotion(effects)
    n = max(len(by_promo), 1)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    t0 = min((epoch(e["emitted_at"]) for e in effects), default=0.0)
    for ax, (promo, rows_) in zip(axes, by_promo.items(), strict=False):
        outcome = rows_[-1]["goal"]["outcome"]
        t = [epoch(e["emitted_at"]) - t0 for e in rows_]
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
        scored = np.array([epoch(p["scored_at"]) for p in predictions])
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
        scopes[d["scope"]].append((epoch(d["emitted_at"]), d["max_psi"]))
    t0 = min((p[0] for v in scopes.values() for p in v), default=0.0)
    for scope, points in sorted(scopes.items()):
        points.sort()
        drift_ax.plot([p[0] - t0 for p in points], [p[1] for p in points], label=scope)
    drift_ax.set_title("drift: max PSI per scope", fontsize=9)
    if scopes:
        drift_ax.legend(fontsize=7)
    return fig
