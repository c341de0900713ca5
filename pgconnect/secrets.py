"""Secret values and the stores that keep them (SPEC §3).

The store is the OS keyring through ``keyring``; every call has a deadline so a hung daemon is an
error, not a hang. The plaintext file store is opt-in only (``PGCONNECT_SECRET_STORE=file``).
Secret values travel in ``Secret``, whose repr/str is ``****``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

from pgconnect.errors import SecretStoreError

STORE_ENV = "PGCONNECT_SECRET_STORE"
DEADLINE_S = 5.0
MASK = "****"

T = TypeVar("T")


class Secret:
    """A secret value: ``str()`` and ``repr()`` show ``****``; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

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


def with_deadline(call: Callable[[], T], what: str, deadline: float = DEADLINE_S) -> T:
    """Run CALL in a daemon thread; raise SecretStoreError if it has not answered by DEADLINE."""
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
        raise SecretStoreError(
            f"the keyring did not answer within {deadline:g} s ({what})",
            hint="the keyring daemon may be hung or waiting for an unlock prompt; restart it "
            "(e.g. gnome-keyring-daemon --replace), or set the value in the environment for this run",
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
    raise SecretStoreError(f"{STORE_ENV}={choice!r} is not a store; use 'keyring' or 'file'")


class KeyringStore:
    """The OS keyring (Secret Service, Keychain, Credential Locker) through ``keyring``."""

    kind = "keyring"

    def __init__(self) -> None:
        self._backend: object | None = None

    def _keyring(self) -> object:
        if self._backend is None:
            self._backend = with_deadline(_load_backend, "finding the keyring backend")
        return self._backend

    def get(self, service: str, name: str) -> Secret | None:
        backend = self._keyring()
        value = with_deadline(
            lambda: _call(backend, "get_password", service, name), "reading a secret"
        )
        return None if value is None else Secret(value)

    def set(self, service: str, name: str, value: Secret) -> None:
        backend = self._keyring()
        with_deadline(
            lambda: _call(backend, "set_password", service, name, value.reveal()),
            "storing a secret",
        )

    def delete(self, service: str, name: str) -> bool:
        backend = self._keyring()
        return with_deadline(lambda: _delete(backend, service, name), "deleting a secret")


def _load_backend() -> object:
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or (
        type(backend).__name__ in ("Keyring",)
        and (type(backend).__module__.endswith(("fail", "null")))
    ):
        raise SecretStoreError(
            "no OS keyring is available (no Secret Service on D-Bus, Keychain or Credential Locker)",
            hint="start a keyring (e.g. gnome-keyring-daemon inside a D-Bus session), set the "
            "value in the environment for this run, or opt in to the file store with "
            f"{STORE_ENV}=file",
        )
    return backend


def _call(backend: object, method: str, *args: str) -> str | None:
    from keyring.errors import KeyringError

    try:
        result: str | None = getattr(backend, method)(*args)
    except KeyringError as exc:
        raise _classify(exc) from None
    return result


def _delete(backend: object, service: str, name: str) -> bool:
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        backend.delete_password(service, name)  # type: ignore[attr-defined]
    except PasswordDeleteError:
        return False
    except KeyringError as exc:
        raise _classify(exc) from None
    return True


def _classify(exc: Exception) -> SecretStoreError:
    """One message per failure users meet: locked, dismissed prompt, no backend, other."""
    text = str(exc)
    low = text.lower()
    if "locked" in low or "unlock" in low:
        return SecretStoreError(
            "the keyring is locked and could not be unlocked",
            hint="unlock your login keyring (e.g. log in to the desktop, or "
            "gnome-keyring-daemon --unlock), then run the command again",
        )
    if "dismiss" in low or "cancel" in low:
        return SecretStoreError(
            "the keyring unlock prompt was dismissed",
            hint="run the command again and accept the unlock prompt",
        )
    return SecretStoreError(
        f"the keyring failed: {text.splitlines()[0] if text else type(exc).__name__}",
        hint=f"check the keyring daemon, or opt in to the file store with {STORE_ENV}=file",
    )


class FileStore:
    """Opt-in plaintext store: one 0600 JSON file in the user's data folder (like .pgpass)."""

    kind = "file"

    def __init__(self, path: os.PathLike[str] | str | None = None) -> None:
        from pathlib import Path

        if path is None:
            base = os.environ.get("XDG_DATA_HOME") or os.path.join(
                os.path.expanduser("~"), ".local", "share"
            )
            path = os.path.join(base, "pgconnect", "secrets.json")
        self.path = Path(path)

    def _read(self) -> dict[str, dict[str, str]]:
        import json
        import stat

        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretStoreError(
                f"cannot open the file store {self.path}: {exc.strerror}"
            ) from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if stat.S_IMODE(st.st_mode) & 0o077:
                raise SecretStoreError(
                    f"the file store {self.path} is readable by others "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}); it was not used",
                    hint=f"chmod 600 {self.path}",
                )
            if st.st_uid != os.getuid():
                raise SecretStoreError(
                    f"the file store {self.path} belongs to another user; it was not used"
                )
            raw = fh.read()
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise SecretStoreError(f"the file store {self.path} is not valid JSON") from None
        if not isinstance(data, dict):
            raise SecretStoreError(f"the file store {self.path} is not a JSON object")
        return data

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        import json
        import tempfile

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            # Create it with O_EXCL so nobody can have prepared the path for us.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            os.close(fd)
        self._read()  # re-check the mode before writing secrets into it
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".secrets.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o600)
                json.dump(data, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def get(self, service: str, name: str) -> Secret | None:
        value = self._read().get(service, {}).get(name)
        return None if value is None else Secret(value)

    def set(self, service: str, name: str, value: Secret) -> None:
        data = self._read()
        data.setdefault(service, {})[name] = value.reveal()
        self._write(data)

    def delete(self, service: str, name: str) -> bool:
        data = self._read()
        if name not in data.get(service, {}):
            return False
        del data[service][name]
        if not data[service]:
            del data[service]
        self._write(data)
        return True
