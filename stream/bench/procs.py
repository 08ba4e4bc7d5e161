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


def check_alive(proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    if proc.poll() is not None:
        raise ServiceError(f"the {what} exited with code {proc.returncode}; its log:\n{tail(log)}")


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.is_file() else "(no log)"
