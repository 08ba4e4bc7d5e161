"""The pre-trained default model shipped in `models/default/`, and the one command that rebuilds it.

    uv run python -m models.pretrained            # writes models/default/ (docs/model.md: The default model)
    uv run python -m models.pretrained unseen     # then records what its text adds on unseen promotions

It simulates a large history of its own world (`DEFAULT_WORLD`: other seed, users and promotions than the
demo's live world in stream/demo/run.py), trains on it with fixed seeds, and records in model.json and
model_card.md the metrics on two held-out sets: the history's test users (25%, never seen in training or
early stopping) and a small check world (`check_world`: the same world's config with `CHECK_USERS` users,
so the same catalogue and promotions and newly drawn users, exposures and outcomes). The check is what
tests/models/test_default.py recomputes from the shipped files in a few seconds.

`unseen` measures what the promotion text adds: it trains the attributes-only ablation (`--no-text`) on the
same history with the same seed and epochs, scores both models on the unseen promotions of UNSEEN_WORLDS
(other seeds, UNSEEN_USERS users, UNSEEN_CAMPAIGNS campaigns; `liftstream evaluate --split promotion`, the
baselines fitted on each world's other promotions), adds each world's rank ceilings (models/ceiling.py),
and records the per-promotion Spearman in model.json → default_model.unseen_promotions and the card.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from models.card import render_card
from models.dataset import Dataset, build_dataset
from models.modeldir import evaluate_split, json_safe
from models.nets import load_model, load_tokenizer, tokens_for
from models.train import split_three_ways, train
from stream.simulate.config import SimConfig
from stream.simulate.history_mode import write_simulation

log = logging.getLogger(__name__)

DEFAULT_DIR = Path(__file__).resolve().parent / "default"
CARD_FILE = "model_card.md"
COMMAND = "uv run python -m models.pretrained"
# Its own world: seed, user ids (u2024-…), promotion ids (promo2024-…) and texts differ from the demo's live
# world (seed 6, one campaign of three promotions); twelve campaigns of four promotions give the encoder 48
# promotions to learn what promotion text and attributes do, for promotions it has not seen.
DEFAULT_WORLD: dict[str, Any] = {"seed": 2024, "users": 30_000, "days": 7.0, "campaigns": 12}
TRAIN_SEED = 0
EPOCHS = 16
CHECK_USERS = 2000
FILES = ("adapters.pt", "scorer.pt", "model.json", "reference_matrix.npz", CARD_FILE)
UNSEEN_COMMAND = f"{COMMAND} unseen"
UNSEEN_WORLDS = (1, 2, 3)  # seeds of the test worlds
UNSEEN_USERS = 40_000
UNSEEN_CAMPAIGNS = 12  # 48 promotions, 36 of them held out (the baselines fit on the other 12)
UNSEEN_FRACTION = 0.75


def check_world(world: dict[str, Any]) -> SimConfig:
    """The held-out check: the default world's config with CHECK_USERS users (same promotions)."""
    return SimConfig(**{**world, "users": CHECK_USERS})


def _simulated(config: SimConfig, work: Path) -> Dataset:
    write_simulation(config, work)
    return build_dataset(work)


def metrics_on(model_dir: Path, ds: Dataset) -> dict[str, dict[str, float]]:
    """outcome -> metric of the model in MODEL_DIR on `ds` (CPU, the scorer's own code path)."""
    encoder, scorer, _ = load_model(model_dir)
    tokens = tokens_for(load_tokenizer(), ds.promo_texts)
    return json_safe(evaluate_split(encoder, scorer, tokens, ds))  # type: ignore[no-any-return]


def check_metrics(model_dir: Path, world: dict[str, Any]) -> tuple[int, dict[str, dict[str, float]]]:
    """(rows, metrics) of the model on the check world, simulated afresh into a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="liftstream-check-") as tmp:
        ds = _simulated(check_world(world), Path(tmp) / "history")
        return len(ds), metrics_on(model_dir, ds)


def build(out: Path = DEFAULT_DIR, work: Path | None = None) -> dict[str, Any]:
    """Simulate DEFAULT_WORLD, train, evaluate on the held-out sets, write MODEL_DIR + model_card.md."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="liftstream-default-") as tmp:
        root = work or Path(tmp)
        history, staged = root / "history", root / "model"
        shutil.rmtree(staged, ignore_errors=True)
        log.info("simulating the default world %s", DEFAULT_WORLD)
        ds = _simulated(SimConfig(**DEFAULT_WORLD), history)
        result = train(ds, staged, epochs=EPOCHS, seed=TRAIN_SEED, device="cpu")
        meta = json.loads((staged / "model.json").read_text())
        hyper = meta["hyper_parameters"]
        test = split_three_ways(ds, TRAIN_SEED, hyper["val_fraction"], hyper["test_fraction"]).test
        rows, check = check_metrics(staged, DEFAULT_WORLD)
        meta["default_model"] = {
            "command": COMMAND,
            "world": DEFAULT_WORLD,
            "train_seed": TRAIN_SEED,
            "epochs": EPOCHS,
            "held_out": {
                "test": {"rows": len(test), "metrics": metrics_on(staged, test)},
                "check": {"world": {**DEFAULT_WORLD, "users": CHECK_USERS}, "rows": rows, "metrics": check},
            },
            "build_seconds": round(time.perf_counter() - started, 1),
        }
        (staged / "model.json").write_text(json.dumps(json_safe(meta), indent=2) + "\n")
        (staged / CARD_FILE).write_text(render_card(meta, None))
        out.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copyfile(staged / name, out / name)
    log.info("wrote %s: best epoch %d of %d in %.0fs", out, result.best_epoch, result.epochs_run,
             meta["default_model"]["build_seconds"])
    return meta


def unseen(model_dir: Path = DEFAULT_DIR) -> dict[str, Any]:
    """Per test world: outcome -> model -> Spearman on its unseen promotions (module docstring); written into
    MODEL_DIR's model.json and card."""
    from models.ceiling import ceilings
    from models.evaluate import evaluate_dataset
    from models.train import TrainConfig

    meta = json.loads((model_dir / "model.json").read_text())
    default = meta["default_model"]
    with tempfile.TemporaryDirectory(prefix="liftstream-unseen-") as tmp:
        ablation = Path(tmp) / "ablation"
        train(_simulated(SimConfig(**default["world"]), Path(tmp) / "history"), ablation,
              epochs=default["epochs"], seed=default["train_seed"], device="cpu",
              config=TrainConfig(text=False))
        worlds = []
        for seed in UNSEEN_WORLDS:
            config = SimConfig(seed=seed, users=UNSEEN_USERS, campaigns=UNSEEN_CAMPAIGNS)
            ds = _simulated(config, Path(tmp) / f"world{seed}")
            ev = evaluate_dataset(model_dir, ds, split="promotion", holdout_fraction=UNSEEN_FRACTION,
                                  split_seed=0, bootstrap=0, ablation=ablation)
            split = ev.metrics["unseen_promotions"]
            spearman = {o: {name: m.get("spearman") for name, m in by_model.items()}
                        for o, by_model in split["outcomes"].items()}
            worlds.append({"seed": seed, "users": UNSEEN_USERS, "campaigns": UNSEEN_CAMPAIGNS,
                           "held_out": len(split["held_out"]), "spearman": spearman,
                           "ceilings": ceilings(config, only=split["held_out"])})
    default["unseen_promotions"] = {"command": UNSEEN_COMMAND, "fraction": UNSEEN_FRACTION, "worlds": worlds}
    (model_dir / "model.json").write_text(json.dumps(json_safe(meta), indent=2) + "\n")
    (model_dir / CARD_FILE).write_text(render_card(meta, None))
    return default["unseen_promotions"]  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args[:1] == ["unseen"]:
        model_dir = Path(args[1]) if len(args) > 1 else DEFAULT_DIR
        for world in unseen(model_dir)["worlds"]:
            for outcome, by_model in world["spearman"].items():
                print(f"world {world['seed']} {outcome}: " + ", ".join(
                    f"{name} {value:+.2f}" for name, value in by_model.items() if value is not None))
        print(f"wrote {model_dir / 'model.json'} and {model_dir / CARD_FILE}")
        return
    out = Path(args[0]) if args else DEFAULT_DIR
    meta = build(out)
    held = meta["default_model"]["held_out"]
    for name in ("test", "check"):
        visit = held[name]["metrics"]["visit"]
        print(f"{name} ({held[name]['rows']} exposures): visit Qini {visit['qini']:.5f}, "
              f"uplift@30 {visit['uplift_at_30']:.4f}")
    print(f"wrote {out} in {meta['default_model']['build_seconds']:.0f}s")


if __name__ == "__main__":
    main()
