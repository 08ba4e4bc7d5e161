"""Contender worker processes: start with an environment, watch, measure memory, stop by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from stream.bench.stats import cpu_ticks, vm_rss_mb
from stream.errors import ServiceError

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_S = 60.0


def start(module: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m module args` in the repository root, stdout and stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM (a Faust worker shuts down cleanly on it), SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=30)


def rss_mb(pid: int) -> float:
    try:
        return vm_rss_mb(Path(f"/proc/{pid}/status").read_text())
    except OSError as exc:
        raise ServiceError(f"cannot read the memory of process {pid}: {exc}") from exc


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    try:
        return cpu_ticks(Path(f"/proc/{pid}/stat").read_text()) / os.sysconf("SC_CLK_TCK")
    except OSError as exc:
        raise ServiceError(f"cannot read the CPU time of process {pid}: {exc}") from exc


def server_pids(flag: str) -> list[int]:
    """Processes whose command line holds `flag` (e.g. `--grpc-port=8001`), and their children.

    Triton's python backend runs each model instance in a stub process started by the server, so the
    server alone would miss the CPU the models use.
    """
    parents: dict[int, int] = {}
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if flag.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                found.append(int(entry.name))
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return found + [pid for pid, ppid in parents.items() if ppid in found]


def total_cpu_seconds(pids: list[int]) -> float:
    """CPU time of the processes still there (one that exited meanwhile counts as nothing)."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except ServiceError:
            continue
    return total


def check_alive(proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    if proc.poll() is not None:
        raise ServiceError(f"the {what} exited with code {proc.returncode}; its log:\n{tail(log)}")


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.is_file() else "(no log)"
