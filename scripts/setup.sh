#!/usr/bin/env bash
# Installs what liftstream needs on a fresh Debian machine (idempotent; fast when everything is there):
# Debian's prometheus (+ promtool) and alertmanager, Java 17 and Maven for the Kafka jars, uv, the locked Python
# environment (.venv), and the Kafka broker jars from Maven Central (cached in ~/.cache/liftstream).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null || [ -x /usr/bin/prometheus ] || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || [ -x /usr/bin/prometheus-alertmanager ] || need_apt+=(prometheus-alertmanager)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian starts the packaged prometheus as a system service; liftstream runs its own on its own ports.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus prometheus-node-exporter 2>/dev/null || true
fi

command -v uv >/dev/null || python3 -m pip install -q uv
uv sync --frozen
uv run --frozen python -c "from stream.local.kafka import resolve_jars; print('setup: kafka jars in', resolve_jars())"
echo "setup: done"
