from __future__ import annotations

import csv
import os
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from models.hillstrom import COLUMNS, import_hillstrom
from stream.errors import ConfigError
from stream.history import read_history

ROOT = Path(__file__).resolve().parents[2]


def _real_csv() -> Path:
    path = Path(os.environ.get("LIFTSTREAM_HILLSTROM_CSV", ROOT.parent / "shared" / "data" / "hillstrom.csv"))
    if not path.is_file():
        pytest.skip(f"Hillstrom CSV not found at {path}")
    return path


def _write_csv(path: Path, rows: list[dict[str, str]], extra: tuple[str, ...] = ()) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*extra, *COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _row(
    segment: str, visit: int = 0, conversion: int = 0, spend: float = 0.0, **over: str
) -> dict[str, str]:
    row = {"recency": "3", "history_segment": "2) $100 - $200", "history": "142.44", "mens": "1",
           "womens": "0", "zip_code": "Surburban", "newbie": "0", "channel": "Phone", "segment": segment,
           "visit": str(visit), "conversion": str(conversion), "spend": str(spend)}  # fmt: skip
    return {**row, **over}


@pytest.mark.unit
def test_full_data_set_counts_and_totals(tmp_path: Path) -> None:
    source = _real_csv()
    with source.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    summary = import_hillstrom(source, tmp_path)
    h = read_history(tmp_path)
    assert len(h.profiles) == summary.profiles == 64_000
    assert len(h.exposures) == summary.exposures == 85_306
    kinds = Counter(c.kind.value for c in h.clicks)
    assert kinds["visit"] == sum(int(r["visit"]) for r in rows)
    assert kinds["purchase"] == sum(int(r["conversion"]) for r in rows)
    spend = sum(c.price * c.quantity for c in h.clicks if c.kind.value == "purchase")
    assert spend == pytest.approx(sum(float(r["spend"]) for r in rows), abs=1e-6)
    assert {p.promotion_id for p in h.promotions} == {"hillstrom-mens", "hillstrom-womens"}
    arms = Counter((e.promotion_id, e.arm.value) for e in h.exposures)
    controls = sum(r["segment"] == "No E-Mail" for r in rows)
    assert arms[("hillstrom-mens", "holdout")] == arms[("hillstrom-womens", "holdout")] == controls


@pytest.mark.unit
def test_mapping_of_one_customer_per_segment(tmp_path: Path) -> None:
    rows = [
        _row("Mens E-Mail", visit=1, conversion=1, spend=29.99, zip_code="Rural", channel="Multichannel"),
        _row("No E-Mail", visit=1, womens="1", newbie="1", zip_code="Urban", channel="Web"),
        _row("Womens E-Mail"),
    ]
    import_hillstrom(_write_csv(tmp_path / "h.csv", rows), tmp_path / "out")
    h = read_history(tmp_path / "out")
    profiles = {p.user_id: p for p in h.profiles}
    assert set(profiles) == {"0", "1", "2"}
    assert (profiles["0"].region.value, profiles["0"].channel.value) == ("rural", "multichannel")
    assert profiles["0"].recency_days == 90 and profiles["0"].lifetime_spend == 142.44
    assert profiles["0"].segment == "2) $100 - $200" and profiles["0"].interests == ["mens"]
    assert profiles["1"].is_new and profiles["1"].interests == ["mens", "womens"]
    assert profiles["2"].region.value == "suburban" and profiles["2"].channel.value == "phone"
    exposures = sorted((e.user_id, e.promotion_id, e.arm.value) for e in h.exposures)
    assert exposures == [
        ("0", "hillstrom-mens", "treatment"),
        ("1", "hillstrom-mens", "holdout"),
        ("1", "hillstrom-womens", "holdout"),
        ("2", "hillstrom-womens", "treatment"),
    ]
    sent = {e.user_id: e.ts for e in h.exposures}
    outcomes = sorted((c.user_id, c.kind.value, c.price) for c in h.clicks)
    assert outcomes == [("0", "purchase", 29.99), ("0", "visit", 0.0), ("1", "visit", 0.0)]
    window = timedelta(seconds=h.meta["attribution_window_s"])
    assert all(timedelta(0) < c.ts - sent[c.user_id] <= min(window, timedelta(hours=2)) for c in h.clicks)
    assert h.meta["source"] == "hillstrom" and h.truth is None


@pytest.mark.unit
def test_id_column_names_the_users(tmp_path: Path) -> None:
    rows = [{"cid": "A-17", **_row("Mens E-Mail")}, {"cid": "B-2", **_row("No E-Mail")}]
    import_hillstrom(_write_csv(tmp_path / "h.csv", rows, extra=("cid",)), tmp_path / "out", id_column="cid")
    h = read_history(tmp_path / "out")
    assert [p.user_id for p in h.profiles] == ["A-17", "B-2"]
    assert {e.user_id for e in h.exposures} == {"A-17", "B-2"}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("rows", "id_column", "message"),
    [
        ([_row("Mens E-Mail", zip_code="Mars")], None, "data row 0: unknown zip_code 'Mars'"),
        ([_row("Fax")], None, "unknown segment"),
        ([{"cid": "x", **_row("Mens E-Mail")}, {"cid": "x", **_row("No E-Mail")}], "cid", "duplicate"),
        ([_row("Mens E-Mail")], "cid", "missing column"),
        ([], None, "no data rows"),
    ],
)
def test_bad_input_is_a_config_error(
    tmp_path: Path, rows: list[dict[str, str]], id_column: str | None, message: str
) -> None:
    extra = ("cid",) if rows and "cid" in rows[0] else ()
    path = _write_csv(tmp_path / "h.csv", rows, extra=extra)
    with pytest.raises(ConfigError, match=message):
        import_hillstrom(path, tmp_path / "out", id_column=id_column)
