"""A bounded sliding window of the latest live rows: a ring buffer filled a whole batch at a time."""

from __future__ import annotations

import numpy as np


class SlidingWindow:
    """Keeps the last `capacity` rows of width `width` with a treatment flag per row."""

    def __init__(self, capacity: int, width: int) -> None:
        if capacity < 1 or width < 1:
            raise ValueError("a window needs a positive capacity and width")
        self.capacity = capacity
        self._rows = np.zeros((capacity, width), dtype=np.float64)
        self._treated = np.zeros(capacity, dtype=bool)
        self._next = 0
        self._filled = 0

    def __len__(self) -> int:
        return self._filled

    def append(self, rows: np.ndarray, treated: np.ndarray) -> None:
        """Adds a batch; only its last `capacity` rows can survive, so only those are written."""
        rows = rows[-self.capacity :]
        treated = treated[-self.capacity :]
        n = len(rows)
        if n == 0:
            return
        index = (self._next + np.arange(n)) % self.capacity
        self._rows[index] = rows
        self._treated[index] = treated
        self._next = int((self._next + n) % self.capacity)
        self._filled = min(self._filled + n, self.capacity)

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows in the window and their treatment flags, in no particular order (views, do not modify)."""
        return self._rows[: self._filled], self._treated[: self._filled]
