from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stream.errors import ConfigError
from stream.events.models import ClickEvent, ExposureEvent, PromotionEvent, UserProfileEvent
from stream.history import (
    MalformedRecord,
    TruthRow,
    iter_events,
    iter_malformed,
    iter_raw,
    merged_by_time,
    read_history,
    require_history,
    write_history,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _write(tmp_path: Path) -> Path:
    promotions = [PromotionEvent(promotion_id="p1", campaign_id="c1", action="start", ts=_at(10), title="t")]
    profiles = [UserProfileEvent(user_id="u2", ts=_at(10)), UserProfileEvent(user_id="u1", ts=_at(0))]
    exposures = [ExposureEvent(event_id="x1", user_id="u1", promotion_id="p1", campaign_id="c1", ts=_at(10),
                               arm="treatment")]  # fmt: skip
    clicks = [
        ClickEvent(event_id="c2", user_id="u1", session_id="s", ts=_at(20.5), kind="purchase", price=9.5),
        ClickEvent(event_id="c1", user_id="u1", session_id="s", ts=_at(10), kind="visit"),
    ]
    truth = [TruthRow("x1", "u1", "p1", "treatment", 0.1, 0.01, 1.5, 0.3, 0.02, 2.0 / 3.0)]
    bad = [MalformedRecord("clicks", b'{"event_id": 1'), MalformedRecord("profiles", b"\xff\x00")]
    write_history(tmp_path, promotions, profiles, exposures, clicks, truth, {"source": "test"}, malformed=bad)
    return tmp_path


def test_round_trip_sorts_each_file_by_time(tmp_path: Path) -> None:
    h = read_history(_write(tmp_path))
    assert [p.user_id for p in h.profiles] == ["u1", "u2"]
    assert [c.event_id for c in h.clicks] == ["c1", "c2"]
    assert h.clicks[1].price == 9.5
    assert h.truth is not None and h.truth[0].mu0_revenue == 2.0 / 3.0  # floats survive exactly
    assert h.meta == {"source": "test"}


def test_lines_are_the_wire_format(tmp_path: Path) -> None:
    _write(tmp_path)
    raw = list(iter_raw(tmp_path, "exposures"))
    event = next(iter_events(tmp_path, "exposures"))
    assert raw == [event.model_dump_json().encode()]


def test_merge_orders_by_time_with_promotions_first_on_ties(tmp_path: Path) -> None:
    _write(tmp_path)
    merged = [(topic, ts) for topic, ts, _ in merged_by_time(tmp_path)]
    assert merged == [
        ("profiles", _at(0)),
        ("promotions", _at(10)),
        ("profiles", _at(10)),
        ("exposures", _at(10)),
        ("clicks", _at(10)),
        ("clicks", _at(20.5)),
    ]


def test_sub_second_timestamps_merge_by_time_not_text(tmp_path: Path) -> None:
    # "…:00Z" sorts after "…:00.5Z" as text; the merge must compare times.
    clicks = [ClickEvent(event_id="a", user_id="u", session_id="s", ts=_at(0.5), kind="view")]
    profiles = [UserProfileEvent(user_id="u", ts=_at(1))]
    write_history(tmp_path, [], profiles, [], clicks, None, {})
    assert [topic for topic, _, _ in merged_by_time(tmp_path)] == ["clicks", "profiles"]


def test_malformed_payloads_live_apart(tmp_path: Path) -> None:
    _write(tmp_path)
    assert [r.payload for r in iter_malformed(tmp_path)] == [b'{"event_id": 1', b"\xff\x00"]
    assert read_history(tmp_path).clicks[0].event_id == "c1"


def test_no_truth_file_reads_as_none(tmp_path: Path) -> None:
    write_history(tmp_path, [], [], [], [], None, {"source": "x"})
    assert read_history(tmp_path).truth is None
    assert not (tmp_path / "truth.csv").exists()


def test_unknown_topic_and_missing_directory_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        list(iter_events(tmp_path, "predictions"))
    with pytest.raises(ConfigError):
        read_history(tmp_path / "nowhere")


def test_require_history_names_the_missing_files(tmp_path: Path) -> None:
    (tmp_path / "clicks.jsonl").write_bytes(b"")
    with pytest.raises(ConfigError, match="no promotions.jsonl, profiles.jsonl, exposures.jsonl"):
        require_history(tmp_path)
