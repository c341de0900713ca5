#!/usr/bin/env bash
# See everything pgconnect does, end to end, against a real local TLS server (the sandbox).
#
# On a fresh Debian/Ubuntu machine it first installs what is missing (scripts/setup.sh). Secrets go
# to the OS keyring: when this session has none that answers, the demo runs inside its own D-Bus
# session with a throwaway, unlocked gnome-keyring (scripts/with-keyring.sh) -- never a plaintext
# fallback. Everything happens in a temporary project folder; the sandbox is stopped, its secret
# deleted and the folder removed at the end, also when a step fails.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
py="$repo/.venv/bin/python"

# Does pgconnect's secret store answer (no backend, a locked or a hung keyring all fail)? The file
# store counts only when the user chose it with PGCONNECT_SECRET_STORE=file.
store_works() {
  "$py" -c '
from pgconnect.errors import SecretStoreError
from pgconnect.store import open_store
try:
    open_store().get("pgconnect:demo-probe", "DB_PASSWORD")
except SecretStoreError:
    raise SystemExit(1)
' 2>/dev/null
}

if [ -z "${PGCONNECT_DEMO_INNER:-}" ]; then
  bash "$repo/scripts/setup.sh"
  if ! store_works; then
    echo "# no usable keyring in this session: the demo brings a throwaway gnome-keyring" >&2
    PGCONNECT_DEMO_INNER=1 exec dbus-run-session -- \
      bash "$repo/scripts/with-keyring.sh" bash "$0" "$@"
  fi
fi

export PATH="$repo/.venv/bin:$PATH"
export PYTHONUNBUFFERED=1 # stdout and stderr interleave as they happen, even through a pipe
# None of the caller's libpq or pgconnect settings may change what the demo shows (the secret
# store choice and the server user are kept: they are how this machine works).
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep -E '^(PG|DB_)' | grep -v '^PGCONNECT_' || true)
unset PGCONNECT_ENV PGCONNECT_CONFIG

work=$(mktemp -d)
chmod 755 "$work" # as root the server runs as `postgres`, which must reach the data folder
project="$work/pgconnect-demo"
mkdir "$project"
cd "$project"
started=""

cleanup() {
  local status=$?
  if [ -n "$started" ]; then
    pgconnect sandbox stop >/dev/null 2>&1 || true
  fi
  # The sandbox's password went to the keyring: remove it with the project.
  "$py" -c '
from pgconnect.errors import SecretStoreError
from pgconnect.store import open_store
try:
    open_store().delete("pgconnect:pgconnect-demo:sandbox", "DB_PASSWORD")
except SecretStoreError:
    pass
' 2>/dev/null || true
  cd /
  rm -rf "$work"
  if [ "$status" -ne 0 ]; then
    echo "# the demo failed (exit $status); the sandbox was stopped and $work removed" >&2
  fi
}
trap cleanup EXIT

# Show a command the way you would type it, then run it.
run() {
  local shown="\$" arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      shown+=" $arg"
    elif [[ $arg != *[\"\$\`\\]* ]]; then
      shown+=" \"$arg\""
    else
      shown+=" $(printf '%q' "$arg")"
    fi
  done
  printf '%s\n' "$shown"
  "$@"
}

echo "# a new project in $project"
run pgconnect init
run pgconnect sandbox start
started=1
run pgconnect secret list -e sandbox
run pgconnect check -e sandbox --sslmode all
run pgconnect query -e sandbox --format table \
  "select current_user, current_database(), ssl, version from pg_stat_ssl where pid = pg_backend_pid()"
run pgconnect query -e sandbox --json \
  "select 42 as answer, 1.10::numeric as price, true as ok, null as nothing, jsonb_build_object('tags', array['a', 'b']) as doc, date '2025-01-31' as day"
run pgconnect url -e sandbox
run pgconnect sandbox stop
started=""
