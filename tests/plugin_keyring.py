"""Test fixtures: a private D-Bus session with gnome-keyring's Secret Service, unlocked.

The test command (scripts/test.sh) runs pytest inside ``dbus-run-session`` with an unlocked
gnome-keyring and says so with PGCONNECT_TEST_DBUS=1; only then is the ambient session used, so a
developer's desktop login keyring is never touched. Otherwise the session starts its own; tests
that need it are skipped (not errored) when dbus-daemon or gnome-keyring-daemon is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.plugin_isolation import clean_environ

# --------------------------------------------------------------------------- keyring


@dataclass
class KeyringSession:
    """A private D-Bus session bus with gnome-keyring's Secret Service, unlocked."""

    address: str
    home: Path
    runtime: Path
    dbus_pid: int | None
    daemon: subprocess.Popen[bytes] | None
    password: str

    def environ(self) -> dict[str, str]:
        return {"DBUS_SESSION_BUS_ADDRESS": self.address, "XDG_RUNTIME_DIR": str(self.runtime)}

    def secret_tool(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**clean_environ(), **self.environ(), "HOME": str(self.home)}
        return subprocess.run(
            ["secret-tool", *args], input=input, capture_output=True, text=True, env=env, timeout=10
        )

    def lookup(self, service: str, name: str) -> str | None:
        proc = self.secret_tool("lookup", "service", service, "username", name)
        return proc.stdout if proc.returncode == 0 else None


def start_keyring_session(folder: Path, password: str = "login-keyring-pw") -> KeyringSession:
    home = folder / "home"
    runtime = folder / "run"
    home.mkdir(parents=True)
    runtime.mkdir(mode=0o700)
    env = {**clean_environ(), "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    out = subprocess.run(
        ["dbus-daemon", "--session", "--print-address=1", "--print-pid=1", "--fork"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=20,
    ).stdout.split()
    address, dbus_pid = out[0], int(out[1])
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    daemon = subprocess.Popen(
        ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert daemon.stdin is not None
    daemon.stdin.write(password.encode())
    daemon.stdin.close()
    session = KeyringSession(address, home, runtime, dbus_pid, daemon, password)
    # Generous: with the suite on every core, a new daemon can take seconds to answer. A session
    # that never gets ready is an error here, not a puzzling failure in the test that uses it.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the Secret Service answers
        probe = session.secret_tool("lookup", "service", "pgconnect-probe", "username", "x")
        if probe.returncode in (0, 1) and "not provided" not in probe.stderr:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"the private Secret Service never answered: {probe.stderr.strip()}")
    # ... and until --unlock has made the login keyring the default collection: a first store
    # before that makes the keyring library create a collection, which needs a prompt (and on a
    # busy machine fails as "Prompt dismissed").
    alias = ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.secrets",
             "/org/freedesktop/secrets", "org.freedesktop.Secret.Service.ReadAlias",
             "string:default"]  # fmt: skip
    while time.monotonic() < deadline:
        reply = subprocess.run(alias, capture_output=True, text=True, env=env, timeout=10)
        if "/collection/" in reply.stdout:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError("the login keyring never became the default collection")
    # ... and until a store really works (on a loaded machine the first one can still fail).
    while time.monotonic() < deadline:
        probe = session.secret_tool(
            "store", "--label", "probe", "service", "pgconnect-probe", "username", "x", input="x"
        )
        if probe.returncode == 0:
            session.secret_tool("clear", "service", "pgconnect-probe", "username", "x")
            break
        time.sleep(0.1)
    else:
        raise RuntimeError("the private keyring never stored a value")
    return session


def stop_keyring_session(session: KeyringSession) -> None:
    if session.daemon is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(session.daemon.pid, signal.SIGCONT)
        session.daemon.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            session.daemon.wait(5)
    if session.dbus_pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(session.dbus_pid, signal.SIGTERM)


# The test command (scripts/test) runs pytest inside `dbus-run-session` with an unlocked
# gnome-keyring and says so with PGCONNECT_TEST_DBUS=1; only then is the ambient session used, so
# a developer's desktop login keyring is never touched. Otherwise the session starts its own.
_AMBIENT = (
    os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if os.environ.get("PGCONNECT_TEST_DBUS") == "1"
    else None
)
_AMBIENT_RUNTIME = os.environ.get("XDG_RUNTIME_DIR", "")
_AMBIENT_HOME = os.environ.get("HOME", "")  # secret-tool talks D-Bus only; any HOME will do


@pytest.fixture(scope="session")
def keyring_session() -> Iterator[KeyringSession]:
    """The real Secret Service every keyring test talks to (shared; use unique project names)."""
    if _AMBIENT:
        yield KeyringSession(
            _AMBIENT, Path(_AMBIENT_HOME), Path(_AMBIENT_RUNTIME), None, None, "ambient"
        )
        return
    missing = [
        p for p in ("dbus-daemon", "gnome-keyring-daemon", "secret-tool") if not shutil.which(p)
    ]
    if missing:
        pytest.skip(f"no real Secret Service to test against: {', '.join(missing)} not installed")
    folder = Path(tempfile.mkdtemp(prefix="pgconnect-keyring-"))
    session = start_keyring_session(folder)
    yield session
    stop_keyring_session(session)
    shutil.rmtree(folder, ignore_errors=True)
