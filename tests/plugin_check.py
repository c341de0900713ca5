"""Servers for the failure classification: mutual TLS, an md5 role, a streaming standby, a port
that opens late. Each starts lazily (session scope, only when a test asks), small and unsynced.

- ``client_pki``: client certificates from the test CA (CN certuser, mtlsuser, app, and a wrong
  CN), one from an unrelated CA, an encrypted key.
- ``auth_server``: TLS with ``ssl_ca_file`` (the test CA), and pg_hba rules by role:
  ``certuser`` → ``hostssl … cert``; ``mtlsuser`` → ``hostssl … scram-sha-256
  clientcert=verify-full``; ``md5user`` (password stored as md5) → ``host … md5``; everyone else
  scram-sha-256. It is also the primary of ``standby``.
- ``standby``: ``pg_basebackup -R`` of ``auth_server``, streaming.
- ``delayed_port``: a loopback port that starts listening after a delay and then forwards to a
  real server (a database coming up in CI).
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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgconnect import pki
from pgconnect.cluster import Cluster, chown_to, find_bindir, free_port, server_user
from tests.conftest import PKI, Server, clean_environ

ROLE_PASSWORD = "role-" + secrets.token_urlsafe(10)
KEY_PASSPHRASE = "keypass-" + secrets.token_urlsafe(8)

AUTH_HBA = [
    "local replication all trust",
    "hostssl all certuser 127.0.0.1/32 cert",
    "hostssl all mtlsuser 127.0.0.1/32 scram-sha-256 clientcert=verify-full",
    "host all md5user 127.0.0.1/32 md5",
    "host all all 127.0.0.1/32 scram-sha-256",
    "host all all ::1/128 scram-sha-256",
]


@dataclass(frozen=True)
class ClientPKI:
    folder: Path

    def cert(self, name: str) -> str:
        return str(self.folder / f"{name}.crt")

    def key(self, name: str) -> str:
        return str(self.folder / f"{name}.key")


@pytest.fixture(scope="session")
def client_pki(pki_files: PKI) -> Iterator[ClientPKI]:
    from cryptography.hazmat.primitives import serialization

    folder = Path(tempfile.mkdtemp(prefix="pgconnect-client-pki-"))
    other = pki.CA("unrelated client CA")
    issued = {
        "certuser": pki_files.ca.issue_client("certuser"),
        "mtlsuser": pki_files.ca.issue_client("mtlsuser"),
        "app": pki_files.ca.issue_client("app"),
        "wrongcn": pki_files.ca.issue_client("someone-else"),
        "otherca": other.issue_client("certuser"),
        "soon": pki_files.ca.issue_client("certuser", days=10),
    }
    for name, item in issued.items():
        item.write(folder / f"{name}.crt", folder / f"{name}.key")
    key = serialization.load_pem_private_key(issued["certuser"].key_pem, None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSPHRASE.encode()),
    )
    fd = os.open(folder / "encrypted.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(encrypted)
    yield ClientPKI(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _new_cluster(base: Path, name: str) -> Cluster:
    return Cluster(root=base / name, port=free_port(), bindir=find_bindir(), user=server_user())


@pytest.fixture(scope="session")
def _check_base() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="pgconnect-check-clusters-"))
    chown_to(server_user(), base)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def auth_server(pki_files: PKI, _check_base: Path) -> Iterator[Server]:
    """Client certificates, an md5 role, scram for the rest; primary of ``standby``."""
    password = "su-" + secrets.token_urlsafe(12)
    user = server_user()
    pwfile = _check_base / "pwfile"
    pwfile.write_text(password + "\n")
    chown_to(user, pwfile)
    cluster = _new_cluster(_check_base, "auth")
    cluster.initdb(pwfile)
    cluster.configure(
        ssl=True,
        cert=pki_files.server.cert_pem,
        key=pki_files.server.key_pem,
        ca=pki_files.ca.cert_pem,
        hba=AUTH_HBA,
        extra=["ssl_ca_file = 'root.crt'", "wal_level = replica", "max_wal_senders = 4"],
    )
    cluster.start()
    server = Server(
        name="auth",
        cluster=cluster,
        password=password,
        ca_file=pki_files.ca_file,
        wrong_ca_file=pki_files.wrong_ca_file,
        tls=True,
    )
    with server.connect() as conn:
        conn.execute("CREATE ROLE certuser LOGIN")
        for role in ("mtlsuser", "app"):
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{ROLE_PASSWORD}'")
        # For the server's refusals: a role that may not log in, one with no connection slot,
        # a database closed to connections, one without CONNECT for PUBLIC.
        conn.execute(f"CREATE ROLE nologin NOLOGIN PASSWORD '{ROLE_PASSWORD}'")
        conn.execute(f"CREATE ROLE nolimit LOGIN CONNECTION LIMIT 0 PASSWORD '{ROLE_PASSWORD}'")
        conn.execute("CREATE DATABASE closed ALLOW_CONNECTIONS false")
        conn.execute("CREATE DATABASE private")
        conn.execute("REVOKE CONNECT ON DATABASE private FROM PUBLIC")
        conn.execute("SET password_encryption = 'md5'")
        conn.execute(f"CREATE ROLE md5user LOGIN PASSWORD '{ROLE_PASSWORD}'")
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            cluster.stop(mode="immediate")


@pytest.fixture(scope="session")
def standby(auth_server: Server, _check_base: Path) -> Iterator[Server]:
    """A streaming standby of ``auth_server`` (pg_basebackup -R), same users and certificate."""
    cluster = _new_cluster(_check_base, "standby")
    cluster.root.mkdir()
    chown_to(cluster.user, cluster.root)
    os.chmod(cluster.root, 0o700)
    cmd = [
        str(cluster.bindir / "pg_basebackup"),
        "-D",
        str(cluster.datadir),
        "-h",
        str(auth_server.cluster.socket_dir),
        "-p",
        str(auth_server.port),
        "-U",
        "postgres",
        "-R",
        "--no-sync",
        # An immediate checkpoint on the primary: the default spreads it over most of
        # checkpoint_timeout, which kept this fixture waiting for about a minute.
        "--checkpoint=fast",
        "-X",
        "stream",
    ]
    if cluster.user is not None:
        cmd = ["runuser", "-u", cluster.user, "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, env=clean_environ(), timeout=120, cwd="/")
    with open(cluster.datadir / "postgresql.conf", "a", encoding="utf-8") as fh:
        fh.write(f"port = {cluster.port}\nunix_socket_directories = '{cluster.socket_dir}'\n")
    cluster.start()
    server = Server(
        name="standby",
        cluster=cluster,
        password=auth_server.password,
        ca_file=auth_server.ca_file,
        wrong_ca_file=auth_server.wrong_ca_file,
        tls=True,
    )
    deadline = time.monotonic() + 30
    while server.execute("SELECT pg_is_in_recovery()")[0][0] is not True:
        assert time.monotonic() < deadline, "the standby never entered recovery"
        time.sleep(0.2)
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            cluster.stop(mode="immediate")


class DelayedPort:
    """A port that opens DELAY seconds after ``open()`` and forwards to UPSTREAM."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.opened_at: float | None = None

    def open_after(self, delay: float) -> None:
        thread = threading.Thread(target=self._serve, args=(delay,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _serve(self, delay: float) -> None:
        if self.stop.wait(delay):
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.2)
        self.opened_at = time.monotonic()
        with listener:
            while not self.stop.is_set():
                try:
                    client, _ = listener.accept()
                except (TimeoutError, OSError):
                    continue
                try:
                    server = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    client.close()
                    continue
                for a, b in ((client, server), (server, client)):
                    pump = threading.Thread(target=_pump, args=(a, b), daemon=True)
                    pump.start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    for s in (src, dst):
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def delayed_port() -> Iterator[Callable[[tuple[str, int]], DelayedPort]]:
    made: list[DelayedPort] = []

    def make(upstream: tuple[str, int]) -> DelayedPort:
        port = DelayedPort(upstream)
        made.append(port)
        return port

    yield make
    for port in made:
        port.stop.set()
