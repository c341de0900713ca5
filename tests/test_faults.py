"""Faults: what pgconnect does when the world breaks under it.

- the server restarts (``pg_ctl restart -m fast``) or the backend is terminated in the middle of a
  query → exit 5 (the connection was lost; a script may retry), one error line, no traceback, and
  no JSON document that parses as complete;
- ``var set`` killed with SIGKILL at random moments and at each step of the atomic write, and a
  full disk → the project file is the old or the new version, never broken; what a kill between
  mkstemp and rename necessarily leaves is removed by the next edit;
- a wedged keyring daemon (SIGSTOP) → every command that needs it fails with exit 4 within its
  deadline;
- a closed stdout (``| head -1``) → every command ends quietly with exit 0.

The server faults use a cluster of this module's own, so the shared ones are never disturbed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgconnect.cluster import Cluster, chown_to, free_port, server_user
from tests.cli_tree import python_argv
from tests.conftest import (
    HBA_ANY,
    PKI,
    KeyringSession,
    Server,
    Servers,
    cli_environ,
    project_for,
    start_keyring_session,
    stop_keyring_session,
    write_project,
)
from tests.faultkit import SENTINEL, error_lines, has_traceback, leaks, run_watched, tally
from tests.plugin_servers import server_binaries
from tests.querytools import backends_running, wait_for

# --------------------------------------------------------------------------- a cluster to break


@pytest.fixture(scope="module")
def victim(pki_files: PKI) -> Iterator[Server]:
    """A cluster of this module's own, restarted and having its backends killed by the tests."""
    base = Path(tempfile.mkdtemp(prefix="pgconnect-fault-cluster-"))
    user = server_user()
    chown_to(user, base)
    password = "fault-" + secrets.token_urlsafe(12)
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    chown_to(user, pwfile)
    bindir = server_binaries()  # a skip with the reason when the server is not installed
    cluster = Cluster(root=base / "victim", port=free_port(), bindir=bindir, user=user)
    try:
        cluster.initdb(pwfile)
        cluster.configure(ssl=False, hba=HBA_ANY)
        cluster.start()
        yield Server(
            name="victim",
            cluster=cluster,
            password=password,
            ca_file=pki_files.ca_file,
            wrong_ca_file=pki_files.wrong_ca_file,
            tls=False,
        )
    finally:
        with contextlib.suppress(Exception):
            cluster.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)


def victim_project(server: Server, folder: Path) -> dict[str, str]:
    project_for(server, folder, name="victim", sslmode="disable")
    return {"DB_PASSWORD": server.password}


class Drain:
    """Read a process's stdout in a thread (a blocked writer would not notice anything)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.stream = proc.stdout
        self.data = bytearray()
        self.first = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while chunk := os.read(self.stream.fileno(), 65536):
            self.data += chunk
            if b"\n" in self.data:
                self.first.set()
        self.first.set()

    def join(self) -> bytes:
        self.thread.join(30)
        return bytes(self.data)


def parses_as_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


# A query that streams rows for a long while at a bounded rate (1 ms a row).
SLOW_ROWS = "select g, {tag} as tag, pg_sleep(0.001) from generate_series(1, 100000) g"


def start_query(folder: Path, env: dict[str, str], fmt: str, tag: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        python_argv("query", "--format", fmt, SLOW_ROWS.format(tag=f"'{tag}'")),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_environ({**env, "DB_APPLICATION_NAME": tag}),
        cwd=folder,
    )


def assert_lost_connection(proc: subprocess.Popen[bytes], out: bytes, fmt: str) -> None:
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert proc.returncode == 5, (proc.returncode, err)
    assert not has_traceback_text(err), err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: the connection to the server was lost during the query"), err
    assert out, "rows were printed before the fault"
    if fmt == "json":
        # The document was never closed: a reader cannot take it for the complete result.
        assert not parses_as_json(out), out[-200:]
    if fmt == "jsonl":
        # Every line printed is one whole object; the exit status says the stream is incomplete.
        for line in out.splitlines()[:-1]:
            json.loads(line)


def has_traceback_text(text: str) -> bool:
    return "Traceback" in text or "BrokenPipeError" in text or "Exception ignored" in text


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_server_restart_during_a_query_is_exit_5_and_no_complete_json(
    victim: Server, isolated: Path, fmt: str
) -> None:
    env = victim_project(victim, isolated)
    tag = "restart" + secrets.token_hex(4)
    proc = start_query(isolated, env, fmt, tag)
    drain = Drain(proc)
    try:
        assert drain.first.wait(30), "no row before the restart"
        victim.cluster.restart(mode="fast")
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_lost_connection(proc, drain.join(), fmt)
    # The server is back, and so is pgconnect.
    again = run_watched(["query", "--json", "select 1 as back"], env=env, cwd=isolated)
    assert again.returncode == 0, again.result
    assert json.loads(again.stdout) == [{"back": 1}]
    tally("faults: server restarted mid-query (exit 5, no complete JSON)")


@pytest.mark.parametrize("fmt", ["json", "jsonl", "plain"])
def test_backend_terminated_during_a_query_is_exit_5(
    victim: Server, isolated: Path, fmt: str
) -> None:
    env = victim_project(victim, isolated)
    tag = "terminate" + secrets.token_hex(4)
    proc = start_query(isolated, env, fmt, tag)
    drain = Drain(proc)
    try:
        assert drain.first.wait(30), "no row before the termination"
        killed = victim.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
            tag,
        )
        assert killed == [(True,)]
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_lost_connection(proc, drain.join(), fmt)
    tally("faults: backend terminated mid-query (exit 5, no complete JSON)")


def test_a_cancelled_query_is_a_query_error_not_a_lost_connection(
    victim: Server, isolated: Path
) -> None:
    """pg_cancel_backend ends the statement, not the session: the server reported an error for
    the SQL (57014), exit 1, as for a statement timeout."""
    env = victim_project(victim, isolated)
    tag = "cancel" + secrets.token_hex(4)
    proc = start_query(isolated, env, "json", tag)
    drain = Drain(proc)
    try:
        assert drain.first.wait(30)
        victim.execute(
            "select pg_cancel_backend(pid) from pg_stat_activity where application_name = %s", tag
        )
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = drain.join()
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert proc.returncode == 1, err
    assert "canceling statement due to user request" in err
    assert "SQLSTATE: 57014" in err
    assert not parses_as_json(out)
    tally("faults: query cancelled by the server (exit 1)")


def test_check_during_a_restart_fails_cleanly(victim: Server, isolated: Path) -> None:
    """check while the server is down then back: each run gives a verdict, never a traceback."""
    env = victim_project(victim, isolated)
    victim.cluster.stop(mode="fast")
    try:
        down = run_watched(["check", "--json", "--timeout", "5"], env=env, cwd=isolated)
    finally:
        victim.cluster.start()
    assert down.returncode == 5, down.result
    assert json.loads(down.stdout)["results"][0]["stage"] == "tcp"
    up = run_watched(["check", "--json"], env=env, cwd=isolated)
    assert up.returncode == 0, up.result
    tally("faults: server down during check (exit 5)")


# --------------------------------------------------------------------------- SIGKILL during var set

TEMP = re.compile(r"\.pgconnect\.toml\.[a-z0-9_]{8}\.tmp\Z")


def temporaries(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if TEMP.match(n))


def keys(path: Path) -> dict[str, str]:
    """The [vars] of PATH, read with tomllib: raises if the file is broken."""
    data = tomllib.loads(path.read_text())
    assert data["name"] == "killed"
    return dict(data["vars"])


def test_var_set_killed_at_random_moments_leaves_old_or_new(isolated: Path) -> None:
    path = write_project(
        isolated, '# a comment that must survive\nname = "killed"\n\n[vars]\nDB_NAME = "app"\n'
    )
    env = cli_environ()
    expected = {"DB_NAME": "app"}
    rng = random.Random(int(SENTINEL[-6:], 16))
    outcomes = {"old": 0, "new": 0}
    left = 0
    for i in range(24):
        key, value = f"KEY_{i:02d}", f"value {i} " + "x" * rng.randrange(0, 3000)
        proc = subprocess.Popen(
            python_argv("var", "set", key, value),
            cwd=isolated,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.05, 0.45))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = keys(path)  # never broken
        if key in now:
            assert now[key] == value
            expected[key] = value
            outcomes["new"] += 1
        else:
            outcomes["old"] += 1
        assert now == expected
        assert path.read_text().startswith("# a comment that must survive\n")
        left = max(left, len(temporaries(isolated)))
    tally("faults: SIGKILL during var set (random moment)", 24)
    # Whatever the kills left, one more edit cleans up and lands.
    done = subprocess.run(
        python_argv("var", "set", "FINAL", "1"), cwd=isolated, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert keys(path) == {**expected, "FINAL": "1"}
    assert temporaries(isolated) == []
    assert outcomes["old"] + outcomes["new"] == 24


KILL_AT = """
import os, signal, sys, tempfile

point = sys.argv.pop(1)
real_mkstemp, real_fsync, real_replace = tempfile.mkstemp, os.fsync, os.replace

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def mkstemp(*a, **k):
    fd, name = real_mkstemp(*a, **k)
    if point == "after-mkstemp":
        die()
    return fd, name

def fsync(fd):
    if point == "before-fsync":
        die()
    real_fsync(fd)

def replace(src, dst):
    if point == "before-rename":
        die()
    real_replace(src, dst)
    if point == "after-rename":
        die()

tempfile.mkstemp, os.fsync, os.replace = mkstemp, fsync, replace
from pgconnect.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize(
    ("point", "lands", "leaves"),
    [
        ("after-mkstemp", False, True),
        ("before-fsync", False, True),
        ("before-rename", False, True),
        ("after-rename", True, False),
    ],
)
def test_var_set_killed_at_each_step_of_the_write(
    isolated: Path, point: str, lands: bool, leaves: bool
) -> None:
    """SIGKILL at each step of atomic_write (the kill is placed by wrapping the step in the child
    process): before the rename the old file is whole and a temporary is necessarily left; the
    next edit removes it."""
    path = write_project(isolated, 'name = "killed"\n[vars]\nDB_NAME = "app"\n')
    before = path.read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT, point, "var", "set", "DB_HOST", "new.example.com"],
        cwd=isolated,
        env=cli_environ(),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if lands:
        assert keys(path) == {"DB_NAME": "app", "DB_HOST": "new.example.com"}
    else:
        assert path.read_bytes() == before
    assert bool(temporaries(isolated)) == leaves
    again = run_watched(["var", "set", "DB_PORT", "5433"], cwd=isolated)
    assert again.returncode == 0, again.result
    assert temporaries(isolated) == []
    assert keys(path)["DB_PORT"] == "5433"
    tally("faults: SIGKILL during var set (at each write step)")


# --------------------------------------------------------------------------- a full disk


def fill(folder: Path, leave: int) -> None:
    """Fill the file system of FOLDER until at most LEAVE bytes are free."""
    with open(folder / "filler", "wb", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"x" * 4096)
    if leave:
        size = (folder / "filler").stat().st_size
        os.truncate(folder / "filler", max(0, size - leave))


@pytest.mark.parametrize("leave", [0, 1024, 4096, 8192])
def test_var_set_on_a_full_disk_keeps_the_old_file(small_disk: Path, leave: int) -> None:
    """The new file needs more room than is left (at several amounts of room): the write fails
    partway, and the old file stays whole."""
    path = write_project(small_disk, 'name = "full"\n[vars]\nDB_NAME = "app"\n')
    before = path.read_bytes()
    fill(small_disk, leave)
    run = run_watched(["var", "set", "APP_BLOB", "x" * 20000], cwd=small_disk)
    assert run.returncode == 1, run.result
    assert error_lines(run) == [
        f"error: cannot write {path}: the disk is full; the file was not changed"
    ]
    assert not has_traceback(run)
    assert path.read_bytes() == before
    assert temporaries(small_disk) == []
    tally("faults: full disk (var set, init, secret put/bulk)")


def test_init_and_secret_put_on_a_full_disk(
    small_disk: Path, keyring_session: KeyringSession
) -> None:
    project = small_disk / "project"
    project.mkdir()
    path = write_project(project, 'name = "full-' + SENTINEL[-6:] + '"\n[vars]\n')
    before = path.read_bytes()
    store = small_disk / "data"
    fill(small_disk, 0)
    # init --force: the new file cannot be written; the old one stays.
    init = run_watched(["init", "--force", "--name", "other"], cwd=project)
    assert init.returncode == 1, init.result
    assert "the disk is full" in init.stderr
    # secret put into the file store on the full disk: exit 4 (the store), nothing half-written.
    env = {"PGCONNECT_SECRET_STORE": "file", "XDG_DATA_HOME": str(store)}
    put = run_watched(["secret", "put", "DB_PASSWORD"], input=SENTINEL, env=env, cwd=project)
    assert put.returncode == 4, put.result
    assert len(error_lines(put)) == 1, put.result
    assert not has_traceback(put)
    # secret put into the keyring: the declaration cannot be written, so the value is taken
    # back out of the keyring; exit 1.
    put2 = run_watched(
        ["secret", "put", "DB_PASSWORD"], input=SENTINEL, env=keyring_session.environ(), cwd=project
    )
    assert put2.returncode == 1, put2.result
    assert error_lines(put2) == [
        f"error: cannot write {path}: the disk is full; neither the file nor the secret store "
        "was changed"
    ]
    assert keyring_session.lookup(f"pgconnect:full-{SENTINEL[-6:]}", "DB_PASSWORD") is None
    for run in (init, put, put2):
        assert leaks(run, SENTINEL, roots=[small_disk], project_file=path) == []
    assert path.read_bytes() == before
    assert temporaries(project) == []
    if store.exists():
        assert [p.name for p in store.rglob("*.tmp")] == []
    tally("faults: full disk (var set, init, secret put/bulk)", 3)


def test_keyring_changes_are_taken_back_when_the_file_cannot_record_them(
    small_disk: Path, keyring_session: KeyringSession
) -> None:
    """secret put/bulk change the keyring inside the edit of the project file; when the file
    cannot be written, the keyring is put back: no value the file does not declare, no
    declaration whose value was deleted."""
    project = small_disk / "project"
    project.mkdir()
    path = write_project(project, 'name = "undo"\n[vars]\n')
    env = keyring_session.environ()
    first = run_watched(["secret", "put", "API_TOKEN"], input="old-token", env=env, cwd=project)
    assert first.returncode == 0, first.result
    before = path.read_bytes()
    fill(small_disk, 0)
    runs = [
        run_watched(["secret", "put", "DB_PASSWORD"], input=SENTINEL, env=env, cwd=project),
        # changes a declared value and adds a new one
        run_watched(
            ["secret", "bulk"],
            input=json.dumps({"API_TOKEN": SENTINEL + "-new", "DB_PASSWORD": SENTINEL}),
            env=env,
            cwd=project,
        ),
        # deletes a declared value (the file would lose its declaration) and adds a new one
        run_watched(
            ["secret", "bulk"],
            input=json.dumps({"API_TOKEN": None, "DB_PASSWORD": SENTINEL}),
            env=env,
            cwd=project,
        ),
    ]
    for run in runs:
        assert run.returncode == 1, run.result
        assert error_lines(run) == [
            f"error: cannot write {path}: the disk is full; neither the file nor the secret "
            "store was changed"
        ]
        assert not has_traceback(run)
        assert leaks(run, SENTINEL, roots=[small_disk], project_file=path) == []
        assert keyring_session.lookup("pgconnect:undo", "API_TOKEN") == "old-token"
        assert keyring_session.lookup("pgconnect:undo", "DB_PASSWORD") is None
    assert path.read_bytes() == before
    assert temporaries(project) == []
    tally("faults: full disk (var set, init, secret put/bulk)", len(runs))


def test_the_file_store_on_a_full_disk_is_exit_4(small_disk: Path, isolated: Path) -> None:
    write_project(isolated, 'name = "fullstore"\n[vars]\n')
    env = {"PGCONNECT_SECRET_STORE": "file", "XDG_DATA_HOME": str(small_disk)}
    first = run_watched(["secret", "put", "DB_PASSWORD"], input="short", env=env, cwd=isolated)
    assert first.returncode == 0, first.result
    store = small_disk / "pgconnect" / "secrets.json"
    before = store.read_bytes()
    fill(small_disk, 0)
    run = run_watched(
        ["secret", "put", "API_TOKEN"], input=SENTINEL + "y" * 20000, env=env, cwd=isolated
    )
    assert run.returncode == 4, run.result
    assert error_lines(run) == [
        f"error: cannot write the file store {store}: the disk is full; nothing was changed"
    ]
    assert store.read_bytes() == before
    assert sorted(os.listdir(store.parent)) == ["secrets.json"]
    assert leaks(run, SENTINEL, roots=[small_disk]) == []
    tally("faults: full disk (var set, init, secret put/bulk)")


# --------------------------------------------------------------------------- a wedged keyring


@pytest.fixture
def wedged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyringSession]:
    """A private keyring daemon, stopped with SIGSTOP after the test stored what it needs."""
    session = start_keyring_session(tmp_path_factory.mktemp("wedged-keyring"))
    try:
        yield session
    finally:
        stop_keyring_session(session)


def test_a_wedged_keyring_is_exit_4_within_the_deadline_for_every_command(
    wedged: KeyringSession, servers: Servers, isolated: Path
) -> None:
    name = "wedged-" + SENTINEL[-6:]
    project_for(servers.tls_on, isolated, name=name, extra=[])
    path = isolated / "pgconnect.toml"
    env = wedged.environ()
    stored = run_watched(["secret", "put", "DB_PASSWORD"], input=SENTINEL, env=env, cwd=isolated)
    assert stored.returncode == 0, stored.result
    before = path.read_bytes()
    commands = [
        ["secret", "list"],
        ["secret", "put", "API_TOKEN"],
        ["secret", "delete", "DB_PASSWORD", "--yes"],
        ["secret", "bulk", "-"],
        ["explain"],
        ["check"],
        ["query", "select 1"],
        ["url", "--reveal"],
        ["exec", "--", "true"],
        ["psql", "-c", "select 1"],
    ]
    stdin = {"put": SENTINEL + "2", "bulk": json.dumps({"API_TOKEN": SENTINEL + "3"})}
    assert wedged.daemon is not None
    os.kill(wedged.daemon.pid, signal.SIGSTOP)
    try:
        runs: list[Any] = [None] * len(commands)

        def go(i: int) -> None:
            args = commands[i]
            runs[i] = run_watched(
                args,
                input=stdin.get(args[1]) if len(args) > 1 else None,
                env=env,
                cwd=isolated,
                timeout=60,
                interval=0.05,  # ten samplers at once: spare the two cores
            )

        threads = [threading.Thread(target=go, args=(i,)) for i in range(len(commands))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    finally:
        os.kill(wedged.daemon.pid, signal.SIGCONT)
    for args, run in zip(commands, runs, strict=True):
        assert run is not None, args
        # secret list and explain need no secret value: the wedged keyring is a warning and the
        # secret shows as unknown (docs/headless.md); every other command needs one: exit 4.
        shows_only = args in (["secret", "list"], ["explain"])
        assert run.returncode == (0 if shows_only else 4), (args, run.result)
        assert "did not answer within 5 s" in run.stderr, (args, run.result)
        # 5 s deadline + start-up, with all ten waiting at once on two shared cores.
        assert run.elapsed < 20, (args, run.elapsed)
        assert not has_traceback(run), (args, run.result)
        assert leaks(run, SENTINEL, roots=[isolated], project_file=path) == [], args
    assert path.read_bytes() == before
    tally("faults: wedged keyring (exit 4 within the deadline)", len(commands))


# --------------------------------------------------------------------------- a closed stdout


def closed_pipe_run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run with stdout a pipe nobody reads any more (its read end closed before the start): the
    first write or flush meets EPIPE, however small the output."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            python_argv(*args),
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=cli_environ(env),
            cwd=cwd,
            timeout=60,
        )
    finally:
        os.close(write_end)
    return proc.returncode, proc.stderr.decode()


def head_one(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, bytes]:
    """``pgconnect ARGS | head -1``: (pgconnect's status, its stderr, what head printed)."""
    proc = subprocess.Popen(
        python_argv(*args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_environ(env),
        cwd=cwd,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    head = subprocess.run(["head", "-1"], stdin=proc.stdout, capture_output=True, timeout=60)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(timeout=60), err, head.stdout


@pytest.fixture
def many_vars(servers: Servers, isolated: Path) -> dict[str, str]:
    """A project with 3000 variables (about 100 KiB of `var list`) for the real server."""
    project_for(
        servers.tls_on,
        isolated,
        name="pipe",
        sslmode="verify-full",
        extra=[f'APP_VAR_{i:04d} = "{"v" * 20}"' for i in range(3000)],
    )
    return {"DB_PASSWORD": servers.tls_on.password}


BIG = "select g, repeat('x', 200) from generate_series(1, 3000000) g"


@pytest.mark.parametrize(
    "args",
    [
        ["var", "list"],
        ["var", "list", "--json"],
        ["query", "--format", "plain", BIG],
        ["query", "--format", "tsv", BIG],
        ["query", "--format", "json", BIG],
        ["query", "--format", "table", BIG],
    ],
    ids=lambda a: " ".join(a[:3])[:40],
)
def test_head_one_on_a_large_output_ends_quietly(
    args: list[str], many_vars: dict[str, str], servers: Servers, isolated: Path
) -> None:
    tag = "head" + secrets.token_hex(4)
    env = {**many_vars, "DB_APPLICATION_NAME": tag}
    start = time.monotonic()
    rc, err, first = head_one(args, env, isolated)
    assert rc == 0, err
    assert not has_traceback_text(err), err
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == []
    assert first
    if args[0] == "query":
        # The query was cancelled on the server, not run to the end.
        assert wait_for(lambda: backends_running(servers.tls_on, tag) == 0, 5.0)
        assert time.monotonic() - start < 30
    tally("faults: closed stdout (| head -1: quiet, status kept)")


@pytest.mark.parametrize(
    "args",
    [
        ["var", "list"],
        ["var", "get", "APP_VAR_0001"],
        ["explain"],
        ["explain", "--json"],
        ["url"],
        ["check", "--json"],
        ["check"],
        ["secret", "list"],
        ["query", "select 1"],
        ["exec", "--", "echo", "hello"],
        ["sandbox", "status", "--json"],
        ["--help"],
        ["--version"],
        ["var", "--help"],
    ],
    ids=lambda a: " ".join(a),
)
def test_every_command_with_a_closed_stdout_ends_quietly(
    args: list[str], many_vars: dict[str, str], isolated: Path
) -> None:
    rc, err = closed_pipe_run(args, many_vars, isolated)
    if args[0] == "exec":
        # The child meets the closed pipe itself and dies of SIGPIPE; exec passes its status on
        # as a shell would (128 + 13).
        expected = 128 + signal.SIGPIPE
    else:
        # The same status as with stdout open (sandbox status: 1, not running).
        expected = subprocess.run(
            python_argv(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=cli_environ(many_vars),
            cwd=isolated,
            timeout=60,
        ).returncode
    assert rc == expected, err
    assert not has_traceback_text(err), err
    if args[0] != "exec":
        assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [], err
    tally("faults: closed stdout (| head -1: quiet, status kept)")


@pytest.mark.parametrize(
    ("args", "env", "status"),
    [
        (["check"], {"DB_PASSWORD": "wrong"}, 7),
        (["check", "--json", "--sslmode", "all"], {"DB_PASSWORD": "wrong"}, 7),
        (["sandbox", "status"], {}, 1),
        (["var", "get", "NOPE"], {}, 3),
    ],
    ids=["check", "check-json-all", "sandbox-status", "var-get"],
)
def test_a_closed_stdout_keeps_the_status_a_command_chose(
    args: list[str], env: dict[str, str], status: int, many_vars: dict[str, str], isolated: Path
) -> None:
    """A verdict printed to a reader that went away is still the exit status: a failed check
    piped into `head -1` must not look like a success to `set -o pipefail`."""
    rc, err = closed_pipe_run(args, {**many_vars, **env}, isolated)
    assert rc == status, err
    assert not has_traceback_text(err), err
    tally("faults: closed stdout (| head -1: quiet, status kept)")
