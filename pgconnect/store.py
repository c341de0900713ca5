"""The secret store (docs/secrets.md): the interface, the store chosen by
$PGCONNECT_SECRET_STORE, its failures, and the OS keyring through ``keyring`` (on Linux, reads go
to the Secret Service directly).

Every keyring call has a deadline so a hung daemon is an error, not a hang. The plaintext file
store is opt-in only (``PGCONNECT_SECRET_STORE=file``) and lives in ``pgconnect.filestore``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

from pgconnect.errors import SecretStoreError
from pgconnect.secret import MASK, Secret

STORE_ENV = "PGCONNECT_SECRET_STORE"
DEADLINE_S = 5.0

T = TypeVar("T")


class SecretStore(Protocol):
    """Where secret values live. ``kind`` is what ``secret list --json`` reports as ``store``."""

    kind: str

    def get(self, service: str, name: str) -> Secret | None: ...

    def set(self, service: str, name: str, value: Secret) -> None: ...

    def delete(self, service: str, name: str) -> bool: ...


#: (monotonic time, what set it): a command's own time limit, which every store call's deadline
#: stays within (``check --timeout 2`` does not wait 5 s for a stalled keyring).
_BUDGET: list[tuple[float, str]] = []


@contextlib.contextmanager
def budget(until: float, label: str) -> Iterator[None]:
    """Within the block, no store call waits past UNTIL (``time.monotonic()``); LABEL names
    the limit in the error (e.g. ``--timeout 2``)."""
    _BUDGET.append((until, label))
    try:
        yield
    finally:
        _BUDGET.pop()


def with_deadline(call: Callable[[], T], what: str, deadline: float = DEADLINE_S) -> T:
    """Run CALL in a daemon thread; raise KeyringTimeoutError if it has not answered by DEADLINE
    (or by the end of the command's ``budget``, if that comes first).

    A daemon thread, so a call stuck in a hung D-Bus peer never keeps the process alive.
    """
    limit = ""
    if _BUDGET:
        until, label = min(_BUDGET)
        remaining = max(until - time.monotonic(), 0.05)
        if remaining < deadline:
            deadline, limit = remaining, label
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # re-raised in the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"keyring-{what}", daemon=True)
    thread.start()
    thread.join(deadline)
    if thread.is_alive():
        if limit:
            raise KeyringTimeoutError(
                f"the keyring did not answer within {limit} ({what})",
                hint="the keyring daemon may be hung, or the time limit is too short for it",
            )
        raise KeyringTimeoutError(
            f"the keyring did not answer within {deadline:g} s ({what})",
            hint="the keyring daemon may be hung; restart it (e.g. gnome-keyring-daemon "
            "--replace) and run the command again, or set the value in the environment for "
            "this run",
        )
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def open_store() -> SecretStore:
    """The store chosen by $PGCONNECT_SECRET_STORE: ``keyring`` (default) or ``file``."""
    choice = os.environ.get(STORE_ENV, "keyring").strip().lower() or "keyring"
    if choice == "keyring":
        return KeyringStore()
    if choice == "file":
        from pgconnect.filestore import FileStore  # it builds on this module

        return FileStore()
    raise SecretStoreError(
        f"{STORE_ENV}={choice!r} is not a secret store",
        hint=f"use {STORE_ENV}=keyring (the default) or {STORE_ENV}=file",
    )


# --------------------------------------------------------------------------- failures


class NoKeyringError(SecretStoreError):
    """No usable OS keyring: no D-Bus session, no Secret Service, or keyring disabled."""


class KeyringLockedError(SecretStoreError):
    """The keyring is locked and pgconnect cannot (or may not) show an unlock prompt."""


class PromptDismissedError(SecretStoreError):
    """The keyring's unlock prompt was dismissed, or could not be shown."""


class StoreDeadlineError(SecretStoreError):
    """A store call did not answer within its deadline. What it was asked to do may still
    happen after pgconnect gave up (a stalled keyring daemon resumes and handles the queued
    call): callers that change the store treat its outcome as unknown."""


class KeyringTimeoutError(StoreDeadlineError):
    """A keyring call did not answer within its deadline."""


class KeyringFailedError(SecretStoreError):
    """The keyring reported an error that none of the classes above describes."""


class UnsafeFileStoreError(SecretStoreError):
    """The opt-in file store (or its folder) is open to others, not the user's own, or not a
    regular file."""


class FileStoreTimeoutError(StoreDeadlineError):
    """The opt-in file store did not answer within its deadline (a hung network mount, a lock
    some other process never lets go of)."""


_NO_KEYRING_HINT = (
    "pgconnect keyring shell   (an unlocked keyring for this terminal; for one command: "
    "pgconnect keyring run -- pgconnect …; --persistent keeps its secrets). Or give the value "
    f"in the environment (DB_PASSWORD=… pgconnect …), or opt in to a plaintext file: {STORE_ENV}=file"
)


def no_keyring(reason: str) -> NoKeyringError:
    return NoKeyringError(f"no OS keyring is available: {reason}", hint=_NO_KEYRING_HINT)


def keyring_locked(detail: str) -> KeyringLockedError:
    return KeyringLockedError(
        f"the keyring is locked ({detail}); no secret was read or written",
        hint="unlock the login keyring (log in to the desktop, or use your keyring manager; "
        "headless, restart it unlocked: printf '%s' \"$KEYRING_PASSWORD\" | "
        "gnome-keyring-daemon --replace --unlock --daemonize), or set the value in the "
        "environment for this run",
    )


def prompt_dismissed() -> PromptDismissedError:
    return PromptDismissedError(
        "the keyring's unlock prompt was dismissed (or could not be shown); the keyring is "
        "still locked and no secret was read or written",
        hint="run the command again and unlock the keyring in its prompt, or unlock it first "
        "with your keyring manager",
    )


# --------------------------------------------------------------------------- the OS keyring

#: How long a person gets to answer the keyring's own unlock dialog. Every other keyring call has
#: DEADLINE_S: typing a keyring password takes longer than a hung daemon deserves.
PROMPT_DEADLINE_S = 60.0


class KeyringStore:
    """The OS keyring (Secret Service, Keychain, Credential Locker) through ``keyring``.

    Layout (docs/secrets.md): service ``pgconnect:<project>[:<env>]``, user name = the secret's
    NAME, so ``secret-tool lookup service pgconnect:billing username DB_PASSWORD`` finds it. Every
    call runs under a deadline; every failure is one of the SecretStoreError subclasses above. On
    Linux a read goes to the Secret Service directly (``_read_secret_service``) and to keyring
    only when that cannot settle it.
    """

    kind = "keyring"

    def __init__(self) -> None:
        self._backend: Any = None

    def _keyring(self) -> Any:
        if self._backend is None:
            backend = with_deadline(_load_backend, "finding the keyring backend")
            if _is_secret_service(backend):
                _ensure_unlocked()
            self._backend = backend
        return self._backend

    def get(self, service: str, name: str) -> Secret | None:
        if self._backend is None and _direct_read_possible():
            decided, found = with_deadline(
                lambda: _call(lambda: _read_secret_service(service, name)), "reading a secret"
            )
            if decided:
                return None if found is None else Secret(found)
        backend = self._keyring()
        value: str | None = with_deadline(
            lambda: _call(lambda: backend.get_password(service, name)), "reading a secret"
        )
        return None if value is None else Secret(value)

    def set(self, service: str, name: str, value: Secret) -> None:
        backend = self._keyring()
        with_deadline(
            lambda: _call(lambda: backend.set_password(service, name, value.reveal()), value),
            "storing a secret",
        )

    def delete(self, service: str, name: str) -> bool:
        backend = self._keyring()

        def delete() -> bool:
            from keyring.errors import PasswordDeleteError

            try:
                backend.delete_password(service, name)
            except PasswordDeleteError:  # keyring's "no such password"
                return False
            return True

        return with_deadline(lambda: _call(delete), "deleting a secret")


def _keyring_configured() -> str | None:
    """Where the user chose a keyring backend themselves (keyring's own rules), if they did."""
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return "PYTHON_KEYRING_BACKEND"
    if sys.platform.startswith("linux"):
        # keyring.util.platform_.config_root on Linux, without importing keyring (tens of ms).
        root = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        config = os.path.join(root, "python_keyring", "keyringrc.cfg")
        return config if os.path.isfile(config) else None
    from keyring.util import platform_

    path = platform_.config_root() / "keyringrc.cfg"
    return str(path) if path.is_file() else None


def _direct_read_possible() -> bool:
    """Can a secret be read from the Secret Service directly (``_read_secret_service``)? On Linux,
    with a session bus, when the user has not chosen a keyring backend of their own."""
    return (
        sys.platform.startswith("linux")
        and bool(os.environ.get("DBUS_SESSION_BUS_ADDRESS"))
        and _keyring_configured() is None
    )


#: The Secret Service on the session bus (the freedesktop.org Secret Service API).
_SECRETS = "org.freedesktop.secrets"
_SECRET = "org.freedesktop.Secret."


def _read_secret_service(service: str, name: str) -> tuple[bool, str | None]:
    """Read a secret as keyring's Secret Service backend does (the collection the "default"
    alias names, items with the attributes service and username, the first one's secret as
    UTF-8), on one D-Bus connection and without importing keyring: the password lookup is on
    every command's way to a connection, and keyring's imports, its three connections and its
    Diffie-Hellman session cost about 100 ms, against a few ms here.

    The secret is transferred in the Secret Service's "plain" session, which every
    implementation supports: on the user's own session bus, which no other user can connect to
    or monitor. (Writes still go through keyring.)

    (True, value or None) when this settles it; (False, None) when keyring's own way is needed:
    no session bus or no Secret Service on it, no default collection yet, a locked collection or
    item (the unlock prompt, or the locked error, is then ``_ensure_unlocked``'s as before).
    """
    from jeepney import DBusAddress, MessageType, Properties, new_method_call
    from jeepney.io.blocking import open_dbus_connection
    from jeepney.wrappers import DBusErrorResponse

    try:
        connection = open_dbus_connection(bus="SESSION")
    except Exception:  # any failure to reach the bus: keyring reports it as before
        return False, None

    def call(message: Any) -> Any:
        reply = connection.send_and_get_reply(message)
        if reply.header.message_type == MessageType.error:
            raise DBusErrorResponse(reply)
        return reply.body

    def locked(path: str, interface: str) -> bool:
        address = DBusAddress(path, bus_name=_SECRETS, interface=_SECRET + interface)
        ((_signature, value),) = call(Properties(address).get("Locked"))
        return bool(value)

    try:
        secrets = DBusAddress(
            "/org/freedesktop/secrets", bus_name=_SECRETS, interface=_SECRET + "Service"
        )
        try:
            (collection,) = call(new_method_call(secrets, "ReadAlias", "s", ("default",)))
        except DBusErrorResponse as exc:
            if exc.name in (
                "org.freedesktop.DBus.Error.ServiceUnknown",
                "org.freedesktop.DBus.Error.NameHasNoOwner",
            ):
                return False, None
            raise
        if collection == "/" or locked(collection, "Collection"):
            return False, None
        (items,) = call(
            new_method_call(
                DBusAddress(collection, bus_name=_SECRETS, interface=_SECRET + "Collection"),
                "SearchItems",
                "a{ss}",
                ({"username": name, "service": service},),
            )
        )
        if not items:
            return True, None
        if locked(items[0], "Item"):
            return False, None
        _output, session = call(new_method_call(secrets, "OpenSession", "sv", ("plain", ("s", ""))))
        item = DBusAddress(items[0], bus_name=_SECRETS, interface=_SECRET + "Item")
        ((_session, _parameters, value, _content_type),) = call(
            new_method_call(item, "GetSecret", "o", (session,))
        )
        return True, bytes(value).decode("utf-8")
    finally:
        connection.close()


def _load_backend() -> Any:
    """The keyring backend to use; NoKeyringError rather than a backend that is no keyring.

    Fast path (benchmarks/README.md, P5): on Linux with a D-Bus session and no backend chosen by the user,
    keyring's Secret Service backend is built directly after its own viability check.
    ``keyring.get_keyring()`` would load every backend entry point and probe each to find it.
    """
    chosen = _keyring_configured()
    origin = chosen or "keyring's configuration"
    if chosen is None and sys.platform.startswith("linux"):
        if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            # keyring's Linux backends all talk D-Bus; without a session bus there is none (and
            # no D-Bus autolaunch that would leave a daemon and files behind).
            raise no_keyring(
                "there is no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set), so no "
                "Secret Service can be reached"
            )
        from keyring.backends import SecretService

        # keyring's own viability check (its priority probe, any failure meaning "not viable").
        if SecretService.Keyring.viable:
            return SecretService.Keyring()  # type: ignore[no-untyped-call]
        # No Secret Service on this bus: let keyring look for another backend (KWallet) below.

    import keyring
    from keyring.backends import chainer, fail, null

    try:
        backend = keyring.get_keyring()
    except (RuntimeError, ImportError, AttributeError) as exc:
        # keyring raises these when the backend named in the user's configuration is unusable.
        raise no_keyring(f"the backend chosen in {origin} cannot be used: {exc}") from None
    if isinstance(backend, null.Keyring):
        raise no_keyring(f"keyring is disabled (the null backend is chosen in {origin})")
    if isinstance(backend, fail.Keyring) or (
        isinstance(backend, chainer.ChainerBackend) and not backend.backends
    ):
        if sys.platform.startswith("linux"):
            raise no_keyring("no Secret Service (gnome-keyring, KWallet, …) answers on D-Bus")
        raise no_keyring("keyring found no backend on this system")
    # keyring ranks plaintext backends (keyrings.alt) below 1, "not recommended". pgconnect never
    # falls back to plaintext silently: only a backend the user chose may be one of those.
    if chosen is None and backend.priority < 1:
        raise no_keyring(
            f"the only backend found ({type(backend).__module__}) is not a recommended, "
            "secure store; choose it explicitly with PYTHON_KEYRING_BACKEND to use it"
        )
    return backend


def _is_secret_service(backend: object) -> bool:
    return type(backend).__module__ == "keyring.backends.SecretService"


def _can_prompt() -> bool:
    """gnome-keyring's unlock prompt is a dialog: it needs a display."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _ensure_unlocked() -> None:
    """Look at the default collection's lock before keyring would try to unlock it.

    Without a display nobody can answer an unlock prompt (and over SSH one could appear on
    someone else's screen), so a locked collection is reported as locked. With a display, the
    keyring's own prompt is shown and gets PROMPT_DEADLINE_S to be answered.
    """
    import secretstorage
    from secretstorage.exceptions import ItemNotFoundException

    def locked_collection() -> Any:
        conn = secretstorage.dbus_init()
        try:
            collection = secretstorage.Collection(conn)
            if collection.is_locked():
                return collection
        except ItemNotFoundException:
            pass  # no default collection yet: keyring creates it on first use
        conn.close()
        return None

    collection = with_deadline(lambda: _call(locked_collection), "checking the keyring's lock")
    if collection is None:
        return
    try:
        if not _can_prompt():
            raise keyring_locked("no display to show its unlock prompt on")

        def unlock() -> bool:
            try:
                dismissed = bool(collection.unlock(timeout=PROMPT_DEADLINE_S))
            except TimeoutError:
                raise KeyringTimeoutError(
                    f"the keyring's unlock prompt was not answered within {PROMPT_DEADLINE_S:g} s",
                    hint="run the command again and answer the prompt",
                ) from None
            return dismissed or bool(collection.is_locked())

        if with_deadline(
            lambda: _call(unlock), "waiting for the unlock prompt", PROMPT_DEADLINE_S + 1
        ):
            raise prompt_dismissed()
    finally:
        collection.connection.close()


def _store_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a keyring call raises for a keyring-side reason (caught by name)."""
    from keyring.errors import KeyringError

    found: list[type[BaseException]] = [KeyringError, OSError]
    try:
        from jeepney.wrappers import DBusErrorResponse
        from secretstorage.exceptions import SecretStorageException
    except ImportError:  # not on Linux
        pass
    else:
        found += [SecretStorageException, DBusErrorResponse]
    return tuple(found)


def _call(call: Callable[[], T], secret: Secret | None = None) -> T:
    """Run one keyring call; classify its failure. A failure of no known kind (a D-Bus reply
    lost on a busy session bus, a reset socket) is tried once more before it is reported: every
    call here is idempotent, and a failure that is real fails the same way again."""
    for attempt in (1, 2):
        try:
            return call()
        except _store_errors() as exc:
            error = _classify(exc, secret)
            if attempt == 2 or type(error) is not KeyringFailedError:
                raise error from None
        time.sleep(0.05)
    raise AssertionError("unreachable")


def _classify(exc: BaseException, secret: Secret | None = None) -> SecretStoreError:
    """One error class per failure users meet: no backend, locked, dismissed prompt, other."""
    from keyring.errors import KeyringLocked
    from keyring.errors import NoKeyringError as KeyringNoBackend

    names = {cls.__name__ for cls in type(exc).__mro__}
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if secret is not None and secret.reveal():
        text = text.replace(secret.reveal(), MASK)  # a backend must never echo it; be sure
    if isinstance(exc, KeyringNoBackend) or "SecretServiceNotAvailableException" in names:
        return no_keyring(text)
    if "PromptDismissedException" in names:
        return prompt_dismissed()
    if isinstance(exc, KeyringLocked) or "LockedException" in names:
        return keyring_locked(text)
    return KeyringFailedError(
        f"the keyring failed: {text}",
        hint="check the keyring daemon and run the command again, or opt in to the plaintext "
        f"file store with {STORE_ENV}=file",
    )
