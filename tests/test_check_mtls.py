"""``pgconnect check`` through the real CLI for client certificates, several hosts, ``--wait``,
``--quiet``, and a terminal 80 columns wide; ``sandbox start --client-cert`` end to end."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.conftest import KeyringSession, Result, Server, Servers, cli_environ, run_cli
from tests.plugin_check import KEY_PASSPHRASE, ROLE_PASSWORD, ClientPKI, DelayedPort
from tests.test_diagnosis import psql_connects

Cli = Callable[..., Result]
SENTINEL = "Sentinel-pw-" + "7f3e"


def _project(
    folder: Path,
    server: Server,
    user: str,
    *,
    extra: Sequence[str] = (),
    host: str = "",
    port: str = "",
) -> None:
    lines = [
        'name = "mtls"',
        "[vars]",
        f'DB_HOST = "{host or "127.0.0.1"}"',
        f'DB_PORT = "{port or server.port}"',
        f'DB_USERNAME = "{user}"',
        'DB_NAME = "postgres"',
        'DB_SSLMODE = "verify-full"',
        f'DB_SSLROOTCERT = "{server.ca_file}"',
        *extra,
    ]
    (folder / "pgconnect.toml").write_text("\n".join(lines) + "\n")


def _run(cli: Cli, *args: str, password: str | None = None, **env: str) -> Result:
    full = dict(env)
    if password is not None:
        full["DB_PASSWORD"] = password
    result = cli("check", *args, env=full)
    for secret in (password, KEY_PASSPHRASE, SENTINEL):
        if secret:
            assert secret not in result.stdout, result
            assert secret not in result.stderr, result
    return result


def _certs(pki: ClientPKI, name: str) -> list[str]:
    return [f'DB_SSLCERT = "{pki.cert(name)}"', f'DB_SSLKEY = "{pki.key(name)}"']


# --------------------------------------------------------------------------- mutual TLS


def test_mtls_ok_json_reports_the_client_certificate(
    cli: Cli, auth_server: Server, client_pki: ClientPKI, isolated: Path
) -> None:
    _project(isolated, auth_server, "mtlsuser", extra=_certs(client_pki, "mtlsuser"))
    result = _run(cli, "--json", password=ROLE_PASSWORD)
    assert result.returncode == 0, result
    data = json.loads(result.stdout)
    cc = data["client_certificate"]
    assert set(cc) >= {
        "subject",
        "issuer",
        "not_after",
        "days_left",
        "key_matches",
        "key_encrypted",
        "sslpassword_available",
        "requested",
    }
    assert cc["subject"] == "CN=mtlsuser"
    assert cc["issuer"] == "CN=pgconnect test CA"
    assert (cc["key_matches"], cc["key_encrypted"], cc["requested"]) == (True, False, True)
    assert data["results"][0]["host"] == "127.0.0.1"
    assert data["results"][0]["port"] == auth_server.port
    assert data["hosts"] is None


@pytest.mark.parametrize(
    ("user", "cert", "code", "stage", "words"),
    [
        ("certuser", None, 7, "auth", "demands a client certificate"),
        ("mtlsuser", None, 7, "auth", "demands a client certificate"),
        ("certuser", "wrongcn", 7, "auth", "CN"),
        ("mtlsuser", "wrongcn", 7, "auth", "CN is 'someone-else'"),
        ("certuser", "otherca", 6, "tls", "does not trust the CA"),
    ],
)
def test_mtls_refusals_through_the_cli(
    cli: Cli,
    auth_server: Server,
    client_pki: ClientPKI,
    isolated: Path,
    user: str,
    cert: str | None,
    code: int,
    stage: str,
    words: str,
) -> None:
    extra = _certs(client_pki, cert) if cert else []
    _project(isolated, auth_server, user, extra=extra)
    password = ROLE_PASSWORD if user == "mtlsuser" else None
    result = _run(cli, "--json", password=password)
    assert result.returncode == code, result
    r = json.loads(result.stdout)["results"][0]
    assert r["stage"] == stage
    assert words in r["hint"]
    assert "check the password" not in r["hint"]
    conn = {
        "host": "127.0.0.1",
        "port": str(auth_server.port),
        "user": user,
        "dbname": "postgres",
        "sslmode": "verify-full",
        "sslrootcert": str(auth_server.ca_file),
    }
    if cert:
        conn.update(sslcert=client_pki.cert(cert), sslkey=client_pki.key(cert))
    assert psql_connects(conn, password) is False


def test_cn_warning_and_expiry_warning(
    cli: Cli, auth_server: Server, client_pki: ClientPKI, isolated: Path
) -> None:
    _project(isolated, auth_server, "app", extra=_certs(client_pki, "soon"))
    result = _run(cli, password=ROLE_PASSWORD)
    assert result.returncode == 0, result  # app logs in with scram: the cert is only sent
    assert "expires in" in result.stderr
    assert "CN is 'certuser' but the user is 'app'" in result.stderr


@pytest.mark.parametrize("case", ["missing-key", "mismatch", "readable", "encrypted"])
def test_local_key_problems_exit_3_before_connecting(
    cli: Cli, auth_server: Server, client_pki: ClientPKI, isolated: Path, case: str
) -> None:
    key = {
        "missing-key": str(isolated / "absent.key"),
        "mismatch": client_pki.key("mtlsuser"),
        "readable": str(isolated / "open.key"),
        "encrypted": str(client_pki.folder / "encrypted.key"),
    }[case]
    if case == "readable":
        shutil.copy(client_pki.key("certuser"), key)
        os.chmod(key, 0o644)
    _project(
        isolated,
        auth_server,
        "certuser",
        extra=[f'DB_SSLCERT = "{client_pki.cert("certuser")}"', f'DB_SSLKEY = "{key}"'],
    )
    result = _run(cli, "--sslmode", "all", password=SENTINEL)
    assert result.returncode == 3, result
    assert result.stdout == ""
    assert Path(key).name in result.stderr
    assert "hint:" in result.stderr


def test_encrypted_key_under_a_terminal_never_prompts(
    auth_server: Server, client_pki: ClientPKI, isolated: Path
) -> None:
    """check (the audit) and query (libpq itself, with the dummy sslpassword) on a real
    terminal: no passphrase prompt, no hang, exit 3 naming the fix."""
    _project(
        isolated,
        auth_server,
        "certuser",
        extra=[
            f'DB_SSLCERT = "{client_pki.cert("certuser")}"',
            f'DB_SSLKEY = "{client_pki.folder / "encrypted.key"}"',
        ],
    )
    for args in (["check", "--sslmode", "all"], ["query", "select 1"]):
        status, output, elapsed = _in_terminal(args, {}, isolated, columns=200)
        assert status == 3, output
        assert "pass phrase" not in output.lower()
        assert "DB_SSLPASSWORD" in output
        assert elapsed < 20


def test_encrypted_key_with_sslpassword_in_the_environment(
    cli: Cli, auth_server: Server, client_pki: ClientPKI, isolated: Path
) -> None:
    _project(
        isolated,
        auth_server,
        "certuser",
        extra=[
            f'DB_SSLCERT = "{client_pki.cert("certuser")}"',
            f'DB_SSLKEY = "{client_pki.folder / "encrypted.key"}"',
        ],
    )
    result = _run(cli, "--json", DB_SSLPASSWORD=KEY_PASSPHRASE)
    assert result.returncode == 0, result
    cc = json.loads(result.stdout)["client_certificate"]
    assert (cc["key_encrypted"], cc["sslpassword_available"]) == (True, True)


# --------------------------------------------------------------------------- channel binding


def test_channel_binding_against_an_md5_role(cli: Cli, auth_server: Server, isolated: Path) -> None:
    _project(isolated, auth_server, "md5user", extra=['DB_CHANNEL_BINDING = "require"'])
    result = _run(cli, password=ROLE_PASSWORD)
    assert result.returncode == 7, result
    assert "needs SCRAM" in result.stdout
    assert "check the password" not in result.stdout


# --------------------------------------------------------------------------- several hosts


def test_multi_host_json_names_every_host_and_where_it_landed(
    cli: Cli, auth_server: Server, standby: Server, isolated: Path, refused_port: int
) -> None:
    _project(
        isolated,
        auth_server,
        "app",
        host="127.0.0.1,127.0.0.1,127.0.0.1",
        port=f"{refused_port},{standby.port},{auth_server.port}",
        extra=['DB_TARGET_SESSION_ATTRS = "read-write"'],
    )
    result = _run(cli, "--json", password=ROLE_PASSWORD)
    assert result.returncode == 0, result
    data = json.loads(result.stdout)
    assert data["results"][0]["port"] == auth_server.port
    hosts = data["hosts"]
    assert [h["port"] for h in hosts] == [refused_port, standby.port, auth_server.port]
    assert [h["ok"] for h in hosts] == [False, True, True]
    assert [h["role"] for h in hosts] == [None, "standby", "primary"]
    assert hosts[0]["stage"] == "tcp"
    assert hosts[1]["certificate"]["subject"] == "CN=localhost"
    plain = _run(cli, password=ROLE_PASSWORD)
    assert f"connected to 127.0.0.1:{auth_server.port} (primary)" in plain.stdout


def test_multi_host_no_writable_host(
    cli: Cli, auth_server: Server, standby: Server, isolated: Path, refused_port: int
) -> None:
    _project(
        isolated,
        auth_server,
        "app",
        host="127.0.0.1,127.0.0.1",
        port=f"{refused_port},{standby.port}",
        extra=['DB_TARGET_SESSION_ATTRS = "read-write"'],
    )
    result = _run(cli, password=ROLE_PASSWORD)
    assert result.returncode == 7, result
    assert "no host accepted writes" in result.stdout
    assert "nothing listens there" not in result.stdout


# --------------------------------------------------------------------------- --wait, --quiet


def test_wait_until_a_late_port_opens(
    cli: Cli,
    servers: Servers,
    isolated: Path,
    delayed_port: Callable[[tuple[str, int]], DelayedPort],
) -> None:
    server = servers.tls_on
    late = delayed_port(("127.0.0.1", server.port))
    _project(isolated, server, "postgres", port=str(late.port))
    late.open_after(2.0)
    start = time.monotonic()
    result = _run(cli, "--wait", "30", "--timeout", "3", password=server.password)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result
    attempts = [line for line in result.stderr.splitlines() if line.startswith("attempt ")]
    assert len(attempts) >= 2, result
    assert "failed at tcp" in attempts[0]
    assert attempts[-1].endswith("ready")
    assert elapsed >= 2.0
    assert "ready" in result.stdout


def test_wait_gives_up_after_its_seconds(
    cli: Cli, servers: Servers, isolated: Path, refused_port: int
) -> None:
    _project(isolated, servers.tls_on, "postgres", port=str(refused_port))
    start = time.monotonic()
    result = _run(cli, "--wait", "2", password=servers.tls_on.password)
    elapsed = time.monotonic() - start
    assert result.returncode == 5, result
    assert "gave up after 2 s" in result.stderr
    assert 1.5 < elapsed < 10


def test_wait_does_not_retry_a_configuration_error(
    cli: Cli, auth_server: Server, client_pki: ClientPKI, isolated: Path
) -> None:
    _project(isolated, auth_server, "certuser", extra=[f'DB_SSLCERT = "{isolated / "x.crt"}"'])
    start = time.monotonic()
    result = _run(cli, "--wait", "30")
    assert result.returncode == 3, result
    assert time.monotonic() - start < 10


def test_quiet_prints_nothing_on_success_and_only_errors_on_failure(
    cli: Cli, servers: Servers, isolated: Path, refused_port: int
) -> None:
    server = servers.tls_on
    _project(isolated, server, "postgres")
    ok = _run(cli, "--quiet", password=server.password)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    bad = _run(cli, "--quiet", "--sslmode", "all", password=SENTINEL)
    assert bad.returncode == 7, bad
    assert bad.stdout == ""
    assert [line.split(":")[0] for line in bad.stderr.splitlines()] == ["error", "hint"]
    _project(isolated, server, "postgres", port=str(refused_port))
    gone = _run(cli, "--quiet", "--wait", "1", password=server.password)
    assert gone.returncode == 5
    assert "attempt" not in gone.stderr


# --------------------------------------------------------------------------- a narrow terminal


def _in_terminal(
    args: Sequence[str], env: dict[str, str], cwd: Path, *, columns: int
) -> tuple[int, str, float]:
    """Run the CLI on a pseudo-terminal COLUMNS wide (stdin too, so a prompt would wait)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environ = cli_environ(env)
    environ.pop("COLUMNS", None)
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgconnect", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**environ, "TERM": "xterm-256color"},
        cwd=cwd,
        start_new_session=True,
    )
    os.close(slave)
    chunks = []
    deadline = start + 40
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    if proc.poll() is None:
        proc.kill()
    status = proc.wait(10)
    return status, b"".join(chunks).decode("utf-8", "replace"), time.monotonic() - start


def test_sslmode_names_are_never_cut_on_80_columns(servers: Servers, isolated: Path) -> None:
    server = servers.tls_on
    _project(isolated, server, "postgres")
    status, output, _ = _in_terminal(
        ["check", "--sslmode", "all"], {"DB_PASSWORD": server.password}, isolated, columns=80
    )
    assert status == 0, output
    for mode in ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"):
        assert mode in output
    assert "…" not in output
    assert "TLS_AES_256_GCM_SHA384" in output  # not folded mid-token either


# --------------------------------------------------------------------------- the sandbox


@pytest.mark.slow
def test_sandbox_client_cert_end_to_end(keyring_session: KeyringSession) -> None:
    folder = Path(tempfile.mkdtemp(prefix="pgconnect-test-mtls-sandbox-"))
    env = keyring_session.environ()
    name = f"mtls-{os.getpid()}-{int(time.time())}"
    try:
        assert run_cli("init", "--name", name, env=env, cwd=folder).returncode == 0
        started = run_cli("sandbox", "start", "--client-cert", env=env, cwd=folder)
        assert started.returncode == 0, started
        assert "client certificate required" in started.stderr
        key = folder / ".pgconnect" / "sandbox-client.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        text = (folder / "pgconnect.toml").read_text()
        assert 'DB_SSLCERT = ".pgconnect/sandbox-client.crt"' in text
        result = run_cli(
            "check", "-e", "sandbox", "--sslmode", "all", "--json", env=env, cwd=folder
        )
        assert result.returncode == 0, result
        data = json.loads(result.stdout)
        by_mode = {r["sslmode"]: r for r in data["results"]}
        assert by_mode["verify-full"]["ok"]
        assert (by_mode["disable"]["ok"], by_mode["disable"]["stage"]) == (False, "auth")
        assert data["client_certificate"]["subject"] == "CN=app"
        assert data["client_certificate"]["requested"] is True
        # Without the certificate the server refuses, as psql does too.
        port = next(line for line in text.splitlines() if line.startswith("DB_PORT"))
        port_value = port.split('"')[1]
        no_cert = run_cli(
            "check",
            "-e",
            "sandbox",
            "--json",
            env={**env, "DB_SSLCERT": str(folder / "nope")},
            cwd=folder,
        )
        assert no_cert.returncode == 3  # a configured certificate that is missing
        assert (
            psql_connects(
                {
                    "host": "localhost",
                    "port": port_value,
                    "user": "app",
                    "dbname": name,
                    "sslmode": "verify-full",
                    "sslrootcert": str(folder / ".pgconnect" / "sandbox-ca.crt"),
                },
                "wrong-but-irrelevant",
            )
            is False
        )
    finally:
        run_cli("sandbox", "stop", env=env, cwd=folder)
        shutil.rmtree(folder, ignore_errors=True)
