"""The CPU twin: a Triton python-backend model that serves the exported TorchScript `model.pt` on CPU.

`liftstream export` copies this file verbatim into every version directory as `model.py`, next to the
`model.pt` that the libtorch backend serves on GPU, so a machine without a GPU (started with
`--model-config-name=cpu`) answers with the very same TorchScript graph. It runs inside Triton's python
backend stub, so it imports nothing from liftstream: tensor names and their order come from the model
configuration Triton hands to `initialize`.

Torch runs on `INTRA_OP_THREAD_COUNT` threads (a parameter of the config, 1 when absent): each request is
a small batch, and with more threads OpenMP's idle workers spin between requests and burn a core the
stream's worker needs (on two cores the scorer's stub took ~19 ms of CPU per request with torch's default
thread count, ~3 ms with one).

Dynamic batching hands `execute` every request the scheduler gathered; they are concatenated into one
torch call and the outputs split back, so batching on the server really saves work.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

# The stub embeds the interpreter in isolated mode, which ignores PYTHONPATH: honour it here, so a launcher
# that names the serving environment's packages only there (not via the python3 on PATH) works too.
for _entry in reversed(os.environ.get("PYTHONPATH", "").split(os.pathsep)):
    if _entry and _entry not in sys.path:
        sys.path.insert(0, _entry)

import numpy as np  # noqa: E402
import torch  # noqa: E402


def concat_requests(per_request: list[list[np.ndarray]]) -> tuple[list[np.ndarray], list[int]]:
    """Stacks each input over requests along the batch axis; returns the batched inputs and row counts."""
    sizes = [len(inputs[0]) for inputs in per_request]
    n_inputs = len(per_request[0])
    batched = [np.concatenate([inputs[i] for inputs in per_request]) for i in range(n_inputs)]
    return batched, sizes


def split_outputs(outputs: list[np.ndarray], sizes: list[int]) -> list[list[np.ndarray]]:
    """Inverse of `concat_requests` for the outputs: one list of output arrays per request."""
    bounds = np.cumsum(sizes)[:-1]
    per_output = [np.split(out, bounds) for out in outputs]
    return [[parts[r] for parts in per_output] for r in range(len(sizes))]


def intra_op_threads(config: dict[str, Any]) -> int:
    """The torch thread count the model configuration asks for (1 when it does not say)."""
    value = config.get("parameters", {}).get("INTRA_OP_THREAD_COUNT", {}).get("string_value", "1")
    return max(1, int(value))


def run_module(module: torch.jit.ScriptModule, inputs: list[np.ndarray]) -> list[np.ndarray]:
    with torch.inference_mode():
        result = module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
    outputs = result if isinstance(result, tuple | list) else (result,)
    return [out.contiguous().numpy() for out in outputs]


class TritonPythonModel:
    """Entry point the Triton python backend instantiates once per model instance."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        torch.set_num_threads(intra_op_threads(config))
        self.input_names = [t["name"] for t in config["input"]]
        self.output_names = [t["name"] for t in config["output"]]
        path = Path(args["model_repository"]) / args["model_version"] / "model.pt"
        with warnings.catch_warnings():
            # TorchScript is deprecated in favour of torch.export, but it is what Triton's libtorch serves.
            warnings.filterwarnings("ignore", message="`torch.jit", category=FutureWarning)
            self.module = torch.jit.load(str(path), map_location="cpu").eval()

    def execute(self, requests: list[Any]) -> list[Any]:
        import triton_python_backend_utils as pb_utils

        per_request = [
            [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for name in self.input_names]
            for r in requests
        ]
        try:
            batched, sizes = concat_requests(per_request)
            outputs = split_outputs(run_module(self.module, batched), sizes)
        except Exception as exc:  # the stub must answer every request, so the error travels back
            error = pb_utils.TritonError(f"{type(exc).__name__}: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        return [
            pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(name, out) for name, out in zip(self.output_names, outs, strict=True)
            ])
            for outs in outputs
        ]
