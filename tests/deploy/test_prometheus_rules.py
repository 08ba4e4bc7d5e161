from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from stream.monitor.grafana import dashboard_queries

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "liftstream-dashboard.json"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not Path(PROMTOOL).exists(),
                       reason="promtool not installed (Debian/Ubuntu: apt-get install prometheus)"),
]


def promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    done = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def rule_files() -> list[Path]:
    return sorted(p for p in PROMETHEUS.glob("*rules*.yml") if "test" not in p.name)


def test_rules_are_valid() -> None:
    assert rule_files()
    for path in rule_files():
        promtool("check", "rules", str(path))


def test_rule_unit_tests_pass() -> None:
    tests = sorted(PROMETHEUS.glob("*test*.yml"))
    assert tests
    out = promtool("test", "rules", *(p.name for p in tests))
    assert "SUCCESS" in out


def test_every_alert_has_a_unit_test() -> None:
    alerts = {r["alert"] for p in rule_files() for g in yaml.safe_load(p.read_text())["groups"]
              for r in g["rules"] if "alert" in r}
    tested: set[str] = set()
    for path in PROMETHEUS.glob("*test*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert alerts == tested


def test_every_alert_links_its_runbook_section() -> None:
    headings = (ROOT / "docs" / "runbook.md").read_text().splitlines()
    anchors = {line[3:].strip().lower() for line in headings if line.startswith("## ")}
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    url = rule["annotations"].get("runbook_url", "")
                    assert url == f"docs/runbook.md#{rule['alert'].lower()}", rule["alert"]
                    assert rule["alert"].lower() in anchors, f"docs/runbook.md has no section {rule['alert']}"


def test_vanished_workers_and_triton_have_absent_rules() -> None:
    exprs = {r.get("alert"): r["expr"] for p in rule_files() for g in yaml.safe_load(p.read_text())["groups"]
             for r in g["rules"]}
    assert exprs["LiftstreamWorkersAbsent"] == 'absent(up{job="liftstream-worker"})'
    assert exprs["LiftstreamTritonAbsent"] == 'absent(up{job="triton"})'


def test_example_config_is_valid() -> None:
    promtool("check", "config", "prometheus.yml")


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    # promtool has no query linter; recording rules get the same PromQL parser.
    rules = [{"record": f"liftstream:dashboard_query_{i}", "expr": q}
             for i, q in enumerate(dashboard_queries(DASHBOARD))]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool("check", "rules", str(path), cwd=tmp_path)
