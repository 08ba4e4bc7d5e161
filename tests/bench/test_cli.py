from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from stream.bench import cli
from stream.errors import ConfigError

pytestmark = pytest.mark.unit


def _app() -> typer.Typer:
    app = typer.Typer()
    cli.register(app)
    app.command("noop")(lambda: None)  # a second command keeps `bench` a subcommand
    return app


def test_bench_is_registered_with_its_options() -> None:
    result = CliRunner().invoke(_app(), ["bench", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--events", "--json", "--triton-only", "--batch-sizes", "--profile", "--worker-env"):
        assert option in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--contenders", "raw,spark"],
        ["--latency-seconds", "-1"],
        ["--worker-env", "NO_EQUALS_SIGN"],
        ["--triton-only", "--concurrency", "0"],
        ["--triton-only", "--seconds", "0"],
    ],
)
def test_bad_arguments_are_config_errors_before_anything_runs(args: list[str]) -> None:
    result = CliRunner().invoke(_app(), ["bench", *args])
    assert isinstance(result.exception, ConfigError)
