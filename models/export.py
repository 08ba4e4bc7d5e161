"""`liftstream export`: a trained MODEL_DIR → one new version in a Triton model repository.

REPO/<model>/config.pbtxt        libtorch on GPU (rewritten by each export, unchanged unless the signature is)
REPO/<model>/configs/cpu.pbtxt   the CPU twin: python backend, same tensors and batching
REPO/<model>/<v>/model.pt        TorchScript (the encoder's LoRA merged into its weights), checked against
                                 the eager (unmerged) model before it is published
REPO/<model>/<v>/model.py        the twin's python-backend entry point (a copy of models/twin.py)
REPO/effect_scorer/<v>/reference.json, model_card.md    drift reference statistics, model card
REPO/effect_scorer/<v>/signature.json    the user feature names and profile declaration (hash) the model
                                         takes; the worker refuses to serve it under another declaration

A version is staged beside the repository and renamed into place: Triton's poll never sees it half written.
"""

from __future__ import annotations

import json
import logging
import os
import py_compile
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models import twin
from models.card import render_card
from models.nets import load_model, merge_lora
from models.pbtxt import SPECS, ServingSpec, render
from stream.drift.reference import build_reference, save_reference
from stream.errors import ModelError
from stream.scoring import signature as sig
from stream.scoring.inprocess import load_torchscript

log = logging.getLogger(__name__)

TOLERANCE = 1e-5
_CLS, _SEP = 101, 102  # BERT special tokens; example rows look like tokenizer output without needing it


@dataclass(frozen=True)
class Exported:
    repo: Path
    version: int
    model_files: dict[str, Path]


def next_version(repo: Path) -> int:
    """One past the highest version directory of either model (1 for an empty repository)."""
    found = [
        int(d.name) for m in SPECS for d in (repo / m).glob("*") if d.is_dir() and d.name.isdigit()
    ] if repo.is_dir() else []
    return max(found, default=0) + 1


def encoder_examples(rng: np.random.Generator, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows of the given lengths (CLS … SEP, then padding), int64 [len(lengths), MAX_TOKENS]."""
    ids = np.zeros((len(lengths), sig.MAX_TOKENS), np.int64)
    mask = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1000, 29000, n)
        ids[row, 0], ids[row, n - 1] = _CLS, _SEP
        mask[row, :n] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def scorer_examples(
    rng: np.random.Generator, user: np.ndarray, attrs: np.ndarray
) -> tuple[torch.Tensor, ...]:
    """Real training rows with random promotion vectors in the encoder's (-1, 1) range."""
    vectors = rng.uniform(-1, 1, (len(user), sig.PROMO_DIM)).astype(np.float32)
    return tuple(torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in (user, vectors, attrs))


def trace(module: torch.nn.Module, example: tuple[torch.Tensor, ...],
          checks: list[tuple[torch.Tensor, ...]], names: tuple[str, ...]) -> torch.jit.ScriptModule:
    """TorchScript by tracing; fails unless forward() takes `names` and outputs match eager on `checks`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            traced = torch.jit.trace(module.eval(), example, check_inputs=checks, check_tolerance=TOLERANCE)
        except torch.jit.TracingCheckError as exc:
            raise ModelError(f"tracing {type(module).__name__} is not input-independent: {exc}") from exc
    tracer = sorted({str(w.message) for w in caught if issubclass(w.category, torch.jit.TracerWarning)})
    for message in tracer:  # the eager comparison below decides; these only help explain a failure
        log.info("tracing %s: %s", type(module).__name__, message.splitlines()[0])
    arguments = tuple(a.name for a in traced.forward.schema.arguments[1:])
    if arguments != names:
        # libtorch binds config inputs to forward() arguments by name; a mismatch would bind by position.
        raise ModelError(f"{type(module).__name__}.forward takes {arguments}, the signature names {names}")
    return traced


def pinned_devices(scripted: torch.jit.ScriptModule) -> list[str]:
    """TorchScript lines that create or move a tensor to a fixed device (tracing records `x.device` so).

    Both views: the Python-like code of every submodule and the inlined graph, where such a device is a
    `Device = prim::Constant[value="cpu"]` feeding aten::to, aten::arange and the like.
    """
    codes = (getattr(sub, "code", "") for _, sub in scripted.named_modules())  # unused submodules have none
    in_code = [line.strip() for code in codes for line in code.splitlines() if 'torch.device("' in line]
    graph = str(scripted.inlined_graph).splitlines()
    return in_code + [line.strip() for line in graph if ": Device = prim::Constant" in line]


def verify(
    module: torch.nn.Module, scripted: torch.jit.ScriptModule, checks: list[tuple[torch.Tensor, ...]]
) -> None:
    with torch.inference_mode():
        for inputs in checks:
            want, got = module(*inputs), scripted(*inputs)
            for w, g in zip(want if isinstance(want, tuple) else (want,),
                            got if isinstance(got, tuple) else (got,), strict=True):
                if not torch.allclose(w, g, atol=TOLERANCE, rtol=TOLERANCE):
                    raise ModelError(f"TorchScript {type(module).__name__} differs from eager by "
                                     f"{(w - g).abs().max().item():.3g} on {len(inputs[0])} rows")


def export_model(model_dir: Path, repo: Path, version: int | None = None) -> Exported:
    """Adds `version` (default: the next one) of the model in MODEL_DIR to the repository."""
    version = next_version(repo) if version is None else version
    if version < 1:
        raise ModelError(f"versions start at 1, got {version}")
    taken = [m for m in SPECS if (repo / m / str(version)).exists()]
    if taken:
        raise ModelError(f"{repo} already has version {version} of {', '.join(taken)}")
    try:
        with np.load(model_dir / "reference_matrix.npz") as npz:
            reference = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{model_dir} has no reference_matrix.npz: {exc}") from exc
    _check_signature(model_dir)
    encoder, scorer, meta = load_model(model_dir)

    rng = np.random.default_rng(0)
    full = sig.MAX_TOKENS
    user, attrs = reference["user_features"][:16], reference["promo_attrs"][:16]
    # Checks differ from the example in batch size and padding, so a frozen shape or branch shows.
    modules: dict[str, tuple[torch.nn.Module, tuple[Any, ...], list[Any]]] = {
        sig.ENCODER: (encoder, encoder_examples(rng, [9, full, 3, 20]),
                      [encoder_examples(rng, [full]), encoder_examples(rng, [5, 17, 2, full, 40])]),
        sig.SCORER: (scorer, scorer_examples(rng, user[:8], attrs[:8]),
                     [scorer_examples(rng, user[:1], attrs[:1]), scorer_examples(rng, user, attrs)]),
    }
    # The served graph is the plain backbone with W + scale·BA in place of each adapted W: no LoRA ops,
    # the same shape as a fully fine-tuned encoder's. It is verified against the unmerged model.
    served = {name: merge_lora(module) for name, (module, _, _) in modules.items()}
    repo.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=repo.parent))
    try:
        for name, (module, example, checks) in modules.items():
            names = tuple(t.name for t in SPECS[name].inputs)
            out = staging / name
            out.mkdir()
            traced = trace(served[name], example, checks, names)
            pinned = pinned_devices(traced)
            if pinned:
                # The CPU twin serves it, but libtorch on a GPU would mix CPU and CUDA tensors and fail.
                log.warning("%s TorchScript pins %d tensors to a device, e.g. `%s`; it cannot serve on a GPU",
                            name, len(pinned), pinned[0])
            traced.save(str(out / "model.pt"))
            verify(module, load_torchscript(out / "model.pt"), [example, *checks])
            shutil.copyfile(twin.__file__, out / "model.py")
            # Compiled here: the python backend stub importing it would write __pycache__ into the served
            # version directory, and the repository poll would reload the model (resetting its statistics).
            py_compile.compile(str(out / "model.py"), doraise=True)
        scorer_dir = staging / sig.SCORER
        save_reference(
            build_reference(reference["user_features"], reference["promo_attrs"], reference["arm"],
                            reference["p_treated"], reference["p_control"]),
            scorer_dir / "reference.json",
        )
        (scorer_dir / "model_card.md").write_text(render_card(meta, version))
        (scorer_dir / sig.SIGNATURE_FILE).write_text(json.dumps(sig.signature_record(), indent=2) + "\n")
        for name, spec in SPECS.items():
            _write_configs(repo / name, spec)
            os.rename(staging / name, repo / name / str(version))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s as version %d into %s", model_dir, version, repo)
    return Exported(repo, version, {m: repo / m / str(version) / "model.pt" for m in SPECS})


def _check_signature(model_dir: Path) -> None:
    """The model must take this process's user features: the configs and the exported signature are its."""
    try:
        features = json.loads((model_dir / "model.json").read_text()).get("features", {})
    except (OSError, ValueError) as exc:
        raise ModelError(f"{model_dir} is not a trained model directory: {exc}") from exc
    wrong = sig.signature_mismatch(features, str(model_dir))
    if wrong:
        raise ModelError(wrong)


def _write_configs(model_root: Path, spec: ServingSpec) -> None:
    (model_root / "configs").mkdir(parents=True, exist_ok=True)
    for path, cpu in ((model_root / "config.pbtxt", False), (model_root / "configs" / "cpu.pbtxt", True)):
        text = render(spec, cpu=cpu)
        if not path.is_file() or path.read_text() != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
