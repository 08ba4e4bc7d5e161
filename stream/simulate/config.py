"""What a simulated world is made of; one frozen value so a seed and a config fully determine the output."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from stream.errors import ConfigError

# A Monday, midnight UTC: fixed so that history mode never depends on the wall clock.
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
MS = 1000
HOUR_MS = 3600 * MS
DAY_MS = 24 * HOUR_MS
# Append only: a stage's index seeds its stream, so reordering would change every existing world.
_STAGES = ("world", "promotions", "exposures", "outcomes", "traffic", "events", "malformed", "arrival",
           "drift")  # fmt: skip
DRIFT_KINDS = ("new_segment", "price", "both")
GOAL_OUTCOMES = ("visit", "conversion", "revenue")
_MIN_EPISODE_MS = 2 * 60 * MS  # room for the cohort's profiles (first minute) before its activity


@dataclass(frozen=True)
class SimConfig:
    seed: int = 0
    users: int = 5000
    days: float = 7.0
    start: datetime = DEFAULT_START
    attribution_window_s: int = 86400
    campaigns: int = 6
    promotions_per_campaign: int = 4
    exposure_rate: float = 0.8  # candidate exposures per user per day, before frequency capping
    dud_scale: float = 0.0  # effect multiplier of the "dud" promotion: 0 means no effect at all
    strong_scale: float = 2.0
    out_of_order_fraction: float = 0.02
    late_fraction: float = 0.005
    malformed_rate: float = 0.0
    # Drift episode, as fractions of `days` (the period in which promotions are shown); None: no drift.
    drift_start: float | None = None
    drift_end: float | None = None  # None with a start: until the end of `days`
    drift_kind: str = "new_segment"
    drift_price_factor: float = 1.8  # catalogue price multiplier during a "price" episode
    # Overrides for every promotion (None: drawn per promotion as usual; the draws stay the same either way).
    goal_outcome: str | None = None  # "visit", "conversion" or "revenue"
    holdout_fraction: float | None = None  # in (0, 1)
    # An exposure's outcome session (its visit, if any) starts within this many seconds after it; None:
    # anywhere in the attribution window. Only the timing moves: the truth (chances within the window) stays.
    response_s: int | None = None

    def __post_init__(self) -> None:
        checks = (
            (self.seed >= 0, "seed must be >= 0"),
            (1 <= self.users <= 2_000_000, "users must be in [1, 2000000]"),
            (0 < self.days <= 366, "days must be in (0, 366]"),
            (3600 <= self.attribution_window_s <= 60 * 86400, "attribution window must be 1 h .. 60 days"),
            (
                self.campaigns >= 1 and self.promotions_per_campaign >= 2,
                "need >= 1 campaign of >= 2 promotions",
            ),
            (0 < self.exposure_rate <= 50, "exposure_rate must be in (0, 50]"),
            (self.dud_scale >= 0 and self.strong_scale >= 0, "effect scales must be >= 0"),
            (0 <= self.out_of_order_fraction <= 1 and 0 <= self.late_fraction <= 1, "fractions in [0, 1]"),
            (0 <= self.malformed_rate < 0.5, "malformed rate must be in [0, 0.5)"),
            (self.start.tzinfo is not None, "start must be timezone-aware"),
            (
                self.goal_outcome in (None, *GOAL_OUTCOMES),
                f"goal outcome must be one of {', '.join(GOAL_OUTCOMES)}",
            ),
            (
                self.holdout_fraction is None or 0 < self.holdout_fraction < 1,
                "holdout fraction must be in (0, 1)",
            ),
            (
                self.response_s is None or 60 <= self.response_s <= self.attribution_window_s,
                "response time must be between 60 s and the attribution window",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self._check_drift()

    def _check_drift(self) -> None:
        if self.drift_kind not in DRIFT_KINDS:
            raise ConfigError(f"drift kind must be one of {', '.join(DRIFT_KINDS)}")
        if not 0.1 <= self.drift_price_factor <= 10:
            raise ConfigError("drift price factor must be in [0.1, 10]")
        if self.drift_start is None:
            if self.drift_end is not None:
                raise ConfigError("a drift end needs a drift start")
            return
        end = 1.0 if self.drift_end is None else self.drift_end
        if not 0 <= self.drift_start < end <= 1:
            raise ConfigError("drift start and end must satisfy 0 <= start < end <= 1")
        lo, hi = self.drift_ms or (0, 0)
        if hi - lo < _MIN_EPISODE_MS:
            raise ConfigError("the drift episode must last at least 2 simulated minutes")

    @property
    def window_ms(self) -> int:
        return self.attribution_window_s * MS

    @property
    def exposure_span_ms(self) -> int:
        """Exposures happen during `days`; the history runs one attribution window longer."""
        return int(round(self.days * DAY_MS))

    @property
    def span_ms(self) -> int:
        return self.exposure_span_ms + self.window_ms

    @property
    def drift_ms(self) -> tuple[int, int] | None:
        """The drift episode [start, end) in simulation milliseconds, or None without drift."""
        if self.drift_start is None:
            return None
        end = 1.0 if self.drift_end is None else self.drift_end
        return round(self.drift_start * self.exposure_span_ms), round(end * self.exposure_span_ms)

    @property
    def n_promotions(self) -> int:
        return self.campaigns * self.promotions_per_campaign


def stage_rng(seed: int, stage: str) -> np.random.Generator:
    """An independent random stream per stage: e.g. a new malformed rate never changes the valid events."""
    return np.random.default_rng([seed, _STAGES.index(stage)])
