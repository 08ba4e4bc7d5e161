from __future__ import annotations

import logging

import aiokafka.conn  # noqa: F401  (creates the logger the throttle must reach)
import pytest

from stream.logs import Throttle, throttle_libraries

pytestmark = pytest.mark.unit


def record(msg: str, level: int = logging.ERROR, name: str = "aiokafka.conn") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, ("n1",), None)


def test_a_repeating_message_passes_once_per_interval_and_counts_the_rest() -> None:
    now = [0.0]
    throttle = Throttle(5.0, clock=lambda: now[0])
    assert throttle.filter(record("Unable connect to node %s"))
    assert not throttle.filter(record("Unable connect to node %s"))
    assert throttle.filter(record("Unable to update metadata"))  # another message
    assert throttle.filter(record("Unable connect to node %s", level=logging.WARNING))  # another level
    now[0] = 1.0
    assert not throttle.filter(record("Unable connect to node %s"))
    now[0] = 5.5
    passed = record("Unable connect to node %s")
    assert throttle.filter(passed)
    assert passed.getMessage() == "Unable connect to node n1 [2 alike held back in 6s]"


def test_library_loggers_get_the_throttle(caplog: pytest.LogCaptureFixture) -> None:
    throttle = throttle_libraries(60.0)
    try:
        with caplog.at_level(logging.ERROR, logger="aiokafka.conn"):
            for _ in range(100):
                logging.getLogger("aiokafka.conn").error("Unable connect to node %s", "n1")
        assert len(caplog.records) == 1
    finally:
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("aiokafka"):
                logging.getLogger(name).removeFilter(throttle)
        logging.getLogger("aiokafka").removeFilter(throttle)
