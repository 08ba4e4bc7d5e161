"""`liftstream data import`: Hillstrom as a mapping is today's history; bad rows are counted and set aside."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from models.dataset import build_dataset
from models.hillstrom import COLUMNS, import_hillstrom
from models.import_spec import build_spec, read_mapping
from models.importer import REJECTED_FILE, import_experiment
from stream.cli import _register, app
from stream.errors import ConfigError, ModelError
from stream.history import TOPICS, read_history
from stream.scoring import signature as sig

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HILLSTROM_MAPPING = ROOT / "models" / "hillstrom_import.toml"
EVENT_FILES = [f"{topic}.jsonl" for topic in TOPICS]
HEADER = ["cid", "group", "visited", "bought", "amount", "ts", "tenure", "region"]


def _hillstrom_rows() -> list[dict[str, str]]:
    base = {"recency": "3", "history_segment": "2) $100 - $200", "history": "142.44", "mens": "1",
            "womens": "0", "zip_code": "Surburban", "newbie": "0", "channel": "Phone", "visit": "0",
            "conversion": "0", "spend": "0"}  # fmt: skip
    return [
        {**base, "segment": "Mens E-Mail", "visit": "1", "conversion": "1", "spend": "29.99",
         "zip_code": "Rural", "channel": "Multichannel"},
        {**base, "segment": "No E-Mail", "visit": "1", "womens": "1", "newbie": "1", "zip_code": "Urban",
         "channel": "Web", "recency": "11"},
        {**base, "segment": "Womens E-Mail", "spend": "12.5"},
        {**base, "segment": "No E-Mail", "history": "1003.1", "mens": "0"},
    ]  # fmt: skip


def _write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _same_events(a: Path, b: Path) -> None:
    for name in EVENT_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _hillstrom_spec():  # type: ignore[no-untyped-def]
    return build_spec(read_mapping(HILLSTROM_MAPPING))


def test_hillstrom_as_a_mapping_is_the_same_history(tmp_path: Path) -> None:
    source = _write_csv(tmp_path / "h.csv", list(COLUMNS), _hillstrom_rows())
    import_hillstrom(source, tmp_path / "today")
    summary = import_experiment(source, tmp_path / "mapped", _hillstrom_spec())
    _same_events(tmp_path / "today", tmp_path / "mapped")
    assert (summary.rows, summary.imported, summary.rejected, summary.exposures) == (4, 4, {}, 6)
    assert (summary.visits, summary.conversions, summary.revenue) == (3, 2, 42.49)
    assert not (tmp_path / "mapped" / REJECTED_FILE).exists()
    meta = read_history(tmp_path / "mapped").meta
    assert meta["source"] == "import" and meta["declaration_hash"] == sig.DECLARATION_HASH
    assert meta["attribution_window_s"] == read_history(tmp_path / "today").meta["attribution_window_s"]


def test_full_hillstrom_data_set_byte_for_byte(tmp_path: Path) -> None:
    source = Path(
        os.environ.get("LIFTSTREAM_HILLSTROM_CSV", ROOT.parent / "shared" / "data" / "hillstrom.csv")
    )
    if not source.is_file():
        pytest.skip(f"Hillstrom CSV not found at {source}")
    today = import_hillstrom(source, tmp_path / "today")
    mapped = import_experiment(source, tmp_path / "mapped", _hillstrom_spec())
    _same_events(tmp_path / "today", tmp_path / "mapped")
    assert (mapped.imported, mapped.exposures, mapped.visits, mapped.conversions, mapped.revenue) == (
        today.profiles,
        today.exposures,
        today.visits,
        today.conversions,
        today.spend,
    )


def _experiment_rows() -> list[dict[str, str]]:
    good = {"visited": "1", "bought": "0", "amount": "0", "tenure": "40", "region": "rural"}
    return [
        {**good, "cid": "a", "group": "control", "ts": "2026-02-01T10:00:00Z"},
        {**good, "cid": "b", "group": "A", "bought": "1", "amount": "25.5", "ts": "2026-02-01T10:01:00Z"},
        {**good, "cid": "c", "group": "B", "ts": "2026-02-01T11:02:00+01:00", "region": ""},
        {**good, "cid": "d", "group": "C", "ts": "2026-02-01T10:03:00Z"},  # no such arm
        {**good, "cid": "e", "group": "A", "visited": "2", "ts": "2026-02-01T10:04:00Z"},
        {**good, "cid": "f", "group": "A", "ts": "yesterday"},
        {**good, "cid": "g", "group": "A", "region": "moon", "ts": "2026-02-01T10:05:00Z"},
        {**good, "cid": "b", "group": "B", "ts": "2026-02-01T10:06:00Z"},  # b again
        {**good, "cid": "", "group": "A", "ts": "2026-02-01T10:07:00Z"},
        {**good, "cid": "h", "group": "B", "tenure": "many", "ts": "2026-02-01T10:08:00Z"},
        {**good, "cid": "i", "group": "B", "amount": "", "ts": "2026-02-01T10:09:00Z"},
    ]


def _experiment_spec(**over: object):  # type: ignore[no-untyped-def]
    options: dict[str, object] = {
        "user_id": "cid", "arm": "group", "control": "control", "timestamp": "ts", "campaign_id": "spring",
        "outcomes": {"visit": "visited", "conversion": "bought", "revenue": "amount"},
        "covariates": ["tenure=tenure_days", "region"],
    }  # fmt: skip
    promotions = {"A": {"title": "Ten percent off shoes"}, "B": {"title": "Free shipping"}}
    return build_spec({"promotions": promotions}, **{**options, **over})


def test_bad_rows_are_counted_by_reason_and_written_aside(tmp_path: Path) -> None:
    rows = _experiment_rows()
    source = _write_csv(tmp_path / "log.csv", HEADER, rows)
    summary = import_experiment(source, tmp_path / "hist", _experiment_spec())
    assert summary.rejected == {
        "unknown_arm": 1, "bad_outcome": 1, "bad_timestamp": 1, "bad_covariate": 2, "duplicate_user_id": 1,
        "missing_user_id": 1, "missing_outcome": 1,
    }  # fmt: skip
    assert summary.imported + sum(summary.rejected.values()) == summary.rows == len(rows)
    with (tmp_path / "hist" / REJECTED_FILE).open(newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert [(r["row"], r["reason"], r["cid"]) for r in rejected] == [
        ("3", "unknown_arm", "d"), ("4", "bad_outcome", "e"), ("5", "bad_timestamp", "f"),
        ("6", "bad_covariate", "g"), ("7", "duplicate_user_id", "b"), ("8", "missing_user_id", ""),
        ("9", "bad_covariate", "h"), ("10", "missing_outcome", "i"),
    ]  # fmt: skip
    assert "region" in rejected[3]["error"] and "'moon'" in rejected[3]["error"]
    h = read_history(tmp_path / "hist")
    assert h.meta["rejected"] == summary.rejected and h.meta["n_rows"] == len(rows)
    assert [p.user_id for p in h.profiles] == ["a", "b", "c"]
    assert (
        h.profiles[2].ts == datetime(2026, 2, 1, 10, 2, tzinfo=UTC) and h.profiles[2].region.value == "urban"
    )
    assert Counter((e.promotion_id, e.arm.value) for e in h.exposures) == {
        ("a", "holdout"): 1, ("b", "holdout"): 1, ("a", "treatment"): 1, ("b", "treatment"): 1,
    }  # fmt: skip
    assert {p.holdout_fraction for p in h.promotions} == {round(1 / 3, 4)}
    ds = build_dataset(tmp_path / "hist")
    assert len(ds) == 4 and ds.labels.sum(0).tolist() == [4.0, 1.0, 25.5]


def test_parquet_gives_the_csv_history(tmp_path: Path) -> None:
    rows = _experiment_rows()[:3]
    _write_csv(tmp_path / "log.csv", HEADER, rows)
    typed = [{**r, "visited": int(r["visited"]), "bought": int(r["bought"]), "amount": float(r["amount"]),
              "tenure": int(r["tenure"]), "region": r["region"] or None,
              "ts": datetime.fromisoformat(r["ts"])} for r in rows]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(typed), tmp_path / "log.parquet")
    import_experiment(tmp_path / "log.csv", tmp_path / "from_csv", _experiment_spec())
    import_experiment(tmp_path / "log.parquet", tmp_path / "from_parquet", _experiment_spec())
    _same_events(tmp_path / "from_csv", tmp_path / "from_parquet")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timestamp": "when"}, "missing column"),
        ({"control": "A"}, "is the control and a promotion"),
        ({"covariates": ["tenure=loyalty"]}, "attribute loyalty is neither a profile field nor declared"),
        ({"covariates": ["tenure=tenure_days", "region=tenure_days"]}, "fed by two covariates"),
        ({"outcomes": {"uplift": "amount"}}, "import spec outcomes"),
    ],
)
def test_bad_specs_are_one_clear_error(tmp_path: Path, options: dict[str, object], message: str) -> None:
    source = _write_csv(tmp_path / "log.csv", HEADER, _experiment_rows())
    with pytest.raises(ConfigError, match=message):
        import_experiment(source, tmp_path / "hist", _experiment_spec(**options))


def test_nothing_importable_is_an_error_with_the_rows_aside(tmp_path: Path) -> None:
    rows = [{**r, "group": "Z"} for r in _experiment_rows()]
    source = _write_csv(tmp_path / "log.csv", HEADER, rows)
    with pytest.raises(ConfigError, match="no row could be imported"):
        import_experiment(source, tmp_path / "hist", _experiment_spec())
    assert (tmp_path / "hist" / REJECTED_FILE).is_file()


def test_the_command_line_alone_names_everything(tmp_path: Path) -> None:
    source = _write_csv(tmp_path / "log.csv", HEADER, _experiment_rows())
    _register()
    result = CliRunner().invoke(app, [
        "data", "import", "--input", str(source), "--out", str(tmp_path / "hist"), "--user-id", "cid",
        "--arm", "group", "--control", "control", "--promotion", "A=Ten percent off shoes",
        "--description", "A=Every pair of shoes, this week only", "--promotion", "B=Free shipping",
        "--visit", "visited", "--revenue", "amount", "--timestamp", "ts", "--covariate", "region",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "4 of 11 rows imported" in result.output and "rejected 7 rows (bad_covariate 1," in result.output
    h = read_history(tmp_path / "hist")
    texts = {p.promotion_id: (p.title, p.description) for p in h.promotions}
    assert texts == {"a": ("Ten percent off shoes", "Every pair of shoes, this week only"),
                     "b": ("Free shipping", "")}  # fmt: skip
    assert h.meta["outcomes"] == ["visit", "revenue"]


_DECLARED = """
import json, sys
from pathlib import Path
from models.dataset import build_dataset
from models.export import export_model
from models.import_spec import build_spec
from models.importer import import_experiment
from models.train import TrainConfig, train
from stream.scoring import signature as sig

tmp = Path(sys.argv[1])
spec = build_spec({"promotions": {"A": {"title": "Ten percent off"}}}, arm="group", control="control",
                  outcomes={"visit": "visited"}, covariates=["points=loyalty_points", "tier"])
import_experiment(tmp / "log.csv", tmp / "hist", spec)
ds = build_dataset(tmp / "hist")
train(ds, tmp / "model", epochs=1, seed=0, device="cpu",
      config=TrainConfig(batch_size=64, hidden=(8,), patience=1, reference_rows=50))
export_model(tmp / "model", tmp / "repo")
print(json.dumps({"features": list(sig.USER_FEATURES), "width": ds.user_features.shape[1],
                  "config": (tmp / "repo" / sig.SCORER / "config.pbtxt").read_text()}))
"""


def test_declared_attributes_flow_from_import_to_the_served_signature(tmp_path: Path) -> None:
    (tmp_path / "attributes.toml").write_text(
        '[[attribute]]\nname = "loyalty_points"\nkind = "numeric"\ntransform = "log1p"\n'
        '[[attribute]]\nname = "tier"\nkind = "categorical"\nvocabulary = ["gold", "silver"]\n'
    )
    rows = [{"group": "A" if i % 2 else "control", "visited": str(i % 3 == 0), "points": str(i),
             "tier": "gold" if i % 4 else "silver"} for i in range(120)]  # fmt: skip
    for r in rows:
        r["visited"] = "1" if r["visited"] == "True" else "0"
    _write_csv(tmp_path / "log.csv", ["group", "visited", "points", "tier"], rows)
    env = {**os.environ, "LIFTSTREAM_PROFILE__ATTRIBUTES_FILE": str(tmp_path / "attributes.toml")}
    done = subprocess.run([sys.executable, "-c", _DECLARED, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=240, cwd=ROOT, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    profile = [n for n in out["features"] if n.startswith("profile_")]
    assert profile == [
        "profile_loyalty_points_log",
        "profile_tier_gold",
        "profile_tier_silver",
        "profile_known",
    ]
    assert out["width"] == len(out["features"]) == 32
    assert 'name: "user_features"' in out["config"] and "dims: [ 32 ]" in out["config"]
    # This process runs the default declaration: the worker refuses that model, in one line.
    with pytest.raises(ModelError, match="declaration .* \\(32 user features\\) but this process declares"):
        sig.check_served(tmp_path / "repo", 1)
    # And training here on that history is refused too.
    with pytest.raises(ConfigError, match="was imported with profile declaration"):
        build_dataset(tmp_path / "hist")
