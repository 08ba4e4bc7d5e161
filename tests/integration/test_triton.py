"""Triton from the nvidia-pytriton wheel serves a TorchScript model through the python backend."""

from __future__ import annotations

import asyncio
import textwrap
import time
import urllib.request

import numpy as np
import pytest
import torch
import tritonclient.grpc.aio as grpcclient

from stream.local.triton import TritonEndpoints
from stream.settings import Settings

pytestmark = pytest.mark.integration

MODEL = "infra_affine"
CONFIG = """
name: "infra_affine"
backend: "python"
max_batch_size: 64
input [ { name: "x", data_type: TYPE_FP32, dims: [ 4 ] } ]
output [ { name: "y", data_type: TYPE_FP32, dims: [ 2 ] } ]
instance_group [ { kind: KIND_CPU, count: 1 } ]
dynamic_batching { max_queue_delay_microseconds: 50000 }
"""
MODEL_PY = textwrap.dedent("""
    import pathlib

    import numpy as np
    import torch
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def initialize(self, args):
            here = pathlib.Path(args["model_repository"]) / args["model_version"]
            self.module = torch.jit.load(str(here / "model.pt"), map_location="cpu").eval()

        def execute(self, requests):
            xs = [pb_utils.get_input_tensor_by_name(r, "x").as_numpy() for r in requests]
            with torch.no_grad():
                ys = self.module(torch.from_numpy(np.concatenate(xs))).numpy()
            out, start = [], 0
            for x in xs:
                part = ys[start:start + len(x)]
                start += len(x)
                out.append(pb_utils.InferenceResponse([pb_utils.Tensor("y", part.astype(np.float32))]))
            return out
""")


class Affine(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.lin(x))


@pytest.fixture(scope="module")
def affine(triton_service: TritonEndpoints, test_settings: Settings) -> tuple[torch.jit.ScriptModule, str]:
    torch.manual_seed(0)
    module = torch.jit.script(Affine().eval())
    version = test_settings.model_repo / MODEL / "1"
    version.mkdir(parents=True)
    module.save(str(version / "model.pt"))
    (version / "model.py").write_text(MODEL_PY)
    (version.parent / "config.pbtxt").write_text(CONFIG)
    return module, triton_service.grpc


async def _wait_ready(client: grpcclient.InferenceServerClient, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not await client.is_model_ready(MODEL):
        assert time.monotonic() < deadline, "model never became ready (poll mode picks it up within seconds)"
        await asyncio.sleep(0.5)


async def _infer(client: grpcclient.InferenceServerClient, x: np.ndarray) -> np.ndarray:
    inp = grpcclient.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    result = await client.infer(MODEL, [inp], outputs=[grpcclient.InferRequestedOutput("y")])
    return result.as_numpy("y")


def _metric(metrics: str, name: str) -> float:
    text = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=5).read().decode()  # noqa: S310
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and f'model="{MODEL}"' in line
    )


async def test_torchscript_through_python_backend(
    affine: tuple[torch.jit.ScriptModule, str], triton_service: TritonEndpoints
) -> None:
    module, url = affine
    client = grpcclient.InferenceServerClient(url)
    try:
        await _wait_ready(client)
        x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
        got = await _infer(client, x)
        np.testing.assert_allclose(got, module(torch.from_numpy(x)).detach().numpy(), atol=1e-6)

        before_exec = _metric(triton_service.metrics, "nv_inference_exec_count")
        before_req = _metric(triton_service.metrics, "nv_inference_request_success")
        rows = [np.full((1, 4), i, dtype=np.float32) for i in range(32)]
        outs = await asyncio.gather(*(_infer(client, r) for r in rows))
    finally:
        await client.close()
    for r, out in zip(rows, outs, strict=True):
        np.testing.assert_allclose(out, module(torch.from_numpy(r)).detach().numpy(), atol=1e-6)
    executions = _metric(triton_service.metrics, "nv_inference_exec_count") - before_exec
    requests = _metric(triton_service.metrics, "nv_inference_request_success") - before_req
    assert requests == 32
    assert executions < requests, "dynamic batching should merge concurrent requests into fewer executions"
