from __future__ import annotations

import pytest

from stream.batching import bench_state

pytestmark = pytest.mark.unit


def test_the_events_are_a_simulated_worlds_user_events_on_their_partitions() -> None:
    events = bench_state.user_events(users=40, days=0.5)
    assert {r.topic for r, _ in events} == {"clicks", "exposures", "profiles"}
    offsets: dict[tuple[str, int], list[int]] = {}
    for record, event in events:
        assert record.partition == bench_state.user_partition(event.user_id, bench_state.PARTITIONS)  # type: ignore[union-attr]
        offsets.setdefault(record.tp, []).append(record.offset)
    assert all(o == list(range(len(o))) for o in offsets.values())


def test_main_times_every_implementation(capsys: pytest.CaptureFixture[str]) -> None:
    bench_state.main(["--users", "30", "--days", "0.5", "--batch", "50", "--repeat", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].strip() for line in lines] == list(bench_state.IMPLEMENTATIONS)
    assert all("µs/event" in line for line in lines)
