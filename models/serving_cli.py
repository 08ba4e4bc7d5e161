"""`liftstream export` (a trained model into a Triton repository) and `liftstream score` (backfill)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stream.errors import ConfigError
from stream.scoring.signature import SCORER_MAX_BATCH

History = Annotated[Path, typer.Option("--history", envvar="LIFTSTREAM_HISTORY", help="history directory")]
ExportRepo = Annotated[
    Path, typer.Option("--repo", envvar="LIFTSTREAM_MODEL_REPO", help="Triton model repository to add to")
]
ServedRepo = Annotated[
    Path,
    typer.Option("--model-repo", envvar="LIFTSTREAM_MODEL_REPO",
                 help="Triton model repository the temporary local Triton serves (without --triton-url)"),
]
TritonUrl = Annotated[
    str | None,
    typer.Option("--triton-url", envvar="LIFTSTREAM_TRITON_URL",
                 help="Triton gRPC host:port (default: start a temporary local Triton for --model-repo)"),
]


def register(app: typer.Typer) -> None:
    """Adds this module's subcommands to the `liftstream` CLI."""
    app.command("export")(export)
    app.command("score")(score)


def export(
    model: Annotated[
        Path | None,
        typer.Option("--model", envvar="LIFTSTREAM_MODEL_DIR", help="trained MODEL_DIR (or --default)"),
    ] = None,
    default: Annotated[
        bool, typer.Option("--default", help="the pre-trained default model shipped in models/default/")
    ] = False,
    repo: ExportRepo = Path("triton_repo"),
    version: Annotated[
        int | None, typer.Option("--version", help="version number (default: one past the repository's last)")
    ] = None,
) -> None:
    """Exports a trained model as TorchScript, configs, CPU twin, drift reference and model card."""
    from models.export import export_model
    from models.pretrained import DEFAULT_DIR

    if default == (model is not None):
        raise ConfigError("give --model MODEL_DIR or --default (the shipped default model), one of them")
    model = DEFAULT_DIR if model is None else model
    if not (model / "model.json").is_file():
        raise ConfigError(f"{model} is not a trained MODEL_DIR (no model.json)")
    exported = export_model(model, repo, version)
    typer.echo(f"exported {model} as version {exported.version} into {exported.repo}")


def score(
    history: History,
    out: Annotated[Path, typer.Option("--out", help="predictions CSV to write")],
    repo: ServedRepo = Path("triton_repo"),
    triton_url: TritonUrl = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="exposures per Triton request")
    ] = SCORER_MAX_BATCH,
    in_flight: Annotated[int, typer.Option("--in-flight", help="Triton requests in flight")] = 4,
) -> None:
    """Scores every exposure of a history through Triton into a CSV of per-arm predictions and uplift."""
    from models.score import score_history

    if not (history / "exposures.jsonl").is_file():
        raise ConfigError(f"{history} is not a history directory (no exposures.jsonl)")
    report = score_history(repo, history, out, triton_url=triton_url, batch_size=batch_size,
                           max_in_flight=in_flight)
    typer.echo(
        f"wrote {out}: {report.rows} exposures, model version {report.model_version}, "
        f"{report.rows_per_s:,.0f} rows/s through Triton ({report.total_s:.1f}s in all)"
    )
