"""`liftstream bench decisions`: how often each status rule is wrong, and how soon it decides, under the
engine's continuous monitoring — a Monte-Carlo over campaigns with a known truth (docs/monitoring.md).

Monitoring cadence: the engine re-evaluates a promotion at every snapshot, once a second; at 100 exposures/s
per promotion that is a look every `look_every` = 100 exposures, and every rule is applied at every look.
Horizon: a campaign runs `horizon_factor` (4) × n80, the exposures a fixed-horizon two-sided 5% test needs
for 80% power at the goal (`decisions_data.fixed_sample_size`). With τ = the goal, the anytime interval
excludes the goal from a dud's estimate after about n80 at the median (measured) and within ≈ 2.4 × n80 for
90% of duds (normal approximation), so 4 × leaves it room; a run undecided at the horizon counts as such.
Simulated campaigns (decisions_data.py): one conversion-like outcome, goal `goal` (absolute uplift), holdout
share 0.1 and 0.5; the slow start ramps its effect over the first quarter of the horizon (≈ n80).
Hillstrom (decisions_hillstrom.py): each e-mail against No E-Mail, goal = half the observed effect of each
outcome, horizon 4 × the largest n80 of its outcomes capped at `hillstrom_cap`; its A/A twin has a goal of 0.
Revenue (Hillstrom's spend): like `report.decide`, the anytime rules decide only once each arm also has
`min_purchases` (default `report.DEFAULT_MIN_PURCHASES_PER_ARM`) exposures with a purchase, counted from the
sums (`Sums.purchases`); the `previous` rule keeps its old clause-free wait.
"True uplift" (coverage) is the average effect over the treated exposures so far; coverage counts the looks
at which the rule may decide: from `min_per_arm` exposures per arm on (before them every rule says
insufficient_data), and for the anytime rules on revenue from `min_purchases` purchases per arm on.
Statistics come from cumulative sums through the vectorised mirrors of `stream.effects.sequential`
(decisions_stats.py), the rules from decisions_rules.py, the tables and targets from decisions_report.py.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stream.bench import decisions_hillstrom as hs
from stream.bench.decisions_data import SCENARIOS, World, fixed_sample_size, simulate
from stream.bench.decisions_report import targets
from stream.bench.decisions_rules import merge, outcomes, rule_name, saving, summary
from stream.effects.report import DEFAULT_MIN_EXPOSURES_PER_ARM, DEFAULT_MIN_PURCHASES_PER_ARM
from stream.effects.sequential import ALPHA, tau_for

log = logging.getLogger(__name__)
MODELS = ("model", "miscalibrated", "useless")
DEFAULT_HILLSTROM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hillstrom.csv"


@dataclass(frozen=True)
class Config:
    runs: int = 1000
    seed: int = 0
    goal: float = 0.01
    holdouts: tuple[float, ...] = (0.1, 0.5)
    look_every: int = 100
    horizon_factor: float = 4.0
    alpha: float = ALPHA
    min_per_arm: int = DEFAULT_MIN_EXPOSURES_PER_ARM
    min_purchases: int = DEFAULT_MIN_PURCHASES_PER_ARM
    """A revenue goal is decided once each arm has this many exposures with a purchase (`report.Policy`)."""
    world: World = field(default_factory=World)
    hillstrom: Path | None = DEFAULT_HILLSTROM
    hillstrom_runs: int | None = None
    """Runs per Hillstrom campaign; None: half of `runs`."""
    hillstrom_cap: int = 300_000
    chunk_exposures: int = 2_000_000
    """Exposures simulated at once (runs × horizon): bounds memory."""


def _horizon(n80: float, cfg: Config, cap: int | None = None) -> int:
    n = cfg.horizon_factor * n80 if cap is None else min(cfg.horizon_factor * n80, cap)
    n = min(n, 1e9)
    return max(1, math.ceil(n / cfg.look_every)) * cfg.look_every


def _chunks(runs: int, horizon: int, cfg: Config) -> list[int]:
    size = max(1, cfg.chunk_exposures // horizon)
    return [min(size, runs - i) for i in range(0, runs, size)]


def _savings(result: dict[str, dict[str, Any]], horizon: int, models: tuple[str, ...]) -> dict[str, Any]:
    return {rule_name(m): saving(result[rule_name(m)], result["anytime"], horizon) for m in models}


def simulation(cfg: Config) -> list[dict[str, Any]]:
    w = cfg.world
    base = w.mean_baseline()
    out = []
    for i, holdout in enumerate(cfg.holdouts):
        n80 = fixed_sample_size(base * (1 - base), holdout, cfg.goal)
        horizon = _horizon(n80, cfg)
        for j, sc in enumerate(SCENARIOS):
            started = time.perf_counter()
            goal = 0.0 if sc.zero_goal else cfg.goal
            tau = tau_for("conversion", "conversion", goal)
            rng = np.random.default_rng([cfg.seed, i, j])
            parts = []
            for runs in _chunks(cfg.runs, horizon, cfg):
                sums = simulate(rng, w, sc, goal, goal or tau, runs, horizon, cfg.look_every, holdout)
                parts.append(outcomes(sums, goal, tau, cfg.alpha, cfg.min_per_arm, True, MODELS,
                                      cfg.min_purchases))  # fmt: skip
            result = merge(parts)
            out.append({
                "holdout": holdout, "scenario": sc.name, "goal": goal, "true_effect": sc.effect * cfg.goal,
                "ramp_exposures": int(sc.ramp * horizon), "mixing_scale": tau, "horizon": horizon,
                "fixed_horizon_n80": int(round(n80)), "runs": cfg.runs, "good": sc.good,
                "rules": {r: summary(v, horizon, sc.good) for r, v in result.items()},
                "savings": _savings(result, horizon, MODELS),
            })  # fmt: skip
            log.info("decisions: holdout %.1f %s: %d runs x %d exposures in %.1f s", holdout, sc.name,
                     cfg.runs, horizon, time.perf_counter() - started)  # fmt: skip
    return out


def _replay(cfg: Config, p: hs.Pool, shift: np.ndarray, seed: int, runs: int) -> dict[str, Any]:
    """One Hillstrom campaign: per outcome the rules' figures on the replay and on its A/A twin."""
    effect, var, holdout = p.effect(), p.variance(), p.holdout
    goals = effect / 2
    pairs = zip(var, goals, strict=True)
    n80 = [float(fixed_sample_size(v, holdout, abs(g))) if g else None for v, g in pairs]
    horizon = _horizon(max((n for n in n80 if n), default=math.inf), cfg, cfg.hillstrom_cap)
    rng = np.random.default_rng([cfg.seed, seed])
    parts: dict[str, list[Any]] = {}
    for chunk in _chunks(runs, horizon, cfg):
        for key, s in hs.replay(rng, p, chunk, horizon, cfg.look_every).items():
            outcome = key.split("/")[0]
            goal = 0.0 if key.endswith("/aa") else float(goals[hs.OUTCOMES.index(outcome)])
            res = outcomes(s, goal, tau_for(outcome, outcome, goal), cfg.alpha, cfg.min_per_arm,
                           outcome != "revenue", ("model",), cfg.min_purchases)  # fmt: skip
            parts.setdefault(key, []).append(res)
    rows = []
    for j, outcome in enumerate(hs.OUTCOMES):
        real, aa = merge(parts[outcome]), merge(parts[f"{outcome}/aa"])
        rows.append({
            "outcome": outcome, "goal": float(goals[j]), "true_effect": float(effect[j]),
            "mixing_scale": tau_for(outcome, outcome, float(goals[j])),
            "mean_predicted_uplift": float(p.uplift[:, j].mean()),
            "lin_shift_before_balancing": float(shift[j]),
            "fixed_horizon_n80": None if (n := n80[j]) is None else round(n),
            "rules": {r: summary(v, horizon, bool(effect[j] >= goals[j])) for r, v in real.items()},
            "savings": _savings(real, horizon, ("model",)),
            "aa": {r: summary(v, horizon, True) for r, v in aa.items()},
        })  # fmt: skip
    return {"campaign": f"{hs.CAMPAIGNS[p.name]} vs No E-Mail", "holdout": holdout,
            "customers": len(p.treated), "horizon": horizon, "runs": runs, "outcomes": rows}  # fmt: skip


def hillstrom(cfg: Config) -> dict[str, Any]:
    path = cfg.hillstrom
    if path is None or not path.is_file():
        return {"skipped": f"Hillstrom CSV not found at {path}: the Hillstrom replay is skipped"}
    started = time.perf_counter()
    data = hs.load(path)
    predictions = hs.crossfit(data, cfg.seed)
    log.info("decisions: Hillstrom cross-fitted predictions in %.1f s", time.perf_counter() - started)
    runs = cfg.hillstrom_runs or max(1, cfg.runs // 2)
    campaigns = []
    for i, name in enumerate(hs.CAMPAIGNS):
        started = time.perf_counter()
        campaigns.append(_replay(cfg, *hs.pool(data, predictions, name), 100 + i, runs))
        log.info("decisions: Hillstrom %s: %d runs x %d exposures in %.1f s", name, runs,
                 campaigns[-1]["horizon"], time.perf_counter() - started)  # fmt: skip
    return {"csv": str(path), "campaigns": campaigns}


def run(cfg: Config) -> dict[str, Any]:
    """All the figures, as one JSON-able dict (keys: meta, simulation, hillstrom, targets)."""
    started = time.perf_counter()
    sim = simulation(cfg)
    hill = hillstrom(cfg)
    meta = {k: v for k, v in asdict(cfg).items() if k not in ("world", "hillstrom")}
    meta |= {"world": asdict(cfg.world), "mean_baseline": cfg.world.mean_baseline(), "models": list(MODELS),
             "hillstrom_csv": None if cfg.hillstrom is None else str(cfg.hillstrom),
             "cores": os.cpu_count()}  # fmt: skip
    result = {"meta": meta, "simulation": sim, "hillstrom": hill}
    result["targets"] = targets(result)
    meta["seconds"] = round(time.perf_counter() - started, 1)
    return result
