"""Exception tree of liftstream.

LiftstreamError
├── ConfigError            bad settings or CLI arguments (shown as one line, never a traceback)
├── PrerequisiteError      a program the local stack needs is missing (java, mvn, prometheus)
├── ServiceError           a local service failed to start or become ready
├── DecodeError            an input message is not a valid event (becomes a DeadLetter)
├── ModelError             no model / bad model repository / export problems
└── ScoringError           Triton failed to score a batch
    └── ScoringUnavailable Triton is unreachable or overloaded: retryable
"""

from __future__ import annotations


class LiftstreamError(Exception):
    """Base of every error liftstream raises on purpose."""


class ConfigError(LiftstreamError):
    pass


class PrerequisiteError(LiftstreamError):
    pass


class ServiceError(LiftstreamError):
    pass


class DecodeError(LiftstreamError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ModelError(LiftstreamError):
    pass


class ScoringError(LiftstreamError):
    pass


class ScoringUnavailable(ScoringError):
    pass
