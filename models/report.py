"""The evaluation report: one self-contained HTML page (PNG figures embedded as base64) and a console table.

Per outcome: Qini curves of every model (plus the oracle ranking by the true effect when the history
has it), observed uplift by decile of predicted uplift, and calibration of each arm's prediction.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from models.evaluate import NEURAL, Evaluation
from models.metrics import calibration_bins, qini_curve, uplift_by_decile
from stream.scoring.signature import OUTCOMES

COLUMNS = (
    "qini", "auuc", "uplift_at_10", "uplift_at_30", "auc_treated", "auc_control",
    "calibration_treated", "calibration_control", "pehe", "oracle_qini", "truth_qini", "oracle_truth_qini",
)


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def outcome_figure(ev: Evaluation, outcome: str) -> Figure:
    o = OUTCOMES.index(outcome)
    y, t = ev.test.labels[:, o].astype(np.float64), ev.test.arm
    fig = Figure(figsize=(15, 4.2))
    qini_ax, decile_ax, calib_ax = fig.subplots(1, 3)
    rankings = {name: p.uplift(o) for name, p in ev.predictions.items()}
    if ev.test.tau is not None:
        rankings["oracle (true effect)"] = ev.test.tau[:, o].astype(np.float64)
    for name, uplift in rankings.items():
        curve = qini_curve(uplift, y, t)
        qini_ax.plot(curve.x, curve.y, label=name, linestyle=":" if name.startswith("oracle") else "-")
    end = qini_curve(np.zeros(len(y)), y, t).y[-1]
    qini_ax.plot([0, 1], [0, end], color="grey", linestyle="--", label="random")
    qini_ax.set(title=f"Qini curve: {outcome}", xlabel="fraction targeted",
                ylabel="incremental outcome per user")
    qini_ax.legend(fontsize=8)

    width = 0.8 / len(ev.predictions)
    for i, (name, p) in enumerate(ev.predictions.items()):
        deciles = uplift_by_decile(p.uplift(o), y, t)
        decile_ax.bar(np.arange(1, len(deciles) + 1) + (i - (len(ev.predictions) - 1) / 2) * width, deciles,
                      width=width, label=name)
    decile_ax.axhline(0, color="grey", linewidth=0.8)
    decile_ax.set(title="observed uplift by predicted-uplift decile", xlabel="decile (1 = highest predicted)",
                  ylabel="treated mean - holdout mean")
    decile_ax.legend(fontsize=8)

    treated = t.astype(bool)
    for name, p in ev.predictions.items():
        arms = ((treated, p.p_treated, "-o", "treated"), (~treated, p.p_control, "--s", "holdout"))
        for rows, pred, style, arm in arms:
            mean_pred, mean_y, _ = calibration_bins(pred[rows, o], y[rows])
            calib_ax.plot(mean_pred, mean_y, style, markersize=3, label=f"{name} ({arm})")
    lim = [0, max(float(np.nanmax(calib_ax.get_xlim())), float(np.nanmax(calib_ax.get_ylim())))]
    calib_ax.plot(lim, lim, color="grey", linewidth=0.8)
    calib_ax.set(title="calibration by decile", xlabel="mean prediction", ylabel="mean outcome")
    calib_ax.legend(fontsize=7)
    return fig


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(by_model: dict[str, dict[str, Any]]) -> str:
    cols = [c for c in COLUMNS if any(c in m for m in by_model.values())]
    head = "".join(f"<th>{c}</th>" for c in ["model", *cols])
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td>{''.join(f'<td>{_fmt(m.get(c))}</td>' for c in cols)}</tr>"
        for name, m in by_model.items()
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _comparisons(ev: Evaluation, outcome: str) -> list[tuple[str, str, float, list[float], float]]:
    """(baseline, metric, neural's lead on this split, its 90% interval, share of resamples ahead)."""
    resampled = ev.metrics["bootstrap"].get(outcome)
    if not resampled:
        return []
    by_model = ev.metrics["outcomes"][outcome]
    return [
        (baseline, metric, by_model[NEURAL][metric] - by_model[baseline][metric], v["difference"],
         v["share_ahead"])
        for baseline, by_metric in resampled["versus"].items()
        for metric, v in by_metric.items()
    ]


def _comparison_table(ev: Evaluation, outcome: str) -> str:
    rows = _comparisons(ev, outcome)
    if not rows:
        return ""
    resamples = ev.metrics["bootstrap"][outcome]["resamples"]
    head = "".join(f"<th>{c}</th>" for c in ("neural against", "metric", "lead", "90% interval", "ahead in"))
    body = "".join(
        f"<tr><td>{html.escape(b)}</td><td>{m}</td><td>{lead:+.4g}</td><td>{lo:+.4g} … {hi:+.4g}</td>"
        f"<td>{share:.0%}</td></tr>"
        for b, m, lead, (lo, hi), share in rows
    )
    return (f"<p>Paired bootstrap over the held-out users ({resamples} resamples): the neural model's lead "
            f"over each baseline.</p><table><tr>{head}</tr>{body}</table>")


def comparison_lines(ev: Evaluation) -> list[str]:
    """One console line per outcome, baseline and metric: the lead, its interval and the share ahead."""
    return [
        f"{outcome}: neural − {b} {m} {lead:+.4g} (90% interval {lo:+.4g} … {hi:+.4g}, "
        f"ahead in {share:.0%} of {ev.metrics['bootstrap'][outcome]['resamples']} resamples)"
        for outcome in ev.outcomes
        for b, m, lead, (lo, hi), share in _comparisons(ev, outcome)
    ]


def render_html(ev: Evaluation) -> str:
    m = ev.metrics
    scope = f"promotion {m['promotion']}" if m["promotion"] else "all promotions"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>liftstream evaluation</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
        "</style></head><body>",
        f"<h1>Uplift evaluation — model {_fmt(m['model_version'])}</h1>",
        f"<p>History {_fmt(m['history'])} ({_fmt(m['source'])}), {scope}; held-out users: "
        f"{m['test']['users']} ({m['test']['rows']} exposures: {m['test']['treated']} treated, "
        f"{m['test']['holdout']} holdout).</p>",
    ]
    for outcome in ev.outcomes:
        verdict = "; ".join(
            f"{html.escape(k)}: {_inline(v) if isinstance(v, dict) else _fmt(v)}"
            for k, v in m["verdicts"][outcome].items()
        )
        png = _png(outcome_figure(ev, outcome))
        parts += [
            f"<h2>{html.escape(outcome)}</h2>",
            _table(m["outcomes"][outcome]),
            f"<p>{verdict}</p>",
            _comparison_table(ev, outcome),
            f"<img alt='{html.escape(outcome)} figures' src='data:image/png;base64,{png}'>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def _inline(values: dict[str, Any]) -> str:
    return ", ".join(f"{html.escape(k)} {_fmt(v)}" for k, v in values.items())


def write_report(ev: Evaluation, out_dir: Path) -> tuple[Path, Path]:
    """metrics.json and report.html in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path, report_path = out_dir / "metrics.json", out_dir / "report.html"
    metrics_path.write_text(json.dumps(ev.metrics, indent=2) + "\n")
    report_path.write_text(render_html(ev))
    return metrics_path, report_path


def console_table(ev: Evaluation) -> tuple[list[str], list[list[str]]]:
    """Header and [outcome, model, *metrics] rows for a compact terminal table (metrics some model has)."""
    by_outcome = ev.metrics["outcomes"]
    cols = [c for c in COLUMNS if any(c in m for o in ev.outcomes for m in by_outcome[o].values())]
    rows = [
        [outcome, name, *(_fmt(m.get(c)) for c in cols)]
        for outcome in ev.outcomes
        for name, m in by_outcome[outcome].items()
    ]
    return ["outcome", "model", *cols], rows
