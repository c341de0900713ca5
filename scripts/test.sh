#!/usr/bin/env bash
# The test command: install what is missing, then lint (ruff), type-check (mypy --strict) and run
# the test suite against real servers, inside a D-Bus session with an unlocked gnome-keyring.
# Extra arguments go to pytest, e.g. scripts/test.sh -k secret -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

.venv/bin/ruff check pgconnect tests benchmarks
.venv/bin/ruff format --check pgconnect tests benchmarks
.venv/bin/mypy

export PGCONNECT_TEST_DBUS=1
# One worker per core (pytest-xdist), a test file's tests on one worker: each worker starts its own
# clusters; the keyring session is shared (tests use names of their own, and private daemons for
# anything that locks or stops one). PGCONNECT_TEST_WORKERS=0 runs everything in one process.
exec dbus-run-session -- bash scripts/with-keyring.sh .venv/bin/python -m pytest \
  -n "${PGCONNECT_TEST_WORKERS:-auto}" --dist loadfile "$@"
