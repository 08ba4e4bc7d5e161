"""Renders docs/configuration.md from `Settings`: `python -m stream.settings_doc > docs/configuration.md`."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from stream.settings import Settings


def _rows(model: type[BaseModel], env: str, instance: BaseModel) -> Iterator[str]:
    for name, field in model.model_fields.items():
        value = getattr(instance, name)
        var = f"{env}{name.upper()}"
        if isinstance(value, BaseModel):
            yield from _rows(type(value), f"{var}__", value)
            continue
        shown = "(secret)" if "password" in name else f"`{value!s}`" if value is not None else "unset"
        yield f"| `{var}` | {shown} | {field.description or ''} |"


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `stream/settings.py` by `python -m stream.settings_doc`; a test keeps it current.",
        "Every setting is an environment variable; CLI options of the same name take precedence.",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
        *_rows(Settings, "LIFTSTREAM_", Settings()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
