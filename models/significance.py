"""How sure a comparison of uplift metrics is: a paired bootstrap over the held-out users.

One split's outcomes are noisy: on Hillstrom a model's uplift@30 moves by about 0.014 between resamples of
the same test users, more than the models differ. Each resample draws users with replacement and keeps all
their rows (a user's exposures to several promotions are not independent), and every model is scored on
the same resample, so the differences between models are paired. Across cross-fitting folds, where
training sets overlap, `nadeau_bengio` gives the corrected t interval of the mean paired difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from scipy import stats

from models.metrics import qini_coefficient, uplift_at_k

LEVEL = 0.9  # two-sided interval: the 5th and 95th percentiles of the resampled values
Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]
METRICS: dict[str, Metric] = {
    "uplift_at_30": lambda u, y, t: uplift_at_k(u, y, t, 0.3),
    "qini": qini_coefficient,
}


def user_resamples(user_ids: np.ndarray, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of each resample: users drawn with replacement, each drawn user's rows once per draw."""
    users, user_of_row = np.unique(user_ids, return_inverse=True)
    rng = np.random.default_rng(seed)
    rows = np.arange(len(user_ids))
    for _ in range(resamples):
        draws = np.bincount(rng.integers(0, len(users), len(users)), minlength=len(users))
        yield np.repeat(rows, draws[user_of_row])


def _interval(values: np.ndarray) -> list[float]:
    values = values[np.isfinite(values)]
    if not len(values):
        return [float("nan"), float("nan")]
    tail = (1.0 - LEVEL) / 2.0 * 100.0
    return [float(v) for v in np.percentile(values, [tail, 100.0 - tail])]


def paired_bootstrap(
    rankings: dict[str, np.ndarray],
    y: np.ndarray,
    t: np.ndarray,
    user_ids: np.ndarray,
    *,
    reference: str,
    resamples: int,
    seed: int,
    metrics: dict[str, Metric] | None = None,
) -> dict[str, Any]:
    """Intervals of each model's metrics (default METRICS) and of the reference model's lead over every
    other model.

    `share_ahead` is the share of resamples in which the reference model scores higher (ties count half).
    """
    metrics = METRICS if metrics is None else metrics
    values = {name: {m: np.empty(resamples) for m in metrics} for name in rankings}
    for b, idx in enumerate(user_resamples(user_ids, resamples, seed)):
        yy, tt = y[idx], t[idx]
        for name, uplift in rankings.items():
            for metric, fn in metrics.items():
                values[name][metric][b] = fn(uplift[idx], yy, tt)
    versus: dict[str, dict[str, Any]] = {}
    for name in rankings:
        if name == reference:
            continue
        versus[name] = {}
        for metric in metrics:
            lead = values[reference][metric] - values[name][metric]
            lead = lead[np.isfinite(lead)]  # a resample without both arms in a top k has no uplift@k
            versus[name][metric] = {
                "difference": _interval(lead),
                "share_ahead": float(np.mean((lead > 0) + 0.5 * (lead == 0))) if len(lead) else float("nan"),
            }
    return {
        "resamples": resamples,
        "level": LEVEL,
        "models": {name: {m: _interval(v) for m, v in per.items()} for name, per in values.items()},
        "versus": versus,
    }


def nadeau_bengio(differences: np.ndarray, test_to_train: float, level: float = LEVEL) -> dict[str, Any]:
    """The corrected resampled t interval of a mean difference over J cross-fitting folds (Nadeau & Bengio
    2003): the folds' training sets overlap, so their differences are correlated and the plain variance
    s^2 / J understates the mean's; the correction uses (1/J + n_test/n_train) s^2, with t on J - 1 degrees
    of freedom. `test_to_train` is n_test/n_train (1/(K - 1) for K equal folds); two-sided, `level` 90%."""
    d = np.asarray(differences, dtype=np.float64)
    j = len(d)
    mean = float(d.mean()) if j else float("nan")
    if j < 2:
        return {"mean": mean, "sd": float("nan"), "se": float("nan"), "interval": [float("nan")] * 2,
                "folds": j, "test_to_train": test_to_train, "level": level}
    sd = float(d.std(ddof=1))
    se = float(np.sqrt((1.0 / j + test_to_train) * sd**2))
    half = float(stats.t.ppf(0.5 + level / 2.0, j - 1)) * se
    return {"mean": mean, "sd": sd, "se": se, "interval": [mean - half, mean + half], "folds": j,
            "test_to_train": test_to_train, "level": level}
