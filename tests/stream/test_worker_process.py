from __future__ import annotations

import gc

import pytest

from stream.errors import ConfigError
from stream.settings import load_settings
from stream.worker_cli import _tune_gc

pytestmark = pytest.mark.unit


def test_the_collector_skips_start_up_objects_and_keeps_its_thresholds() -> None:
    before = gc.get_threshold()
    loaded = [object()]  # alive at start-up: frozen out of later scans
    try:
        _tune_gc()
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() > 0
        assert gc.is_tracked(loaded)
        assert not any(o is loaded for o in gc.get_objects())
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_event_loop_is_uvloop_or_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIFTSTREAM_EVENT_LOOP", raising=False)
    assert load_settings().event_loop == "asyncio"
    monkeypatch.setenv("LIFTSTREAM_EVENT_LOOP", "uvloop")
    assert load_settings().event_loop == "uvloop"
    monkeypatch.setenv("LIFTSTREAM_EVENT_LOOP", "trio")
    with pytest.raises(ConfigError, match="event_loop"):
        load_settings()
