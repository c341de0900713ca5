#!/usr/bin/env bash
# Install what pgconnect's tests, sandbox and benchmarks need on a fresh Debian/Ubuntu machine:
# system packages (when missing; needs root, or sudo), then a virtual environment in .venv with
# pgconnect and its development tools. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pg_server() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || have_cmd initdb; }
have_pg_server || need+=(postgresql)
have_cmd psql || need+=(postgresql-client)
have_cmd gnome-keyring-daemon || need+=(gnome-keyring)
have_cmd dbus-run-session || need+=(dbus-daemon dbus-bin)
have_cmd dbus-daemon || need+=(dbus-daemon)
have_cmd secret-tool || need+=(libsecret-tools)
have_cmd pgbouncer || need+=(pgbouncer)
have_cmd runuser || need+=(util-linux)
# zsh and fish run the completion scripts in tests/test_completions.py (bash is always there).
have_cmd zsh || need+=(zsh)
have_cmd fish || need+=(fish)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=(); elif have_cmd sudo; then sudo=(sudo); else
    echo "setup: need root (or sudo) to install: ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian's postgresql package starts a cluster of its own; our tests start their own on free
  # ports and do not need it.
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.pgconnect-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # compat mode: a plain path entry instead of an import hook, so every run starts as fast as an
  # installed package (the hook costs ~7 ms per start).
  log=$(mktemp)
  if ! .venv/bin/python -m pip install -q -e '.[dev]' --config-settings editable_mode=compat \
      >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; exit 1
  fi
  rm -f "$log"
  touch "$stamp"
fi
# Byte-compile pgconnect: it is installed from this folder, and where PYTHONDONTWRITEBYTECODE is
# set (as on CI machines) every run would otherwise compile each module it imports again — 30 to
# 80 ms per command, thousands of commands in the test suite. A stale .pyc is never used (Python
# checks the source's mtime), so this only needs to run again to be fast, not to be correct.
.venv/bin/python -m compileall -q pgconnect

# node-postgres for the cross-driver login tests, and wrangler (pinned: 4.86.0 is the last
# release for Node 20) with its dotenv readers for the Workers tests (Node is optional; those
# tests need it). npm ci installs exactly the versions in package-lock.json.
if have_cmd npm && [ -f tests/node/package.json ] && [ ! -d tests/node/node_modules/pg ]; then
  (cd tests/node && npm install --silent --no-audit --no-fund >/dev/null)
fi
if have_cmd npm && [ ! -d tests/workers/node_modules/wrangler ]; then
  (cd tests/workers && npm ci --silent --no-audit --no-fund >/dev/null 2>&1) ||
    echo "setup: npm could not install wrangler in tests/workers; the Workers tests will say so" >&2
fi
