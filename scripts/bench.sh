#!/usr/bin/env bash
# The benchmark command: install what is missing, then run benchmarks/run.py against its own local
# server, inside a D-Bus session with a throwaway unlocked gnome-keyring (for P5).
# Options go to the harness: bash scripts/bench.sh --runs 15 --only P1,P5
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# setup.sh byte-compiles pgconnect, so start-up is measured as an installed package runs.
exec dbus-run-session -- bash scripts/with-keyring.sh .venv/bin/python -m benchmarks.run "$@"
