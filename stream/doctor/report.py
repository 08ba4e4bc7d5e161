"""One line of `liftstream doctor`: a check, its verdict and what it found."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "FAIL"]


@dataclass(frozen=True)
class Line:
    status: Status
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.status:<4} {self.check}: {self.detail}"


def ok(check: str, detail: str) -> Line:
    return Line("ok", check, detail)


def fail(check: str, detail: str) -> Line:
    return Line("FAIL", check, detail)
