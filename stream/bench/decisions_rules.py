"""The compared decision rules, applied at every look of many campaigns at once, and what each run shows.

- `previous`: the old rule (HEAD~1 `report.status`), fixed-horizon 95% interval (Newcombe for proportions,
  Welch for revenue) plus the "model agrees" clause;
- `anytime`: the anytime-valid interval of the difference of means (`sequential.unadjusted` + `half_width`);
- `anytime+covariate`: the same on Lin's adjusted estimate with the model's prediction
  (`sequential.adjusted`), once per model variant the campaign carries (`anytime+covariate (useless)`, ...).
All rules wait for `min_per_arm` exposures in each arm (`insufficient_data` before); on revenue the anytime
rules, like `report.decide`, also wait for `min_purchases` exposures with a purchase in each arm (the
`previous` rule never had that clause).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stream.bench import decisions_stats as st
from stream.bench.decisions_data import Sums
from stream.effects.report import DEFAULT_MIN_PURCHASES_PER_ARM

Array = np.ndarray
MAIN_MODEL = "model"


def rule_name(model: str) -> str:
    return "anytime+covariate" if model == MAIN_MODEL else f"anytime+covariate ({model})"


def _per_run(
    status: Array, low: Array, high: Array, s: Sums, enough: Array, at_risk: Array | None
) -> dict[str, Array]:
    decided = status >= st.MEETING
    has = decided.any(axis=1)
    first = decided.argmax(axis=1)
    rows = np.arange(status.shape[0])
    truth = np.broadcast_to(s.truth, status.shape)
    above, below = (low > truth) & enough, (high < truth) & enough
    covers = (low <= truth) & (truth <= high)
    return {
        "ever_under": (status == st.UNDER).any(axis=1),
        "end_under": status[:, -1] == st.UNDER,
        "zero_variance_alert": np.zeros(status.shape[0], bool),
        "decided_at": np.where(has, s.exposures[first], np.inf),
        "first": np.where(has, status[rows, first], st.UNDECIDED),
        "covered": (covers | ~enough).all(axis=1),
        "above_truth": above.any(axis=1),
        "below_truth": below.any(axis=1),
        "at_risk": np.zeros(status.shape[0], bool) if at_risk is None else at_risk.any(axis=1),
    }


def outcomes(
    s: Sums,
    goal: float,
    tau: float,
    alpha: float,
    min_per_arm: int,
    binary: bool,
    models: Sequence[str],
    min_purchases: int = DEFAULT_MIN_PURCHASES_PER_ARM,
) -> dict[str, dict[str, Array]]:
    """Per rule: per-run arrays (see `_per_run`; a rule's coverage counts the looks at which it may decide).
    Anytime rules add `zero_variance_alert` (underperforming at a look whose estimate has variance 0, e.g.
    revenue before any purchase: an interval of width 0), covariate rules `removed`, the variance the
    adjustment removes at the last look, 1 − Var_adj/Var_unadj. A non-binary outcome needs `s.purchases`."""
    t, h = s.treated, s.held
    enough = st.enough(t.n, h.n, min_per_arm)
    if not binary and s.purchases is None:
        raise ValueError("a non-binary outcome needs its per-arm purchase counts (Sums.purchases)")
    decidable = st.enough(t.n, h.n, min_per_arm, None if binary else s.purchases, min_purchases)
    if binary:
        d, low, high = st.proportion_diff(t.sy, t.n, h.sy, h.n, 1.96)
    else:
        d, v = st.unadjusted(t.n, t.sy, t.syy, h.n, h.sy, h.syy, binary=False)
        low, high = d - 1.96 * np.sqrt(v), d + 1.96 * np.sqrt(v)
    predicted = np.broadcast_to(s.predicted_mean, d.shape)
    previous = st.previous_status(high, d, enough, s.exposures, predicted, goal, min_per_arm)
    out = {"previous": _per_run(previous, low, high, s, enough, None)}

    d, v_plain = st.unadjusted(t.n, t.sy, t.syy, h.n, h.sy, h.syy, binary=binary)
    estimates = {"anytime": (d, v_plain)}
    for model in models:
        estimates[rule_name(model)] = st.adjusted(*s.cov[model], binary=binary)
    warn = (s.exposures >= min_per_arm) & (predicted < goal)
    for rule, (d, v) in estimates.items():
        w = st.half_width(v, tau, alpha)
        status = st.status(d - w, d + w, decidable, goal)
        at_risk = warn & (status <= st.UNDECIDED)
        out[rule] = _per_run(status, d - w, d + w, s, decidable, at_risk)
        out[rule]["zero_variance_alert"] = ((status == st.UNDER) & (v <= 0.0)).any(axis=1)
        if rule != "anytime":
            with np.errstate(divide="ignore", invalid="ignore"):
                out[rule]["removed"] = 1.0 - v[:, -1] / v_plain[:, -1]
    return out


def merge(parts: Sequence[dict[str, dict[str, Array]]]) -> dict[str, dict[str, Array]]:
    """Concatenate the per-run arrays of chunks of runs."""
    return {r: {k: np.concatenate([p[r][k] for p in parts]) for k in parts[0][r]} for r in parts[0]}


def _rate(v: Array) -> float:
    return float(np.mean(v))


def _median(v: Array) -> float | None:
    m = float(np.median(v))
    return None if not np.isfinite(m) else m


def summary(runs: dict[str, Array], horizon: int, good: bool | None) -> dict[str, float | None]:
    """One rule's figures over the runs of one scenario. `good`: True when the true effect is ≥ the goal
    (an `underperforming` status is a false alert), False for a dud, None when neither applies.
    `interval_above_truth` / `interval_below_truth`: the share of runs whose interval, at some counted look,
    lies wholly above the true uplift (lower bound > truth) / wholly below it (upper bound < truth) — the two
    sides of 1 − coverage (a run can miss on both)."""
    decided = np.isfinite(runs["decided_at"])
    out: dict[str, float | None] = {
        "false_alert_rate": _rate(runs["ever_under"]) if good else None,
        "dud_flagged": _rate(runs["ever_under"]) if good is False else None,
        "dud_flagged_at_end": _rate(runs["end_under"]) if good is False else None,
        "underperforming_at_end": _rate(runs["end_under"]),
        "zero_variance_alerts": _rate(runs["zero_variance_alert"]),
        "decided_share": _rate(decided),
        "meeting_goal_share": _rate(runs["first"] == st.MEETING),
        "underperforming_share": _rate(runs["first"] == st.UNDER),
        "median_exposures_to_decision": _median(runs["decided_at"]),
        "coverage": _rate(runs["covered"]),
        "interval_above_truth": _rate(runs["above_truth"]),
        "interval_below_truth": _rate(runs["below_truth"]),
        "at_risk_share": _rate(runs["at_risk"]),
    }
    if "removed" in runs:
        out["variance_removed"] = float(np.nanmedian(runs["removed"]))
    return out


def saving(adjusted: dict[str, Array], plain: dict[str, Array], horizon: int) -> dict[str, float | None]:
    """Exposures to decision, covariate rule against the unadjusted one on the same runs: the median saving
    and the paired mean difference (undecided runs counted at the horizon) with its standard error."""
    a, p = (np.minimum(r["decided_at"], horizon) for r in (adjusted, plain))
    diff = a - p
    se = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    ma, mp = _median(adjusted["decided_at"]), _median(plain["decided_at"])
    return {
        "median_unadjusted": mp,
        "median_adjusted": ma,
        "exposures_saved": None if ma is None or mp is None else 1.0 - ma / mp,
        "paired_mean_difference": float(np.mean(diff)),
        "relative_difference": float(np.mean(diff) / np.mean(p)),
        "paired_se": se,
        "more_beyond_noise": bool(np.mean(diff) > 2.0 * se + 1e-9),
    }
