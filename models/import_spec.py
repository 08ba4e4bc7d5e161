"""What `liftstream data import` reads from an experiment log: which column is what (docs/attributes.md).

A spec names the user id column (default: the row number), the arm column with its control value and one
promotion per treatment value (title and description: the text the encoder reads), the outcome columns
(any of visit, conversion, revenue), an optional timestamp column and the covariates, each feeding one
profile attribute — a typed `UserProfileEvent` field or a declared one. It comes from a small TOML or
JSON mapping file, from command-line options, or both (options win).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stream.errors import ConfigError
from stream.events.models import PROFILE_FIELDS, DiscountType, Id, Outcome, PromotionGoal
from stream.scoring.signature import DECLARATION

DEFAULT_WINDOW_S = 7 * 86400
Column = Annotated[str, Field(min_length=1, max_length=256)]


class PromotionSpec(BaseModel):
    """The promotion a treatment value of the arm column stands for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    promotion_id: Id | None = None
    """Default: the arm value, lower-cased, with runs of other characters than [a-z0-9] as `-`."""
    title: Annotated[str, Field(min_length=1, max_length=256)]
    description: Annotated[str, Field(max_length=4096)] = ""
    categories: list[Annotated[str, Field(max_length=64)]] = []
    discount_type: DiscountType = DiscountType.percent
    discount_value: Annotated[float, Field(ge=0.0, le=1e5)] = 0.0
    goal: PromotionGoal = PromotionGoal()


class Covariate(BaseModel):
    """One column feeding one profile attribute."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: Column
    attribute: Annotated[str, Field(min_length=1, max_length=48)]
    """A typed UserProfileEvent field or a declared attribute; default: the column's name."""

    @model_validator(mode="before")
    @classmethod
    def _attribute_defaults_to_column(cls, data: Any) -> Any:
        if isinstance(data, dict) and "attribute" not in data:
            return {**data, "attribute": data.get("column")}
        return data

    scale: float = 1.0
    """numeric: the value is multiplied by it (e.g. 30 for months → days)."""
    values: dict[str, str] = {}
    """categorical: source value → the attribute's value; values not listed are taken as they are."""
    flag: str | None = None
    """multi: the column is 0/1 and a 1 adds this member; without it the column is a list (or `separator`-
    delimited text) of members."""
    separator: str = ","


class ImportSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign_id: Id = "imported"
    user_id: Column | None = None
    arm: Column
    control: Annotated[str, Field(min_length=1)]
    promotions: Annotated[dict[str, PromotionSpec], Field(min_length=1)]
    outcomes: Annotated[dict[Outcome, Column], Field(min_length=1)]
    timestamp: Column | None = None
    covariates: list[Covariate] = []
    attribution_window_s: Annotated[int, Field(ge=7200, le=86400 * 60)] = DEFAULT_WINDOW_S
    """Outcomes are recorded an hour after the exposure, so at least two hours."""

    @model_validator(mode="after")
    def _consistent(self) -> ImportSpec:
        if self.control in self.promotions:
            raise ValueError(f"arm value {self.control!r} is the control and a promotion")
        ids = [promotion_id(value, p) for value, p in self.promotions.items()]
        if len(set(ids)) != len(ids):
            raise ValueError(f"two treatments share a promotion id: {ids}")
        single: set[str] = set()
        for c in self.covariates:
            kind = attribute_kind(c.attribute)
            if kind is None:
                raise ValueError(
                    f"covariate {c.column}: attribute {c.attribute} is neither a profile field "
                    "nor declared (LIFTSTREAM_PROFILE__ATTRIBUTES)"
                )
            if kind != "multi" and c.attribute in single:
                raise ValueError(f"attribute {c.attribute} is fed by two covariates")
            single.add(c.attribute)
        return self

    def columns(self) -> list[str]:
        """Every column the spec reads."""
        named = [self.user_id, self.arm, self.timestamp, *self.outcomes.values()]
        return [c for c in named if c is not None] + [c.column for c in self.covariates]


def attribute_kind(name: str) -> str | None:
    """numeric, categorical or multi for a typed profile field or a declared attribute; None for neither."""
    if name in PROFILE_FIELDS:
        return PROFILE_FIELDS[name][0]
    return next((a.kind for a in DECLARATION if a.name == name), None)


def promotion_id(arm_value: str, spec: PromotionSpec) -> str:
    if spec.promotion_id is not None:
        return spec.promotion_id
    slug = "".join(ch if ch.isalnum() and ch.isascii() else "-" for ch in arm_value.lower())
    return "-".join(part for part in slug.split("-") if part) or "promotion"


def read_mapping(path: Path) -> dict[str, Any]:
    """A mapping file's content: TOML, or JSON for a `.json` file."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read mapping file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"mapping file {path} is not a table of settings")
    return data


def pairs(given: Sequence[str], option: str) -> dict[str, str]:
    """`KEY=VALUE` command-line values (split at the first `=`)."""
    out: dict[str, str] = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{option} takes KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def build_spec(base: Mapping[str, Any], **options: Any) -> ImportSpec:
    """The spec of a mapping file's content updated by the command-line options that were given.

    `titles` / `descriptions` (arm value → text) add or update promotions; `covariates` (`COLUMN` or
    `COLUMN=ATTRIBUTE`) are appended; `outcomes` entries replace the file's."""
    data = dict(base)
    promotions = {k: dict(v) for k, v in data.get("promotions", {}).items()}
    for field in ("titles", "descriptions"):
        for value, text in options.pop(field, {}).items():
            promotions.setdefault(value, {})[field[:-1]] = text
    if promotions:
        data["promotions"] = promotions
    data["outcomes"] = {**data.get("outcomes", {}), **options.pop("outcomes", {})}
    covariates = [*data.get("covariates", [])]
    for item in options.pop("covariates", []):
        column, _, attribute = item.partition("=")
        covariates.append({"column": column, **({"attribute": attribute} if attribute else {})})
    data["covariates"] = covariates
    data.update({k: v for k, v in options.items() if v is not None})
    try:
        return ImportSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "mapping"
        raise ConfigError(f"import spec {where}: {first['msg']}") from exc
