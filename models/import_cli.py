"""`liftstream data import`: the command line of models/importer.py (registered in the `data` group)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from models.import_spec import build_spec, pairs, read_mapping
from models.importer import REJECTED_FILE, import_experiment

Repeated = list[str] | None


def import_data(
    input_path: Annotated[Path, typer.Option("--input", help="experiment log: .csv, .tsv, .parquet or .pq")],
    out: Annotated[Path, typer.Option("--out", help="history directory to write")],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="TOML or JSON file with any of the settings below")
    ] = None,
    user_id: Annotated[
        str | None, typer.Option("--user-id", help="user id column (default: row number)")
    ] = None,
    arm: Annotated[str | None, typer.Option("--arm", help="arm / treatment column")] = None,
    control: Annotated[
        str | None, typer.Option("--control", help="the arm value of the control group")
    ] = None,
    promotion: Annotated[
        Repeated, typer.Option("--promotion", help="VALUE=TITLE: a treatment value and its promotion's title")
    ] = None,
    description: Annotated[
        Repeated, typer.Option("--description", help="VALUE=TEXT: the promotion's description")
    ] = None,
    visit: Annotated[str | None, typer.Option("--visit", help="0/1 visit outcome column")] = None,
    conversion: Annotated[
        str | None, typer.Option("--conversion", help="0/1 conversion outcome column")
    ] = None,
    revenue: Annotated[str | None, typer.Option("--revenue", help="revenue outcome column")] = None,
    timestamp: Annotated[
        str | None, typer.Option("--timestamp", help="exposure time column (default: one second apart)")
    ] = None,
    covariate: Annotated[
        Repeated,
        typer.Option("--covariate", help="COLUMN[=ATTRIBUTE]: a profile field or declared attribute"),
    ] = None,
    campaign: Annotated[
        str | None, typer.Option("--campaign", help="campaign id (default: imported)")
    ] = None,
    window_s: Annotated[
        int | None, typer.Option("--window-s", help="attribution window in seconds (default 7 days)")
    ] = None,
) -> None:
    """Converts a randomised experiment log (one row per user) into a history directory."""
    outcomes = {k: v for k, v in (("visit", visit), ("conversion", conversion), ("revenue", revenue)) if v}
    spec = build_spec(
        read_mapping(mapping) if mapping else {},
        titles=pairs(promotion or [], "--promotion"),
        descriptions=pairs(description or [], "--description"),
        outcomes=outcomes,
        covariates=covariate or [],
        user_id=user_id,
        arm=arm,
        control=control,
        timestamp=timestamp,
        campaign_id=campaign,
        attribution_window_s=window_s,
    )
    s = import_experiment(input_path, out, spec)
    typer.echo(
        f"{out}: {s.imported} of {s.rows} rows imported, {s.exposures} exposures, {s.visits} visits, "
        f"{s.conversions} conversions, revenue {s.revenue:.2f}"
    )
    if s.rejected:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(s.rejected.items()))
        typer.echo(f"rejected {sum(s.rejected.values())} rows ({reasons}): see {out / REJECTED_FILE}")
