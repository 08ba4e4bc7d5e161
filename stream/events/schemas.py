"""JSON Schema files of the wire contracts, one per topic, for producers and consumers in other languages.

Input topics get the validation schema (what producers may send), output topics the serialization schema
(what consumers will read). Input schemas are closed (`additionalProperties: false`, what the gate
enforces unless `events.extra_fields` is `ignore`); output schemas are open: consumers must ignore fields
they do not know, so a release may add output fields without breaking them. The committed files in
`deploy/schemas/` are checked against the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stream.events.models import INPUT_EVENTS, MAX_FUTURE, MAX_MESSAGE_BYTES, OUTPUT_EVENTS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SUFFIX = ".schema.json"


def topic_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema of the events on `topic`, with the limits JSON Schema cannot express in words."""
    model = INPUT_EVENTS.get(topic) or OUTPUT_EVENTS[topic]
    if topic in INPUT_EVENTS:
        schema = model.model_json_schema(mode="validation")
        limits = (
            f" Messages are at most {MAX_MESSAGE_BYTES} bytes of UTF-8 JSON; numbers must be finite and of"
            f" the declared JSON type (no strings for numbers); event time `ts` carries a timezone and is at"
            f" most {MAX_FUTURE.days} day in the future. Fields the schema does not name are refused unless"
            f" the worker runs with LIFTSTREAM_EVENTS__EXTRA_FIELDS=ignore. Plain JSON or the Confluent"
            f" Schema Registry wire format (byte 0, the 4-byte big-endian schema id, then the JSON)."
        )
    else:
        schema = _open(model.model_json_schema(mode="serialization"))
        limits = (
            " Consumers must ignore fields they do not know: fields may be added without a new"
            " schema_version, which changes only when a field is removed or changes its type or meaning."
        )
    # Each contract is versioned on its own: the effect and alert topics moved on without the others.
    version = model.model_fields["schema_version"].default
    description = f"liftstream topic `{topic}`, schema_version {version}.{limits}"
    return {"$schema": DIALECT, "description": description, **schema}


def _open(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every closed object (`additionalProperties: false`) opened, in `$defs` too."""
    opened = {k: v for k, v in schema.items() if not (k == "additionalProperties" and v is False)}
    if "$defs" in opened:
        opened["$defs"] = {name: _open(sub) for name, sub in opened["$defs"].items()}
    return opened


def render_schemas() -> dict[str, str]:
    """File name → file text for every input and output topic."""
    return {
        f"{topic}{SUFFIX}": json.dumps(topic_schema(topic), indent=2, sort_keys=True) + "\n"
        for topic in (*INPUT_EVENTS, *OUTPUT_EVENTS)
    }


def export_schemas(out_dir: Path) -> list[Path]:
    """Writes every schema file into `out_dir` and removes stale ones; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = render_schemas()
    for stale in out_dir.glob(f"*{SUFFIX}"):
        if stale.name not in rendered:
            stale.unlink()
    paths = []
    for name, text in rendered.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def schema_differences(out_dir: Path) -> list[str]:
    """One line per schema file in `out_dir` that is missing, outdated or no longer produced."""
    rendered = render_schemas()
    problems = []
    for name, text in rendered.items():
        path = out_dir / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from the models")
    stale = sorted(path for path in out_dir.glob(f"*{SUFFIX}") if path.name not in rendered)
    problems.extend(f"{path}: no model has this topic" for path in stale)
    return problems
