from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from models.dataset import Dataset, build_dataset
from stream.drift.reference import Reference, build_reference, model_inputs
from stream.drift.stats import psi
from stream.errors import ConfigError
from stream.features.profile import PROFILE_FEATURES
from stream.history import read_history
from stream.simulate.config import SimConfig
from stream.simulate.history_mode import write_simulation
from stream.simulate.live import live_messages

pytestmark = pytest.mark.unit

# SHA-256 of worlds without drift: adding drift must not change them (updated for the dud's planned goal).
BEFORE_DRIFT = SimConfig(seed=3, users=200, days=1.0, malformed_rate=0.02)
BEFORE_DRIFT_HISTORY = "8cdf87311b72ad10eee541b47dbb8d412cafd781c387794f9013439a6b02a0d5"
BEFORE_DRIFT_LIVE = "fba2eedcfd34147486f32917dbf1ba5fdad9964fc7b31276f2f8ff1983078784"
LIVE_NOW = datetime(2026, 3, 1, tzinfo=UTC)

# Short windows and frequent sends: thousands of exposure rows, so PSI's sampling noise stays far below 0.1.
SMALL = {"seed": 4, "users": 1200, "days": 2.0, "attribution_window_s": 6 * 3600, "exposure_rate": 2.0}
EPISODE = {"drift_start": 0.5, "drift_end": 0.9}


def _tree_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _history(tmp: pytest.TempPathFactory, config: SimConfig) -> Path:
    out = tmp.mktemp("h")
    write_simulation(config, out)
    return out


@pytest.fixture(scope="module")
def segment_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _history(tmp_path_factory, SimConfig(**SMALL, **EPISODE))


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimConfig, Dataset]:
    config = SimConfig(seed=11, users=2500, days=4.0, drift_start=0.3, drift_end=0.8, drift_kind="both")
    return config, build_dataset(_history(tmp_path_factory, config))


def _episode_s(config: SimConfig) -> tuple[float, float]:
    assert config.drift_ms is not None
    return tuple(config.start.timestamp() + ms / 1000 for ms in config.drift_ms)  # type: ignore[return-value]


def _profile_psi(ds: Dataset, split_s: float, until_s: float) -> dict[str, float]:
    """PSI per profile feature: rows in [split, until) against 10 quantile bins of the rows before split."""
    pre, post = ds.ts < split_s, (ds.ts >= split_s) & (ds.ts < until_s)
    none = np.zeros((int(pre.sum()), 3))
    ref = Reference.from_dict(
        build_reference(ds.user_features[pre], ds.promo_attrs[pre], ds.arm[pre], none, none)
    )
    values = model_inputs(ds.user_features[post], ds.promo_attrs[post], np.zeros((int(post.sum()), 3)))
    scores = psi(ref.expected["overall"], ref.counts(values))
    return {f: float(s) for f, s in zip(ref.features, scores, strict=True) if f in PROFILE_FEATURES}


def test_worlds_without_drift_keep_their_bytes(tmp_path: Path) -> None:
    write_simulation(BEFORE_DRIFT, tmp_path)
    assert _tree_hash(tmp_path) == BEFORE_DRIFT_HISTORY
    digest = hashlib.sha256()
    for m in live_messages(BEFORE_DRIFT, LIVE_NOW):
        digest.update(m.topic.encode() + m.key + m.value)
    assert digest.hexdigest() == BEFORE_DRIFT_LIVE


def test_a_drifting_world_is_deterministic(segment_dir: Path, tmp_path: Path) -> None:
    write_simulation(SimConfig(**SMALL, **EPISODE), tmp_path)
    assert _tree_hash(tmp_path) == _tree_hash(segment_dir)


def test_new_segment_shifts_profile_features_and_no_drift_does_not(
    segment_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = SimConfig(**SMALL, **EPISODE)
    start, end = _episode_s(config)
    drifting = _profile_psi(build_dataset(segment_dir), start, end)
    steady = _profile_psi(build_dataset(_history(tmp_path_factory, SimConfig(**SMALL))), start, end)
    shifted = {f for f, v in drifting.items() if v > 0.25}
    assert {"profile_tenure_log_days", "profile_is_new", "profile_channel_mobile"} <= shifted, drifting
    assert max(steady.values()) < 0.1, steady


def test_the_cohort_signs_up_at_the_episode_and_acts_only_within_it(segment_dir: Path) -> None:
    h = read_history(segment_dir)
    config = SimConfig(**SMALL, **EPISODE)
    start, end = _episode_s(config)
    drift = h.meta["drift"]
    assert (drift["kind"], drift["start_fraction"], drift["end_fraction"]) == ("new_segment", 0.5, 0.9)
    assert drift["cohort_users"] == SMALL["users"] and h.meta["n_users"] == 2 * SMALL["users"]
    cohort = {p.user_id: p for p in h.profiles[SMALL["users"] :]}
    assert len(cohort) == SMALL["users"] and min(cohort) == drift["cohort_first_user"]
    assert all(
        p.is_new and p.tenure_days <= 2 and start <= p.ts.timestamp() < start + 60 for p in cohort.values()
    )
    own = [e.ts.timestamp() for e in h.exposures if e.user_id in cohort]
    assert own and start + 60 <= min(own) and max(own) < end
    inside = [e.user_id in cohort for e in h.exposures if start <= e.ts.timestamp() < end]
    assert np.mean(inside) > 0.6  # the cohort carries most exposures of the episode
    first_click = min(c.ts.timestamp() for c in h.clicks if c.user_id in cohort)
    assert first_click >= start + 60
    assert h.truth is not None and [t.event_id for t in h.truth] == [e.event_id for e in h.exposures]


def test_price_episode_multiplies_catalogue_prices(tmp_path_factory: pytest.TempPathFactory) -> None:
    config = SimConfig(**SMALL, **EPISODE, drift_kind="price", drift_price_factor=2.0)
    h = read_history(_history(tmp_path_factory, config))
    start, end = _episode_s(config)
    assert h.meta["drift"]["price_factor"] == 2.0 and h.meta["n_users"] == SMALL["users"]
    before: dict[str, set[float]] = {}
    during: dict[str, set[float]] = {}
    for c in h.clicks:
        if c.kind.value == "view":
            t = c.ts.timestamp()
            side = before if t < start else during if start + 3600 <= t < end else None
            if side is not None:
                side.setdefault(str(c.item_id), set()).add(c.price)
    both = [item for item in before if item in during]
    assert len(both) > 20
    ratios = [max(during[i]) / max(before[i]) for i in both]
    assert np.median(ratios) == pytest.approx(2.0, abs=0.01)
    assert h.truth is not None
    basket = {t.event_id: t.mu0_revenue / t.mu0_conversion for t in h.truth}
    at = {e.event_id: e.ts.timestamp() for e in h.exposures}
    within = np.mean([b for i, b in basket.items() if start <= at[i] < end])
    outside = np.mean([b for i, b in basket.items() if at[i] < start])
    assert 1.7 < within / outside < 2.3  # the truth's expected basket is repriced with the clicks


def test_realised_outcomes_match_the_truth_inside_and_outside_the_episode(
    medium: tuple[SimConfig, Dataset],
) -> None:
    config, ds = medium
    assert ds.tau is not None and ds.mu0 is not None
    start, end = _episode_s(config)
    inside = (ds.ts >= start) & (ds.ts < end)
    treated = ds.arm == 1
    for rows in (inside, ~inside):
        t, h = rows & treated, rows & ~treated
        for k in range(3):
            y = ds.labels[:, k]
            diff = y[t].mean() - y[h].mean()
            se = np.sqrt(y[t].var(ddof=1) / t.sum() + y[h].var(ddof=1) / h.sum())
            assert abs(diff - ds.tau[rows, k].mean()) < 3.29 * se, (k, diff, ds.tau[rows, k].mean())
            se0 = y[h].std(ddof=1) / np.sqrt(h.sum())
            assert abs(y[h].mean() - ds.mu0[h, k].mean()) < 3.29 * se0, (k, y[h].mean(), ds.mu0[h, k].mean())


@pytest.mark.parametrize(
    "changes",
    [
        {"drift_end": 0.5},
        {"drift_start": 0.6, "drift_end": 0.5},
        {"drift_start": -0.1},
        {"drift_start": 0.2, "drift_end": 1.1},
        {"drift_start": 0.2, "drift_kind": "weather"},
        {"drift_start": 0.2, "drift_price_factor": 0.0},
        {"drift_start": 0.5, "drift_end": 0.5001},
    ],
)
def test_bad_drift_settings_are_config_errors(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SimConfig(users=10, days=1.0, **changes)  # type: ignore[arg-type]


def test_meta_has_no_drift_entry_without_an_episode(tmp_path: Path) -> None:
    write_simulation(SimConfig(seed=1, users=20, days=1.0), tmp_path)
    assert "drift" not in json.loads((tmp_path / "meta.json").read_text())
