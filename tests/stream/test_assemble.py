"""Batch assembly: state updates, offset dedup of replays, partials per (promotion, partition), rankings."""

from __future__ import annotations

import orjson
import pytest

from stream.batching.assemble import Assembly, assemble
from stream.batching.partials import Partial, partial_key
from stream.batching.records import Record
from stream.batching.users import EMPTY, UserConfig, UserValue
from stream.events.gate import Event
from tests.features.builders import click, exposure, profile

pytestmark = pytest.mark.unit

CONFIG = UserConfig(ranking_interval_s=300.0)


def _records(events: list[tuple[str, int, Event]], partition: int = 2) -> list[tuple[Record, Event]]:
    return [(Record(topic, partition, offset, b"k", b"v", 0.0), ev) for topic, offset, ev in events]


def _run(
    events: list[tuple[Record, Event]],
    users: dict[str, UserValue] | None = None,
    partials: dict[str, Partial] | None = None,
) -> Assembly:
    users, partials = users or {}, partials or {}
    return assemble(events, lambda u: users.get(u, EMPTY), partials.get, CONFIG)


def _state(asm: Assembly) -> tuple[dict[str, UserValue], dict[str, Partial]]:
    return {u: v for u, (_, v) in asm.users.items()}, dict(asm.partials)


def test_applies_events_and_counts_realised_deltas_in_the_partition_partial() -> None:
    events = _records(
        [
            ("profiles", 0, profile("u", 0.0)),
            ("exposures", 0, exposure("u", 10.0, promo="p1", arm="treatment")),
            ("clicks", 0, click("u", 20.0, kind="purchase", price=5.0)),
        ]
    )
    asm = _run(events)
    value = asm.users["u"][1]
    assert asm.users["u"][0] == 2
    assert value.offsets == {"profiles/2": 0, "exposures/2": 0, "clicks/2": 0}
    assert value.profile is not None and len(value.features.clicks) == 1
    part = asm.partials[partial_key("p1", 2)]
    t = part.totals.treatment
    assert (t.exposures, t.visits, t.conversions, t.revenue) == (1, 1, 1, 5.0)
    assert part.marks == {"profiles": 0, "exposures": 0, "clicks": 0}  # the batch's position
    assert value.outbox is not None and value.outbox.position == part.marks
    assert [i.event.event_id for i in asm.exposures] == [events[1][1].event_id]  # type: ignore[union-attr]
    assert asm.outcomes["clicks", "ok"] == asm.outcomes["exposures", "ok"] == 1


def test_a_replayed_batch_changes_nothing_but_its_exposures_are_scored_again() -> None:
    events = _records(
        [
            ("exposures", 7, exposure("u", 10.0, promo="p1")),
            ("clicks", 3, click("u", 20.0)),
        ]
    )
    users, partials = _state(_run(events))
    again = _run(events, users, partials)
    assert again.users == {} and again.partials == {}
    assert len(again.exposures) == 1
    assert again.outcomes["exposures", "duplicate"] == again.outcomes["clicks", "duplicate"] == 1


def test_a_replay_resends_an_outbox_the_partials_miss_once() -> None:
    # A crash after the user values were written but before the partials: the user values hold the
    # batch, so the replay changes no state, and the outbox gives the partials the batch's deltas.
    events = _records([("exposures", 4, exposure("u", 10.0, promo="p1")), ("clicks", 9, click("u", 11.0))])
    users, partials = _state(_run(events))
    replay = _run(events, users, {})
    key = partial_key("p1", 2)
    assert replay.partials[key].totals == partials[key].totals
    assert replay.users["u"][1].outbox == users["u"].outbox
    users_after, partials_after = _state(replay)
    assert _run(events, users_after, partials_after).partials == {}


def test_one_ranking_per_user_per_batch_on_a_new_session_or_after_the_interval() -> None:
    events = _records(
        [
            ("clicks", 0, click("u", 0.0, session_id="s1")),
            ("clicks", 1, click("u", 10.0, session_id="s1")),
            ("clicks", 2, click("v", 10.0, session_id="s9")),
        ]
    )
    asm = _run(events)
    assert sorted(asm.rankings) == ["u", "v"] and asm.rankings["u"].record.offset == 0
    users, _ = _state(asm)
    later = _run(
        _records(
            [
                ("clicks", 3, click("u", 100.0, session_id="s1")),  # same session, within the interval: no
                ("clicks", 4, click("v", 400.0, session_id="s9")),  # same session, interval passed: yes
            ]
        ),
        users,
    )
    assert list(later.rankings) == ["v"]
    users, _ = _state(later)
    new_session = _run(_records([("clicks", 5, click("u", 101.0, session_id="s2"))]), users)
    assert new_session.rankings["u"].session_id == "s2"


def test_user_values_round_trip_through_json() -> None:
    events = _records(
        [
            ("profiles", 0, profile("u", 0.0)),
            ("exposures", 0, exposure("u", 10.0)),
            ("clicks", 0, click("u", 20.0, kind="purchase")),
        ]
    )
    value = _run(events).users["u"][1]
    assert UserValue.from_json(orjson.loads(orjson.dumps(value.to_json()))) == value


def test_an_older_profile_only_moves_the_offset() -> None:
    users, _ = _state(_run(_records([("profiles", 0, profile("u", 50.0, tenure_days=9))])))
    asm = _run(_records([("profiles", 1, profile("u", 10.0, tenure_days=1))]), users)
    assert asm.users["u"][1].profile == users["u"].profile
    assert asm.users["u"][1].offsets["profiles/2"] == 1 and asm.outcomes["profiles", "late"] == 1


def test_replays_are_told_by_the_offsets_of_the_events_own_partition() -> None:
    # Offset 7 of partition 2 was applied; offset 3 of partition 5 (the topic gained partitions and the
    # user's events moved) is new, not a duplicate, and keeps partition 2's offset for its replays.
    users, _ = _state(_run(_records([("clicks", 7, click("u", 0.0))])))
    moved = _run(_records([("clicks", 3, click("u", 5.0))], partition=5), users)
    assert moved.outcomes["clicks", "ok"] == 1 and moved.outcomes["clicks", "duplicate"] == 0
    assert moved.users["u"][1].offsets == {"clicks/2": 7, "clicks/5": 3}
    again = _run(_records([("clicks", 7, click("u", 0.0))]), {"u": moved.users["u"][1]})
    assert again.outcomes["clicks", "duplicate"] == 1


def test_a_version_1_value_keeps_its_offsets_for_the_partition_they_came_from() -> None:
    events = _records([("clicks", 4, click("u", 0.0)), ("exposures", 6, exposure("u", 1.0))])
    stored = _run(events).users["u"][1].to_json()
    stored.update(v=1, o={"clicks": 4, "exposures": 6})  # as version 1 wrote it: offsets by topic
    old = UserValue.from_json(stored)
    replay = _run(events, {"u": old})
    assert replay.outcomes["clicks", "duplicate"] == replay.outcomes["exposures", "duplicate"] == 1
    later = _run(_records([("clicks", 5, click("u", 2.0))]), {"u": old})
    assert later.users["u"][1].offsets == {"exposures": 6, "clicks/2": 5}


def test_no_ranking_and_no_marker_while_no_promotion_is_active() -> None:
    first = _records([("clicks", 0, click("u", 0.0, session_id="s1"))])
    users, _ = _state(assemble(first, lambda _: EMPTY, {}.get, CONFIG, rankable=False))
    assert users["u"].ranked_ts is None
    later = _run(_records([("clicks", 1, click("u", 5.0, session_id="s1"))]), users)
    assert list(later.rankings) == ["u"]
