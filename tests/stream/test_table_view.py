"""TableView's staging (stream/agents/tables.py): what a revoke leaves behind."""

from __future__ import annotations

from typing import Any

import pytest

from stream.agents.tables import TableView

pytestmark = pytest.mark.unit


class _Table:
    """What TableView uses of a Faust table: its store (a dict here) and nothing else before a flush."""

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
