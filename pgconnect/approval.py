"""Which secret commands the user of this machine has approved (docs/secret-commands.md; direnv's ``allow``).

A project file travels through git, so a command in it is code written by someone else. It runs
only once this machine's user approved exactly it: the approval is a SHA-256 of the project file's
real path, the environment, the secret's name and the command's words, kept in the user's data
folder (``$XDG_DATA_HOME/pgconnect/approved-commands.json``, else ``~/.local/share/pgconnect``),
outside every repository. Moving the project, or changing one word of the command, asks again.

The file is 0600, written atomically under a lock on its folder; one that others could write is
refused (they could approve commands for you), with the ``chmod`` that fixes it. Nothing here
prints or asks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgconnect.errors import CommandError, SecretStoreError

FILENAME = "approved-commands.json"
VERSION = 1


class ApprovalStoreError(SecretStoreError):
    """The approvals file cannot be read, is unsafe, or cannot be written (exit 4)."""


@dataclass(frozen=True)
class Subject:
    """One command as approved: where it is written and what it runs."""

    project: str  # the project file's real path
    env: str | None
    name: str
    argv: tuple[str, ...]
    #: SHA-256 of the program when argv[0] names a file by path (a script in the repository):
    #: changing the script asks again, as changing a word of the command does.
    program: str | None = None

    @property
    def digest(self) -> str:
        parts: list[object] = [self.project, self.env, self.name, list(self.argv)]
        if self.program is not None:
            parts.append(self.program)
        text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def subject(project_file: Path, env: str | None, name: str, argv: Sequence[str]) -> Subject:
    """The approval subject for NAME's command in PROJECT_FILE (resolved to its real path, so a
    symlink and its target are the same project and a copy elsewhere is not)."""
    real = os.path.realpath(project_file)
    return Subject(real, env, name, tuple(argv), _program_digest(argv[0], Path(real).parent))


def _program_digest(program: str, folder: Path) -> str | None:
    """The program's SHA-256 when it is named by a path ("./get-pw.sh", "/opt/x/pw"); a bare
    name found on PATH ("op", "aws") is the machine's, not the repository's."""
    if "/" not in program:
        return None
    target = Path(program) if os.path.isabs(program) else folder / program
    digest = hashlib.sha256()
    try:
        with open(target, "rb") as f:
            for block in iter(lambda: f.read(65536), b""):
                digest.update(block)
    except OSError:
        return "missing"  # it cannot run anyway; once it exists, it needs approving
    return digest.hexdigest()


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "pgconnect"


def path() -> Path:
    return data_dir() / FILENAME


APPROVED = "approved"
CHANGED = "changed"  # this file's NAME in ENV was approved with other words
MOVED = "moved"  # these words were approved for a project file elsewhere
NEW = "new"


def is_approved(item: Subject) -> bool:
    return item.digest in _read(path())


def status(item: Subject) -> str:
    """APPROVED, or why not: CHANGED, MOVED, NEW (the record's details only explain; the digest
    alone decides)."""
    approved = _read(path())
    if item.digest in approved:
        return APPROVED
    records = [r for r in approved.values() if isinstance(r, dict)]
    if any(
        r.get("project") == item.project and r.get("env") == item.env and r.get("name") == item.name
        for r in records
    ):
        return CHANGED
    if any(
        r.get("env") == item.env and r.get("name") == item.name and r.get("argv") == list(item.argv)
        for r in records
    ):
        return MOVED
    return NEW


def approve(items: Sequence[Subject]) -> None:
    """Record ITEMS as approved (read-modify-write under a lock; an atomic 0600 rewrite)."""
    if not items:
        return
    import time

    target = path()
    with _locked(target.parent):
        data = _read(target)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for item in items:
            # The details are for a person reading the file; only the digest decides.
            data[item.digest] = {
                "project": item.project,
                "env": item.env,
                "name": item.name,
                "argv": list(item.argv),
                "program_sha256": item.program,
                "approved_at": now,
            }
        _write(target, data)


def _read(target: Path) -> dict[str, Any]:
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ApprovalStoreError(
            f"cannot read the approved commands in {target}: {exc.strerror}"
        ) from None
    try:
        st = os.fstat(fd)
        _check_safe(target, st)
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read()
    finally:
        os.close(fd)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("approved"), dict):
        raise ApprovalStoreError(
            f"{target} is not a pgconnect approvals file; no command was approved from it",
            hint=f"move it away and approve again: mv {target} {target}.bad && "
            "pgconnect secret allow",
        )
    return dict(doc["approved"])


def _check_safe(target: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ApprovalStoreError(f"{target} is not a regular file")
    if st.st_uid != os.getuid():
        raise ApprovalStoreError(
            f"{target} belongs to another user (uid {st.st_uid}); its approvals are not used",
            hint=f"remove it and approve again: rm {target} && pgconnect secret allow",
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        # Like libpq's .pgpass check, stricter for writes: whoever can write it approves commands.
        raise ApprovalStoreError(
            f"{target} can be read or written by others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); its approvals are not used",
            hint=f"chmod 600 {target}",
        )


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    import fcntl

    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise ApprovalStoreError(
            f"cannot use {folder} for approvals: {exc.strerror}; nothing was approved"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(target: Path, approved: dict[str, Any]) -> None:
    from pgconnect.atomic import write as atomic_write

    data = json.dumps({"version": VERSION, "approved": approved}, indent=2, ensure_ascii=False)
    try:
        atomic_write(target, (data + "\n").encode("utf-8"), private=True)
    except CommandError as exc:
        raise ApprovalStoreError(f"{exc.message}; nothing was approved") from None
