"""The demo's model: reuse what `triton_repo/` serves, else simulate a history, train, export (cached)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stream.scoring.signature import SCORER

DEMO_HISTORY = {"seed": 11, "users": 4000, "days": 5.0}
DEMO_EPOCHS = 6


def served_versions(repo: Path) -> list[int]:
    root = repo / SCORER
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit() and (p / "model.pt").exists())


def ensure_model(repo: Path, work: Path, step: Callable[[str], None]) -> int:
    """The newest exported version; trains and exports version 1 first when the repository has none."""
    versions = served_versions(repo)
    if versions:
        return versions[-1]
    from models.dataset import build_dataset
    from models.export import export_model
    from models.train import train
    from stream.simulate.config import SimConfig
    from stream.simulate.history_mode import write_simulation

    history, model_dir = work / "history", work / "model"
    if not (history / "meta.json").exists():
        step(f"simulating a training history ({DEMO_HISTORY['users']} users x {DEMO_HISTORY['days']:g} days)")
        write_simulation(SimConfig(**DEMO_HISTORY), history)  # type: ignore[arg-type]
    if not (model_dir / "model.json").exists():
        step(f"training the uplift model ({DEMO_EPOCHS} epochs, fine-tuning MiniLM)")
        train(build_dataset(history), model_dir, epochs=DEMO_EPOCHS, seed=0)
    step(f"exporting TorchScript to {repo}")
    return export_model(model_dir, repo).version
