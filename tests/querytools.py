"""Helpers for the query tests: a project pointing at a test server, a CLI process to signal,
and a real PgBouncer in transaction mode in front of a server."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgconnect.cluster import chown_to, free_port, server_user
from tests.conftest import Server, cli_environ, project_for


def query_project(server: Server, folder: Path, *, name: str = "q") -> dict[str, str]:
    """Write pgconnect.toml for SERVER in FOLDER; the environment that supplies the password."""
    project_for(server, folder, name=name, sslmode="verify-full")
    return {"DB_PASSWORD": server.password}


def start_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """``python -m pgconnect ARGS`` as a process the test can signal."""
    return subprocess.Popen(
        [sys.executable, "-m", "pgconnect", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_environ(env),
        cwd=cwd,
    )


def backends_running(server: Server, marker: str) -> int:
    """How many backends (other than ours) are active on a query containing MARKER, or with
    MARKER as their application_name."""
    rows = server.execute(
        "select count(*) from pg_stat_activity where state = 'active' "
        "and pid <> pg_backend_pid() and (strpos(query, %s) > 0 or application_name = %s)",
        marker,
        marker,
    )
    return int(rows[0][0])


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class Bouncer:
    """A running PgBouncer (transaction pooling) in front of a test server."""

    host: str
    port: int
    folder: Path
    proc: subprocess.Popen[bytes]

    def log(self) -> str:
        try:
            return (self.folder / "pgbouncer.log").read_text(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def pgbouncer(server: Server, *, pool_size: int = 1) -> Iterator[Bouncer]:
    """PgBouncer with pool_mode=transaction, SCRAM auth from a userlist holding the password,
    on a free port, in front of SERVER (plaintext to it). PgBouncer refuses to run as root, so
    as root it runs as the server's user, like the clusters do.

    One server connection in the pool: every client's transactions share it, so any session
    state a client left behind (a prepared statement, a SET) would show up in the next one.
    """
    binary = shutil.which("pgbouncer")
    if binary is None:
        pytest.skip("pgbouncer is not installed (scripts/setup.sh installs it)")
    user = server_user()
    folder = Path(tempfile.mkdtemp(prefix="pgconnect-bouncer-"))
    port = free_port()
    userlist = folder / "userlist.txt"
    userlist.write_text(f'"{server.user}" "{server.password}"\n')
    os.chmod(userlist, 0o600)
    ini = folder / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"{server.dbname} = host={server.host} port={server.port} dbname={server.dbname}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = scram-sha-256\n"
        f"auth_file = {userlist}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\n"
        "max_client_conn = 100\n"
        "server_tls_sslmode = disable\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
        f"pidfile = {folder / 'pgbouncer.pid'}\n"
    )
    os.chmod(folder, 0o700)
    chown_to(user, folder, userlist, ini)
    cmd = [binary, str(ini)]
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    bouncer = Bouncer("127.0.0.1", port, folder, proc)
    try:

        def listening() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {bouncer.log()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
            return False

        if not wait_for(listening, 20):
            raise RuntimeError(f"pgbouncer did not listen: {bouncer.log()[-2000:]}")
        yield bouncer
    finally:
        pid = _pid(folder / "pgbouncer.pid")
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(folder, ignore_errors=True)


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
