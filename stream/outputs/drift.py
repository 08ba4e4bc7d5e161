"""Drift of the live model inputs and predictions against the reference exported with the served model.

The reference is `REPO/effect_scorer/<version>/reference.json` (written by `liftstream export`). When
the served version changes the window starts over against the new version's reference; a version
without one (or a worker that cannot read the repository) reports no drift and says so once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import numpy as np

from stream.drift.detector import DriftDetector
from stream.drift.reference import load_reference
from stream.errors import ModelError
from stream.events.models import DriftReport
from stream.scoring.signature import SCORER
from stream.settings import Drift

log = logging.getLogger(__name__)


class DriftMonitor:
    def __init__(self, repo: Path, settings: Drift) -> None:
        self.repo = repo
        self.settings = settings
        self.version: int | None = None
        self.detector: DriftDetector | None = None

    def update(
        self,
        version: int,
        user_features: np.ndarray,
        promo_attrs: np.ndarray,
        arm: np.ndarray,
        uplift: np.ndarray,
    ) -> None:
        if version != self.version:
            self._load(version)
        if self.detector is not None and len(arm):
            self.detector.update(user_features, promo_attrs, arm, uplift)

    def report(self, now: datetime) -> list[DriftReport]:
        if self.detector is None or self.version is None:
            return []
        return self.detector.report(now, self.version)

    def _load(self, version: int) -> None:
        self.version = version
        path = self.repo / SCORER / str(version) / "reference.json"
        try:
            self.detector = DriftDetector(load_reference(path), self.settings)
        except ModelError as exc:
            self.detector = None
            log.info("no drift reports for model version %d: %s", version, exc)
