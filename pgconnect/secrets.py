"""Secret values and the stores that keep them (SPEC §3).

The store is the OS keyring through ``keyring``; every call has a deadline so a hung daemon is an
error, not a hang. The plaintext file store is opt-in only (``PGCONNECT_SECRET_STORE=file``).
Secret values travel in ``Secret``, whose repr/str is ``****``.
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

STORE_ENV = "PGCONNECT_SECRET_STORE"
DEADLINE_S = 5.0
MASK = "****"

T = TypeVar("T")


#: Every secret value this process has held. The CLI's error boundary masks them in whatever it
#: prints (messages, hints, --debug tracebacks), so a value that slipped into an exception on a
#: path nobody foresaw is still not shown (SPEC §9). Shorter values are not masked in free text:
#: masking "pw" would garble every message, and such a value protects nothing.
_HELD: set[str] = set()
MIN_MASKED_LENGTH = 4


def held_values() -> list[str]:
    """The secret values this process has held (long enough to mask), longest first."""
    return sorted((v for v in _HELD if len(v) >= MIN_MASKED_LENGTH), key=len, reverse=True)


class Secret:
    """A secret value: ``str()`` and ``repr()`` show ``****``; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if value:
            _HELD.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def service_name(project: str, env: str | None) -> str:
    """``pgconnect:<project>`` for the base, ``pgconnect:<project>:<env>`` for an environment."""
    return f"pgconnect:{project}" if env is None else f"pgconnect:{project}:{env}"


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

    Layout (SPEC §3): service ``pgconnect:<project>[:<env>]``, user name = the secret's NAME, so
    ``secret-tool lookup service pgconnect:billing username DB_PASSWORD`` finds it. Every call
    runs under a deadline; every failure is one of the SecretStoreError subclasses above.
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
    from keyring.util import platform_

    config = platform_.config_root() / "keyringrc.cfg"
    return str(config) if config.is_file() else None


def _load_backend() -> Any:
    """The keyring backend to use; NoKeyringError rather than a backend that is no keyring.

    Fast path (issue 8, P5): on Linux with a D-Bus session and no backend chosen by the user,
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


# --------------------------------------------------------------------------- the file store


class FileStore:
    """Opt-in plaintext store: one 0600 JSON file in the user's data folder.

    Treated like libpq's ``.pgpass``: the mode is checked on every read and a file that group or
    others can access is refused (with the ``chmod`` that fixes it); so is a folder others can
    enter (a 0777 folder lets anyone swap the file between two of our calls), a folder or file
    of another user, and anything that is not a regular file (opened O_NONBLOCK, so a FIFO is
    refused rather than waited on forever). The file is first created with O_EXCL (nobody can
    have prepared the path), rewritten atomically through a 0600 temporary file, and
    read-modify-write happens under a lock on its folder. Every call has the keyring's
    deadline: a hung network mount or a lock never released is an error, not a hang.
    """

    kind = "file"

    def __init__(self, path: os.PathLike[str] | str | None = None) -> None:
        from pathlib import Path

        if path is None:
            base = os.environ.get("XDG_DATA_HOME") or os.path.join(
                os.path.expanduser("~"), ".local", "share"
            )
            path = os.path.join(base, "pgconnect", "secrets.json")
        self.path = Path(path)
        self.deadline = DEADLINE_S

    def _check_folder(self) -> bool:
        """Is there a folder (False: none yet)? Refuse one others can enter or of another user."""
        import shlex
        import stat

        folder = self.path.parent
        try:
            st = os.stat(folder)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise SecretStoreError(
                f"cannot read the file store's folder {folder}: {exc.strerror}"
            ) from None
        if not stat.S_ISDIR(st.st_mode):
            return False  # _prepare says what is in the way
        if st.st_uid != os.geteuid():
            raise UnsafeFileStoreError(
                f"the file store's folder {folder} belongs to another user (uid {st.st_uid}); "
                "it was not used",
                hint=f"use a folder of your own: set XDG_DATA_HOME, or remove {folder}",
            )
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise UnsafeFileStoreError(
                f"the file store's folder {folder} is open to others (mode {mode:04o}); "
                "it was not used",
                hint=f"chmod 700 {shlex.quote(str(folder))}",
            )
        return True

    def _read(self) -> dict[str, dict[str, str]]:
        import json
        import shlex
        import stat

        if not self._check_folder():
            return {}
        try:
            # O_NONBLOCK: a FIFO planted at the path is refused below rather than waited on.
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretStoreError(
                f"cannot open the file store {self.path}: {exc.strerror}",
                hint=f"it must be a regular file of yours, not a link: check {self.path}",
            ) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise UnsafeFileStoreError(
                f"the file store {self.path} is {kind}; it was not used",
                hint=f"move it away (mv {shlex.quote(str(self.path))} …); pgconnect creates "
                "the file itself",
            )
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as fh:
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o077:  # libpq's .pgpass rule: no group or world access
                raise UnsafeFileStoreError(
                    f"the file store {self.path} can be read by others (mode {mode:04o}); "
                    "it was not used",
                    hint=f"chmod 600 {shlex.quote(str(self.path))}",
                )
            if st.st_uid != os.getuid():
                raise UnsafeFileStoreError(
                    f"the file store {self.path} belongs to another user (uid {st.st_uid}); "
                    "it was not used"
                )
            raw = fh.read()
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise SecretStoreError(f"the file store {self.path} is not valid JSON") from None
        if not isinstance(data, dict) or not all(
            isinstance(entries, dict) and all(isinstance(v, str) for v in entries.values())
            for entries in data.values()
        ):
            raise SecretStoreError(
                f"the file store {self.path} is not an object of services to name/value objects"
            )
        return data

    def _prepare(self) -> None:
        """Create the folder (0700) and the file (0600, O_EXCL) if they are missing."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except FileExistsError:
            # Not the store file existing (handled below): something not a folder is in the way.
            raise SecretStoreError(
                f"cannot create the file store's folder {self.path.parent}: "
                "something that is not a folder is in the way"
            ) from None
        except OSError as exc:
            raise SecretStoreError(
                f"cannot create the file store's folder {self.path.parent}: {exc.strerror}"
            ) from None
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            return  # _read() re-checks its mode before anything is written into it
        except OSError as exc:
            raise SecretStoreError(
                f"cannot create the file store {self.path}: {exc.strerror}"
            ) from None
        os.close(fd)

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        import json

        from pgconnect import atomic

        def failed(reason: str, in_folder: bool) -> SecretStoreError:
            # A full disk, a quota: the old file is still whole; say so instead of crashing.
            return SecretStoreError(
                f"cannot write the file store {self.path}: {reason}; nothing was changed"
            )

        text = json.dumps(data, indent=1, sort_keys=True)
        atomic.write(self.path, text.encode("utf-8"), private=True, failed=failed)

    def _update(self, change: Callable[[dict[str, dict[str, str]]], bool]) -> bool:
        """Read, CHANGE, write back (only if CHANGE returns True), under a folder lock."""
        from pgconnect import atomic

        self._prepare()
        self._check_folder()
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            # The store's own lock: like atomic.locked, but it gives up well before the call's
            # deadline (a lock never released is a known outcome, not an unknown one).
            self._lock(dir_fd)
            atomic.remove_stale_temporaries(self.path)
            data = self._read()
            changed = change(data)
            if changed:
                self._write(data)
            return changed
        finally:
            os.close(dir_fd)

    def _timed(self, call: Callable[[], T], what: str) -> T:
        try:
            return with_deadline(call, what, self.deadline)
        except KeyringTimeoutError as exc:
            raise FileStoreTimeoutError(
                exc.message.replace("the keyring", f"the file store {self.path}", 1),
                hint="another process may hold its folder's lock, or the disk may hang; "
                "nothing was changed",
            ) from None

    def _lock(self, dir_fd: int) -> None:
        """Take the folder's lock, or fail for certain (nothing was changed) well before the
        call's own deadline: a lock never released is a known outcome, not an unknown one."""
        import fcntl

        give_up = time.monotonic() + self.deadline * 0.8
        while True:
            try:
                fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > give_up:
                    raise SecretStoreError(
                        f"the file store {self.path} is locked by another process "
                        f"(waited {self.deadline * 0.8:g} s); nothing was changed",
                        hint="let the other pgconnect finish, or find what holds "
                        f"{self.path.parent} open (fuser -v {self.path.parent})",
                    ) from None
                time.sleep(0.05)

    def get(self, service: str, name: str) -> Secret | None:
        value = self._timed(lambda: self._read().get(service, {}).get(name), "reading a secret")
        return None if value is None else Secret(value)

    def set(self, service: str, name: str, value: Secret) -> None:
        def change(data: dict[str, dict[str, str]]) -> bool:
            data.setdefault(service, {})[name] = value.reveal()
            return True

        self._timed(lambda: self._update(change), "storing a secret")

    def delete(self, service: str, name: str) -> bool:
        def change(data: dict[str, dict[str, str]]) -> bool:
            if name not in data.get(service, {}):
                return False
            del data[service][name]
            if not data[service]:
                del data[service]
            return True

        return self._timed(lambda: self._update(change), "deleting a secret")


# --------------------------------------------------------------------------- input formats


def strip_one_newline(text: str) -> str:
    """Remove exactly one trailing ``\\r\\n`` or ``\\n`` (what ``echo`` and editors add)."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


class BulkInputError(ValueError):
    """The input of ``secret bulk`` is not a JSON object of strings/nulls or a dotenv file.

    Messages name the line or key, never the value.
    """


def parse_bulk(text: str) -> dict[str, str | None]:
    """NAME → value (None: delete) from a JSON object or a dotenv file.

    JSON when the first non-blank character is ``{``; otherwise dotenv: ``NAME=value`` lines,
    optional ``export``, ``#`` comments, values bare (a `` #`` starts a comment, surrounding
    blanks are dropped), in single quotes (literal) or in double quotes (``\\n``, ``\\"``, ``\\\\``
    escapes). A name given twice is an error, not "last one wins".
    """
    if text.lstrip().startswith("{"):
        return _parse_json(text)
    return _parse_dotenv(text)


def _parse_json(text: str) -> dict[str, str | None]:
    import json

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        seen: dict[str, object] = {}
        for key, value in items:
            if key in seen:
                raise BulkInputError(f"{key} is given twice")
            seen[key] = value
        return seen

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        # exc.msg and the position only: the document itself may hold secrets.
        raise BulkInputError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise BulkInputError("invalid JSON: nested too deeply") from None
    except ValueError:
        # Python's int limit (4300 digits): a value that is no string anyway.
        raise BulkInputError("invalid JSON: a number too long to read") from None
    if not isinstance(data, dict):
        raise BulkInputError("the JSON must be an object of NAME: value (or null to delete)")
    out: dict[str, str | None] = {}
    for key, value in data.items():
        if value is not None and not isinstance(value, str):
            raise BulkInputError(
                f"{key}: the value must be a string, or null to delete (got {type(value).__name__})"
            )
        if value == "":
            raise BulkInputError(f"{key}: empty value refused (use null to delete)")
        if value is not None and "\x00" in value:
            raise BulkInputError(f"{key}: {_NUL_REFUSED}")
        out[key] = value
    return out


#: libpq takes C strings: a value with a NUL would silently be cut there.
_NUL_REFUSED = "the value contains a NUL byte, which libpq cannot pass on"

_DOTENV_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def _parse_dotenv(text: str) -> dict[str, str | None]:
    import re

    out: dict[str, str | None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = re.fullmatch(r"(?:export\s+)?([^=\s]+)\s*=\s*(.*)", stripped, flags=re.DOTALL)
        if m is None:
            raise BulkInputError(f"line {number}: expected NAME=value")
        name, rest = m.group(1), m.group(2)
        value = _dotenv_value(rest, number, name)
        if name in out:
            raise BulkInputError(f"line {number}: {name} is given twice")
        if value == "":
            raise BulkInputError(f"line {number}: {name}: empty value refused")
        if "\x00" in value:
            raise BulkInputError(f"line {number}: {name}: {_NUL_REFUSED}")
        out[name] = value
    return out


def _dotenv_value(rest: str, number: int, name: str) -> str:
    if rest.startswith("'"):
        end = rest.find("'", 1)
        if end < 0:
            raise BulkInputError(f"line {number}: {name}: unterminated single quote")
        tail = rest[end + 1 :].strip()
        if tail and not tail.startswith("#"):
            raise BulkInputError(f"line {number}: {name}: text after the closing quote")
        return rest[1:end]
    if rest.startswith('"'):
        chars: list[str] = []
        i = 1
        while i < len(rest):
            c = rest[i]
            if c == "\\" and i + 1 < len(rest):
                nxt = rest[i + 1]
                chars.append(_DOTENV_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            if c == '"':
                tail = rest[i + 1 :].strip()
                if tail and not tail.startswith("#"):
                    raise BulkInputError(f"line {number}: {name}: text after the closing quote")
                return "".join(chars)
            chars.append(c)
            i += 1
        raise BulkInputError(f"line {number}: {name}: unterminated double quote")
    # Bare value: a '#' after a blank starts a comment (as in shells and python-dotenv).
    import re

    return re.split(r"\s+#", rest, maxsplit=1)[0].strip()
