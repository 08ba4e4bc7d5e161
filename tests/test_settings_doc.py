from __future__ import annotations

import os
from pathlib import Path

import pytest

from stream.errors import ConfigError
from stream.settings import load_settings
from stream.settings_doc import render

pytestmark = pytest.mark.unit


def test_configuration_reference_is_current(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("LIFTSTREAM_")]:
        monkeypatch.delenv(var)
    doc = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    assert doc.read_text() == render(), (
        "regenerate with: python -m stream.settings_doc > docs/configuration.md"
    )


def test_bad_setting_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFTSTREAM_BATCHING__MAX_SIZE", "0")
    with pytest.raises(ConfigError, match="batching.max_size"):
        load_settings()
