from __future__ import annotations

import gc

import pytest

from stream.worker_cli import GC_THRESHOLD, _tune_gc

pytestmark = pytest.mark.unit


def test_the_collector_skips_start_up_objects_and_collects_young_ones_less_often() -> None:
    before = gc.get_threshold()
    loaded = [object()]  # alive at start-up: frozen out of later scans
    try:
        _tune_gc()
        assert gc.get_threshold()[0] == GC_THRESHOLD > before[0]
        assert gc.get_freeze_count() > 0
        assert gc.is_tracked(loaded)
        assert not any(o is loaded for o in gc.get_objects())
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
