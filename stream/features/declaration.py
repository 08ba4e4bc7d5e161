"""The declared profile attributes: which CRM attributes feed the model, of what kind, and as which columns.

One ordered list of attributes (settings `profile.attributes`, or a TOML/JSON file named by
`profile.attributes_file`) decides the profile_* columns of USER_FEATURES, in declaration order, followed
by `profile_known`:

numeric      one column: the value, or log1p of it (`transform`), named `feature` (default
             profile_<name>_log or profile_<name>)
categorical  one column per vocabulary value, profile_<name>_<value>: one-hot
multi        a set of strings; one column per vocabulary value (multi-hot), none without a vocabulary;
             `match_categories` makes it the set matched against promotion categories (interest_match)

An attribute named like a typed field of `UserProfileEvent` (PROFILE_FIELDS) is read from that field and
must agree with its kind and values; any other attribute is read from the event's `attributes` mapping.
The default declaration is exactly the profile columns the model always had, so histories, models and
tests from before declarations keep their 41 user features.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.errors import ConfigError
from stream.events.models import PROFILE_FIELDS, Channel, Region

KNOWN = "profile_known"
Kind = Literal["numeric", "categorical", "multi"]


class Attribute(BaseModel):
    """One declared profile attribute (see the module docstring for what each kind becomes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    kind: Kind
    transform: Literal["identity", "log1p"] = "identity"
    vocabulary: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")], ...] = ()
    feature: str | None = Field(None, pattern=r"^profile_[a-z0-9_]{1,64}$")
    match_categories: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Attribute:
        if len(set(self.vocabulary)) != len(self.vocabulary):
            raise ValueError(f"attribute {self.name}: vocabulary repeats a value")
        if self.kind == "numeric":
            if self.vocabulary or self.match_categories:
                raise ValueError(f"numeric attribute {self.name} takes no vocabulary or match_categories")
            if self.feature is None:  # frozen: the default column name is filled in once, here
                suffix = "_log" if self.transform == "log1p" else ""
                object.__setattr__(self, "feature", f"profile_{self.name}{suffix}")
            return self
        if self.transform != "identity" or self.feature is not None:
            raise ValueError(f"{self.kind} attribute {self.name} takes no transform or feature name")
        if self.kind == "categorical" and not self.vocabulary:
            raise ValueError(f"categorical attribute {self.name} needs a vocabulary")
        if self.kind == "categorical" and self.match_categories:
            raise ValueError(f"match_categories applies to multi attributes, not {self.name}")
        return self

    def __repr__(self) -> str:
        """Compact, for the configuration reference and error messages: `channel (categorical: web/…)`."""
        details = [self.kind if self.kind != "categorical" else f"categorical: {'/'.join(self.vocabulary)}"]
        if self.kind == "numeric" and self.transform != "identity":
            details.append(self.transform)
        if self.kind == "multi" and self.vocabulary:
            details.append("/".join(self.vocabulary))
        if self.match_categories:
            details.append("match_categories")
        return f"{self.name} ({', '.join(details)})"

    def columns(self) -> tuple[str, ...]:
        """The profile_* feature columns of this attribute, in order."""
        if self.kind == "numeric":
            return (str(self.feature),)
        return tuple(f"profile_{self.name}_{v}" for v in self.vocabulary)


def _numeric(name: str, transform: Literal["identity", "log1p"], feature: str | None = None) -> Attribute:
    return Attribute(name=name, kind="numeric", transform=transform, feature=feature)


DEFAULT_ATTRIBUTES: tuple[Attribute, ...] = (
    _numeric("tenure_days", "log1p", "profile_tenure_log_days"),
    _numeric("lifetime_spend", "log1p"),
    _numeric("orders", "log1p"),
    _numeric("recency_days", "log1p", "profile_recency_log_days"),
    Attribute(name="channel", kind="categorical", vocabulary=tuple(c.value for c in Channel)),
    Attribute(name="region", kind="categorical", vocabulary=tuple(r.value for r in Region)),
    _numeric("is_new", "identity"),
    Attribute(name="interests", kind="multi", match_categories=True),
)


class Profile(BaseModel):
    """The declaration: an ordered tuple of attributes, given inline (JSON) or as a file."""

    model_config = ConfigDict(frozen=True)

    attributes: tuple[Attribute, ...] = Field(
        DEFAULT_ATTRIBUTES,
        description="declared profile attributes, in column order (JSON list; docs/attributes.md); the "
        "default is the typed UserProfileEvent fields",
    )
    attributes_file: Path | None = Field(
        None, description="TOML or JSON file of `[[attribute]]` tables, used instead of `attributes`"
    )

    @model_validator(mode="after")
    def _resolve(self) -> Profile:
        if self.attributes_file is not None:
            if self.attributes != DEFAULT_ATTRIBUTES:
                raise ValueError("set profile.attributes or profile.attributes_file, not both")
            object.__setattr__(self, "attributes", read_attributes(self.attributes_file))  # frozen
        check_declaration(self.attributes)
        return self


def read_attributes(path: Path) -> tuple[Attribute, ...]:
    """The `attribute` list of a TOML (`[[attribute]]` tables) or JSON (`{"attribute": [...]}`) file."""
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ValueError(f"cannot read attributes file {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("attribute"), list):
        raise ValueError(f"{path} has no `attribute` list")
    return tuple(Attribute.model_validate(a) for a in data["attribute"])


def check_declaration(attributes: tuple[Attribute, ...]) -> None:
    """ValueError unless names and columns are unique and typed fields are declared as what they are."""
    names = [a.name for a in attributes]
    if len(set(names)) != len(names):
        raise ValueError(f"attribute {next(n for n in names if names.count(n) > 1)} is declared twice")
    columns = [c for a in attributes for c in a.columns()]
    if len(set(columns)) != len(columns) or KNOWN in columns:
        raise ValueError(f"declared attributes give a feature column twice (or {KNOWN}): {columns}")
    if sum(a.match_categories for a in attributes) > 1:
        raise ValueError("at most one attribute can be matched against promotion categories")
    for a in attributes:
        typed = PROFILE_FIELDS.get(a.name)
        if typed is None:
            continue
        kind, allowed = typed
        if a.kind != kind:
            raise ValueError(f"attribute {a.name} is the profile's {kind} field, not {a.kind}")
        outside = [v for v in a.vocabulary if allowed is not None and v not in allowed]
        if outside:
            raise ValueError(f"attribute {a.name}: {outside[0]!r} is not one of the field's values {allowed}")


def profile_columns(attributes: tuple[Attribute, ...]) -> tuple[str, ...]:
    """The profile_* block of USER_FEATURES for a declaration: its attributes' columns, then profile_known."""
    return (*(c for a in attributes for c in a.columns()), KNOWN)


def declaration_hash(attributes: tuple[Attribute, ...]) -> str:
    """A short, stable digest of a declaration (what a model is trained on, and a history imported with)."""
    canonical = json.dumps([a.model_dump(mode="json") for a in attributes], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class _ProfileOnly(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIFTSTREAM_", env_nested_delimiter="__", extra="ignore")

    profile: Profile = Profile()


def declared_profile() -> Profile:
    """The process's declaration from `LIFTSTREAM_PROFILE__*` alone: the model signature is fixed at import,
    and other settings (Kafka, Triton) must not be able to break that."""
    try:
        return _ProfileOnly().profile
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from exc


_WHAT = {bool: "a boolean", int: "a number", float: "a number", str: "text", list: "a list"}


def check_attributes(values: Mapping[str, object], attributes: tuple[Attribute, ...]) -> None:
    """Rejects the first value of a profile's `attributes` mapping that the declaration does not allow.

    The error types are ones the decoding gate already classifies (wrong_type, unknown_enum, out_of_range;
    an undeclared name is `invalid`), so such a profile is dead-lettered with the usual reasons."""
    declared = {a.name: a for a in attributes if a.name not in PROFILE_FIELDS}
    for name, value in values.items():
        a = declared.get(name)
        if a is None:
            why = "is a typed field: give it as one" if name in PROFILE_FIELDS else "is not declared"
            raise PydanticCustomError("undeclared_attribute", "attribute {name} " + why, {"name": name})
        expected = {"numeric": (bool, int, float), "categorical": (str,), "multi": (list,)}[a.kind]
        if not isinstance(value, expected):
            raise PydanticCustomError(
                "attribute_type",
                "attribute {name} is {kind}, got {got}",
                {"name": name, "kind": a.kind, "got": _WHAT.get(type(value), type(value).__name__)},
            )
        members = value if isinstance(value, list) else [value]
        unknown = [v for v in members if a.vocabulary and v not in a.vocabulary]
        if unknown:
            raise PydanticCustomError(
                "enum",
                "attribute {name}: '{value}' is not in its vocabulary",
                {"name": name, "value": unknown[0]},
            )
        if a.transform == "log1p" and isinstance(value, int | float) and value < 0:
            raise PydanticCustomError(
                "greater_than_equal",
                "attribute {name} is log1p-transformed: at least 0, got {value}",
                {"name": name, "value": value},
            )
