"""The opt-in plaintext secret store (``PGCONNECT_SECRET_STORE=file``): one 0600 JSON file in the
user's data folder, every call under the keyring's deadline (docs/secrets.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

from pgconnect.errors import SecretStoreError
from pgconnect.secret import Secret
from pgconnect.store import (
    DEADLINE_S,
    FileStoreTimeoutError,
    KeyringTimeoutError,
    UnsafeFileStoreError,
    with_deadline,
)

T = TypeVar("T")


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
