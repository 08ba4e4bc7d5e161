"""The ACLs a worker needs, and the one line naming those it lacks."""

from __future__ import annotations

import pytest

from stream.kafka_access import NOT_REQUESTED, READ, WRITE, missing, needed
from stream.settings import load_settings

pytestmark = pytest.mark.unit


def test_inputs_are_read_outputs_written_and_internal_topics_both() -> None:
    need = needed(load_settings(app_id="app"), ["app-users-changelog"])
    assert need["exposures"] == {READ} and need["promotions"] == {READ}
    assert need["predictions"] == {WRITE} and need["dead-letter"] == {WRITE}
    assert need["app-users-changelog"] == {READ, WRITE} and need["app-campaign-partials"] == {READ, WRITE}


def test_missing_names_each_operation_the_broker_did_not_allow() -> None:
    need = {"in": {READ}, "out": {WRITE}, "log": {READ, WRITE}, "hidden": {READ}, "open": {WRITE}}
    allowed = {"in": 1 << READ, "out": 1 << READ, "log": 1 << READ, "hidden": None, "open": NOT_REQUESTED}
    lacking = ["DESCRIBE/READ on topic hidden", "WRITE on topic log", "WRITE on topic out"]
    assert missing(need, allowed) == lacking
    assert missing(need, {**allowed, "out": (1 << WRITE), "log": 0b11000, "hidden": 1 << READ}) == []
