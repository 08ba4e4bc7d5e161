"""Tables and PASS/FAIL targets of `liftstream bench decisions` (figures from decisions.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

FA_MAX = 0.05
DUDS_MIN = 0.90
ANYTIME = "anytime"


def _anytime_rules(result: dict[str, Any]) -> list[str]:
    return [r for r in result["simulation"][0]["rules"] if r.startswith(ANYTIME)]


def _hill_rows(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(c["campaign"], o) for c in result["hillstrom"].get("campaigns", []) for o in c["outcomes"]]


def _fa(rule: str, cases: list[tuple[str, float]], scope: str) -> dict[str, Any]:
    where, worst = max(cases, key=lambda c: c[1])
    return {"target": f"{rule}: false-alert rate <= {FA_MAX} under continuous monitoring ({scope})",
            "value": worst, "worst": where, "pass": worst <= FA_MAX}  # fmt: skip


def _z(saving: dict[str, Any]) -> float:
    """The paired difference in standard errors (a difference with no spread counts at its sign)."""
    diff, se = saving["paired_mean_difference"], saving["paired_se"]
    return diff / se if se > 0 else float(np.sign(diff))


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """PASS/FAIL lines: the anytime rules' false-alert rate, duds flagged, and that the covariate never costs
    exposures beyond noise. The slow start is left out of the false-alert target (its effect so far is below
    the goal for a while: an alert then is right about the exposures seen) and reported on its own."""
    sim, out = result["simulation"], []
    for rule in _anytime_rules(result):
        cases = [(f"{s['scenario']} @ holdout {s['holdout']}", s["rules"][rule]["false_alert_rate"])
                 for s in sim if s["good"] and not s["ramp_exposures"]]  # fmt: skip
        out.append(_fa(rule, cases, "simulated, good promotions"))
        hill = [(f"{'A/A ' if aa else ''}{camp} {o['outcome']}", o[key][rule]["false_alert_rate"])
                for camp, o in _hill_rows(result) if rule in o["rules"]
                for aa, key in ((False, "rules"), (True, "aa"))]  # fmt: skip
        hill = [c for c in hill if c[1] is not None]  # an effect below its goal (negative) has no false alert
        if hill:
            line = _fa(rule, hill, "Hillstrom and its A/A")
            worst = next(o[k][rule] for c, o in _hill_rows(result) for k in ("rules", "aa")
                         if f"{'A/A ' if k == 'aa' else ''}{c} {o['outcome']}" == line["worst"])  # fmt: skip
            line["zero_variance_alerts"] = worst["zero_variance_alerts"]
            out.append(line)
        duds = [(s["holdout"], s["rules"][rule]["dud_flagged"]) for s in sim if not s["good"]]
        holdout, least = min(duds, key=lambda c: c[1])
        out.append({"target": f"{rule}: >= {DUDS_MIN:.0%} of duds flagged within the run",
                    "value": least, "worst": f"holdout {holdout}", "pass": least >= DUDS_MIN})  # fmt: skip
    for rule in _anytime_rules(result)[1:]:
        cases = [(f"{s['scenario']} @ holdout {s['holdout']}", s["savings"][rule]) for s in sim]
        cases += [(f"Hillstrom {c} {o['outcome']}", o["savings"][rule]) for c, o in _hill_rows(result)
                  if rule in o["savings"]]  # fmt: skip
        where, worst = max(cases, key=lambda c: _z(c[1]))
        out.append({"target": f"{rule}: never more exposures to decision than {ANYTIME} beyond noise "
                              "(paired mean difference <= 2 SE)",
                    "value": worst["paired_mean_difference"], "worst": where,
                    "detail": f"{worst['paired_mean_difference']:+,.0f} +- {worst['paired_se']:,.0f} "
                              f"exposures, {worst['relative_difference']:+.2%} of the unadjusted mean",
                    "pass": not any(c[1]["more_beyond_noise"] for c in cases)})  # fmt: skip
    return out


def _r(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _n(v: float | None, decided: float | None = None) -> str:
    if v is None:
        return "never" if decided is not None else "-"
    return f"{v:,.0f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1%}"


def _share(v: float | None) -> str:
    return "-" if v is None else f"{v:.2%}"


def simulation_table(result: dict[str, Any], holdout: float) -> Table:
    meta = result["meta"]
    rows = [s for s in result["simulation"] if s["holdout"] == holdout]
    t = Table(title=f"simulated campaigns, holdout {holdout}: {meta['runs']} runs each, goal {meta['goal']}, "
                    f"a look every {meta['look_every']} exposures, horizon {rows[0]['horizon']:,} "
                    f"(= {meta['horizon_factor']:g} x n80 {rows[0]['fixed_horizon_n80']:,})")  # fmt: skip
    for col in ("scenario", "rule", "ever underperforming", "underperforming at end",
                "decided (meet / under)", "median exposures to decision", "coverage", "var removed",
                "at_risk"):  # fmt: skip
        t.add_column(col, justify="left" if col in ("scenario", "rule") else "right")
    for s in rows:
        for rule, f in s["rules"].items():
            ever = f["false_alert_rate"] if s["good"] else f["dud_flagged"]
            split = f"({_r(f['meeting_goal_share'])} / {_r(f['underperforming_share'])})"
            t.add_row(s["scenario"], rule, _r(ever), _r(f["underperforming_at_end"]),
                      f"{_r(f['decided_share'])} {split}",
                      _n(f["median_exposures_to_decision"], f["decided_share"]), _r(f["coverage"]),
                      _share(f.get("variance_removed")), _r(f["at_risk_share"]),
                      end_section=rule == list(s["rules"])[-1])  # fmt: skip
    return t


def savings_table(result: dict[str, Any]) -> Table:
    t = Table(title="exposures to decision: covariate against unadjusted anytime rule (same runs and alpha)")
    for col in ("case", "rule", "median unadjusted", "median adjusted", "saved", "paired mean diff +- SE"):
        t.add_column(col, justify="left" if col in ("case", "rule") else "right")
    cases = [(f"{s['scenario']} @ holdout {s['holdout']}", s["savings"]) for s in result["simulation"]]
    cases += [(f"Hillstrom {c} {o['outcome']}", o["savings"]) for c, o in _hill_rows(result)]
    for case, savings in cases:
        for rule, v in savings.items():
            paired = f"{v['paired_mean_difference']:+,.0f} +- {v['paired_se']:,.0f}"
            t.add_row(case, rule, _n(v["median_unadjusted"], 0), _n(v["median_adjusted"], 0),
                      _pct(v["exposures_saved"]), paired)  # fmt: skip
    return t


def hillstrom_table(result: dict[str, Any]) -> Table:
    purchases = result["meta"].get("min_purchases")
    t = Table(title="Hillstrom replayed as campaigns (goal = half the observed effect; A/A: labels permuted, "
                    f"goal 0; anytime rules decide revenue from {purchases} purchases per arm)")  # fmt: skip
    for col in ("campaign", "outcome", "goal", "effect", "horizon", "var removed", "rule", "decided",
                "median exposures to decision", "coverage (missed above / below)", "false alerts (at var 0)",
                "A/A false alerts", "A/A coverage"):  # fmt: skip
        t.add_column(col, justify="left" if col in ("campaign", "outcome", "rule") else "right")
    for c in result["hillstrom"]["campaigns"]:
        for o in c["outcomes"]:
            removed = o["rules"]["anytime+covariate"].get("variance_removed")
            for rule, f in o["rules"].items():
                aa = o["aa"][rule]
                t.add_row(c["campaign"], o["outcome"], f"{o['goal']:.4g}", f"{o['true_effect']:.4g}",
                          f"{c['horizon']:,}", _share(removed), rule, _r(f["decided_share"]),
                          _n(f["median_exposures_to_decision"], f["decided_share"]),
                          f"{_r(f['coverage'])} ({_r(f.get('interval_above_truth'))} / "
                          f"{_r(f.get('interval_below_truth'))})",
                          f"{_r(f['false_alert_rate'])} ({_r(f['zero_variance_alerts'])})",
                          _r(aa["false_alert_rate"]), _r(aa["coverage"]),
                          end_section=rule == list(o["rules"])[-1])  # fmt: skip
    return t


def show(result: dict[str, Any]) -> None:
    console = Console(width=None if Console().is_terminal else 200)
    for holdout in result["meta"]["holdouts"]:
        console.print(simulation_table(result, holdout))
    if "skipped" in result["hillstrom"]:
        console.print(result["hillstrom"]["skipped"])
    else:
        console.print(hillstrom_table(result))
    console.print(savings_table(result))
    for line in result["targets"]:
        verdict = "PASS" if line["pass"] else "FAIL"
        zero = line.get("zero_variance_alerts")
        why = "" if not zero else f"; {zero:.3g} of its runs alerted on an interval of width 0"
        why += f"; {line['detail']}" if "detail" in line else ""
        text = f"{verdict}  {line['target']}: {line['value']:.4g} (worst: {line['worst']}{why})"
        console.print(text, highlight=False, soft_wrap=True)
