"""Log hygiene for the worker: a repeating library message is let through once per interval.

While a broker is down aiokafka logs every failed connection and metadata attempt at ERROR, hundreds of lines
a second; the throttle keeps the first of each kind per interval and says how many it held back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

THROTTLED = ("aiokafka",)


class Throttle(logging.Filter):
    """Passes a record whose (logger, level, message template) has not passed within `interval_s`."""

    def __init__(self, interval_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._clock = clock
        self._seen: dict[tuple[str, int, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.msg)
        now = self._clock()
        last, held = self._seen.get(key, (-math.inf, 0))
        if now - last < self.interval_s:
            self._seen[key] = (last, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} [{held} alike held back in {now - last:.0f}s]"
        return True


def throttle_libraries(interval_s: float = 5.0, prefixes: tuple[str, ...] = THROTTLED) -> Throttle:
    """Attaches one throttle to every logger already created under `prefixes` (import the library first)."""
    throttle = Throttle(interval_s)
    names = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in prefixes]
    for name in [*prefixes, *names]:
        logging.getLogger(name).addFilter(throttle)
    return throttle
