"""The demo's closing report: one self-contained HTML page with PNG figures embedded as base64, and the same
figures as JSON beside it (stream/demo/decisions.py, stream/demo/figures.py).
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from stream.demo.collect import Outputs
from stream.demo.decisions import report_data
from stream.demo.figures import decision_figure, pipeline_figure, uplift_figure


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


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
