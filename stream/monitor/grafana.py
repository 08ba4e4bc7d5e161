"""Reads the PromQL out of a Grafana dashboard, with its template variables resolved to runnable values."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# What Grafana itself would put in for its built-in interval variables on a short time range.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def dashboard_queries(path: Path, values: Mapping[str, str] | None = None) -> list[str]:
    """Every panel target's `expr`, in panel order, with `$var` / `${var}` replaced.

    A variable takes its value from `values`, else the dashboard's current selection ("All" becomes the
    variable's `allValue`), else Grafana's built-in defaults above.
    """
    return [expr for _, expr in panel_queries(path, values)]


def panel_queries(path: Path, values: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(panel title, resolved `expr`) of every panel target, as `dashboard_queries` resolves them."""
    dashboard = json.loads(path.read_text())
    resolved = {**BUILTINS, **_current_values(dashboard), **(values or {})}
    return [(title, _substitute(expr, resolved)) for title, expr in _exprs(dashboard.get("panels", []))]


def _exprs(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for panel in panels:
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield str(panel.get("title", "")), str(target["expr"])
        yield from _exprs(panel.get("panels", []))


def _current_values(dashboard: dict[str, Any]) -> dict[str, str]:
    values = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        current = variable.get("current", {}).get("value")
        if isinstance(current, list):
            current = current[0] if len(current) == 1 else "|".join(current)
        if current == "$__all":
            current = variable.get("allValue", ".*")
        if current is not None:
            values[variable["name"]] = str(current)
    return values


def _substitute(expr: str, values: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"dashboard variable ${name} has no value")
        return values[name]

    return _VARIABLE.sub(replace, expr)
