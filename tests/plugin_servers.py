"""Test fixtures: the real PostgreSQL servers, started once per session.

``tls_on`` (accepts TLS and plaintext), ``tls_only`` (``hostnossl … reject``), ``tls_off`` and
``wrong_host`` (TLS with a certificate for another host name), on free ports, as the ``postgres``
user when the tests run as root. A test CA signs the server certificates; an unrelated CA is the
client-side "wrong CA". SCRAM passwords everywhere. Also: a TCP listener that never answers, a
refused port, a small full-able disk.

The session is skipped (not errored) when the PostgreSQL server binaries are not installed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pgconnect import pki
from pgconnect.cluster import Cluster, chown_to, find_bindir, free_port, server_user

SERVER_SANS = ["localhost", "127.0.0.1", "::1"]
WRONG_HOST_SANS = ["wrong-host.invalid"]


# --------------------------------------------------------------------------- PKI


@dataclass(frozen=True)
class PKI:
    folder: Path
    ca: pki.CA
    server: pki.Issued
    wrong_host: pki.Issued

    @property
    def ca_file(self) -> Path:
        return self.folder / "root.crt"

    @property
    def wrong_ca_file(self) -> Path:
        return self.folder / "other-root.crt"


@pytest.fixture(scope="session")
def pki_files() -> Iterator[PKI]:
    folder = Path(tempfile.mkdtemp(prefix="pgconnect-pki-"))
    os.chmod(folder, 0o755)
    ca = pki.CA("pgconnect test CA")
    other = pki.CA("unrelated test CA")
    (folder / "root.crt").write_bytes(ca.cert_pem)
    (folder / "other-root.crt").write_bytes(other.cert_pem)
    result = PKI(
        folder=folder,
        ca=ca,
        server=ca.issue_server("localhost", SERVER_SANS),
        wrong_host=ca.issue_server("wrong-host.invalid", WRONG_HOST_SANS),
    )
    yield result
    shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- clusters


@dataclass
class Server:
    """A running test cluster and how to reach it."""

    name: str
    cluster: Cluster
    password: str
    ca_file: Path
    wrong_ca_file: Path
    tls: bool
    host: str = "127.0.0.1"
    user: str = "postgres"
    dbname: str = "postgres"

    @property
    def port(self) -> int:
        return self.cluster.port

    def params(self, **overrides: Any) -> dict[str, str]:
        """libpq keywords for this server, with the right CA; OVERRIDES win (None removes)."""
        out: dict[str, Any] = {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
            "sslrootcert": str(self.ca_file),
            "sslmode": "prefer",
            "gssencmode": "disable",
            "connect_timeout": "10",
        }
        out.update(overrides)
        return {k: str(v) for k, v in out.items() if v is not None}

    def connect(self, **overrides: Any) -> Any:
        import psycopg

        return psycopg.connect(conninfo="", autocommit=True, **self.params(**overrides))  # type: ignore[arg-type]

    def execute(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            cur = conn.execute(sql, args or None)
            return cur.fetchall() if cur.description else []

    def create_role(self, name: str, password: str, *, superuser: bool = False) -> None:
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} {}").format(
                    sql.Identifier(name),
                    sql.Literal(password),
                    sql.SQL("SUPERUSER" if superuser else "NOSUPERUSER"),
                )
            )


HBA_ANY = [
    "host all all 127.0.0.1/32 scram-sha-256",
    "host all all ::1/128 scram-sha-256",
]
HBA_TLS_ONLY = [
    "hostnossl all all 0.0.0.0/0 reject",
    "hostnossl all all ::/0 reject",
    "hostssl all all 127.0.0.1/32 scram-sha-256",
    "hostssl all all ::1/128 scram-sha-256",
]


@dataclass
class Servers:
    tls_on: Server
    tls_only: Server
    tls_off: Server
    wrong_host: Server
    by_name: dict[str, Server] = field(default_factory=dict)

    def all(self) -> list[Server]:
        return [self.tls_on, self.tls_only, self.tls_off, self.wrong_host]


def server_binaries() -> Path:
    """PostgreSQL's server programs, or a skip saying they are missing (not an error)."""
    from pgconnect.errors import PgconnectError

    try:
        return find_bindir()
    except PgconnectError as exc:
        pytest.skip(f"the PostgreSQL server is not installed: {exc}")


def _private_root(prefix: str) -> Path:
    """A folder the server user owns and can reach (pytest's tmp folders are 0700 root's)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    chown_to(server_user(), root)
    return root


@pytest.fixture(scope="session")
def servers(pki_files: PKI) -> Iterator[Servers]:
    """The four test clusters: initdb once, copy the template, start all in parallel."""
    bindir = server_binaries()
    base = _private_root("pgconnect-test-clusters-")
    password = "su-" + secrets.token_urlsafe(12)
    user = server_user()
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    chown_to(user, pwfile)
    template = Cluster(root=base / "template", port=0, bindir=bindir, user=user)
    template.initdb(pwfile)

    specs = {
        "tls_on": (True, pki_files.server, HBA_ANY),
        "tls_only": (True, pki_files.server, HBA_TLS_ONLY),
        "tls_off": (False, None, HBA_ANY),
        "wrong_host": (True, pki_files.wrong_host, HBA_ANY),
    }
    made: dict[str, Server] = {}

    def build(name: str) -> Server:
        ssl, issued, hba = specs[name]
        cluster = Cluster(root=base / name, port=free_port(), bindir=bindir, user=user)
        cluster.root.mkdir()
        chown_to(user, cluster.root)
        os.chmod(cluster.root, 0o700)
        cmd = ["cp", "-a", str(template.datadir), str(cluster.datadir)]
        if user is not None:
            cmd = ["runuser", "-u", user, "--", *cmd]
        subprocess.run(cmd, check=True)
        cluster.configure(
            ssl=ssl,
            cert=issued.cert_pem if issued else None,
            key=issued.key_pem if issued else None,
            hba=hba,
        )
        cluster.start()
        return Server(
            name=name,
            cluster=cluster,
            password=password,
            ca_file=pki_files.ca_file,
            wrong_ca_file=pki_files.wrong_ca_file,
            tls=ssl,
        )

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for name, server in zip(specs, pool.map(build, specs), strict=True):
                made[name] = server
        yield Servers(by_name=made, **made)
    finally:
        for server in made.values():
            with contextlib.suppress(Exception):
                server.cluster.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def silent_listener() -> Iterator[tuple[str, int]]:
    """A TCP port that accepts connections (kernel backlog) and never says a word."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield ("127.0.0.1", sock.getsockname()[1])
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    sock.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (skipped where mounting is not permitted)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def refused_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()
