"""Replacing a file safely: the one atomic-write-under-lock used by the project file and the file
secret store.

``locked(folder)`` takes an exclusive ``flock`` on the folder itself (no lock file is left in the
user's repository) for a whole read-modify-write, so concurrent pgconnect processes never lose
each other's changes. ``write(path, data)`` — called under that lock — writes a temporary file in
the same folder, fsyncs it, renames it over PATH and fsyncs the folder, so a crash or a full disk
leaves either the old file or the new one, never half of one. What a SIGKILL between the temporary
file and the rename necessarily leaves behind is removed by the next ``locked`` writer
(``remove_stale_temporaries``).

Errors are ``PgconnectError``s made by the caller's FAILED function, so each file keeps its own
words and exit status (a project file: exit 1; the secret store: exit 4).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from pgconnect.errors import CommandError, PgconnectError

#: Builds the error for a failed write from its reason ("the disk is full", an strerror) and
#: whether it was the folder that refused the temporary file (True) or the write itself.
Failed = Callable[[str, bool], PgconnectError]


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on FOLDER for a read-modify-write of a file in it."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise CommandError(f"cannot lock {folder}: {exc.strerror}; nothing was changed") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _temporary_name(path: Path) -> re.Pattern[str]:
    # What write()'s mkstemp makes: ".<name>." + 8 characters of [a-z0-9_] + ".tmp".
    return re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp\Z")


def remove_stale_temporaries(path: Path) -> list[str]:
    """Remove what a write of PATH killed between mkstemp and rename left behind.

    Call only under ``locked``: every pgconnect writer of this folder holds it for the whole
    write, so a temporary file seen while we hold it belongs to no running write. SIGKILL or a
    power cut in that window necessarily leaves one; the next write cleans it up. Returns the names.
    """
    pattern = _temporary_name(path)
    try:
        names = [n for n in os.listdir(path.parent) if pattern.match(n)]
    except OSError:
        return []
    removed = []
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(path.parent / name)
            removed.append(name)
    return removed


def write(
    path: Path,
    data: bytes,
    *,
    mode: int | None = None,
    private: bool = False,
    failed: Failed | None = None,
) -> None:
    """Write DATA to PATH atomically: temp file in the same folder, fsync, rename, fsync folder.

    An existing file keeps its mode (and owner, when permitted); a new one gets MODE (default:
    0666 minus the umask). PRIVATE always writes 0600 and the caller's owner (a file holding
    secrets). A read-only file is refused even when running as root,
    who would otherwise replace it silently. No temporary file is left behind on failure.
    FAILED(reason, in_folder) makes the error raised; by default a CommandError naming PATH.
    """
    fail = failed or _default_failed(path)
    folder = path.parent
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_IMODE(st.st_mode) & 0o222 or not os.access(path, os.W_OK):
            raise CommandError(
                f"{path} is read-only (mode {stat.S_IMODE(st.st_mode):04o}); nothing was changed",
                hint=f"make it writable first: chmod u+w {path}",
            )
        mode = stat.S_IMODE(st.st_mode)
    if private:
        mode, st = 0o600, None
    elif mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        import tempfile  # only when writing: reading a file is every command's start-up

        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise fail(_reason(exc), True) from None
    try:
        try:
            os.fchmod(fd, mode)
            if st is not None and (st.st_uid != os.getuid() or st.st_gid != os.getgid()):
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, st.st_uid, st.st_gid)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise fail(_reason(exc), False) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The rename is durable only once the folder's entry is on disk too.
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _reason(exc: OSError) -> str:
    return "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)


def _default_failed(path: Path) -> Failed:
    def failed(reason: str, in_folder: bool) -> PgconnectError:
        if in_folder:
            return CommandError(
                f"cannot write in {path.parent}: {reason}; {path.name} was not changed"
            )
        return CommandError(f"cannot write {path}: {reason}; the file was not changed")

    return failed
