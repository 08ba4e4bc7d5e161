from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from stream.events.models import INPUT_EVENTS, MAX_MESSAGE_BYTES
from stream.history import History, iter_malformed, read_history
from stream.simulate.config import SimConfig
from stream.simulate.history_mode import simulate, write_simulation

pytestmark = pytest.mark.unit

FILES = ("promotions.jsonl", "profiles.jsonl", "exposures.jsonl", "clicks.jsonl", "truth.csv", "meta.json",
         "malformed.jsonl")  # fmt: skip
SMALL = SimConfig(seed=7, users=300, days=2.0, malformed_rate=0.05)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small")
    write_simulation(SMALL, out)
    return out


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> History:
    out = tmp_path_factory.mktemp("large")
    write_simulation(SimConfig(seed=11, users=4000, days=5.0), out)
    return read_history(out)


def test_same_seed_gives_identical_bytes(small: Path, tmp_path: Path) -> None:
    write_simulation(SMALL, tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (small / name).read_bytes(), name


def test_different_seed_differs_everywhere(small: Path, tmp_path: Path) -> None:
    write_simulation(SimConfig(seed=8, users=300, days=2.0, malformed_rate=0.05), tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() != (small / name).read_bytes(), name


def test_malformed_rate_never_changes_the_valid_events(small: Path, tmp_path: Path) -> None:
    write_simulation(SimConfig(seed=7, users=300, days=2.0, malformed_rate=0.0), tmp_path)
    for name in FILES[:5]:
        assert (tmp_path / name).read_bytes() == (small / name).read_bytes(), name
    assert not (tmp_path / "malformed.jsonl").exists()


def test_every_line_is_a_valid_event_in_time_order(small: Path) -> None:
    h = read_history(small)
    for events in (h.promotions, h.profiles, h.exposures, h.clicks):
        assert events and all(a.ts <= b.ts for a, b in zip(events, events[1:], strict=False))
    assert len({c.event_id for c in h.clicks}) == len(h.clicks)
    assert len({e.event_id for e in h.exposures}) == len(h.exposures) == h.meta["n_exposures"]
    assert h.truth is not None and [t.event_id for t in h.truth] == [e.event_id for e in h.exposures]
    assert len(h.profiles) == SMALL.users
    assert {c.kind.value for c in h.clicks} == {"visit", "view", "click", "add_to_cart", "purchase"}
    promotion_ids = {p.promotion_id for p in h.promotions}
    assert {e.promotion_id for e in h.exposures} <= promotion_ids
    assert {h.meta["dud_promotion_id"], h.meta["strong_promotion_id"]} <= promotion_ids
    assert max(p.version for p in h.promotions) == 2  # one promotion changes its copy mid-campaign


def test_malformed_share_and_every_payload_is_rejected(small: Path) -> None:
    h = read_history(small)
    valid = len(h.promotions) + len(h.profiles) + len(h.exposures) + len(h.clicks)
    bad = list(iter_malformed(small))
    share = len(bad) / (len(bad) + valid)
    sd = np.sqrt(SMALL.malformed_rate * (1 - SMALL.malformed_rate) / (len(bad) + valid))
    assert abs(share - SMALL.malformed_rate) < 4 * sd
    assert {r.topic for r in bad} == set(INPUT_EVENTS)
    for rec in bad:
        if len(rec.payload) <= MAX_MESSAGE_BYTES:
            with pytest.raises(ValueError):
                INPUT_EVENTS[rec.topic].model_validate_json(rec.payload)


def _labels(h: History) -> dict[str, np.ndarray]:
    """Outcome labels exactly as DESIGN defines them: clicks of the user within the window after exposure."""
    window = h.meta["attribution_window_s"]
    by_user: dict[str, list[tuple[float, bool, float]]] = defaultdict(list)
    for c in h.clicks:
        by_user[c.user_id].append((c.ts.timestamp(), c.kind.value == "purchase", c.price * c.quantity))
    out: dict[str, list[float]] = {"treated": [], "visit": [], "conversion": [], "revenue": []}
    for e in h.exposures:
        t0 = e.ts.timestamp()
        hits = [(bought, value) for t, bought, value in by_user[e.user_id] if t0 <= t <= t0 + window]
        out["treated"].append(e.arm.value == "treatment")
        out["visit"].append(float(bool(hits)))
        out["conversion"].append(float(any(b for b, _ in hits)))
        out["revenue"].append(sum(v for b, v in hits if b))
    return {k: np.array(v) for k, v in out.items()}


def test_realised_uplift_matches_the_true_effect(large: History) -> None:
    assert large.truth is not None
    y = _labels(large)
    treated = y["treated"].astype(bool)
    for outcome in ("visit", "conversion", "revenue"):
        values = y[outcome]
        diff = values[treated].mean() - values[~treated].mean()
        se = np.sqrt(
            values[treated].var(ddof=1) / treated.sum() + values[~treated].var(ddof=1) / (~treated).sum()
        )
        tau = np.mean([getattr(t, f"tau_{outcome}") for t in large.truth])
        assert abs(diff - tau) < 2.576 * se, (outcome, diff, tau, se)
        mu0 = np.mean(
            [getattr(t, f"mu0_{outcome}") for t, h in zip(large.truth, treated, strict=True) if not h]
        )
        se0 = values[~treated].std(ddof=1) / np.sqrt((~treated).sum())
        assert abs(values[~treated].mean() - mu0) < 2.576 * se0, (outcome, values[~treated].mean(), mu0)


def test_dud_has_no_effect_and_strong_has_the_largest(large: History) -> None:
    assert large.truth is not None
    tau: dict[str, list[float]] = defaultdict(list)
    for t in large.truth:
        tau[t.promotion_id].append(t.tau_conversion)
        if t.promotion_id == large.meta["dud_promotion_id"]:
            assert (t.tau_visit, t.tau_conversion, t.tau_revenue) == (0.0, 0.0, 0.0)
    means = {p: float(np.mean(v)) for p, v in tau.items()}
    assert max(means, key=means.__getitem__) == large.meta["strong_promotion_id"]


def test_effects_are_heterogeneous_and_sometimes_harmful(large: History) -> None:
    assert large.truth is not None
    tau = np.array([t.tau_conversion for t in large.truth])
    assert (tau < 0).mean() > 0.02 and (tau > 0).mean() > 0.5
    region = {p.user_id: p.region.value for p in large.profiles}
    themes = {pid: info["themes_by_version"]["1"] for pid, info in large.meta["promotions"].items()}
    shipping = [t for t in large.truth if "free_shipping" in themes[t.promotion_id]]
    rural = np.mean([t.tau_visit for t in shipping if region[t.user_id] == "rural"])
    urban = np.mean([t.tau_visit for t in shipping if region[t.user_id] == "urban"])
    assert rural > urban


def test_discount_type_does_not_give_the_theme_away() -> None:
    sim = simulate(SimConfig(seed=3, users=50, days=1.0, campaigns=12, promotions_per_campaign=4))
    themes_per_type: dict[str, set[str]] = defaultdict(set)
    for p in sim.promotions:
        if p.action.value == "start" and sim.meta["promotions"][p.promotion_id]["role"] == "regular":
            primary = max(
                sim.meta["promotions"][p.promotion_id]["themes_by_version"]["1"].items(), key=lambda x: x[1]
            )
            themes_per_type[p.discount_type.value].add(primary[0])
    assert all(len(themes) >= 2 for themes in themes_per_type.values()), themes_per_type
    texts = Counter(p.title for p in sim.promotions if p.action.value == "start")
    assert len(texts) > 40  # copy is varied, not one template per theme
