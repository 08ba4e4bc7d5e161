from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from stream.errors import ConfigError
from stream.scoring.signature import OUTCOMES

History = Annotated[Path, typer.Option("--history", envvar="LIFTSTREAM_HISTORY", help="history directory")]


def register(app: typer.Typer) -> None:
    """Adds this package's subcommands to the `liftstream` CLI."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("crossfit")(crossfit)


def _history(path: Path) -> Path:
    if not (path / "exposures.jsonl").is_file():
        raise ConfigError(f"{path} is not a history directory (no exposures.jsonl)")
    return path


def train(
    history: History,
    out: Annotated[Path, typer.Option("--out", envvar="LIFTSTREAM_MODEL_DIR", help="MODEL_DIR to write")],
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="most epochs (early stopping may end sooner)")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", envvar="LIFTSTREAM_SEED", help="seeds split, weights")] = 0,
    device: Annotated[
        str, typer.Option("--device", envvar="LIFTSTREAM_DEVICE", help="auto (GPU if present), cpu or cuda")
    ] = "auto",
    select_outcome: Annotated[
        str, typer.Option("--select-outcome", help="outcome whose validation Qini picks the epoch")
    ] = "visit",
    text: Annotated[
        bool, typer.Option("--text/--no-text", help="--no-text: the attributes-only ablation, a scorer that "
                           "never sees the promotion text (compare with `evaluate --ablation`)")
    ] = True,
) -> None:
    """Fine-tunes the promotion encoder and trains the uplift scorer on a history; writes MODEL_DIR."""
    from dataclasses import replace

    from models.dataset import build_dataset
    from models.train import TrainConfig
    from models.train import train as run_train

    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, got {device!r}")
    config = replace(TrainConfig(), select_outcome=select_outcome, text=text)
    result = run_train(build_dataset(_history(history)), out, epochs=epochs, seed=seed, device=device,
                       config=config)
    typer.echo(
        f"wrote {result.model_dir}: best epoch {result.best_epoch} of {result.epochs_run}, "
        f"validation Qini ({select_outcome}) {result.val_score:.5f}, {result.seconds:.0f}s"
    )


def evaluate(
    model: Annotated[Path, typer.Option("--model", envvar="LIFTSTREAM_MODEL_DIR", help="trained MODEL_DIR")],
    history: History,
    out: Annotated[
        Path | None, typer.Option("--out", help="for metrics.json and report.html (default MODEL_DIR/eval)")
    ] = None,
    promotion: Annotated[str | None, typer.Option("--promotion", help="evaluate one promotion only")] = None,
    outcome: Annotated[
        list[str] | None, typer.Option("--outcome", help="outcome to report, repeatable (default all)")
    ] = None,
    bootstrap: Annotated[
        int | None,
        typer.Option("--bootstrap", min=0, help="held-out user resamples for 90% intervals (0: none)"),
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="user (held-out users) or promotion (held-out promotions)")
    ] = "user",
    holdout_promotions: Annotated[
        float | None,
        typer.Option("--holdout-promotions", help="--split promotion: fraction of promotions held out "
                     "(default: what the model's promotion_split records)"),
    ] = None,
    split_seed: Annotated[
        int | None,
        typer.Option("--split-seed", help="seed drawing the held-out promotions (default: the model's)"),
    ] = None,
    ablation: Annotated[
        Path | None,
        typer.Option("--ablation", help="--split promotion: an attributes-only MODEL_DIR (trained with "
                     "--no-text on the same promotions) scored next to the model as 'attributes_only'"),
    ] = None,
) -> None:
    """Scores held-out users with the model and with gradient-boosting T/S-learners fitted in the same run.

    `--split promotion` scores the exposures of held-out promotions the model never trained on (train it
    with `python -m models.promotion_split train`); `--history` of another simulated world than the
    model's is the cross-world case: every promotion there is unseen."""
    from models.evaluate import NO_TRUTH
    from models.evaluate import evaluate as run_evaluate
    from models.promotion_split import promotion_table
    from models.report import comparison_lines, console_table, write_report

    for given, flag in ((holdout_promotions, "--holdout-promotions"), (ablation, "--ablation")):
        if given is not None and split != "promotion":
            raise ConfigError(f"{flag} needs --split promotion")
    ev = run_evaluate(model, _history(history), promotion=promotion, outcomes=tuple(outcome or OUTCOMES),
                      bootstrap=bootstrap, split=split, holdout_fraction=holdout_promotions,
                      split_seed=split_seed, ablation=ablation)
    metrics_path, report_path = write_report(ev, out or model / "eval")
    test = ev.metrics["test"]
    if not test["has_truth"]:
        typer.echo(NO_TRUTH)
    unseen = ev.metrics.get("unseen_promotions")
    what = f"held-out promotions: {len(unseen['held_out'])}, users" if unseen else "held-out users"
    table = Table(title=f"{what}: {test['users']} ({test['rows']} exposures)")
    header, rows = console_table(ev)
    for column in header:
        table.add_column(column, justify="left" if column in ("outcome", "model") else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=200).print(table)
    for line in comparison_lines(ev):
        typer.echo(line)
    if unseen:
        per_promotion = Table(title=f"per promotion, {len(unseen['held_out'])} unseen promotions "
                              f"(baselines fitted on {unseen['training_promotions']} others)")
        header, rows = promotion_table(unseen["outcomes"])
        for column in header:
            per_promotion.add_column(column, justify="left" if column in ("outcome", "model") else "right")
        for row in rows:
            per_promotion.add_row(*row)
        Console(width=200).print(per_promotion)
        if unseen["ablation"] is None:
            typer.echo("text ablation: none given (--ablation MODEL_DIR, trained with --no-text)")
    typer.echo(f"wrote {metrics_path} and {report_path}")


def crossfit(
    history: History,
    promotion: Annotated[str, typer.Option("--promotion", help="promotion whose exposures are scored")],
    outcome: Annotated[str, typer.Option("--outcome", help="outcome to judge")] = "visit",
    folds: Annotated[int, typer.Option("--folds", help="folds per repeat, users grouped")] = 5,
    repeats: Annotated[int, typer.Option("--repeats", help="repeats, new folds each (seed + repeat)")] = 3,
    seed: Annotated[int, typer.Option("--seed", envvar="LIFTSTREAM_SEED", help="seeds folds and models")] = 0,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="neural model's most epochs (early stopping may stop it)")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="user resamples of the pooled out-of-fold predictions")
    ] = 200,
    lockbox: Annotated[
        bool, typer.Option("--lockbox", help="after the cross-fit in OUT: train on every non-lockbox user "
                           "and score the lockbox, once (refused if OUT/lockbox.json exists)")
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="crossfit.json, lockbox.json, fold models")] = Path(
        "out/crossfit"
    ),
    device: Annotated[
        str, typer.Option("--device", envvar="LIFTSTREAM_DEVICE", help="auto (GPU if present), cpu or cuda")
    ] = "auto",
) -> None:
    """Repeated cross-fitting by user of the neural model against T/S/X/DR-learners, with a lockbox.

    20% of the users (a fixed hash of user_id) are kept aside; the others are split into --folds folds,
    --repeats times. Every model trains on the other folds (validation carved inside them) and is scored
    on the fold's --promotion exposures: uplift@30 and normalised Qini (scikit-uplift x 100), paired
    differences with Nadeau-Bengio intervals and a paired bootstrap, and the criterion's verdict.
    `--lockbox` then opens the lockbox once for the final figure (docs/model.md: Hillstrom protocol)."""
    from models.crossfit import crossfit as run_crossfit
    from models.crossfit import open_lockbox, verdict_lines
    from models.dataset import build_dataset

    dataset = build_dataset(_history(history))
    if lockbox:
        result = open_lockbox(dataset, out, promotion=promotion, outcome=outcome, seed=seed, epochs=epochs,
                              device=device, bootstrap=bootstrap, history=str(history))
    else:
        result = run_crossfit(dataset, out, promotion=promotion, outcome=outcome, folds=folds,
                              repeats=repeats, seed=seed, epochs=epochs, device=device, bootstrap=bootstrap,
                              history=str(history))
    for line in verdict_lines(result):
        typer.echo(line)
