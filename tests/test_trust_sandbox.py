"""``.pgconnect/`` is input from whoever wrote the repository: attacks on ``sandbox``.

Each attack is what a cloned repository can ship: a state file naming folders outside the project,
a program folder of its own and a ``postmaster.pid`` naming someone else's process, a symlinked
``.pgconnect``. Each runs the real CLI (as root when the tests run as root, as CI does) and proves
nothing outside the project was touched, no planted program ran, and no process was signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgconnect.cluster import server_user
from tests.conftest import KeyringSession, Result, run_cli
from tests.faultkit import error_lines, has_traceback, tally

# --------------------------------------------------------------------------- the attacker's kit


def snapshot(root: Path, skip: Path) -> dict[str, tuple[object, ...]]:
    """Everything under ROOT but SKIP: type, mode, owner, size, mtime and content hash."""
    found: dict[str, tuple[object, ...]] = {}
    for folder, dirs, names in os.walk(root, followlinks=False):
        here = Path(folder)
        if here == skip or skip in here.parents:
            dirs[:] = []
            continue
        for name in [*dirs, *names]:
            path = here / name
            if path == skip:
                continue
            st = path.lstat()
            body: object = None
            if stat.S_ISREG(st.st_mode):
                body = path.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(path)
            found[str(path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, body)
    return found


def marker_program(folder: Path, marker: Path) -> Path:
    """A folder of fake server programs; any of them, run, creates MARKER (world-writable folder
    so the server user could create it too)."""
    folder.mkdir(parents=True)
    for name in ("pg_ctl", "initdb", "postgres", "pg_controldata"):
        prog = folder / name
        prog.write_text(f'#!/bin/sh\ntouch {marker}\necho "$@" >> {marker}\nexit 0\n')
        prog.chmod(0o755)
    return folder


@pytest.fixture
def decoy() -> Iterator[subprocess.Popen[bytes]]:
    """A sleeping process that must survive whatever the CLI does."""
    proc = subprocess.Popen(["sleep", "600"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def init_project(folder: Path) -> str:
    name = f"trust-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    result = run_cli("init", "--name", name, cwd=folder)
    assert result.returncode == 0, result
    return name


def state_for(folder: Path, name: str, **over: Any) -> dict[str, Any]:
    """A state file as start writes it for FOLDER's sandbox, with OVER changed."""
    root = folder / ".pgconnect" / "sandbox"
    data: dict[str, Any] = {
        "env": "sandbox",
        "project": name,
        "host": "localhost",
        "port": 54329,
        "root": str(root),
        "data_dir": str(root / "data"),
        "pid": None,
        "server_user": server_user(),
        "bindir": "/usr/lib/postgresql/15/bin",
        "ca_file": str(folder / ".pgconnect" / "sandbox-ca.crt"),
        "in_project": True,
        "database": name,
        "user": "app",
        "started_at": "2026-01-01T00:00:00+00:00",
    }
    data.update(over)
    return data


def plant(folder: Path, state: dict[str, Any]) -> Path:
    dot = folder / ".pgconnect"
    dot.mkdir(mode=0o755, exist_ok=True)
    path = dot / "sandbox.json"
    path.write_text(json.dumps(state))
    return path


def assert_refused(result: Result, *words: str) -> None:
    assert result.returncode == 3, result
    lines = error_lines(result)
    assert len(lines) == 1, result
    assert "did not act on it" in lines[0], result
    for word in words:
        assert word in lines[0], result
    assert not has_traceback(result), result


@pytest.fixture
def arena() -> Iterator[tuple[Path, Path, str]]:
    """(everything, the project folder, its name): a victim folder and file sit beside it. The
    folder is one the server user can reach, so a sandbox would keep its cluster in the project."""
    base = Path(tempfile.mkdtemp(prefix="pgconnect-test-trust-"))
    os.chmod(base, 0o755)
    victim = base / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me\n")
    (base / "victim-file").write_text("keep me too\n")
    project = base / "project"
    name = init_project(project)
    try:
        yield base, project, name
    finally:
        if (project / ".pgconnect").is_dir() and not (project / ".pgconnect").is_symlink():
            run_cli("sandbox", "stop", cwd=project)  # in case a test failed half-way
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------- paths outside


@pytest.mark.parametrize(
    "over",
    [
        pytest.param({"root": "{victim}", "data_dir": "{victim}/data"}, id="root-outside"),
        pytest.param({"ca_file": "{base}/victim-file"}, id="ca-outside"),
        pytest.param(
            {"root": "{project}/.pgconnect/../../victim", "data_dir": "{victim}/data"},
            id="root-dotdot",
        ),
        pytest.param(
            {
                "root": "{tmp}/pgconnect-x-sandbox-abcdefgh",
                "data_dir": "{tmp}/pgconnect-x-sandbox-abcdefgh/data",
                "in_project": False,
            },
            id="temp-root-not-ours",
        ),
        pytest.param(
            {"root": "{victim}", "data_dir": "{victim}/data", "in_project": False},
            id="temp-root-outside-temp",
        ),
        pytest.param({"server_user": "root"}, id="server-user-root"),
        pytest.param({"port": True}, id="bool-port"),
        pytest.param({"extra": 1}, id="unknown-field"),
        pytest.param({"data_dir": "{victim}"}, id="data-dir-elsewhere"),
    ],
)
@pytest.mark.parametrize("command", ["stop", "start", "status"])
def test_a_state_file_naming_paths_outside_is_refused(
    arena: tuple[Path, Path, str], over: dict[str, Any], command: str
) -> None:
    base, project, name = arena
    tmp = Path(tempfile.gettempdir())
    fake_temp = tmp / f"pgconnect-x-sandbox-{uuid.uuid4().hex[:8]}"
    values = {"victim": base / "victim", "base": base, "project": project, "tmp": tmp}
    state = state_for(project, name)
    for key, value in over.items():
        state[key] = value.format(**values) if isinstance(value, str) else value
    if "{tmp}" in str(over.get("root", "")):
        # A real folder of the shape start makes, but not private to the server user.
        fake_temp.mkdir(mode=0o755)
        (fake_temp / "data").mkdir()
        (fake_temp / "data" / "keep").write_text("x")
        state["root"], state["data_dir"] = str(fake_temp), str(fake_temp / "data")
    plant(project, state)
    before = snapshot(base, project)
    try:
        result = run_cli("sandbox", command, cwd=project)
        assert_refused(result)
        assert snapshot(base, project) == before
        assert (project / ".pgconnect" / "sandbox.json").exists()  # refused, not "cleaned up"
        if fake_temp.exists():
            assert (fake_temp / "data" / "keep").exists()
    finally:
        shutil.rmtree(fake_temp, ignore_errors=True)
    tally("trust: sandbox state files naming paths outside")


def test_the_sandbox_paths_as_start_wrote_them_are_accepted(arena: tuple[Path, Path, str]) -> None:
    """The control: the same state with nothing changed is acted on (a stale sandbox)."""
    base, project, name = arena
    plant(project, state_for(project, name))
    (project / ".pgconnect" / "sandbox" / "data").mkdir(parents=True)
    before = snapshot(base, project)
    result = run_cli("sandbox", "stop", cwd=project)
    assert result.returncode == 0, result
    assert "was not running" in result.stderr
    assert not (project / ".pgconnect").exists()
    assert snapshot(base, project) == before


# --------------------------------------------------------------------------- planted programs, pids


@pytest.mark.parametrize("decoy_cwd", ["elsewhere", "datadir"])
def test_a_planted_bindir_and_postmaster_pid_run_nothing_and_kill_nothing(
    arena: tuple[Path, Path, str], decoy_cwd: str
) -> None:
    base, project, name = arena
    marker = base / "ran"
    evil = marker_program(base / "evil-bin", marker)
    state = state_for(project, name, bindir=str(evil))
    plant(project, state)
    datadir = project / ".pgconnect" / "sandbox" / "data"
    datadir.mkdir(parents=True)
    user = server_user()
    # "postgres" in its command line: what a loose check of the pid would take for a server.
    argv = [
        "/usr/bin/python3",
        "-c",
        "import time; time.sleep(600)",
        "postgres",
        "-D",
        str(datadir),
    ]
    if user is not None and decoy_cwd == "datadir":
        # Run as the server user, in the data folder: only the program name tells it apart.
        shutil.chown(datadir.parent, user)
        shutil.chown(datadir, user)
        argv = ["runuser", "-u", user, "--", *argv]
    proc = subprocess.Popen(argv, cwd=datadir if decoy_cwd == "datadir" else base)
    sleeper = proc.pid
    try:
        if argv[0] == "runuser":  # the sleeper's own pid: runuser's child
            import time

            for _ in range(100):
                kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
                if kids:
                    sleeper = int(kids[0])
                    break
                time.sleep(0.05)
        (datadir / "postmaster.pid").write_text(f"{sleeper}\n{datadir}\n")
        for command in ("status", "stop"):
            result = run_cli("sandbox", command, cwd=project)
            if command == "status":
                assert result.returncode == 1, result  # not running: the pid is not its server
                continue
            assert result.returncode == 0, result
            assert "was not running" in result.stderr, result
        assert not marker.exists(), marker.read_text()
        assert proc.poll() is None, "the decoy was killed"
        os.kill(sleeper, 0)
    finally:
        if sleeper != proc.pid:  # runuser's child outlives a killed runuser
            with contextlib.suppress(ProcessLookupError):
                os.kill(sleeper, signal.SIGKILL)
        proc.kill()
        proc.wait()
    tally("trust: planted bindir and postmaster.pid")


# --------------------------------------------------------------------------- symlinks


@pytest.mark.parametrize("command", ["start", "stop", "status"])
def test_a_symlinked_dot_pgconnect_is_refused(
    arena: tuple[Path, Path, str], command: str, keyring_session: KeyringSession
) -> None:
    base, project, name = arena
    target = base / "victim"
    (project / ".pgconnect").symlink_to(target)
    (target / "sandbox.json").write_text(json.dumps(state_for(project, name)))
    (target / "sandbox").mkdir()
    before = snapshot(base, project)
    result = run_cli("sandbox", command, cwd=project, env=keyring_session.environ())
    assert_refused(result, "symbolic link")
    assert snapshot(base, project) == before
    assert stat.S_ISLNK((project / ".pgconnect").lstat().st_mode)
    tally("trust: symlinked .pgconnect")


@pytest.mark.parametrize("what", ["state-symlink", "state-fifo", "state-dir", "cluster-symlink"])
def test_symlinks_and_fifos_inside_dot_pgconnect_are_refused(
    arena: tuple[Path, Path, str], what: str, keyring_session: KeyringSession
) -> None:
    base, project, name = arena
    dot = project / ".pgconnect"
    dot.mkdir(mode=0o755)
    if what == "state-symlink":
        (base / "victim" / "s.json").write_text(json.dumps(state_for(project, name)))
        (dot / "sandbox.json").symlink_to(base / "victim" / "s.json")
    elif what == "state-fifo":
        os.mkfifo(dot / "sandbox.json")
    elif what == "state-dir":
        (dot / "sandbox.json").mkdir()
    else:
        (dot / "sandbox").symlink_to(base / "victim")
    before = snapshot(base, project)
    result = run_cli("sandbox", "start", cwd=project, env=keyring_session.environ(), timeout=30)
    assert_refused(result)
    assert snapshot(base, project) == before
    tally("trust: symlinks and FIFOs in .pgconnect")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_state_file_of_another_user_is_refused(arena: tuple[Path, Path, str]) -> None:
    _base, project, name = arena
    path = plant(project, state_for(project, name))
    nobody = pwd.getpwnam("nobody")
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    result = run_cli("sandbox", "stop", cwd=project)
    assert_refused(result, "another user")
    assert path.exists()


def test_a_world_writable_dot_pgconnect_is_refused(arena: tuple[Path, Path, str]) -> None:
    _base, project, name = arena
    plant(project, state_for(project, name))
    os.chmod(project / ".pgconnect", 0o777)
    result = run_cli("sandbox", "stop", cwd=project)
    assert_refused(result, "written by others")
    assert "chmod go-w" in result.stderr


# --------------------------------------------------------------------------- a real sandbox


def _pids_in(datadir: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(datadir):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_a_real_sandbox_ignores_a_planted_ca_link_and_a_swapped_bindir(
    arena: tuple[Path, Path, str], keyring_session: KeyringSession
) -> None:
    """Start over a repository's ``.pgconnect/sandbox-ca.crt`` symlink (and a FIFO for its
    ``.gitignore``): the link is replaced, its target untouched, nothing hangs. Then the state file's bindir is swapped for a folder of marker programs:
    stop still stops the server with the machine's own pg_ctl, and no marker program runs."""
    base, project, _name = arena
    env = keyring_session.environ()
    dot = project / ".pgconnect"
    dot.mkdir(mode=0o755)
    (dot / "sandbox-ca.crt").symlink_to(base / "victim-file")
    os.mkfifo(project / ".gitignore")  # read by start for its advice: must not hang it
    before = snapshot(base, project)
    started = run_cli("sandbox", "start", cwd=project, env=env, timeout=120)
    assert started.returncode == 0, started
    ca = dot / "sandbox-ca.crt"
    assert stat.S_ISREG(ca.lstat().st_mode)
    assert b"BEGIN CERTIFICATE" in ca.read_bytes()
    assert snapshot(base, project) == before
    state_path = dot / "sandbox.json"
    state = json.loads(state_path.read_text())
    datadir = Path(state["data_dir"])
    assert _pids_in(datadir), "the sandbox server is not running"
    marker = base / "ran"
    state["bindir"] = str(marker_program(base / "evil-bin", marker))
    state_path.write_text(json.dumps(state))
    before = snapshot(base, project)
    stopped = run_cli("sandbox", "stop", cwd=project, env=env, timeout=120)
    assert stopped.returncode == 0, stopped
    assert "stopped the sandbox" in stopped.stderr
    assert not marker.exists()
    assert _pids_in(datadir) == []
    assert not dot.exists()
    assert snapshot(base, project) == before
    tally("trust: real sandbox with planted files")
