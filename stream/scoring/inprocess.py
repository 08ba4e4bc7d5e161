"""`TorchScriptScorer`: the `Scorer` protocol over a Triton repository's model.pt files, run in this process.

It loads the very files Triton serves (`REPO/<model>/<version>/model.pt`), so tests compare the served
path against it and a worker can fall back to it. Inference runs in a thread so the event loop keeps going.
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import numpy as np
import torch

from stream.errors import ModelError, ScoringUnavailable
from stream.scoring import signature as sig
from stream.scoring.protocol import ScoreResult, empty_outputs, encoder_inputs, scorer_inputs

MODELS = (sig.ENCODER, sig.SCORER)


def model_versions(repo: Path, model: str) -> list[int]:
    """Version numbers of `model` in a repository that hold a model.pt, ascending."""
    root = Path(repo) / model
    if not root.is_dir():
        return []
    return sorted(int(d.name) for d in root.iterdir() if d.name.isdigit() and (d / "model.pt").is_file())


def newest_common_version(repo: Path) -> int | None:
    """Newest version present for both models, or None."""
    common = set(model_versions(repo, sig.ENCODER)).intersection(model_versions(repo, sig.SCORER))
    return max(common) if common else None


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    try:
        with warnings.catch_warnings():
            # TorchScript is deprecated in favour of torch.export, but it is what Triton's libtorch serves.
            warnings.filterwarnings("ignore", message="`torch.jit", category=FutureWarning)
            return torch.jit.load(str(path), map_location="cpu").eval()
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"cannot load TorchScript {path}: {exc}") from exc


class TorchScriptScorer:
    def __init__(self, repo: Path, version: int | None = None) -> None:
        repo = Path(repo)
        chosen = newest_common_version(repo) if version is None else version
        if chosen is None:
            raise ModelError(f"{repo} holds no version of both {' and '.join(MODELS)}")
        self.repo = repo
        self.version = chosen
        self._encoder = load_torchscript(repo / sig.ENCODER / str(chosen) / "model.pt")
        self._scorer = load_torchscript(repo / sig.SCORER / str(chosen) / "model.pt")

    def _check(self, version: int | None) -> None:
        if version is not None and version != self.version:
            raise ScoringUnavailable(f"version {version} is not loaded (this scorer holds {self.version})")

    async def model_version(self) -> int:
        return self.version

    async def close(self) -> None:
        return None

    async def encode(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, *, version: int | None = None
    ) -> np.ndarray:
        self._check(version)
        ids, mask = encoder_inputs(input_ids, attention_mask)
        (vectors,) = await _infer(self._encoder, (ids, mask), sig.ENCODER_OUTPUTS)
        return vectors

    async def score(
        self,
        user_features: np.ndarray,
        promo_vector: np.ndarray,
        promo_attrs: np.ndarray,
        *,
        version: int | None = None,
    ) -> ScoreResult:
        self._check(version)
        arrays = scorer_inputs(user_features, promo_vector, promo_attrs)
        p_treated, p_control = await _infer(self._scorer, arrays, sig.SCORER_OUTPUTS)
        return ScoreResult(p_treated, p_control, self.version)


async def _infer(
    module: torch.jit.ScriptModule, arrays: tuple[np.ndarray, ...], outputs: tuple[sig.Tensor, ...]
) -> tuple[np.ndarray, ...]:
    if len(arrays[0]) == 0:
        return tuple(empty_outputs(outputs))
    return await asyncio.to_thread(_run, module, arrays)


def _run(module: torch.jit.ScriptModule, arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    with torch.inference_mode():
        out = module(*(torch.from_numpy(a) for a in arrays))
    outputs = out if isinstance(out, tuple) else (out,)
    return tuple(t.contiguous().numpy() for t in outputs)
