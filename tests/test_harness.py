"""The harness's real components really serve: each cluster logs in, TLS is on where expected."""

from __future__ import annotations

import socket
import time

import psycopg
import pytest

from tests.conftest import KeyringSession, Servers


@pytest.mark.parametrize(
    ("name", "sslmode", "encrypted"),
    [
        ("tls_on", "verify-full", True),
        ("tls_on", "disable", False),
        ("tls_only", "verify-full", True),
        ("tls_off", "disable", False),
        ("wrong_host", "verify-ca", True),
    ],
)
def test_cluster_serves_with_expected_encryption(
    servers: Servers, name: str, sslmode: str, encrypted: bool
) -> None:
    server = servers.by_name[name]
    with server.connect(sslmode=sslmode) as conn:
        row = conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
    assert row == (encrypted,)


def test_tls_only_rejects_plaintext(servers: Servers) -> None:
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        servers.tls_only.connect(sslmode="disable")


def test_tls_off_refuses_tls(servers: Servers) -> None:
    with pytest.raises(psycopg.OperationalError, match="does not support SSL"):
        servers.tls_off.connect(sslmode="require")


def test_wrong_host_certificate_fails_verify_full(servers: Servers) -> None:
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        servers.wrong_host.connect(sslmode="verify-full")


def test_wrong_ca_fails_verify_ca(servers: Servers) -> None:
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        servers.tls_on.connect(sslmode="verify-ca", sslrootcert=str(servers.tls_on.wrong_ca_file))


def test_scram_password_required(servers: Servers) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        servers.tls_on.connect(password="wrong")


def test_silent_listener_accepts_and_never_answers(silent_listener: tuple[str, int]) -> None:
    with socket.create_connection(silent_listener, timeout=2) as sock:
        sock.settimeout(0.5)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            sock.recv(1)
        assert time.monotonic() - start >= 0.4


def test_keyring_session_stores_and_reads(keyring_session: KeyringSession) -> None:
    store = keyring_session.secret_tool(
        "store", "--label=probe", "service", "pgconnect:harness", "username", "X", input="v1"
    )
    assert store.returncode == 0, store.stderr
    assert keyring_session.lookup("pgconnect:harness", "X") == "v1"
    keyring_session.secret_tool("clear", "service", "pgconnect:harness", "username", "X")
    assert keyring_session.lookup("pgconnect:harness", "X") is None
