from __future__ import annotations

import pytest

from stream.bench.profile import area, markdown, parse_collapsed, short_path, summarise

pytestmark = pytest.mark.unit

SITE = "/work/main/.venv/lib/python3.11/site-packages"
ENTRY = "<module> (/work/main/stream/__main__.py:3);run (/usr/lib/python3.11/asyncio/base_events.py:608)"
TAKE = "take (/work/main/stream/agents/users.py:{line})"
RAW = "\n".join([
    f"{ENTRY};{TAKE.format(line=70)};decode (/work/main/stream/events/gate.py:90);"
    f"model_validate_json ({SITE}/pydantic/main.py:650) 30",
    f"{ENTRY};{TAKE.format(line=72)};assemble (/work/main/stream/batching/assemble.py:60) 20",
    f"{ENTRY};send ({SITE}/aiokafka/producer/producer.py:400) 50",
    "not a stack line",
])  # fmt: skip


def test_collapsed_stacks_are_parsed_with_their_counts() -> None:
    stacks = parse_collapsed(RAW)
    assert [n for _, n in stacks] == [30, 20, 50]
    assert stacks[1][0][-1] == "assemble (/work/main/stream/batching/assemble.py:60)"


def test_paths_and_areas() -> None:
    assert short_path(f"{SITE}/faust/streams.py") == "faust/streams.py"
    assert short_path("/work/main/stream/batching/assemble.py") == "stream/batching/assemble.py"
    assert short_path("/usr/lib/python3.11/selectors.py") == "selectors.py"
    assert area(f"{SITE}/aiokafka/producer/producer.py") == "aiokafka"
    assert area("/work/main/stream/events/gate.py") == "stream.events"
    assert area("/usr/lib/python3.11/selectors.py") == "selectors"


def test_summary_shares_self_time_and_liftstream_inclusive_time() -> None:
    summary = summarise(parse_collapsed(RAW))
    assert summary.samples == 100
    assert dict(summary.areas) == {"aiokafka": 0.5, "pydantic": 0.3, "stream.batching": 0.2}
    assert summary.self_time[0] == ("send (aiokafka/producer/producer.py)", 0.5)
    inclusive = dict(summary.inclusive)
    assert inclusive["take (stream/agents/users.py)"] == 0.5  # two lines of one function count once
    assert "<module> (stream/__main__.py)" not in inclusive  # entry points pass through every sample
    text = markdown(summary)
    assert "| `aiokafka` | 50.0% |" in text and text.startswith("100 samples")


def test_an_empty_profile_summarises_to_nothing() -> None:
    assert summarise([]).samples == 0
