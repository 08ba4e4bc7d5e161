"""Kevin Hillstrom's MineThatData e-mail campaign as a liftstream history.

One campaign `hillstrom` with two promotions, `hillstrom-mens` and `hillstrom-womens`. Each customer gets a
profile; a Mens/Womens E-Mail customer a treatment exposure to that promotion; a No E-Mail customer — the
control group of both — a holdout exposure to each. The two-week outcomes become a `visit` click and, for
buyers, a `purchase` at the spend, one hour after the exposure. Customers are sent one second apart in file
order, so any subset of rows keeps its timing.

The same mapping as a `liftstream data import` spec is models/hillstrom_import.toml; it gives this history
byte for byte (tests/models/test_importer.py).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stream.errors import ConfigError
from stream.events.models import (
    Arm,
    Channel,
    ClickEvent,
    ClickKind,
    ExposureEvent,
    Outcome,
    PromotionAction,
    PromotionEvent,
    PromotionGoal,
    Region,
    UserProfileEvent,
)
from stream.history import write_history
from stream.simulate.config import DEFAULT_START

log = logging.getLogger(__name__)

CAMPAIGN = "hillstrom"
WINDOW_S = 14 * 86400
COLUMNS = ("recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie", "channel",
           "segment", "visit", "conversion", "spend")  # fmt: skip
_FIRST_SEND = DEFAULT_START + timedelta(minutes=1)
_SPACING = timedelta(seconds=1)
_OUTCOME_DELAY = timedelta(hours=1)
_PROMOTIONS = {
    "Mens E-Mail": ("hillstrom-mens", "men's", "mens"),
    "Womens E-Mail": ("hillstrom-womens", "women's", "womens"),
}
_CONTROL = "No E-Mail"
_REGIONS = {
    "urban": Region.urban,
    "surburban": Region.suburban,
    "suburban": Region.suburban,
    "rural": Region.rural,
}
_CHANNELS = {"web": Channel.web, "phone": Channel.phone, "multichannel": Channel.multichannel}


@dataclass(frozen=True)
class HillstromSummary:
    rows: int
    profiles: int
    exposures: int
    visits: int
    conversions: int
    spend: float


def import_hillstrom(csv_path: Path, out: Path, id_column: str | None = None) -> HillstromSummary:
    """Converts the CSV at `csv_path` into the history directory `out`."""
    if not csv_path.is_file():
        raise ConfigError(f"{csv_path} is not a file")
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [
            c for c in (*COLUMNS, *([id_column] if id_column else [])) if c not in (reader.fieldnames or [])
        ]
        if missing:
            raise ConfigError(f"{csv_path}: missing column(s) {', '.join(missing)}")
        rows = list(reader)
    if not rows:
        raise ConfigError(f"{csv_path} has no data rows")
    profiles, exposures, clicks = _customers(rows, id_column)
    control = sum(r["segment"] == _CONTROL for r in rows)
    last_send = _FIRST_SEND + _SPACING * (len(rows) - 1)
    promotions = _promotions(control / len(rows), last_send)
    summary = HillstromSummary(
        rows=len(rows),
        profiles=len(profiles),
        exposures=len(exposures),
        visits=sum(c.kind is ClickKind.visit for c in clicks),
        conversions=sum(c.kind is ClickKind.purchase for c in clicks),
        spend=round(sum(c.price * c.quantity for c in clicks), 2),
    )
    meta = {
        "source": "hillstrom",
        "csv": csv_path.name,
        "id_column": id_column,
        "start": DEFAULT_START.isoformat(),
        "end": (last_send + timedelta(seconds=WINDOW_S)).isoformat(),
        "attribution_window_s": WINDOW_S,
        "n_users": summary.profiles,
        "n_exposures": summary.exposures,
        "n_visits": summary.visits,
        "n_conversions": summary.conversions,
        "spend": summary.spend,
        "promotion_ids": [p for p, _, _ in _PROMOTIONS.values()],
    }
    write_history(out, promotions, profiles, exposures, clicks, None, meta)
    log.info(
        "hillstrom: %d customers → %d exposures, %d clicks in %s", len(rows), len(exposures), len(clicks), out
    )
    return summary


def _promotions(holdout_fraction: float, last_send: datetime) -> list[PromotionEvent]:
    return [
        PromotionEvent(
            promotion_id=promotion_id,
            campaign_id=CAMPAIGN,
            action=action,
            ts=ts,
            title=f"E-mail featuring {who} merchandise",
            description=(
                f"A promotional e-mail featuring {who} merchandise, sent to customers who bought within the "
                "last twelve months; outcomes are tracked for the two weeks after the send."
            ),
            categories=[category],
            start=_FIRST_SEND,
            end=last_send,
            goal=PromotionGoal(outcome=Outcome.visit, target_uplift=0.02),
            holdout_fraction=round(holdout_fraction, 4),
        )
        for promotion_id, who, category in _PROMOTIONS.values()
        for action, ts in ((PromotionAction.start, DEFAULT_START), (PromotionAction.stop, last_send))
    ]


def _customers(
    rows: Iterable[dict[str, str]], id_column: str | None
) -> tuple[list[UserProfileEvent], list[ExposureEvent], list[ClickEvent]]:
    profiles: list[UserProfileEvent] = []
    exposures: list[ExposureEvent] = []
    clicks: list[ClickEvent] = []
    seen: set[str] = set()
    inconsistent = 0
    for i, row in enumerate(rows):
        user_id = row[id_column].strip() if id_column else str(i)
        if user_id in seen:
            raise ConfigError(f"data row {i}: duplicate customer id {user_id!r}")
        seen.add(user_id)
        sent = _FIRST_SEND + _SPACING * i
        try:
            profiles.append(_profile(user_id, sent, row))
            exposures.extend(_exposures(user_id, sent, row))
            visit, conversion, spend = int(row["visit"]), int(row["conversion"]), float(row["spend"])
            bought = conversion == 1 or spend > 0
            inconsistent += (spend > 0) != (conversion == 1) or (bought and visit == 0)
            clicks.extend(_outcomes(user_id, sent + _OUTCOME_DELAY, visit == 1 or bought, bought, spend))
        except (ValueError, KeyError, ValidationError) as exc:
            raise ConfigError(f"data row {i}: {exc}") from exc
    if inconsistent:
        log.warning("hillstrom: %d rows where visit, conversion and spend disagree", inconsistent)
    return profiles, exposures, clicks


def _profile(user_id: str, ts: datetime, row: dict[str, str]) -> UserProfileEvent:
    interests = [name for name in ("mens", "womens") if row[name].strip() == "1"]
    return UserProfileEvent(
        user_id=user_id,
        ts=ts,
        lifetime_spend=float(row["history"]),
        recency_days=int(row["recency"]) * 30,
        channel=_lookup(_CHANNELS, row, "channel"),
        region=_lookup(_REGIONS, row, "zip_code"),
        segment=row["history_segment"].strip(),
        interests=interests,
        is_new=row["newbie"].strip() == "1",
    )


def _lookup(mapping: dict[str, Channel] | dict[str, Region], row: dict[str, str], column: str) -> Any:
    value = row[column].strip()
    if value.lower() not in mapping:
        raise ValueError(f"unknown {column} {value!r}")
    return mapping[value.lower()]


def _exposures(user_id: str, sent: datetime, row: dict[str, str]) -> list[ExposureEvent]:
    segment = row["segment"].strip()
    if segment in _PROMOTIONS:
        arms = [(_PROMOTIONS[segment][0], Arm.treatment)]
    elif segment == _CONTROL:
        arms = [(promotion_id, Arm.holdout) for promotion_id, _, _ in _PROMOTIONS.values()]
    else:
        raise ValueError(f"unknown segment {segment!r}")
    return [
        ExposureEvent(
            event_id=f"{promotion_id}-{user_id}",
            user_id=user_id,
            promotion_id=promotion_id,
            campaign_id=CAMPAIGN,
            ts=sent,
            arm=arm,
        )
        for promotion_id, arm in arms
    ]


def _outcomes(user_id: str, at: datetime, visited: bool, bought: bool, spend: float) -> list[ClickEvent]:
    session = f"hillstrom-{user_id}"
    out = []
    if visited:
        out.append(ClickEvent(event_id=f"{session}-visit", user_id=user_id, session_id=session, ts=at,
                              kind=ClickKind.visit))  # fmt: skip
    if bought:
        bought_at = at + timedelta(minutes=1)
        out.append(ClickEvent(event_id=f"{session}-purchase", user_id=user_id, session_id=session,
                              ts=bought_at, kind=ClickKind.purchase, price=spend))  # fmt: skip
    return out
