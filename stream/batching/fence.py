"""Whether a batch may still write its table values: the fence a revoked or expired owner hits.

After a revoke, the partitions' next owner recovers their tables from the changelogs; a batch taken
before the revoke that wrote afterwards would put stale values behind the new owner's (or lose them in its
recovery). So every batch carries the `epoch` it was taken in, and a revoke starts a new epoch: a batch of
an older one writes nothing (its input is replayed from the committed offsets).

A worker whose event loop stood still longer than the group's session (SIGSTOP, a frozen VM, a swap storm)
has most likely been dropped from the group, and hears of it only at its next heartbeat — after the
batches it had in flight may have written. So a gap of more than `stall_s` between two `tick`s also fences
every batch taken before it; the engine then asks to rejoin, and the rejoin's revoke starts a new epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Fence:
    def __init__(self, stall_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.epoch = 0
        self.stall_s = stall_s
        self._clock = clock
        self._tick: float | None = None
        self.stalled = False
        """The loop stood still too long in this epoch: nothing of it may write until the next."""
        self._reported = False

    def tick(self) -> bool:
        """Called at a steady interval by the event loop; True once per stall, to ask for a rejoin."""
        self.allows(self.epoch)
        self._tick = self._clock()
        report = self.stalled and not self._reported
        self._reported |= report
        return report

    def revoke(self) -> None:
        self.epoch += 1
        self.stalled = self._reported = False

    def allows(self, epoch: int) -> bool:
        if self._tick is not None and self._clock() - self._tick > self.stall_s:
            self.stalled = True
        return epoch == self.epoch and not self.stalled
