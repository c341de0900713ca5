#!/usr/bin/env bash
# Run a command with a fresh, unlocked gnome-keyring (Secret Service) in the current D-Bus session.
# Use inside dbus-run-session: dbus-run-session -- bash scripts/with-keyring.sh CMD ARGS…
# The test command uses it; for your own use, `pgconnect keyring run -- CMD` does the same and
# starts the D-Bus session too (see docs/headless.md).
#
# The keyring lives in a throwaway folder so the user's own login keyring is never touched, and
# the daemon gets a runtime folder of its own (it makes keyring/ there), so nothing is left
# behind: the folder is removed when the command ends, however it ends. Nothing of the daemon's
# is exported to CMD but what reaching it needs (the D-Bus session is already in the environment).
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/pgconnect-keyring.XXXXXX")
daemon_pid=
cleanup() {
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -m 700 "$work/home" "$work/run"
# Some tools want a runtime folder; give them this one only when the user has none.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$work/run}
printf '%s' "pgconnect-$$-$RANDOM" | HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" \
    XDG_RUNTIME_DIR="$work/run" gnome-keyring-daemon --foreground --unlock --components=secrets \
    >/dev/null 2>&1 &
daemon_pid=$!
# Wait until the Secret Service answers on the bus (the daemon registers its name when ready)
# and its login keyring is the default collection (asked only once the name is owned, so that
# D-Bus never activates a second, locked daemon).
for _ in $(seq 1 300); do
    if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
        grep -q 'boolean true' &&
        dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
            org.freedesktop.Secret.Service.ReadAlias string:default 2>/dev/null |
        grep -q '/collection/'; then
        break
    fi
    sleep 0.05
done
status=0
"$@" || status=$?
exit "$status"
