"""Compares the live window of model inputs and predictions with the model's reference statistics."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import numpy as np

from stream.drift.reference import OVERALL, SCOPES, Reference, model_inputs, treatment_mask
from stream.drift.stats import ks, psi
from stream.drift.window import SlidingWindow
from stream.errors import ModelError
from stream.events.models import Arm, DriftReport, FeatureDrift
from stream.settings import Drift

log = logging.getLogger(__name__)

CLOCK_FEATURES = frozenset({"hour_sin", "hour_cos"})
"""Time of day: a live window shorter than a day never matches the all-day reference. Their PSI and KS are
reported, but they neither flag a report as drifted nor count in its `max_psi`."""


class DriftDetector:
    """Feed it every scored batch with `update`; call `report` every `report_interval_s`."""

    def __init__(self, reference: Reference | dict[str, Any], settings: Drift) -> None:
        self.reference = reference if isinstance(reference, Reference) else Reference.from_dict(reference)
        self.settings = settings
        self.window = SlidingWindow(settings.window_events, len(self.reference.features))

    def update(
        self, user_features: np.ndarray, promo_attrs: np.ndarray, arm: np.ndarray, uplift: np.ndarray
    ) -> None:
        """One scored batch: features [n, 41], promotion attributes [n, 9], arms [n], uplift [n, outcomes]."""
        rows = model_inputs(user_features, promo_attrs, uplift)
        if rows.shape[1] != len(self.reference.features):
            expected = len(self.reference.features)
            raise ModelError(f"{rows.shape[1]} drift columns but the reference has {expected}")
        self.window.append(rows, treatment_mask(arm))

    def report(self, now: datetime, model_version: int) -> list[DriftReport]:
        """One report per scope (overall, each arm) that has a reference and enough live rows."""
        rows, treated = self.window.rows()
        masks = {OVERALL: np.ones_like(treated), SCOPES[1]: treated, SCOPES[2]: ~treated}
        reports = []
        for scope, mask in masks.items():
            expected = self.reference.expected.get(scope)
            n = int(mask.sum())
            if expected is None or n < self.settings.min_events:
                continue
            actual = self.reference.counts(rows[mask])
            scores = psi(expected, actual), ks(expected, actual)
            reports.append(self._report(scope, n, *scores, now, model_version))
        if reports:
            log.info("drift: %s", ", ".join(f"{r.scope} max_psi={r.max_psi:.3f}" for r in reports))
        return reports

    def _report(
        self, scope: str, n: int, psis: np.ndarray, kss: np.ndarray, now: datetime, model_version: int
    ) -> DriftReport:
        threshold = self.settings.psi_threshold
        watched = np.asarray([name not in CLOCK_FEATURES for name in self.reference.features])
        features = [
            FeatureDrift(name=name, psi=float(p), ks=float(k), drifted=bool(w and p > threshold))
            for name, p, k, w in zip(self.reference.features, psis, kss, watched, strict=True)
        ]
        max_psi = float(psis[watched].max())
        return DriftReport(
            scope=scope,
            arm=None if scope == OVERALL else Arm(scope),
            window_events=n,
            features=features,
            max_psi=max_psi,
            drifted=max_psi > threshold,
            model_version=model_version,
            emitted_at=now,
        )
