"""An untrained MODEL_DIR for benchmarks: the real networks with random heads, nothing trained.

Scoring costs the same whatever the weights, so a throughput benchmark needs no training run: the
encoder is the pretrained all-MiniLM-L6-v2 (offline) with a random projection, the scorer a randomly
initialised MLP. The drift reference comes from real feature rows of a small simulated history, so the
exported version is complete (`liftstream export` accepts it) and a worker serving it reports drift.

    python -m stream.bench.random_model OUT_DIR    # then: liftstream export --model OUT_DIR --repo REPO
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from models.dataset import build_dataset
from models.nets import build_model
from stream.scoring.signature import OUTCOMES, PROMO_ATTRS, PROMO_DIM, USER_FEATURES
from stream.simulate.config import SimConfig
from stream.simulate.history_mode import write_simulation

HIDDEN = (128, 64)
REFERENCE_WORLD = SimConfig(seed=5, users=400, days=1.0)


def write_random_model(out: Path, seed: int = 0) -> Path:
    """encoder.pt, scorer.pt, model.json and reference_matrix.npz of an untrained model in `out`."""
    torch.manual_seed(seed)
    hyper = {"hidden": list(HIDDEN), "dropout": 0.1, "promo_dim": PROMO_DIM}
    encoder, scorer = build_model(hyper)
    with tempfile.TemporaryDirectory(prefix="liftstream-bench-history-") as tmp:
        write_simulation(REFERENCE_WORLD, Path(tmp))
        ds = build_dataset(Path(tmp))
    vectors = np.random.default_rng(seed).uniform(-1, 1, (len(ds), PROMO_DIM)).astype(np.float32)
    with torch.inference_mode():
        p_t, p_c = scorer.eval()(*(torch.from_numpy(a) for a in (ds.user_features, vectors, ds.promo_attrs)))
    out.mkdir(parents=True, exist_ok=True)
    torch.save(encoder.state_dict(), out / "encoder.pt")
    torch.save(scorer.state_dict(), out / "scorer.pt")
    np.savez_compressed(
        out / "reference_matrix.npz", user_features=ds.user_features, promo_attrs=ds.promo_attrs,
        arm=ds.arm, promotion_ids=ds.promotion_ids.astype(str), p_treated=p_t.numpy(),
        p_control=p_c.numpy(),
    )  # fmt: skip
    created = datetime.now(UTC)
    meta = {
        "version": created.strftime("%Y%m%d%H%M%S"),
        "created_at": created.isoformat(),
        "formulation": "untrained (random heads) for benchmarks",
        "seed": seed,
        "hyper_parameters": hyper,
        "features": {"user_features": list(USER_FEATURES), "promo_attrs": list(PROMO_ATTRS),
                     "outcomes": list(OUTCOMES)},
        "data": {"source": "simulator", "promotions": sorted(set(ds.promotion_ids.tolist()))},
        "training": {"epochs_run": 0},
        "validation_metrics": {},
    }  # fmt: skip
    (out / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m stream.bench.random_model OUT_DIR")
    print(write_random_model(Path(sys.argv[1])))
