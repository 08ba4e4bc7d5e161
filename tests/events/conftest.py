from __future__ import annotations

import pytest
from pydantic import BaseModel

from .samples import sample_events


@pytest.fixture
def events() -> dict[str, BaseModel]:
    return sample_events()
