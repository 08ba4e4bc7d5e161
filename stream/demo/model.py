"""The demo's model: reuse what `triton_repo/` serves, else export the shipped default model (no training)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stream.scoring.signature import SCORER


def served_versions(repo: Path) -> list[int]:
    root = repo / SCORER
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit() and (p / "model.pt").exists())


def ensure_model(repo: Path, step: Callable[[str], None]) -> int:
    """The newest exported version; exports models/default/ as version 1 first when the repository has none.

    The default model was trained on a simulated history of its own world (models/pretrained.py), not on
    the demo's live world, so the demo scores promotions and users the model has never seen.
    """
    versions = served_versions(repo)
    if versions:
        return versions[-1]
    from models.export import export_model
    from models.pretrained import DEFAULT_DIR

    step(f"exporting the shipped default model ({DEFAULT_DIR.name}/) as TorchScript to {repo}")
    return export_model(DEFAULT_DIR, repo).version
