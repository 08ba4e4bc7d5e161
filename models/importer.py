"""`liftstream data import`: a randomised experiment log (CSV or Parquet) → a history directory.

Each row is one user of the experiment (models/import_spec.py says which column is what). The user gets a
profile from the covariates; a treatment row an exposure to its arm's promotion, a control row — the
control group of every promotion — a holdout exposure to each; the outcomes become a `visit` click and,
for buyers, a `purchase` at the revenue, one hour after the exposure (so within the attribution window,
outside the exposure's features). Without a timestamp column users are exposed one second apart in file
order. What `train`, `evaluate`, `score` and `replay` read is then the same as for any history.

A row that cannot be imported is never dropped silently: it is counted by reason in the summary and in
meta.json (`rejected`) and written, with the reason and the error, to DIR/rejected.csv.
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from models.import_spec import ImportSpec, attribute_kind, promotion_id
from stream.errors import ConfigError, DecodeError
from stream.events.models import (
    PROFILE_FIELDS,
    Arm,
    ClickEvent,
    ClickKind,
    ExposureEvent,
    Outcome,
    PromotionAction,
    PromotionEvent,
    UserProfileEvent,
)
from stream.history import write_history
from stream.scoring.signature import DECLARATION_HASH
from stream.simulate.config import DEFAULT_START

log = logging.getLogger(__name__)

REJECTED_FILE = "rejected.csv"
FIRST_SEND = DEFAULT_START + timedelta(minutes=1)
SPACING = timedelta(seconds=1)
OUTCOME_DELAY = timedelta(hours=1)
PURCHASE_DELAY = timedelta(minutes=1)
_PARQUET = (".parquet", ".pq")
_DELIMITERS = {".csv": ",", ".tsv": "\t"}


@dataclass(frozen=True)
class ImportSummary:
    rows: int
    imported: int
    rejected: dict[str, int]
    """reason → rows rejected for it"""
    exposures: int
    visits: int
    conversions: int
    revenue: float


@dataclass(frozen=True)
class _User:
    arm: str
    profile: UserProfileEvent
    exposures: list[ExposureEvent]
    clicks: list[ClickEvent]


def read_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """(column names, rows) of a CSV / TSV (values are text) or Parquet file (values are Python's)."""
    if not path.is_file():
        raise ConfigError(f"{path} is not a file")
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise ConfigError(f"{path} is not a readable Parquet file: {exc}") from exc
        return list(table.column_names), table.to_pylist()
    if suffix not in _DELIMITERS:
        raise ConfigError(f"{path}: expected a .csv, .tsv, .parquet or .pq file")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter=_DELIMITERS[suffix])
        return list(reader.fieldnames or []), list(reader)


def import_experiment(path: Path, out: Path, spec: ImportSpec) -> ImportSummary:
    """Converts the experiment log at `path` into the history directory `out`."""
    columns, rows = read_rows(path)
    missing = [c for c in dict.fromkeys(spec.columns()) if c not in columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}")
    if not rows:
        raise ConfigError(f"{path} has no data rows")
    users: list[_User] = []
    rejected: list[tuple[int, DecodeError]] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        try:
            users.append(_user(i, row, spec, seen))
        except DecodeError as exc:
            rejected.append((i, exc))
    reasons = dict(Counter(exc.reason for _, exc in rejected))
    out.mkdir(parents=True, exist_ok=True)
    if rejected:
        _write_rejected(out / REJECTED_FILE, columns, rows, rejected)
        log.warning(
            "import: %d of %d rows rejected (%s), see %s",
            len(rejected),
            len(rows),
            reasons,
            out / REJECTED_FILE,
        )
    if not users:
        raise ConfigError(f"{path}: no row could be imported ({reasons}); see {out / REJECTED_FILE}")
    return _write(path, out, spec, users, len(rows), reasons)


def _write(
    path: Path, out: Path, spec: ImportSpec, users: list[_User], rows: int, reasons: dict[str, int]
) -> ImportSummary:
    profiles = [u.profile for u in users]
    exposures = [e for u in users for e in u.exposures]
    clicks = [c for u in users for c in u.clicks]
    first, last = min(p.ts for p in profiles), max(p.ts for p in profiles)
    control = sum(u.arm == spec.control for u in users)
    summary = ImportSummary(
        rows=rows,
        imported=len(users),
        rejected=reasons,
        exposures=len(exposures),
        visits=sum(c.kind is ClickKind.visit for c in clicks),
        conversions=sum(c.kind is ClickKind.purchase for c in clicks),
        revenue=round(sum(c.price * c.quantity for c in clicks), 2),
    )
    meta = {
        "source": "import",
        "input": path.name,
        "campaign_id": spec.campaign_id,
        "start": (first - timedelta(minutes=1)).isoformat(),
        "end": (last + timedelta(seconds=spec.attribution_window_s)).isoformat(),
        "attribution_window_s": spec.attribution_window_s,
        "declaration_hash": DECLARATION_HASH,
        "outcomes": [o.value for o in spec.outcomes],
        "n_rows": rows,
        "n_users": len(users),
        "rejected": reasons,
        "n_exposures": summary.exposures,
        "n_visits": summary.visits,
        "n_conversions": summary.conversions,
        "revenue": summary.revenue,
        "promotion_ids": [promotion_id(v, p) for v, p in spec.promotions.items()],
    }
    promotions = _promotions(spec, control / len(users), first, last)
    write_history(out, promotions, profiles, exposures, clicks, None, meta)
    log.info("import: %d users → %d exposures, %d clicks in %s", len(users), len(exposures), len(clicks), out)
    return summary


def _promotions(spec: ImportSpec, holdout: float, first: datetime, last: datetime) -> list[PromotionEvent]:
    return [
        PromotionEvent(
            promotion_id=promotion_id(value, p),
            campaign_id=spec.campaign_id,
            action=action,
            ts=ts,
            title=p.title,
            description=p.description,
            discount_type=p.discount_type,
            discount_value=p.discount_value,
            categories=p.categories,
            start=first,
            end=last,
            goal=p.goal,
            holdout_fraction=round(holdout, 4),
        )
        for value, p in spec.promotions.items()
        for action, ts in (
            (PromotionAction.start, first - timedelta(minutes=1)),
            (PromotionAction.stop, last),
        )
    ]


def _user(i: int, row: Mapping[str, Any], spec: ImportSpec, seen: set[str]) -> _User:
    user_id = _text(row.get(spec.user_id)) if spec.user_id else str(i)
    if not user_id:
        raise DecodeError("missing_user_id", f"no {spec.user_id}")
    if user_id in seen:
        raise DecodeError("duplicate_user_id", f"user {user_id!r} is on an earlier row")
    arm = _text(row.get(spec.arm))
    if arm != spec.control and arm not in spec.promotions:
        raise DecodeError("unknown_arm", f"{spec.arm} {arm!r} is neither the control nor a promotion")
    sent = FIRST_SEND + SPACING * i if spec.timestamp is None else _timestamp(row.get(spec.timestamp))
    visited, bought, revenue = _outcomes(row, spec)
    try:
        profile = UserProfileEvent(user_id=user_id, ts=sent, **_covariates(row, spec))
        exposures = _exposures(spec, user_id, arm, sent)
        clicks = _clicks(spec.campaign_id, user_id, sent + OUTCOME_DELAY, visited, bought, revenue)
    except ValidationError as exc:
        raise _invalid(exc) from exc
    seen.add(user_id)
    return _User(arm, profile, exposures, clicks)


def _invalid(exc: ValidationError) -> DecodeError:
    first = exc.errors(include_url=False)[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    reason = {"user_id": "bad_user_id", "event_id": "bad_user_id", "session_id": "bad_user_id",
              "ts": "bad_timestamp"}.get(field, "bad_covariate")  # fmt: skip
    given = first.get("input")
    got = f", got {given!r}" if isinstance(given, str | int | float) else ""
    return DecodeError(reason, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}{got}")


def _exposures(spec: ImportSpec, user_id: str, arm: str, sent: datetime) -> list[ExposureEvent]:
    if arm == spec.control:
        shown = [(promotion_id(v, p), Arm.holdout) for v, p in spec.promotions.items()]
    else:
        shown = [(promotion_id(arm, spec.promotions[arm]), Arm.treatment)]
    return [
        ExposureEvent(
            event_id=f"{pid}-{user_id}",
            user_id=user_id,
            promotion_id=pid,
            campaign_id=spec.campaign_id,
            ts=sent,
            arm=a,
        )  # fmt: skip
        for pid, a in shown
    ]


def _clicks(
    campaign: str, user_id: str, at: datetime, visited: bool, bought: bool, revenue: float
) -> list[ClickEvent]:
    session = f"{campaign}-{user_id}"
    out = []
    if visited:
        out.append(ClickEvent(event_id=f"{session}-visit", user_id=user_id, session_id=session, ts=at,
                              kind=ClickKind.visit))  # fmt: skip
    if bought:
        out.append(ClickEvent(event_id=f"{session}-purchase", user_id=user_id, session_id=session,
                              ts=at + PURCHASE_DELAY, kind=ClickKind.purchase, price=revenue))  # fmt: skip
    return out


def _outcomes(row: Mapping[str, Any], spec: ImportSpec) -> tuple[bool, bool, float]:
    """(visited, bought, revenue): a purchase or revenue implies the visit, revenue > 0 the purchase."""
    values: dict[Outcome, float] = {}
    for outcome, column in spec.outcomes.items():
        value = _number(row.get(column), column, "bad_outcome")
        if value is None:
            raise DecodeError("missing_outcome", f"no {column}")
        if outcome is Outcome.revenue and not 0.0 <= value <= 1e7:
            raise DecodeError("bad_outcome", f"{column} {value} is not a revenue in [0, 1e7]")
        if outcome is not Outcome.revenue and value not in (0.0, 1.0):
            raise DecodeError("bad_outcome", f"{column} {value} is not 0 or 1")
        values[outcome] = value
    revenue = values.get(Outcome.revenue, 0.0)
    bought = values.get(Outcome.conversion) == 1.0 or revenue > 0
    return values.get(Outcome.visit) == 1.0 or bought, bought, revenue


def _covariates(row: Mapping[str, Any], spec: ImportSpec) -> dict[str, Any]:
    """Typed profile fields and the `attributes` mapping from the covariates (blank cells are left out)."""
    typed: dict[str, Any] = {}
    declared: dict[str, Any] = {}
    for c in spec.covariates:
        raw = row.get(c.column)
        if _blank(raw):
            continue
        target = typed if c.attribute in PROFILE_FIELDS else declared
        kind = attribute_kind(c.attribute)
        if kind == "numeric":
            number = (_number(raw, c.column, "bad_covariate") or 0.0) * c.scale
            is_bool = (
                c.attribute in PROFILE_FIELDS
                and UserProfileEvent.model_fields[c.attribute].annotation is bool
            )
            target[c.attribute] = number != 0 if is_bool else number
        elif kind == "categorical":
            text = _text(raw)
            target[c.attribute] = c.values.get(text, text)
        else:
            target.setdefault(c.attribute, []).extend(_members(raw, c.flag, c.separator, c.column))
    return {**typed, **({"attributes": declared} if declared else {})}


def _members(raw: Any, flag: str | None, separator: str, column: str) -> list[str]:
    if flag is not None:
        return [flag] if _number(raw, column, "bad_covariate") else []
    if isinstance(raw, list):
        return [str(m) for m in raw]
    return [m.strip() for m in str(raw).split(separator) if m.strip()]


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _text(raw: Any) -> str:
    return "" if raw is None else str(raw).strip()


def _number(raw: Any, column: str, reason: str) -> float | None:
    if _blank(raw):
        return None
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise DecodeError(reason, f"{column} {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise DecodeError(reason, f"{column} {raw!r} is not finite")
    return value


def _timestamp(raw: Any) -> datetime:
    """An ISO 8601 text, a datetime or epoch seconds; without a timezone it is UTC."""
    try:
        if isinstance(raw, datetime):
            ts = raw
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            ts = datetime.fromtimestamp(raw, UTC)
        else:
            ts = datetime.fromisoformat(_text(raw))
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise DecodeError("bad_timestamp", f"{raw!r}: {exc}") from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _write_rejected(
    path: Path, columns: list[str], rows: list[dict[str, Any]], rejected: list[tuple[int, DecodeError]]
) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "reason", "error", *columns])
        for i, exc in rejected:
            values = ["" if rows[i].get(c) is None else str(rows[i].get(c)) for c in columns]
            writer.writerow([i, exc.reason, exc.detail, *values])
