"""Triton Inference Server 2.51 from the nvidia-pytriton wheel: binary, libraries, python backend and stub.

Poll mode serves whatever versions appear in the repository (an empty repository is fine, so `up` works on a
fresh clone). Without a GPU every model is served through its CPU twin, `configs/cpu.pbtxt` (python backend
running the same model.pt), selected with `--model-config-name=cpu`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stream.errors import PrerequisiteError
from stream.local.process import Managed, wait_ready


@dataclass(frozen=True)
class TritonEndpoints:
    http: str
    grpc: str
    metrics: str


def has_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    return subprocess.run([smi, "-L"], capture_output=True, check=False).returncode == 0  # noqa: S603


def _dist() -> Path:
    try:
        import pytriton  # type: ignore[import-untyped]
    except ImportError as exc:
        raise PrerequisiteError(
            "the Triton server comes with nvidia-pytriton: install it with `uv sync --extra triton`"
        ) from exc
    return Path(pytriton.__file__).parent / "tritonserver"


def prepare(home: Path) -> Path:
    """Lay out the server and the python backend with the stub for this Python version, once per run dir."""
    server = home / "tritonserver"
    stub = server / "backends" / "python" / "triton_python_backend_stub"
    if stub.exists():
        return server
    dist = _dist()
    shutil.rmtree(server, ignore_errors=True)
    shutil.copytree(dist, server, ignore=shutil.ignore_patterns("python_backend_stubs"))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    shutil.copy(dist / "python_backend_stubs" / version / "triton_python_backend_stub", stub)
    return server


def environment() -> dict[str, str]:
    site = Path(sysconfig.get_paths()["purelib"])
    libs = [str(site / "nvidia_pytriton.libs"), sysconfig.get_config_var("LIBDIR") or ""]
    # The python backend stub embeds libpython and derives sys.prefix from the `python3` it finds on PATH:
    # put this environment's interpreter first so the models see its packages (torch, numpy).
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    return {"LD_LIBRARY_PATH": ":".join(p for p in libs if p), "PYTHONPATH": str(site), "PATH": path}


def start(home: Path, repo: Path, http: int, grpc: int, metrics: int, *, cpu: bool | None = None) -> Managed:
    svc = Managed("triton", home)
    if svc.pid() is not None:
        return svc
    server = prepare(home)
    repo.mkdir(parents=True, exist_ok=True)
    argv = [
        str(server / "bin" / "tritonserver"),
        f"--model-repository={repo.resolve()}",
        f"--backend-directory={server / 'backends'}",
        "--model-control-mode=poll",
        "--repository-poll-secs=2",
        f"--http-port={http}",
        f"--grpc-port={grpc}",
        f"--metrics-port={metrics}",
        "--http-address=127.0.0.1",
        "--grpc-address=127.0.0.1",
        "--exit-on-error=false",
        "--strict-readiness=false",
        "--log-verbose=0",
    ]
    if cpu if cpu is not None else not has_gpu():
        argv += ["--model-config-name=cpu", "--allow-gpu-metrics=false"]
    svc.start(argv, env=environment(), cwd=home)
    wait_ready(svc, lambda: ready(f"127.0.0.1:{http}"), timeout_s=120)
    return svc


def ready(http: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{http}/v2/health/ready", timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except OSError:
        return False


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@contextmanager
def temporary_triton(
    repo: Path, *, cpu: bool | None = None, home: Path | None = None
) -> Iterator[TritonEndpoints]:
    """A Triton on free ports serving `repo`, stopped (with its stubs) on exit."""
    with tempfile.TemporaryDirectory(prefix="liftstream-triton-") as tmp:
        run_home = home or Path(tmp)
        http, grpc, metrics = free_ports(3)
        svc = start(run_home, repo, http, grpc, metrics, cpu=cpu)
        try:
            yield TritonEndpoints(f"127.0.0.1:{http}", f"127.0.0.1:{grpc}", f"127.0.0.1:{metrics}")
        finally:
            svc.stop()
