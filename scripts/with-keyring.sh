#!/usr/bin/env bash
# Run a command with a fresh, unlocked gnome-keyring (Secret Service) in the current D-Bus session.
# Use inside dbus-run-session: dbus-run-session -- bash scripts/with-keyring.sh CMD ARGS…
# The keyring lives in a throwaway HOME so the user's own login keyring is never touched.
set -euo pipefail
keyring_home=$(mktemp -d)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
chmod 700 "$XDG_RUNTIME_DIR"
export PGCONNECT_TEST_KEYRING_HOME="$keyring_home"
eval "$(printf '%s' "pgconnect-$$-$RANDOM" | HOME="$keyring_home" gnome-keyring-daemon --unlock --components=secrets)"
cleanup() { rm -rf "$keyring_home"; }
trap cleanup EXIT
"$@"
