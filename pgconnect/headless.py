"""A keyring where there is no desktop: servers, containers, SSH sessions, CI.

The OS keyring on Linux is a Secret Service on the D-Bus session bus, which a desktop login
starts and unlocks. Without one, ``keyring_session()`` starts both for the length of one command:
a private D-Bus session (``dbus-daemon``) and gnome-keyring's Secret Service in it, unlocked, and
yields the environment a child needs to reach them. When the command ends both daemons are
stopped and their folders removed; if pgconnect itself is killed, the kernel stops them
(``PR_SET_PDEATHSIG``).

Two kinds of keyring:
- throwaway (the default): a new keyring in a private temporary folder, unlocked with a random
  password nobody sees, gone when the command ends. For CI and containers, where secrets come in
  through the environment or ``secret put`` from stdin at the start of each run.
- persistent: the keyring files live in pgconnect's data folder
  (``$XDG_DATA_HOME/pgconnect/keyring``, mode 0700) and are unlocked with a password the user
  chooses (asked on the terminal, or ``PGCONNECT_KEYRING_PASSWORD``). For a server or an SSH login
  where secrets should outlive the session. It is never the desktop's own login keyring.

``ReadOnlyStore`` is for commands that only show whether a secret is set (``secret list``,
``explain``): when the store cannot be reached they report that instead of failing.

Nothing here prints or prompts; the CLI does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pgconnect.errors import SecretStoreError
from pgconnect.secret import Secret
from pgconnect.store import SecretStore

PASSWORD_ENV = "PGCONNECT_KEYRING_PASSWORD"
#: Set in the child's environment: which kind of keyring session it runs in.
SESSION_ENV = "PGCONNECT_KEYRING"
PROGRAMS = ("dbus-daemon", "gnome-keyring-daemon")
READY_DEADLINE_S = 15.0
SECRETS_BUS_NAME = "org.freedesktop.secrets"


class KeyringSessionError(SecretStoreError):
    """A keyring session could not be started (a program missing, a daemon that did not come
    up, a persistent keyring that the password did not unlock)."""


def persistent_folder() -> Path:
    """Where a persistent headless keyring keeps its files (gnome-keyring's ``keyrings/``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "pgconnect" / "keyring"


def persistent_exists(folder: Path | None = None) -> bool:
    folder = persistent_folder() if folder is None else folder
    return (folder / "keyrings" / "login.keyring").is_file()


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p) is None]


RUN_PREFIX = "pgconnect-keyring-run-"
#: gnome-keyring's control socket is <runtime>/keyring/control, and a Unix socket path holds at
#: most 107 bytes (sun_path): a long $TMPDIR would make the daemon give up at start.
_SOCKET_PATH_MAX = 100


def _short_tmp() -> str:
    """The temp folder, unless the socket path under it would be too long: then /tmp."""
    base = tempfile.gettempdir()
    longest = os.path.join(base, RUN_PREFIX + "x" * 8, "keyring", "control")
    if len(longest.encode()) <= _SOCKET_PATH_MAX or not os.path.isdir("/tmp"):
        return base
    return "/tmp"


@dataclass
class _Daemons:
    processes: list[subprocess.Popen[bytes]]
    folders: list[Path]

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)


def _die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM to the daemon when pgconnect dies, however it dies
    (prctl(PR_SET_PDEATHSIG), Linux); elsewhere nothing is set."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG


def _daemon(argv: list[str], environ: dict[str, str], **kw: object) -> subprocess.Popen[bytes]:
    # Their own session: the terminal's Ctrl-C goes to the command, never to the daemons under it.
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        argv,
        env=environ,
        start_new_session=True,
        preexec_fn=_die_with_parent,
        cwd="/",
        **kw,
    )


@contextlib.contextmanager
def keyring_session(password: Secret, *, persistent: bool) -> Iterator[dict[str, str]]:
    """Start a D-Bus session and an unlocked gnome-keyring in it; yield the variables a child
    needs (``DBUS_SESSION_BUS_ADDRESS``, ``PGCONNECT_KEYRING``); stop both when done.

    PASSWORD unlocks (or, the first time, creates) the keyring: random for a throwaway one.
    """
    missing = missing_programs()
    if missing:
        raise KeyringSessionError(
            f"a headless keyring needs {' and '.join(missing)}, which is not installed",
            hint="install it: sudo apt-get install dbus-daemon gnome-keyring (Debian, Ubuntu), "
            "sudo dnf install dbus-daemon gnome-keyring (Fedora)",
        )
    daemons = _Daemons([], [])
    try:
        runtime = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=_short_tmp()))
        daemons.folders.append(runtime)
        if persistent:
            home = persistent_folder()
            home.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(home, 0o700)
        else:
            home = runtime / "home"
            home.mkdir(mode=0o700)
        base = {k: v for k, v in os.environ.items() if k != PASSWORD_ENV}
        base.pop("DBUS_SESSION_BUS_ADDRESS", None)
        bus = _daemon(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
            base,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        daemons.processes.append(bus)
        assert bus.stdout is not None
        address = bus.stdout.readline().decode().strip()
        bus.stdout.close()
        if not address:
            raise KeyringSessionError("dbus-daemon did not start a session bus")
        keyring_env = {
            **base,
            "DBUS_SESSION_BUS_ADDRESS": address,
            # gnome-keyring keeps its keyrings in $XDG_DATA_HOME/keyrings and its control socket
            # in $XDG_RUNTIME_DIR/keyring: both ours, never the user's own.
            "HOME": str(home),
            "XDG_DATA_HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
        }
        daemon = _daemon(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            keyring_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        daemons.processes.append(daemon)
        assert daemon.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            daemon.stdin.write(password.reveal().encode())
            daemon.stdin.close()
        _wait_unlocked(address, daemon, home if persistent else None)
        yield {
            "DBUS_SESSION_BUS_ADDRESS": address,
            SESSION_ENV: "persistent" if persistent else "throwaway",
        }
    finally:
        daemons.stop()


def _wait_unlocked(address: str, daemon: subprocess.Popen[bytes], home: Path | None) -> None:
    """Wait until the Secret Service owns its name on ADDRESS and its default collection is
    unlocked. Asking for the name's owner never D-Bus-activates another keyring daemon."""
    from jeepney.io.blocking import open_dbus_connection

    deadline = time.monotonic() + READY_DEADLINE_S
    conn = None
    try:
        while time.monotonic() < deadline:
            if daemon.poll() is not None:
                raise KeyringSessionError(
                    f"gnome-keyring-daemon ended at start (exit status {daemon.returncode})"
                )
            try:
                if conn is None:
                    conn = open_dbus_connection(bus=address)
                if _has_owner(conn, SECRETS_BUS_NAME):
                    break
            except (OSError, ConnectionError):
                pass
            time.sleep(0.05)
        else:
            raise KeyringSessionError(
                f"the Secret Service did not come up within {READY_DEADLINE_S:g} s"
            )
        assert conn is not None
        # --unlock makes (or opens) the login keyring and names it the default collection; a
        # request before that would make the keyring library create one, which needs a prompt.
        locked = _default_locked(conn)
        while locked is None and time.monotonic() < deadline:
            time.sleep(0.05)
            locked = _default_locked(conn)
        if locked is None:
            raise KeyringSessionError(
                f"gnome-keyring made no login keyring within {READY_DEADLINE_S:g} s"
            )
        if locked:
            where = f" in {home}" if home is not None else ""
            raise KeyringSessionError(
                f"the keyring{where} did not unlock: the password is not its password",
                hint=(
                    "run again and type the password it was created with; to start over: "
                    f"rm -r {home}"
                )
                if home is not None
                else None,
            )
    finally:
        if conn is not None:
            conn.close()


def _has_owner(conn: object, name: str) -> bool:
    from jeepney import DBusAddress, new_method_call

    bus = DBusAddress("/org/freedesktop/DBus", "org.freedesktop.DBus", "org.freedesktop.DBus")
    reply = conn.send_and_get_reply(  # type: ignore[attr-defined]
        new_method_call(bus, "NameHasOwner", "s", (name,)), timeout=5
    )
    return bool(reply.body[0])


def _default_locked(conn: object) -> bool | None:
    """Is the default collection (gnome-keyring's login keyring) locked? None while there is
    no default collection yet."""
    from jeepney import DBusAddress, new_method_call

    service = DBusAddress(
        "/org/freedesktop/secrets", SECRETS_BUS_NAME, "org.freedesktop.Secret.Service"
    )
    reply = conn.send_and_get_reply(  # type: ignore[attr-defined]
        new_method_call(service, "ReadAlias", "s", ("default",)), timeout=5
    )
    path = reply.body[0] if reply.body else "/"
    if path == "/":
        return None
    props = DBusAddress(path, SECRETS_BUS_NAME, "org.freedesktop.DBus.Properties")
    reply = conn.send_and_get_reply(  # type: ignore[attr-defined]
        new_method_call(props, "Get", "ss", ("org.freedesktop.Secret.Collection", "Locked")),
        timeout=5,
    )
    return bool(reply.body[0][1])


# --------------------------------------------------------------------------- show, not read


class Unread(Secret):
    """A secret whose store could not be read: shown as ``****`` like any secret, and never
    revealed (it has no value)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("")


class ReadOnlyStore:
    """A store for commands that only show whether a secret is set (``secret list``,
    ``explain``): when the store cannot be reached (no D-Bus, locked, timed out), ``get``
    answers ``Unread`` and remembers why, instead of failing the command. The first failure is
    kept, so a hung keyring costs one deadline, not one per secret.

    ``needed`` names secrets whose value the command really needs (``explain`` takes DB_URL
    apart): for those the failure is raised as usual.
    """

    def __init__(self, factory: Callable[[], SecretStore], needed: frozenset[str] = frozenset()):
        self._factory = factory
        self._store: SecretStore | None = None
        self.error: SecretStoreError | None = None
        self.needed = needed
        self.kind = "keyring"

    def _open(self) -> SecretStore:
        if self._store is None:
            self._store = self._factory()
            self.kind = self._store.kind
        return self._store

    def get(self, service: str, name: str) -> Secret | None:
        if self.error is not None and name not in self.needed:
            return Unread()
        store = self._open()  # a store that cannot even be chosen is an error as usual
        try:
            return store.get(service, name)
        except SecretStoreError as exc:
            # Only the keyring's reach is forgiven: the opt-in file store refusing an unsafe
            # file (or an unreadable one) stays an error, as libpq refuses such a .pgpass.
            if name in self.needed or store.kind != "keyring":
                raise
            self.error = exc
            return Unread()

    def set(self, service: str, name: str, value: Secret) -> None:
        raise SecretStoreError("this command does not change secrets")  # never called

    def delete(self, service: str, name: str) -> bool:
        raise SecretStoreError("this command does not change secrets")  # never called
