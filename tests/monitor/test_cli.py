from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from stream.errors import ConfigError
from stream.monitor.cli import register

pytestmark = pytest.mark.unit


def app() -> typer.Typer:
    cli = typer.Typer()
    register(cli)

    @cli.command("noop")
    def noop() -> None:
        """A second command keeps `monitor` a subcommand, as in the real CLI."""

    return cli


def test_monitor_is_registered() -> None:
    result = CliRunner().invoke(app(), ["monitor", "--help"])
    assert result.exit_code == 0
    for option in ("--bootstrap", "--from-beginning", "--once", "--duration", "--refresh"):
        assert option in result.output


@pytest.mark.parametrize("args", [["--duration", "0"], ["--refresh", "0"], ["--alerts", "0"]])
def test_bad_arguments_are_config_errors(args: list[str]) -> None:
    with pytest.raises(ConfigError):
        CliRunner().invoke(app(), ["monitor", *args], catch_exceptions=False)
