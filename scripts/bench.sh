#!/usr/bin/env bash
# The benchmark command: install what is missing, then run benchmarks/run.py against its own local
# server, inside a D-Bus session with a throwaway unlocked gnome-keyring (for P5).
# Options go to the harness: bash scripts/bench.sh --runs 15 --only P1,P5
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# Byte-compile pgconnect once so start-up is measured as an installed package runs (an editable
# install under PYTHONDONTWRITEBYTECODE would otherwise recompile every module on every run).
.venv/bin/python -m compileall -q pgconnect
exec dbus-run-session -- bash scripts/with-keyring.sh .venv/bin/python -m benchmarks.run "$@"
