from __future__ import annotations

import numpy as np
import pytest

from stream.drift.window import SlidingWindow

pytestmark = pytest.mark.unit


def contents(w: SlidingWindow) -> list[float]:
    rows, _ = w.rows()
    return sorted(rows[:, 0].tolist())


def test_keeps_the_latest_rows() -> None:
    w = SlidingWindow(5, 1)
    w.append(np.arange(3.0)[:, None], np.array([True, False, True]))
    assert contents(w) == [0, 1, 2]
    w.append(np.arange(3.0, 7.0)[:, None], np.ones(4, dtype=bool))
    assert len(w) == 5
    assert contents(w) == [2, 3, 4, 5, 6]
    _, treated = w.rows()
    assert treated.sum() == 5


def test_a_batch_larger_than_the_window() -> None:
    w = SlidingWindow(4, 2)
    w.append(np.arange(20.0).reshape(10, 2), np.zeros(10, dtype=bool))
    assert contents(w) == [12, 14, 16, 18]
    w.append(np.empty((0, 2)), np.empty(0, dtype=bool))
    assert len(w) == 4


def test_rejects_empty_shapes() -> None:
    with pytest.raises(ValueError):
        SlidingWindow(0, 3)
