"""Exposures of promotions the registry does not know yet, held for a bounded time.

A promotion's start event and its first exposures travel on different topics and partitions, and the
registry reaches every worker through a changelog, so an exposure may arrive first. It waits (up to
`windows.unknown_promotion_wait_s`, at most `capacity` of them) while the rest of the stream goes on;
when its promotion appears it is scored ahead of the newer events of the next batch, and past its
deadline it goes to the dead-letter topic with reason `unknown_promotion`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stream.batching.assemble import ExposureItem

UNKNOWN_PROMOTION = "unknown_promotion"


@dataclass(frozen=True, slots=True)
class Held:
    item: ExposureItem
    deadline: float


class PendingExposures:
    def __init__(self, wait_s: float, capacity: int = 100_000) -> None:
        self.wait_s = wait_s
        self.capacity = capacity
        self._held: list[Held] = []

    def hold(self, items: list[ExposureItem], now: float) -> list[ExposureItem]:
        """Holds what fits; returns the items that do not (to be dead-lettered at once)."""
        room = max(self.capacity - len(self._held), 0) if self.wait_s > 0 else 0
        self._held.extend(Held(item, now + self.wait_s) for item in items[:room])
        return items[room:]

    def release(
        self, known: Callable[[str], bool], now: float
    ) -> tuple[list[ExposureItem], list[ExposureItem]]:
        """(now known, in the order they arrived; expired) — both leave the hold."""
        ready: list[ExposureItem] = []
        expired: list[ExposureItem] = []
        kept: list[Held] = []
        for held in self._held:
            if known(held.item.event.promotion_id):
                ready.append(held.item)
            elif now >= held.deadline:
                expired.append(held.item)
            else:
                kept.append(held)
        self._held = kept
        return ready, expired

    def forget(self, keep: Callable[[ExposureItem], bool]) -> None:
        self._held = [h for h in self._held if keep(h.item)]

    def __len__(self) -> int:
        return len(self._held)
