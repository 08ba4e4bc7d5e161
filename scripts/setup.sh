#!/usr/bin/env bash
# Installs what liftstream needs on a stock Debian 12 or 13 (idempotent; fast when everything is there):
# Debian's prometheus (+ promtool) and alertmanager, a Java ≥ 17 (default-jre-headless: 17 on Debian 12, 21 on 13)
# and Maven for the Kafka jars, uv, the locked Python environment (.venv), and the Kafka broker jars from Maven
# Central (cached in ~/.cache/liftstream).
#
# uv comes from PyPI into a virtual environment of its own (~/.cache/liftstream/uv), linked into
# ~/.local/bin (root: /usr/local/bin): stock Debian's Python has no pip, and may not get one (PEP 668).
# Services: it never stops, restarts or reconfigures one it did not start. Debian starts a packaged service on
# install; the packages installed here are kept from starting (policy-rc.d) and their units left disabled, so
# they never hold the ports of `liftstream local`. A service that was already there is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9  # the Dockerfile's uv
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/liftstream"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

need_apt=()
command -v prometheus >/dev/null || [ -x /usr/bin/prometheus ] || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || [ -x /usr/bin/prometheus-alertmanager ] || need_apt+=(prometheus-alertmanager)
command -v java >/dev/null || need_apt+=(default-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
if ! command -v uv >/dev/null && ! python3 -c "import ensurepip, venv" 2>/dev/null; then
  need_apt+=(python3-venv)
fi

# Installs the packages without letting their services start: a policy-rc.d answering 101 ("action
# forbidden") for the time of the install, unless the machine already has one (then its policy holds).
apt_install() {
  echo "setup: apt-get install $*"
  $SUDO apt-get update -qq
  local policy=/usr/sbin/policy-rc.d ours=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# liftstream scripts/setup.sh: no service starts during its install\nexit 101\n' \
      | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    ours=1
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  if [ -n "$ours" ]; then
    $SUDO rm -f "$policy"
    trap - EXIT
  fi
  # Units of packages installed just now stay off at boot too (`systemctl enable` turns them on).
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    for unit in "$@"; do
      case "$unit" in prometheus|prometheus-alertmanager) $SUDO systemctl disable --quiet "$unit" 2>/dev/null || true ;; esac
    done
  fi
}
[ ${#need_apt[@]} -eq 0 ] || apt_install "${need_apt[@]}"

UV="$(command -v uv || true)"
if [ -z "$UV" ]; then
  if [ ! -x "$CACHE/uv/bin/uv" ]; then
    echo "setup: uv $UV_VERSION from PyPI into $CACHE/uv"
    python3 -m venv "$CACHE/uv"
    "$CACHE/uv/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
  fi
  UV="$CACHE/uv/bin/uv"
  bin="$HOME/.local/bin"; [ "$(id -u)" -eq 0 ] && bin=/usr/local/bin
  mkdir -p "$bin"
  [ -e "$bin/uv" ] || ln -s "$UV" "$bin/uv"  # never replaces another uv
  case ":$PATH:" in *":$bin:"*) ;; *) echo "setup: uv is in $bin; add it to PATH (or run $UV)" ;; esac
fi
"$UV" sync --frozen
"$UV" run --frozen python -c "from stream.local.kafka import resolve_jars; print('setup: kafka jars in', resolve_jars())"
echo "setup: done"
