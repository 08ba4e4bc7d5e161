"""Where the worker's time goes: py-spy samples it from outside, this module summarises the samples.

py-spy's raw output holds one line per distinct stack, `frame;frame;...;leaf COUNT`, each frame
`function (path:line)`. Idle samples (the event loop waiting in select) are left out by py-spy, so the
shares are of the time the worker's Python threads were busy.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from stream.errors import PrerequisiteError

RATE_HZ = 100
ENTRY_POINTS = ("stream/__main__.py", "stream/cli.py", "stream/worker_cli.py")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>.*?)(?::\d+)?\)$")
_SITE = re.compile(r".*/(?:site|dist)-packages/")


@dataclass(frozen=True)
class ProfileSummary:
    samples: int
    areas: list[tuple[str, float]]
    """Self time by package (or liftstream sub-package) of the leaf frame, as shares of all samples."""
    self_time: list[tuple[str, float]]
    inclusive: list[tuple[str, float]]
    """liftstream's own functions: share of samples with the function anywhere on the stack."""


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def _split(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    return (match.group("func"), match.group("path")) if match else (frame, "")


def short_path(path: str) -> str:
    """A frame's file without the interpreter's or the checkout's location: `faust/streams.py`."""
    trimmed = _SITE.sub("", path)
    if trimmed != path:
        return trimmed
    for root in ("/stream/", "/models/"):
        if root in path:
            return root.strip("/") + "/" + path.split(root, 1)[1]
    return Path(path).name if path.startswith("/") else path


def area(path: str) -> str:
    """`stream.batching` for liftstream's own code, the top-level package for the rest."""
    short = short_path(path)
    parts = short.split("/")
    if parts[0] in ("stream", "models") and len(parts) > 2:
        return f"{parts[0]}.{parts[1]}"
    if len(parts) > 1:
        return parts[0]
    return short.removesuffix(".py") or "?"


def function(frame: str) -> str:
    func, path = _split(frame)
    return f"{func} ({short_path(path)})"


def _own(frame: str) -> bool:
    """A frame of liftstream's engine code (not the entry points every sample passes through)."""
    path = short_path(_split(frame)[1])
    return path.startswith(("stream/", "models/")) and path not in ENTRY_POINTS


def summarise(stacks: list[tuple[list[str], int]], top: int = 12) -> ProfileSummary:
    total = sum(n for _, n in stacks)
    if total == 0:
        return ProfileSummary(0, [], [], [])
    areas: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for frames, n in stacks:
        areas[area(_split(frames[-1])[1])] += n
        leaves[function(frames[-1])] += n
        for name in {function(f) for f in frames if _own(f)}:
            anywhere[name] += n

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, n / total) for name, n in counter.most_common(top)]

    return ProfileSummary(total, shares(areas), shares(leaves), shares(anywhere))


def markdown(summary: ProfileSummary) -> str:
    lines = [f"{summary.samples} samples at {RATE_HZ} Hz of busy Python time", ""]
    for title, rows in (("self time by package", summary.areas), ("self time by function", summary.self_time),
                        ("liftstream code on the stack (inclusive)", summary.inclusive)):  # fmt: skip
        lines += [f"| {title} | share |", "|---|---:|"]
        lines += [f"| `{name}` | {share:.1%} |" for name, share in rows]
        lines.append("")
    return "\n".join(lines)


def py_spy() -> str | None:
    """The py-spy executable: next to this interpreter (the project's environment), else on PATH."""
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


class Sampler:
    """`py-spy record` attached to a running process until `stop()`, which writes the raw stacks."""

    def __init__(self, pid: int, out: Path) -> None:
        exe = py_spy()
        if exe is None:
            raise PrerequisiteError("--profile needs py-spy: `uv sync` installs it with the dev group")
        self.out = out
        argv = [exe, "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--nonblocking", "--format", "raw",
                "--output", str(out)]  # fmt: skip
        with out.with_suffix(".log").open("wb") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603

    def stop(self) -> ProfileSummary | None:
        """Stops sampling; None when py-spy could not sample (e.g. no ptrace permission)."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if not self.out.is_file():
            return None
        return summarise(parse_collapsed(self.out.read_text()))
