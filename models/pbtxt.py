"""Each model's Triton `config.pbtxt` (libtorch, GPU) and `configs/cpu.pbtxt` (python-backend twin, CPU).

Names, dtypes and dims come from `stream.scoring.signature`, so the configs, the TorchScript modules and the
stream's requests cannot disagree. The libtorch backend binds inputs by `forward()` argument name when every
configured input matches one (export checks that they do) and outputs by their order in the config when the
names do not follow its `<name>__<index>` convention — so the real tensor names work for both backends.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream.scoring import signature as sig


@dataclass(frozen=True)
class ServingSpec:
    name: str
    inputs: tuple[sig.Tensor, ...]
    outputs: tuple[sig.Tensor, ...]
    max_batch_size: int
    preferred_batch_sizes: tuple[int, ...]
    max_queue_delay_us: int


SPECS: dict[str, ServingSpec] = {
    sig.ENCODER: ServingSpec(
        sig.ENCODER, sig.ENCODER_INPUTS, sig.ENCODER_OUTPUTS, sig.ENCODER_MAX_BATCH, (16, 32, 64), 5000
    ),
    # The stream sends micro-batches of up to a few hundred exposures; a short delay lets the batcher
    # merge concurrent ones from several workers without adding visible latency.
    sig.SCORER: ServingSpec(
        sig.SCORER, sig.SCORER_INPUTS, sig.SCORER_OUTPUTS, sig.SCORER_MAX_BATCH, (256, 512, 1024), 2000
    ),
}

# Keep the previous version loaded while the next one loads, so a client pinned to a version (promotion
# vectors must come from the same version as the scorer) never finds neither ready during a roll.
VERSIONS_KEPT = 2

THREADS = "INTRA_OP_THREAD_COUNT"
"""The twin reads its torch thread count from this parameter (the libtorch backend's name for it)."""
CPU_THREADS = 1


def _tensors(kind: str, tensors: tuple[sig.Tensor, ...]) -> str:
    body = ",\n".join(
        f'  {{ name: "{t.name}" data_type: {t.config_dtype} dims: [ {", ".join(map(str, t.dims))} ] }}'
        for t in tensors
    )
    return f"{kind} [\n{body}\n]"


def render(spec: ServingSpec, *, cpu: bool) -> str:
    """The config text for one model: libtorch on a GPU, or (cpu=True) the python-backend twin on CPU."""
    engine = 'backend: "python"' if cpu else 'platform: "pytorch_libtorch"'
    kind = "KIND_CPU" if cpu else "KIND_GPU"
    preferred = ", ".join(map(str, spec.preferred_batch_sizes))
    parts = [
        f'name: "{spec.name}"',
        engine,
        f"max_batch_size: {spec.max_batch_size}",
        _tensors("input", spec.inputs),
        _tensors("output", spec.outputs),
        f"instance_group [ {{ kind: {kind} count: 1 }} ]",
        "dynamic_batching {\n"
        f"  preferred_batch_size: [ {preferred} ]\n"
        f"  max_queue_delay_microseconds: {spec.max_queue_delay_us}\n"
        "}",
        f"version_policy: {{ latest: {{ num_versions: {VERSIONS_KEPT} }} }}",
    ]
    if cpu:
        # One torch thread per instance: with more, OpenMP's idle workers spin between requests and take
        # a core from the worker (models/twin.py). Raise it, or the instance count, given cores to spare.
        parts.append(f'parameters: {{ key: "{THREADS}" value: {{ string_value: "{CPU_THREADS}" }} }}')
    else:
        parts.append('parameters: { key: "INFERENCE_MODE" value: { string_value: "true" } }')
    return "\n".join(parts) + "\n"
