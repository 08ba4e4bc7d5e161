"""scripts/setup.sh, read rather than run (a run installs Debian packages): it parses, gets uv without the
system Python's pip, and never stops, restarts or kills a service."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup.sh"

pytestmark = pytest.mark.unit


def _commands() -> str:
    """The script without its comments."""
    lines = [line.split(" #")[0] for line in SETUP.read_text().splitlines()]
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def test_setup_parses() -> None:
    done = subprocess.run(["bash", "-n", str(SETUP)], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr


def test_setup_never_stops_a_service() -> None:
    script = _commands()
    assert not re.search(r"systemctl\s+(stop|restart|kill|try-restart|reload)", script)
    assert not re.search(r"\bservice\s+\S+\s+(stop|restart)", script)
    assert not re.search(r"\b(pkill|killall|kill)\b", script)


def test_setup_gets_uv_from_pypi_into_a_venv_not_the_system_pip() -> None:
    script = _commands()
    assert "python3 -m pip" not in script and "pip install --user" not in script
    assert re.search(r'python3 -m venv "\$CACHE/uv"', script)
    assert re.search(r'"\$CACHE/uv/bin/python" -m pip install .*"uv==\$UV_VERSION"', script)
    assert "python3-venv" in script  # Debian ships venv's ensurepip separately
    assert "default-jre-headless" in script  # Java 17 on Debian 12, 21 on Debian 13 (which has no 17)


def test_setup_installs_the_uv_of_the_image() -> None:
    (version,) = re.findall(r"^UV_VERSION=(\S+)", SETUP.read_text(), re.M)
    assert f"ghcr.io/astral-sh/uv:{version} " in (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
