"""TableView's staging (stream/agents/tables.py): what a revoke leaves behind."""

from __future__ import annotations

from typing import Any

import pytest

from stream.agents.tables import TableView

pytestmark = pytest.mark.unit


class _Table:
    """What TableView uses of a Faust table before a flush: its store (a dict here) and its codecs."""

    key_serializer = value_serializer = "json"

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}


def test_a_revoke_drops_the_staged_values_of_lost_partitions_only() -> None:
    """A batch taken before a revoke may never flush: if the partition comes back after its new owner dies,
    reads must see the value recovered from the changelog, not the stale staged one."""
    table = _Table()
    view: TableView[dict[str, int]] = TableView(table, dict, dict, None, keep_objects=True)  # type: ignore[arg-type]
    table.data.update(lost={"v": 1}, kept={"v": 1})
    view.stage("lost", {"v": 2, "partition": 0})
    view.stage("kept", {"v": 2, "partition": 1})
    view.forget(lambda _, value: value["partition"] == 0)
    table.data["lost"] = {"v": 3}  # what the new owner wrote, recovered from the changelog
    assert view.get("lost") == {"v": 3}
    assert view.get("kept") == {"v": 2, "partition": 1}  # still staged: its batch is in flight here


def test_changelog_records_carry_the_bytes_fausts_own_codecs_write() -> None:
    """Batched produce writes changelog bytes itself (stream/agents/tables.py: _codecs); Faust's recovery and
    standbys must read them as their own, which the kill -9 tests of test_exactness.py do end to end."""
    import faust

    from stream.agents.tables import _codecs
    from stream.batching.users import EMPTY

    app = faust.App("codecs-test", broker="kafka://127.0.0.1:1")
    value = {**EMPTY.to_json(), "o": {"clicks/3": 17}, "p": [0.25, -1e-9, 3.0], "s": 2**63 - 1}
    raw = app.Table("raw", partitions=4, key_type=str)
    raw.key_serializer = "raw"  # the general path, through the changelog topic's codecs
    for table in (app.Table("users", partitions=4, key_type=str), raw):
        dump_key, dump_value = _codecs(table)
        changelog = table.changelog_topic
        for key in ("u-1", "ü/ß \\\"", ""):
            expected = changelog.prepare_key(key, table.key_serializer)[0]
            assert dump_key(key) == (expected if isinstance(expected, bytes) else expected.encode())
        assert dump_value(value) == changelog.prepare_value(value, table.value_serializer)[0]
