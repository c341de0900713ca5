"""The secret stores under attack or stalled: the opt-in file store held to libpq's ``.pgpass``
rules, ``secret put`` across a stalled keyring, and ``check --timeout`` bounding the keyring.

Every case is a real subprocess of the CLI; the sentinel password must be in no output and in no
file others can read.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    KeyringSession,
    cli_environ,
    start_keyring_session,
    stop_keyring_session,
    write_project,
)
from tests.faultkit import SENTINEL, error_lines, has_traceback, leaks, run_watched, tally

FILE_STORE = {"PGCONNECT_SECRET_STORE": "file"}


def store_file() -> Path:
    return Path(os.environ["HOME"]) / ".local" / "share" / "pgconnect" / "secrets.json"


def project(folder: Path, *, secrets: str = "[]") -> tuple[Path, str]:
    name = f"store-{uuid.uuid4().hex[:8]}"
    text = f'name = "{name}"\nsecrets = {secrets}\n\n[vars]\nDB_HOST = "db.example.com"\n'
    return write_project(folder, text), name


def declared(path: Path) -> list[str]:
    data = tomllib.loads(path.read_text())
    return list(data.get("secrets", []))


# --------------------------------------------------------------------------- the file store


@pytest.mark.parametrize("mode", [0o777, 0o755, 0o750, 0o701])
def test_a_file_store_folder_open_to_others_is_refused(isolated: Path, mode: int) -> None:
    path, _ = project(isolated, secrets='["DB_PASSWORD"]')
    before = path.read_bytes()
    folder = store_file().parent
    folder.mkdir(parents=True)
    folder.chmod(mode)
    for args in (["secret", "put", "DB_PASSWORD"], ["secret", "list"], ["explain"]):
        run = run_watched(args, input=SENTINEL, env=FILE_STORE, cwd=isolated, timeout=30)
        assert run.returncode == 4, run.result
        assert error_lines(run) == [
            f"error: the file store's folder {folder} is open to others (mode {mode:04o}); "
            "it was not used"
        ], run.result
        assert f"hint: chmod 700 {folder}" in run.stderr
        assert not has_traceback(run)
        assert leaks(run, SENTINEL, roots=[isolated, folder], project_file=path) == []
    assert list(folder.iterdir()) == []  # nothing was written into it
    assert path.read_bytes() == before
    tally("trust: file store folder open to others", 3)


@pytest.mark.parametrize("kind", ["fifo", "folder", "socket-like-dev-null"])
def test_a_file_store_that_is_not_a_regular_file_is_refused_at_once(
    isolated: Path, kind: str
) -> None:
    path, _ = project(isolated, secrets='["DB_PASSWORD"]')
    before = path.read_bytes()
    store = store_file()
    store.parent.mkdir(parents=True, mode=0o700)
    store.parent.chmod(0o700)
    if kind == "fifo":
        os.mkfifo(store, 0o600)
    elif kind == "folder":
        store.mkdir(mode=0o700)
    else:
        store.symlink_to("/dev/null")
    for args in (["secret", "put", "DB_PASSWORD"], ["explain"]):
        run = run_watched(args, input=SENTINEL, env=FILE_STORE, cwd=isolated, timeout=30)
        assert run.returncode == 4, run.result
        assert run.elapsed < 10, run.elapsed  # a FIFO is refused, not waited on
        lines = error_lines(run)
        assert len(lines) == 1, run.result
        assert str(store) in lines[0]
        assert "hint:" in run.stderr
        assert not has_traceback(run), run.result
        assert leaks(run, SENTINEL, roots=[isolated, store.parent], project_file=path) == []
    assert path.read_bytes() == before
    tally("trust: file store not a regular file", 2)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_file_store_folder_of_another_user_is_refused(isolated: Path) -> None:
    path, _ = project(isolated)
    folder = store_file().parent
    folder.mkdir(parents=True, mode=0o700)
    nobody = pwd.getpwnam("nobody")
    os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    run = run_watched(
        ["secret", "put", "DB_PASSWORD"], input=SENTINEL, env=FILE_STORE, cwd=isolated
    )
    assert run.returncode == 4, run.result
    assert "belongs to another user" in run.stderr
    assert leaks(run, SENTINEL, roots=[isolated, folder], project_file=path) == []
    assert list(folder.iterdir()) == []


@pytest.fixture
def locked_store(isolated: Path) -> Iterator[Path]:
    """The file store's folder, locked by another process that never lets go."""
    folder = store_file().parent
    folder.mkdir(parents=True, mode=0o700)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield folder
    finally:
        os.close(fd)


def test_a_file_store_lock_never_released_is_exit_4_within_the_deadline(
    isolated: Path, locked_store: Path
) -> None:
    path, _ = project(isolated)
    run = run_watched(
        ["secret", "put", "DB_PASSWORD"], input=SENTINEL, env=FILE_STORE, cwd=isolated, timeout=60
    )
    assert run.returncode == 4, run.result
    # A lock never released is a known outcome (nothing was written), told before the deadline.
    assert "is locked by another process (waited 4 s); nothing was changed" in run.stderr
    assert run.elapsed < 15, run.elapsed
    assert not has_traceback(run)
    assert leaks(run, SENTINEL, roots=[isolated, locked_store], project_file=path) == []
    assert "DB_PASSWORD" not in path.read_text()  # not declared: it certainly was not stored
    tally("trust: file store deadline")


# --------------------------------------------------------------------------- a keyring that stalls


@pytest.fixture
def private_keyring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyringSession]:
    session = start_keyring_session(tmp_path_factory.mktemp("stalling-keyring"))
    try:
        yield session
    finally:
        stop_keyring_session(session)


def _stall_at_create_item() -> str:
    """python -c code: pgconnect, whose keyring daemon is stopped (SIGSTOP) right before the
    Secret Service's CreateItem call is sent: the call that stores the value is queued, and
    the daemon handles it once it resumes, long after pgconnect gave up."""
    return (
        "import os, signal, sys\n"
        "import secretstorage.collection as c\n"
        "orig = c.format_secret\n"
        "def wrapped(*a, **k):\n"
        "    result = orig(*a, **k)\n"
        "    os.kill(int(os.environ['TRUST_WEDGE_PID']), signal.SIGSTOP)\n"
        "    return result\n"
        "c.format_secret = wrapped\n"
        "from pgconnect.cli import main\n"
        "main(sys.argv[1:])\n"
    )


def _run_stalling(
    args: list[str], keyring: KeyringSession, cwd: Path, stdin: str
) -> subprocess.CompletedProcess[str]:
    assert keyring.daemon is not None
    env = cli_environ({**keyring.environ(), "TRUST_WEDGE_PID": str(keyring.daemon.pid)})
    began = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _stall_at_create_item(), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=60,
        )
    finally:
        os.kill(keyring.daemon.pid, signal.SIGCONT)
    assert time.monotonic() - began < 30  # the 5 s deadline, start-up, two busy cores
    return proc


def _settled(keyring: KeyringSession, service: str, name: str) -> str | None:
    """The stored value once the resumed daemon has worked through its queue (it answers the
    lookup only after the calls queued before it)."""
    deadline = time.monotonic() + 15
    while True:
        value = keyring.lookup(service, name)
        if value is not None or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.mark.parametrize("command", ["put", "bulk"])
def test_a_keyring_stalling_on_the_store_call_never_leaves_an_undeclared_value(
    isolated: Path, private_keyring: KeyringSession, command: str
) -> None:
    path, name = project(isolated)
    if command == "put":
        args, stdin = ["secret", "put", "DB_PASSWORD"], SENTINEL
    else:
        args, stdin = ["secret", "bulk", "-"], json.dumps({"DB_PASSWORD": SENTINEL})
    proc = _run_stalling(args, private_keyring, isolated, stdin)
    assert proc.returncode == 4, proc
    assert "did not answer within 5 s" in proc.stderr, proc
    assert SENTINEL not in proc.stdout + proc.stderr
    assert not has_traceback_text(proc.stderr)
    stored = _settled(private_keyring, f"pgconnect:{name}", "DB_PASSWORD")
    # The daemon handled the queued call after pgconnect gave up: the value is stored, and so
    # it must be declared.
    assert stored == SENTINEL, "the stall did not hit the store call; the test proves nothing"
    assert declared(path) == ["DB_PASSWORD"]
    assert "stays declared" in proc.stderr or "so it is declared" in proc.stderr
    assert SENTINEL.encode() not in path.read_bytes()
    listed = run_watched(["secret", "list", "--json"], env=private_keyring.environ(), cwd=isolated)
    assert listed.returncode == 0, listed.result
    assert '"set": true' in listed.stdout
    tally("trust: stalled keyring (stored ⇒ declared)")


def test_a_keyring_that_refuses_takes_the_new_declaration_back(
    isolated: Path, private_keyring: KeyringSession
) -> None:
    """The control: a store that fails for certain (the daemon gone) leaves no declaration."""
    path, _ = project(isolated)
    before = path.read_bytes()
    code = (
        "import os, sys\n"
        "import pgconnect.store as s\n"
        "def refuse(self, service, name, value):\n"
        "    raise s.KeyringFailedError('the keyring failed: refused')\n"
        "s.KeyringStore.set = refuse\n"
        "from pgconnect.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "secret", "put", "DB_PASSWORD"],
        input=SENTINEL,
        capture_output=True,
        text=True,
        env=cli_environ(private_keyring.environ()),
        cwd=isolated,
        timeout=60,
    )
    assert proc.returncode == 4, proc
    assert path.read_bytes() == before
    assert SENTINEL not in proc.stdout + proc.stderr


def has_traceback_text(text: str) -> bool:
    return "Traceback" in text or 'File "' in text


# --------------------------------------------------------------------------- check --timeout


def test_check_timeout_bounds_a_stalled_keyring(
    isolated: Path, private_keyring: KeyringSession
) -> None:
    path, name = project(isolated)
    env = private_keyring.environ()
    stored = run_watched(["secret", "put", "DB_PASSWORD"], input=SENTINEL, env=env, cwd=isolated)
    assert stored.returncode == 0, stored.result
    assert private_keyring.daemon is not None
    os.kill(private_keyring.daemon.pid, signal.SIGSTOP)
    try:
        run = run_watched(["check", "--timeout", "2"], env=env, cwd=isolated, timeout=60)
    finally:
        os.kill(private_keyring.daemon.pid, signal.SIGCONT)
    assert run.returncode == 4, run.result
    [line] = error_lines(run)
    assert line.startswith("error: the keyring did not answer within --timeout 2 s ("), run.result
    # 2 s from pgconnect's start, plus the interpreter's start and exit; the keyring's own
    # deadline alone is 5 s.
    assert run.elapsed < 4.5, run.elapsed
    assert leaks(run, SENTINEL, roots=[isolated], project_file=path) == []
    assert f"pgconnect:{name}" not in run.stdout
    tally("trust: check --timeout bounds the keyring")
