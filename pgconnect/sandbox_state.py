"""``.pgconnect/``, read as what it is: input from whoever wrote the repository.

A cloned repository can ship a ``.pgconnect/`` folder (or a symlink named so), a state file naming
any folder, any program folder and any pid, and a ``postmaster.pid`` naming any process. pgconnect
often runs as root (containers, CI), so before ``sandbox`` acts on anything there it is checked:

- ``.pgconnect`` itself is a real folder (never a symlink), ours, and not writable by anyone;
- the state file is a regular file (opened with O_NOFOLLOW and O_NONBLOCK: a symlink or a FIFO is
  refused, not followed or waited on), ours, small, and holds exactly the fields start writes,
  each of its type;
- the cluster folder is the project's own ``.pgconnect/<env>``, or a private folder start created
  under the system temp directory (``pgconnect-<project>-<env>-XXXXXXXX``, mode 0700, owned by the
  server user): either way a real folder, never a symlink;
- the data folder is that folder's ``data``, the CA file is ``.pgconnect/<env>-ca.crt``;
- the server user is the one this machine's rules give (``PGCONNECT_SERVER_USER`` or postgres).

The program folder a state file names is never used (the machine's own server binaries are), and
a pid is acted on only once /proc shows it is that cluster's postmaster (``cluster.is_postmaster_of``).
Whatever does not hold is refused with exit 3 and one line, and nothing is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pgconnect.errors import ConfigError

#: A state file is a few hundred bytes; anything much larger is not one.
MAX_STATE_BYTES = 64 * 1024

_TEMP_NAME = r"pgconnect-.+-{env}-[A-Za-z0-9_]{{8}}"


def _refused(path: Path, reason: str, hint: str | None = None) -> ConfigError:
    return ConfigError(
        f"{path}: {reason}; pgconnect did not act on it",
        hint=hint or f"if no sandbox of yours runs there, remove it: rm -r -- {path}",
    )


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def check_state_dir(folder: Path) -> bool:
    """Is there a ``.pgconnect`` folder (False: none)? Raise ConfigError unless it is a real
    folder (not a symlink) of ours that others cannot write in."""
    st = _lstat(folder)
    if st is None:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise _refused(
            folder,
            "is a symbolic link; the sandbox keeps its data only in a real folder",
            hint=f"remove the link (rm -- {folder}) and start again",
        )
    if not stat.S_ISDIR(st.st_mode):
        raise _refused(folder, "is not a folder")
    if st.st_uid != os.geteuid():
        raise _refused(folder, f"belongs to another user (uid {st.st_uid}), not to you")
    if st.st_mode & 0o022:
        raise _refused(
            folder,
            f"can be written by others (mode {stat.S_IMODE(st.st_mode):04o})",
            hint=f"chmod go-w -- {folder}",
        )
    return True


def read_state_file(path: Path) -> dict[str, Any] | None:
    """The state file's JSON object, or None when there is none. No symlink is followed, no FIFO
    waited on, nobody else's file read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise _refused(path, "is a symbolic link") from None
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refused(path, "is not a regular file")
        if st.st_uid != os.geteuid():
            raise _refused(path, f"belongs to another user (uid {st.st_uid}), not to you")
        raw = os.read(fd, MAX_STATE_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_STATE_BYTES:
        raise _refused(path, "is too large to be a sandbox state file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise _refused(path, "is not a sandbox state file pgconnect can read") from None
    if not isinstance(data, dict):
        raise _refused(path, "is not a sandbox state file pgconnect can read")
    return data


#: Each field's type (bool is not an int here, and None only where start writes it).
_TYPES: Mapping[str, tuple[type, ...]] = {
    "env": (str,),
    "project": (str,),
    "host": (str,),
    "port": (int,),
    "root": (str,),
    "data_dir": (str,),
    "pid": (int, type(None)),
    "server_user": (str, type(None)),
    "bindir": (str,),
    "ca_file": (str,),
    "in_project": (bool,),
    "database": (str,),
    "user": (str,),
    "started_at": (str,),
}


def validate(
    data: Mapping[str, Any],
    *,
    path: Path,
    env: str,
    cluster_roots: Sequence[Path],
    ca_files: Sequence[Path],
    temp_dirs: Sequence[str],
    fields: Sequence[str],
    server_user: str | None,
    host: str,
    role: str,
) -> None:
    """Raise ConfigError (exit 3) unless DATA is a state file ``sandbox start`` could have written
    for ENV of this project on this machine."""
    if set(data) != set(fields):
        odd = sorted(set(data) ^ set(fields))
        raise _refused(path, f"has other fields than a sandbox state file ({', '.join(odd[:3])})")
    for name, value in data.items():
        wanted = _TYPES.get(name, (str,))
        if type(value) not in wanted or (isinstance(value, str) and "\x00" in value):
            raise _refused(path, f"field {name!r} has the wrong type")
    if data["env"] != env:
        raise _refused(path, f"is for the environment {data['env']!r}, not {env!r}")
    if data["host"] != host or data["user"] != role:
        raise _refused(path, "names another host or role than the sandbox's")
    if not 1 <= data["port"] <= 65535 or not data["database"] or len(data["database"]) > 63:
        raise _refused(path, "has an impossible port or database name")
    if data["server_user"] != server_user:
        raise _refused(
            path,
            f"names the server user {data['server_user']!r}; on this machine it is {server_user!r}",
        )
    root = Path(data["root"])
    if data["data_dir"] != str(root / "data"):
        raise _refused(path, "names a data folder outside its cluster folder")
    if Path(data["ca_file"]) not in ca_files:
        raise _refused(path, f"names a CA file outside {ca_files[0].parent}")
    if data["in_project"]:
        if root not in cluster_roots:
            raise _refused(path, f"names a cluster folder outside {cluster_roots[0].parent}")
        _check_cluster_folder(path, root, owners=_owners(server_user), private=False)
    else:
        _check_temp_root(path, root, env, temp_dirs, server_user)


def _owners(server_user: str | None) -> set[int]:
    """Who may own a cluster folder: the server user, and us (a start that failed before the
    folder was handed over)."""
    owners = {os.geteuid()}
    if server_user is not None:
        with contextlib.suppress(KeyError):
            owners.add(pwd.getpwnam(server_user).pw_uid)
    return owners


def _check_temp_root(
    path: Path, root: Path, env: str, temp_dirs: Sequence[str], server_user: str | None
) -> None:
    """A cluster outside the project: exactly a folder start made with mkdtemp in a system temp
    folder, private (0700) to the server user."""
    parents = {os.path.realpath(d) for d in temp_dirs} | {os.path.normpath(d) for d in temp_dirs}
    if str(root.parent) not in parents or not re.fullmatch(
        _TEMP_NAME.format(env=re.escape(env)), root.name
    ):
        raise _refused(path, "names a cluster folder that is not one pgconnect made")
    owner = {pwd.getpwnam(server_user).pw_uid} if server_user else {os.geteuid()}
    _check_cluster_folder(path, root, owners=owner, private=True)


def _check_cluster_folder(path: Path, root: Path, *, owners: set[int], private: bool) -> None:
    st = _lstat(root)
    if st is None:
        return  # already gone: nothing will be done to it
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise _refused(path, f"names {root}, which is not a real folder (a symbolic link?)")
    if st.st_uid not in owners:
        raise _refused(path, f"names {root}, which belongs to another user (uid {st.st_uid})")
    if private and stat.S_IMODE(st.st_mode) & 0o077:
        raise _refused(path, f"names {root}, which is not private to the server user")


def check_leftover(root: Path) -> bool:
    """Is there a cluster folder at ROOT (``.pgconnect/<env>``) with no state file? Raise
    ConfigError when it is a symlink or not a folder: never remove through one."""
    st = _lstat(root)
    if st is None:
        return False
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise _refused(root, "is not a real folder (a symbolic link?)")
    return True


def unlink_entry(path: Path) -> None:
    """Remove what is at PATH (a file or a symlink itself, never what it points at)."""
    st = _lstat(path)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        raise _refused(path, "is a folder where pgconnect keeps a file")
    try:
        os.unlink(path)
    except OSError as exc:
        raise ConfigError(f"cannot remove {path}: {exc.strerror}") from None


def create_file(path: Path, data: bytes, mode: int) -> None:
    """Create PATH anew (O_EXCL | O_NOFOLLOW: nothing planted there is written through)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
