from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from stream.bench import cli
from stream.bench import decisions_stats as st
from stream.bench.decisions import Config, run
from stream.bench.decisions_data import Sums, World, arm_sums, totals
from stream.bench.decisions_hillstrom import SEGMENTS
from stream.bench.decisions_report import show
from stream.bench.decisions_rules import outcomes
from stream.effects import report, sequential
from stream.effects.aggregate import ArmTotals, PromotionTotals
from stream.effects.sequential import ArmCovariate
from stream.errors import ConfigError
from stream.events.models import CampaignStatus, Outcome, PromotionGoal
from stream.scoring.signature import OUTCOMES

pytestmark = pytest.mark.unit

RNG = np.random.default_rng(7)
CODES = {
    CampaignStatus.insufficient_data: st.INSUFFICIENT,
    CampaignStatus.inconclusive: st.UNDECIDED,
    CampaignStatus.meeting_goal: st.MEETING,
    CampaignStatus.underperforming: st.UNDER,
}


def _same(vector: np.ndarray, scalar: float | None) -> None:
    if scalar is None:
        assert np.isnan(vector)
    else:
        assert vector == pytest.approx(scalar, rel=1e-12, abs=1e-15)


def _arm(binary: bool, small: bool) -> tuple[float, ...]:
    """Random sums of one arm and outcome: n, Σx, Σx², Σy, Σy², Σxy from real draws (some tiny or flat)."""
    n = int(RNG.integers(0, 4)) if small else int(RNG.integers(2, 3000))
    x = RNG.uniform(0, 0.2, n) if RNG.random() > 0.1 else np.full(n, 0.05)
    y = (RNG.random(n) < x + 0.02).astype(float) if binary else RNG.exponential(20, n) * (RNG.random(n) < 0.1)
    return float(n), x.sum(), (x * x).sum(), y.sum(), (y * y).sum(), (x * y).sum()


@pytest.mark.parametrize("binary", [True, False])
def test_vectorised_estimators_equal_the_scalar_ones(binary: bool) -> None:
    for i in range(400):
        t, h = _arm(binary, i % 5 == 0), _arm(binary, i % 7 == 0)
        d, v = st.unadjusted(t[0], t[3], t[4], h[0], h[3], h[4], binary=binary)
        est = sequential.unadjusted(t[0], t[3], t[4], h[0], h[3], h[4], binary=binary)
        _same(d, None if est is None else est.uplift)
        _same(v, None if est is None else est.variance)
        d, v = st.adjusted(st.ArmSums(*np.array(t)), st.ArmSums(*np.array(h)), binary=binary)
        est = sequential.adjusted(ArmCovariate(*t), ArmCovariate(*h), binary=binary)
        _same(d, None if est is None else est.uplift)
        _same(v, None if est is None else est.variance)


def test_vectorised_estimators_take_arrays() -> None:
    arms = [[_arm(True, False) for _ in range(50)] for _ in range(2)]
    t, h = (st.ArmSums(*np.array(a).T) for a in arms)
    d, v = st.adjusted(t, h, binary=True)
    for i in range(50):
        est = sequential.adjusted(ArmCovariate(*arms[0][i]), ArmCovariate(*arms[1][i]), binary=True)
        assert est is not None
        _same(d[i], est.uplift)
        _same(v[i], est.variance)


def test_half_width_equals_the_scalar_one() -> None:
    variances = np.concatenate([[0.0, 1e-300], RNG.lognormal(-12, 4, 300)])
    for tau, alpha in ((0.01, 0.05), (0.5, 0.1), (1e-4, 0.01)):
        got = st.half_width(variances, tau, alpha)
        for g, v in zip(got, variances, strict=True):
            _same(g, sequential.half_width(float(v), tau, alpha))
    assert np.isnan(st.half_width(np.nan, 0.01))
    with pytest.raises(ValueError):
        st.half_width(1.0, 0.0)


def test_newcombe_equals_the_report_one() -> None:
    for _ in range(300):
        n1, n0 = (int(RNG.integers(0, 500)) for _ in range(2))
        k1, k0 = int(RNG.integers(0, n1 + 1)), int(RNG.integers(0, n0 + 1))
        d, low, high = st.proportion_diff(k1, n1, k0, n0, 1.96)
        f = report.proportion_diff(k1, n1, k0, n0, 1.96)
        for a, b in ((d, f.uplift), (low, f.low), (high, f.high)):
            _same(a, b)


def _revenue_arm(small: bool) -> tuple[tuple[float, ...], int]:
    """Random revenue sums of one arm (as `_arm`) and its purchases, either side of the purchase threshold."""
    n = int(RNG.integers(0, 4)) if small else int(RNG.integers(2, 3000))
    x = RNG.uniform(0, 2, n)
    bought = RNG.random(n) < RNG.choice([0.005, 0.015, 0.03, 0.1])
    y = np.where(bought, RNG.exponential(20, n), 0.0)
    return (float(n), x.sum(), (x * x).sum(), y.sum(), (y * y).sum(), (x * y).sum()), int(bought.sum())


def _decided_alike(outcome: Outcome, goal: float, t: tuple[float, ...], h: tuple[float, ...],
                   purchases: tuple[int, int] | None) -> CampaignStatus:  # fmt: skip
    """Asserts that the vectorised status equals `report.decide`'s on the same totals; returns the latter."""
    binary = purchases is None
    i = 1 + sequential.MOMENTS * OUTCOMES.index(outcome.value)
    block = [[a[0]] + [0.0] * len(OUTCOMES) * sequential.MOMENTS for a in (t, h)]
    for b, a in zip(block, (t, h), strict=True):
        b[i : i + sequential.MOMENTS] = a[1:]
    if binary:
        arms = [ArmTotals(int(a[0]), 0, int(a[3])) for a in (t, h)]
    else:
        arms = [ArmTotals(int(a[0]), 0, k, a[3], a[4]) for a, k in zip((t, h), purchases or (), strict=True)]
    totals = PromotionTotals(
        arms[0], arms[1], scored_treatment=tuple(block[0]), scored_holdout=tuple(block[1])
    )
    status, _, _ = report.decide(totals, PromotionGoal(outcome=outcome, target_uplift=goal))
    tau = sequential.tau_for(outcome.value, outcome.value, goal)
    if min(t[0], h[0]) >= report.DEFAULT_MIN_EXPOSURES_PER_ARM:
        d, v = st.adjusted(st.ArmSums(*np.array(t)), st.ArmSums(*np.array(h)), binary=binary)
    else:
        d, v = st.unadjusted(t[0], t[3], t[4], h[0], h[3], h[4], binary=binary)
    w = st.half_width(v, tau)
    enough = st.enough(t[0], h[0], report.DEFAULT_MIN_EXPOSURES_PER_ARM, purchases,
                       report.DEFAULT_MIN_PURCHASES_PER_ARM)  # fmt: skip
    got = st.status(np.atleast_1d(d - w), np.atleast_1d(d + w), np.atleast_1d(enough), goal)
    assert got[0] == CODES[status]
    return status


def test_status_matches_report_decide() -> None:
    """The vectorised status equals `report.decide` on the same totals (covariate-adjusted once scored)."""
    seen = set()
    for i in range(300):
        goal = float(RNG.choice([0.0, 0.005, 0.02, -0.01]))
        t, h = _arm(True, i % 9 == 0), _arm(True, i % 11 == 0)
        seen.add(_decided_alike(Outcome.conversion, goal, t, h, None))
    assert len(seen) >= 3


def test_revenue_status_matches_report_decide_on_either_side_of_the_purchase_rule() -> None:
    """On revenue `report.decide` waits for `min_purchases_per_arm` purchases in each arm; the vectorised
    status too: insufficient_data with enough exposures but too few purchases, decided above them."""
    k_min, n_min = report.DEFAULT_MIN_PURCHASES_PER_ARM, report.DEFAULT_MIN_EXPOSURES_PER_ARM
    few, decided, seen = 0, 0, set()
    for i in range(600):
        goal = float(RNG.choice([0.0, 0.1, 0.5, -0.3]))
        (t, kt), (h, kh) = _revenue_arm(i % 9 == 0), _revenue_arm(i % 11 == 0)
        status = _decided_alike(Outcome.revenue, goal, t, h, (kt, kh))
        seen.add(status)
        if min(t[0], h[0]) >= n_min and min(kt, kh) < k_min:
            assert status is CampaignStatus.insufficient_data
            few += 1
        elif min(kt, kh) >= k_min and status is not CampaignStatus.insufficient_data:
            decided += 1
    assert few >= 20 and decided >= 20 and len(seen) == 4
    # at the threshold exactly: k_min - 1 purchases in one arm is not enough, k_min is
    y = np.r_[np.full(k_min, 40.0), np.zeros(1000 - k_min)]
    arm = (1000.0, 0.0, 0.0, y.sum(), (y * y).sum(), 0.0)
    below = (1000.0, 0.0, 0.0, y.sum() - 40.0, (y * y).sum() - 1600.0, 0.0)
    insufficient, under = CampaignStatus.insufficient_data, CampaignStatus.underperforming
    assert _decided_alike(Outcome.revenue, 10.0, arm, below, (k_min, k_min - 1)) is insufficient
    assert _decided_alike(Outcome.revenue, 10.0, arm, arm, (k_min, k_min)) is under


def test_revenue_sums_count_purchases_per_arm() -> None:
    """`arm_sums` of a non-binary outcome counts each arm's exposures with a nonzero outcome at every look,
    and the anytime rules say insufficient_data until each arm has `min_purchases` of them."""
    runs, horizon, every = 4, 2000, 100
    a = (RNG.random((runs, horizon)) < 0.5).astype(float)
    y = np.where(RNG.random((runs, horizon)) < 0.02, RNG.exponential(30, (runs, horizon)), 0.0)
    x = {"model": RNG.uniform(0, 2, (runs, horizon))}
    s = arm_sums(a, y, x, totals(y, x, every, False), every, False)
    assert s.purchases is not None
    bought = (y != 0).reshape(runs, horizon // every, every)
    arm = a.reshape(runs, horizon // every, every)
    np.testing.assert_array_equal(s.purchases[0], (bought * arm).sum(axis=2).cumsum(axis=1))
    np.testing.assert_array_equal(s.purchases[1], (bought * (1 - arm)).sum(axis=2).cumsum(axis=1))
    yb = (RNG.random(a.shape) < 0.1).astype(float)
    assert arm_sums(a, yb, {}, totals(yb, {}, every, True), every, True).purchases is None
    tau = sequential.tau_for("revenue", "revenue", 0.1)
    k = np.minimum(*s.purchases)
    for threshold in (0, 5, 10_000):
        res = outcomes(s, 0.1, tau, 0.05, 50, False, ("model",), threshold)
        for rule in ("anytime", "anytime+covariate"):
            decided_at = res[rule]["decided_at"]
            first = np.argmax(k >= threshold, axis=1)
            reached = (k >= threshold).any(axis=1)
            assert np.all(~np.isfinite(decided_at[~reached]))
            assert np.all(decided_at[reached] >= s.exposures[first[reached]])
    with pytest.raises(ValueError, match="purchase"):
        outcomes(Sums(s.exposures, s.treated, s.held), 0.1, tau, 0.05, 50, False, (), 30)


def test_previous_rule() -> None:
    high, uplift = np.array([0.0, 0.02, 0.02, 0.02]), np.array([0.0, 0.0, 0.0, 0.015])
    enough = np.array([True, True, True, False])
    predictions, predicted = np.array([100, 100, 10, 100]), np.zeros(4)
    got = st.previous_status(high, uplift, enough, predictions, predicted, 0.01, 50)
    assert list(got) == [st.UNDER, st.UNDER, st.UNDECIDED, st.INSUFFICIENT]


def test_world_mean_baseline_is_a_few_percent() -> None:
    assert 0.02 < World().mean_baseline() < 0.05


def _tiny_hillstrom(path: Path, n: int = 900) -> Path:
    header = ["recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie", "channel",
              "segment", "visit", "conversion", "spend"]  # fmt: skip
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(n):
            seg = SEGMENTS[i % 3]
            visit = int(RNG.random() < 0.1 + 0.05 * (seg != "No E-Mail"))
            conv = int(visit and RNG.random() < 0.2)
            spend = round(RNG.uniform(20, 200), 2) if conv else 0
            zip_code = ("Urban", "Surburban", "Rural")[i % 3]
            channel = ("Web", "Phone", "Multichannel")[i % 3]
            w.writerow([RNG.integers(1, 13), "x", round(RNG.uniform(30, 500), 2), i % 2, (i // 2) % 2,
                        zip_code, i % 2, channel, seg, visit, conv, spend])  # fmt: skip
    return path


def _config(hillstrom: Path | None) -> Config:
    """A tiny run: 3 campaigns per scenario, a horizon of one fixed-horizon sample size, Hillstrom capped."""
    return Config(runs=3, goal=0.05, holdouts=(0.5,), horizon_factor=1.0, hillstrom=hillstrom,
                  hillstrom_cap=2000)  # fmt: skip


def test_a_tiny_run_has_every_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(_config(_tiny_hillstrom(tmp_path / "h.csv")))
    payload = json.loads(json.dumps(result, allow_nan=False))
    assert set(payload) == {"meta", "simulation", "hillstrom", "targets"}
    scenarios = {s["scenario"] for s in payload["simulation"]}
    assert scenarios >= {"A/A", "at goal", "1.25x goal", "dud", "slow start"}
    rules = payload["simulation"][0]["rules"]
    assert list(rules)[:3] == ["previous", "anytime", "anytime+covariate"]
    figures = {"false_alert_rate", "median_exposures_to_decision", "coverage", "decided_share"}
    assert figures <= set(rules["anytime"])
    assert "variance_removed" in rules["anytime+covariate"]
    assert {"median_unadjusted", "median_adjusted", "paired_mean_difference"} <= set(
        payload["simulation"][0]["savings"]["anytime+covariate"]
    )
    campaigns = payload["hillstrom"]["campaigns"]
    assert [o["outcome"] for o in campaigns[0]["outcomes"]] == ["visit", "conversion", "revenue"]
    assert "anytime+covariate" in campaigns[0]["outcomes"][0]["aa"]
    assert all({"target", "value", "pass"} <= set(t) for t in payload["targets"])
    show(result)
    out = capsys.readouterr().out
    assert "PASS" in out or "FAIL" in out


def test_hillstrom_is_skipped_when_absent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(_config(tmp_path / "missing.csv"))
    assert "skipped" in result["hillstrom"]
    show(result)
    assert "Hillstrom replay is skipped" in capsys.readouterr().out


def _app() -> typer.Typer:
    app = typer.Typer()
    cli.register(app)
    app.command("noop")(lambda: None)
    return app


def test_decisions_help_renders() -> None:
    result = CliRunner().invoke(_app(), ["bench", "decisions", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--runs", "--json", "--seed", "--hillstrom", "--min-purchases"):
        assert option in result.output
    result = CliRunner().invoke(_app(), ["bench", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "decisions" in result.output and "--events" in result.output


def test_decisions_rejects_too_few_runs() -> None:
    result = CliRunner().invoke(_app(), ["bench", "decisions", "--runs", "1"])
    assert isinstance(result.exception, ConfigError)


def test_min_purchases_option_defaults_to_the_engine_policy() -> None:
    default = report.DEFAULT_MIN_PURCHASES_PER_ARM
    assert Config().min_purchases == default == report.Policy().min_purchases_per_arm
    result = CliRunner().invoke(_app(), ["bench", "decisions", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--min-purchases" in result.output and f"default: {default}" in result.output
    result = CliRunner().invoke(_app(), ["bench", "decisions", "--min-purchases", "-1"])
    assert isinstance(result.exception, ConfigError)
