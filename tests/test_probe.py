"""The staged check against real servers, with psql (libpq) as the oracle for every verdict."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pgconnect import login, params, pki, probe
from pgconnect.errors import ExitCode, NetworkError, RejectedError, TLSError
from pgconnect.netprobe import SSL_REQUEST, parse_certificate
from pgconnect.report import ModeResult, version_text
from tests.conftest import PKI, Server, Servers, clean_environ

MODES = params.SSLMODES
CAS = ("right", "wrong", "missing", "unset")
SERVERS = ("tls_on", "tls_only", "tls_off", "wrong_host")
STAT_SSL = "select ssl from pg_stat_ssl where pid = pg_backend_pid()"


def _root_cert(server: Server, ca: str, missing: Path) -> str | None:
    """The sslrootcert for a CA variant; None means the keyword is not given at all (libpq then
    looks in ~/.postgresql/root.crt, which does not exist under the tests' temporary HOME)."""
    return {
        "right": str(server.ca_file),
        "wrong": str(server.wrong_ca_file),
        "missing": str(missing),
        "unset": None,
    }[ca]


def _conn(server: Server, ca: str, missing: Path) -> dict[str, str]:
    conn = {
        "host": server.host,
        "port": str(server.port),
        "user": server.user,
        "dbname": server.dbname,
        "password": server.password,
    }
    root = _root_cert(server, ca, missing)
    if root is not None:
        conn["sslrootcert"] = root
    return conn


def psql_verdict(server: Server, conn: dict[str, str], sslmode: str) -> tuple[bool, bool | None]:
    """What psql (libpq) says with the same parameters: (connected, encrypted)."""
    if shutil.which("psql") is None:
        pytest.skip("psql, the oracle for libpq's verdicts, is not installed")
    words = {k: v for k, v in conn.items() if k != "password"}
    words.update(sslmode=sslmode, gssencmode="disable", connect_timeout="10")
    conninfo = " ".join(f"{k}='{v}'" for k, v in words.items())
    env = clean_environ()
    env["PGPASSWORD"] = server.password  # never in argv
    proc = subprocess.run(
        ["psql", conninfo, "-XAtc", STAT_SSL],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    if proc.returncode != 0:
        return False, None
    return True, {"t": True, "f": False}[proc.stdout.strip()]


# --------------------------------------------------------------------------- the matrix


@pytest.fixture(scope="module")
def missing_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("no-ca") / "root.crt"
    assert not path.exists()
    return path


@pytest.mark.parametrize("ca", CAS)
@pytest.mark.parametrize("name", SERVERS)
def test_matrix_agrees_with_psql(servers: Servers, name: str, ca: str, missing_root: Path) -> None:
    """server × sslmode × root CA: ok and encrypted are psql's, for all six modes of a cell row."""
    server = servers.by_name[name]
    conn = _conn(server, ca, missing_root)
    report = probe.check(conn, MODES, effective_sslmode="verify-full", timeout=10)
    with ThreadPoolExecutor(max_workers=3) as pool:
        oracle = dict(
            zip(MODES, pool.map(lambda m: psql_verdict(server, conn, m), MODES), strict=True)
        )
    got = {r.sslmode: (r.ok, r.encrypted) for r in report.results}
    assert got == oracle, [r.as_json() for r in report.results]
    for r in report.results:
        assert r.stage == ("ready" if r.ok else r.stage)
        assert r.stage in login.STAGES
        assert (r.exit_code == ExitCode.OK) == r.ok
        if not r.ok:
            assert r.exit_code in (ExitCode.NETWORK, ExitCode.TLS, ExitCode.REJECTED)
            assert r.error
            assert r.hint
            assert server.password not in (r.error + r.hint)
        if r.encrypted:
            assert r.tls_version
            assert r.tls_version.startswith("TLSv")
            assert r.cipher
        else:
            assert r.tls_version is None
            assert r.cipher is None
    # The certificate comes from pgconnect's own handshake, whichever verdicts libpq gave.
    if server.tls:
        assert report.certificate is not None
    else:
        assert report.certificate is None


def test_expected_stages_and_exit_codes(servers: Servers, missing_root: Path) -> None:
    """The failures of the matrix land on the stage and exit status docs/diagnosis.md names."""

    def result(name: str, ca: str, mode: str) -> ModeResult:
        conn = _conn(servers.by_name[name], ca, missing_root)
        return probe.check(conn, [mode], effective_sslmode=mode, timeout=10).results[0]

    plain = result("tls_only", "right", "disable")
    assert (plain.stage, plain.exit_code) == ("auth", ExitCode.REJECTED)
    assert "no encryption" in (plain.error or "")
    assert "sslmode=require" in (plain.hint or "")

    no_tls = result("tls_off", "right", "require")
    assert (no_tls.stage, no_tls.exit_code) == ("tls", ExitCode.TLS)

    wrong_ca = result("tls_on", "wrong", "verify-ca")
    assert (wrong_ca.stage, wrong_ca.exit_code) == ("tls", ExitCode.TLS)
    assert "CN=pgconnect test CA" in (wrong_ca.hint or "")

    # require with a root certificate file present verifies the chain (libpq's rule).
    wrong_ca_require = result("tls_on", "wrong", "require")
    assert (wrong_ca_require.stage, wrong_ca_require.exit_code) == ("tls", ExitCode.TLS)

    wrong_name = result("wrong_host", "right", "verify-full")
    assert (wrong_name.stage, wrong_name.exit_code) == ("tls", ExitCode.TLS)
    assert "DNS:wrong-host.invalid" in (wrong_name.hint or "")

    no_root = result("tls_on", "unset", "verify-full")
    assert (no_root.stage, no_root.exit_code) == ("tls", ExitCode.TLS)
    assert ".postgresql/root.crt" in (no_root.error or "")

    # prefer with the wrong CA against a TLS-only server: TLS failed, then plaintext was refused;
    # the TLS reason decides (it is what to fix), the other attempt is still mentioned.
    both = result("tls_only", "wrong", "prefer")
    assert (both.stage, both.exit_code) == ("tls", ExitCode.TLS)
    assert "certificate verify failed" in (both.error or "")
    assert "no encryption" in (both.error or "")


def test_disable_against_tls_only_names_the_modes_that_work(servers: Servers) -> None:
    report = probe.check(
        servers.tls_only.params(), MODES, effective_sslmode="verify-full", timeout=10
    )
    disable = report.result("disable")
    assert (disable.ok, disable.stage, disable.exit_code) == (False, "auth", ExitCode.REJECTED)
    assert disable.hint is not None
    assert "sslmode=verify-full" in disable.hint
    assert "verify-ca" in disable.hint
    assert "require" in disable.hint


# --------------------------------------------------------------------------- failures by stage


def test_wrong_password_fails_at_auth(servers: Servers) -> None:
    sentinel = "Sentinel-wrong-pw-7f3a"
    report = probe.check(
        servers.tls_on.params(password=sentinel), ["verify-full"], effective_sslmode="verify-full"
    )
    r = report.results[0]
    assert (r.ok, r.stage, r.exit_code) == (False, "auth", ExitCode.REJECTED)
    assert "password authentication failed" in (r.error or "")
    assert sentinel not in repr(report.as_json())


def test_missing_secret_is_named_in_the_auth_hint(servers: Servers) -> None:
    conn = servers.tls_on.params(password=None)
    report = probe.check(
        conn,
        ["require"],
        effective_sslmode="require",
        missing_secrets=["DB_PASSWORD"],
        env="staging",
    )
    r = report.results[0]
    assert (r.stage, r.exit_code) == ("auth", ExitCode.REJECTED)
    assert "no password supplied" in (r.error or "")
    assert r.hint == (
        "declared secret DB_PASSWORD is not set, so it was not sent: "
        "pgconnect secret put DB_PASSWORD --env staging"
    )


def test_unknown_database_fails_at_auth(servers: Servers) -> None:
    report = probe.check(
        servers.tls_on.params(dbname="no_such_db"), ["prefer"], effective_sslmode="prefer"
    )
    r = report.results[0]
    assert (r.ok, r.stage, r.exit_code) == (False, "auth", ExitCode.REJECTED)
    assert 'database "no_such_db" does not exist' in (r.error or "")
    assert "DB_NAME" in (r.hint or "")


def test_refused_port_fails_at_tcp_in_under_a_second(refused_port: int) -> None:
    start = time.monotonic()
    report = probe.check(
        {"host": "127.0.0.1", "port": str(refused_port)}, MODES, effective_sslmode="prefer"
    )
    assert time.monotonic() - start < 1.0
    for r in report.results:
        assert (r.ok, r.stage, r.exit_code) == (False, "tcp", ExitCode.NETWORK), r
        assert "Connection refused" in (r.error or "")
    assert report.certificate is None
    assert report.network.error
    assert "TCP connection failed" in report.network.error


def test_unresolvable_host_fails_at_dns() -> None:
    report = probe.check(
        {"host": "nonexistent.invalid", "port": "5432"}, ["require"], effective_sslmode="require"
    )
    r = report.results[0]
    assert (r.ok, r.stage, r.exit_code) == (False, "dns", ExitCode.NETWORK)
    assert "nonexistent.invalid" in (r.error or "")
    assert report.certificate is None
    assert (report.network.error or "").startswith("could not resolve nonexistent.invalid")


def test_hung_resolver_is_given_up_at_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolver that never answers (simulated: this machine's resolver fails at once) costs
    the timeout once, for all modes, at the dns stage; libpq is never started on it."""
    release = threading.Event()

    def hung(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hung)
    start = time.monotonic()
    report = probe.check(
        {"host": "db.example.com", "port": "5432"},
        MODES,
        effective_sslmode="verify-full",
        timeout=1,
    )
    release.set()
    assert time.monotonic() - start < 1.5
    for r in report.results:
        assert (r.ok, r.stage, r.exit_code) == (False, "dns", ExitCode.NETWORK), r
        assert r.error == (
            'connection to server at "db.example.com", port 5432 timed out after 1 s '
            "resolving the host name"
        )
    assert report.certificate is None


@pytest.mark.parametrize("modes", [("verify-full",), MODES], ids=["one", "all"])
def test_silent_server_times_out_where_the_time_ran_out(
    silent_listener: tuple[str, int], modes: tuple[str, ...]
) -> None:
    host, port = silent_listener
    start = time.monotonic()
    report = probe.check(
        {"host": host, "port": str(port)}, modes, effective_sslmode="verify-full", timeout=1.5
    )
    took = time.monotonic() - start
    assert 1.4 < took < 2.5  # the whole run, not per mode
    for r in report.results:
        assert not r.ok
        assert r.exit_code == ExitCode.NETWORK
        # disable and allow start with the startup packet; the others with SSLRequest.
        expected = "auth" if r.sslmode in ("disable", "allow") else "tls"
        assert r.stage == expected, r
        assert "timed out after 1.5 s" in (r.error or "")
    assert report.certificate is None
    assert report.network.tcp_ms is not None  # TCP worked: it is the answer that never came


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose listen queue is full: further SYNs are dropped, connect() never completes
    (what a firewall that drops packets looks like)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=2)
    yield port
    filler.close()
    sock.close()


def test_dropped_syn_times_out_at_tcp(full_backlog: int) -> None:
    start = time.monotonic()
    report = probe.check(
        {"host": "127.0.0.1", "port": str(full_backlog)},
        MODES,
        effective_sslmode="prefer",
        timeout=1,
    )
    assert time.monotonic() - start < 2
    for r in report.results:
        assert (r.ok, r.stage, r.exit_code) == (False, "tcp", ExitCode.NETWORK), r
        assert "establishing the TCP connection" in (r.error or "")
    assert report.network.tcp_ms is None


def test_resolved_names_are_reported_as_libpq_words_them(refused_port: int) -> None:
    """pgconnect resolves the name itself and hands libpq the address; the message still reads
    the way psql's does (host name and address)."""
    conn = {"host": "localhost", "port": str(refused_port), "user": "u", "dbname": "d"}
    report = probe.check(conn, ["disable"], effective_sslmode="prefer")
    env = clean_environ()
    proc = subprocess.run(
        ["psql", f"host=localhost port={refused_port} user=u dbname=d sslmode=disable", "-c", ""],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    psql_first = proc.stderr.removeprefix("psql: error: ").splitlines()[0]
    assert report.results[0].error == psql_first
    assert report.network.addresses  # resolved once, by pgconnect


def test_all_modes_take_about_as_long_as_one(servers: Servers) -> None:
    """Six concurrent logins: well under twice one login (best of three, to dodge noise)."""
    conn = servers.tls_on.params()

    def best(modes: tuple[str, ...]) -> float:
        times = []
        for _ in range(3):
            start = time.monotonic()
            report = probe.check(conn, modes, effective_sslmode="verify-full")
            times.append(time.monotonic() - start)
            assert all(r.ok for r in report.results)
        return min(times)

    one = best(("verify-full",))
    six = best(MODES)
    assert six < 2 * one + 0.5, (one, six)


def test_silent_server_all_modes_cost_one_timeout(silent_listener: tuple[str, int]) -> None:
    host, port = silent_listener
    conn = {"host": host, "port": str(port)}
    start = time.monotonic()
    probe.check(conn, ["require"], effective_sslmode="require", timeout=1)
    one = time.monotonic() - start
    start = time.monotonic()
    probe.check(conn, MODES, effective_sslmode="require", timeout=1)
    six = time.monotonic() - start
    assert six < 2 * one + 0.5, (one, six)


# --------------------------------------------------------------------------- certificate


def test_certificate_shows_sans_and_days_left(servers: Servers) -> None:
    report = probe.check(servers.tls_on.params(), ["disable"], effective_sslmode="disable")
    cert = report.certificate
    assert cert is not None  # reported even though only disable was checked
    assert cert.subject == "CN=localhost"
    assert cert.issuer == "CN=pgconnect test CA"
    assert cert.san == ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    assert 363 <= cert.days_left <= 365
    assert dt.datetime.strptime(cert.not_after, "%Y-%m-%dT%H:%M:%SZ")
    assert report.network.tls_answer == "S"

    wrong = probe.check(servers.wrong_host.params(), ["require"], effective_sslmode="require")
    assert wrong.certificate is not None
    assert wrong.certificate.san == ["DNS:wrong-host.invalid"]


def test_certificate_is_null_when_the_server_refuses_tls(servers: Servers) -> None:
    report = probe.check(servers.tls_off.params(), MODES, effective_sslmode="prefer")
    assert report.certificate is None
    assert report.network.tls_answer == "N"
    assert report.as_json()["certificate"] is None


class _TLSOnlyHandshake:
    """A listener that answers SSLRequest with 'S', completes TLS with a given certificate, and
    then hangs up: enough for pgconnect's certificate probe; libpq sees a dropped connection."""

    def __init__(self, folder: Path, days: int) -> None:
        ca = pki.CA("short-lived test CA")
        issued = ca.issue_server("localhost", ["localhost", "127.0.0.1"], days=days)
        cert, key = folder / "short.crt", folder / "short.key"
        issued.write(cert, key)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            try:
                conn.settimeout(2)
                if conn.recv(8) == SSL_REQUEST:
                    conn.sendall(b"S")
                    with self.context.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1024)  # the startup packet, or close_notify from the probe
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def short_lived_server(tmp_path: Path) -> Iterator[_TLSOnlyHandshake]:
    server = _TLSOnlyHandshake(tmp_path, days=10)
    yield server
    server.close()


def test_certificate_expiring_soon_is_a_warning(short_lived_server: _TLSOnlyHandshake) -> None:
    report = probe.check(
        {"host": "127.0.0.1", "port": str(short_lived_server.port), "user": "u", "dbname": "d"},
        ["require"],
        effective_sslmode="require",
        timeout=5,
    )
    cert = report.certificate
    assert cert is not None
    assert 8 <= cert.days_left <= 10
    assert any(
        w.startswith(f"the server's certificate expires in {cert.days_left} days")
        for w in report.warnings
    ), report.warnings
    # libpq got through TLS and the server hung up during the login: a network failure there.
    r = report.results[0]
    assert (r.ok, r.stage, r.exit_code) == (False, "auth", ExitCode.NETWORK), r


def test_parse_certificate_days_left_and_expired() -> None:
    ca = pki.CA("x")
    issued = ca.issue_server("db.example.com", ["db.example.com", "10.0.0.7"], days=40)
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pem = x509.load_pem_x509_certificate(issued.cert_pem)
    der = pem.public_bytes(serialization.Encoding.DER)
    now = dt.datetime.now(dt.UTC)
    cert = parse_certificate(der, now)
    assert cert.san == ["DNS:db.example.com", "IP:10.0.0.7"]
    assert cert.days_left == 39
    later = parse_certificate(der, now + dt.timedelta(days=45))
    assert later.days_left == -6


# --------------------------------------------------------------------------- warnings


def test_unix_socket_is_a_warning_and_agrees_with_psql(servers: Servers) -> None:
    server = servers.tls_on
    conn = {
        "host": str(server.cluster.socket_dir),
        "port": str(server.port),
        "user": server.user,
        "dbname": server.dbname,
        "password": server.password,
        "sslrootcert": str(server.ca_file),
    }
    report = probe.check(conn, MODES, effective_sslmode="prefer")
    for r in report.results:
        assert (r.ok, r.encrypted) == psql_verdict(server, conn, r.sslmode), r
    assert report.network.unix_socket
    assert report.certificate is None
    assert any("Unix socket: sslmode does not apply" in w for w in report.warnings)
    assert not any("plaintext" in w for w in report.warnings)  # no downgrade on a socket


def test_prefer_against_a_plaintext_server_warns_of_the_downgrade(servers: Servers) -> None:
    report = probe.check(servers.tls_off.params(), ["prefer"], effective_sslmode="prefer")
    assert report.results[0].ok
    assert report.results[0].encrypted is False
    assert any(w.startswith("sslmode=prefer connected in plaintext") for w in report.warnings)
    # 127.0.0.1 is loopback: no "weaker than verify-full" warning.
    assert not any("does not verify" in w for w in report.warnings)


def test_weak_sslmode_to_a_remote_host_is_a_warning() -> None:
    conn = {"host": "nonexistent.invalid", "port": "5432"}
    weak = probe.check(conn, ["require"], effective_sslmode="require", timeout=2)
    assert any(w.startswith("sslmode=require does not verify") for w in weak.warnings)
    strong = probe.check(conn, ["verify-full"], effective_sslmode="verify-full", timeout=2)
    assert not any("does not verify" in w for w in strong.warnings)


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (
            "ep-cool-darkness-123456.us-east-2.aws.neon.tech",
            "5432",
            "use the pooled one, ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech",
        ),
        ("ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech", "5432", None),
        ("db.abcdefghijklmnop.supabase.co", "5432", "transaction pooler on port 6543"),
        ("db.abcdefghijklmnop.supabase.co", "6543", None),
        ("aws-0-eu-central-1.pooler.supabase.com", "5432", "transaction pooler on port 6543"),
        ("aws-0-eu-central-1.pooler.supabase.com", "6543", None),
        ("db.example.com", "5432", None),
    ],
)
def test_provider_pooler_warnings(host: str, port: str, expected: str | None) -> None:
    # Through the real check (the names do not resolve here, or time out): warnings still apply.
    report = probe.check(
        {"host": host, "port": port}, ["verify-full"], effective_sslmode="verify-full", timeout=2
    )
    found = [w for w in report.warnings if "pooler" in w or "pooled" in w]
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1, report.warnings
        assert expected in found[0]


def test_missing_secret_warning_is_passed_through() -> None:
    report = probe.check(
        {"host": "127.0.0.1", "port": "1"},
        ["prefer"],
        effective_sslmode="prefer",
        warnings=["declared secret DB_PASSWORD is not set"],
    )
    assert report.warnings[0] == "declared secret DB_PASSWORD is not set"


# --------------------------------------------------------------------------- behind a pooler


@pytest.fixture(scope="module")
def pgbouncer(servers: Servers, pki_files: PKI) -> Iterator[tuple[str, int]]:
    """PgBouncer in transaction mode: TLS from the client, plaintext to the tls_on server."""
    import shutil
    import tempfile

    from pgconnect.cluster import chown_to, free_port, server_user

    binary = shutil.which("pgbouncer")
    if binary is None:
        pytest.skip("pgbouncer is not installed")
    server = servers.tls_on
    user = server_user()
    folder = Path(tempfile.mkdtemp(prefix="pgconnect-pgbouncer-"))
    pki_files.server.write(folder / "server.crt", folder / "server.key")
    (folder / "userlist.txt").write_text(f'"{server.user}" "{server.password}"\n')
    os.chmod(folder / "userlist.txt", 0o600)
    port = free_port()
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{server.dbname} = host=127.0.0.1 port={server.port} dbname={server.dbname}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {folder / 'userlist.txt'}\n"
        "pool_mode = transaction\n"
        f"client_tls_sslmode = allow\nclient_tls_cert_file = {folder / 'server.crt'}\n"
        f"client_tls_key_file = {folder / 'server.key'}\n"
        "server_tls_sslmode = disable\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
    )
    chown_to(user, folder, *folder.iterdir())
    argv = [binary, str(folder / "pgbouncer.ini")]
    if user is not None:  # PgBouncer refuses to run as root
        argv = ["runuser", "-u", user, "--", *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    yield "127.0.0.1", port
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(folder, ignore_errors=True)


def test_behind_a_pooler_pg_stat_ssl_and_libpq_disagree(
    servers: Servers, pgbouncer: tuple[str, int]
) -> None:
    """Through PgBouncer (TLS to the client, plaintext to the server) the session's pg_stat_ssl
    row describes PgBouncer's link; the check still connects, agrees with psql, and says why."""
    host, port = pgbouncer
    server = servers.tls_on
    conn = server.params(host=host, port=str(port), sslmode=None, gssencmode=None)
    conn.pop("connect_timeout")
    report = probe.check(conn, ["prefer", "require", "verify-full"], effective_sslmode="require")
    for r in report.results:
        assert r.ok, r
        assert r.stage == "ready"
        assert (r.ok, r.encrypted) == psql_verdict(server, conn, r.sslmode)
        assert r.encrypted is False  # the server's view: PgBouncer connects in plaintext
        assert r.libpq_ssl is True  # this client's link is TLS
    assert any("a pooler or proxy sits in between" in w for w in report.warnings)
    assert not any("connected in plaintext" in w for w in report.warnings)  # no false downgrade
    assert report.certificate is not None  # PgBouncer's own certificate


# --------------------------------------------------------------------------- the JSON shape


def test_json_shape_is_exactly_spec(servers: Servers) -> None:
    report = probe.check(servers.tls_on.params(), ["require"], effective_sslmode="verify-full")
    data = report.as_json()
    assert list(data) == [
        "target",
        "effective_sslmode",
        "libpq_version",
        "results",
        "certificate",
        "client_certificate",
        "hosts",
        "warnings",
    ]
    assert data["client_certificate"] is None  # none configured
    assert data["hosts"] is None  # one host: results[].host says where
    assert list(data["target"]) == ["host", "port", "dbname", "user"]
    assert data["target"]["port"] == servers.tls_on.port
    assert list(data["results"][0]) == [
        "sslmode",
        "ok",
        "stage",
        "encrypted",
        "tls_version",
        "cipher",
        "server_version",
        "elapsed_ms",
        "error",
        "hint",
        "host",
        "port",
    ]
    assert data["results"][0]["port"] == servers.tls_on.port
    assert list(data["certificate"]) == ["subject", "issuer", "san", "not_after", "days_left"]
    import psycopg

    v = psycopg.pq.version()
    assert data["libpq_version"] == f"{v // 10000}.{v % 10000}"
    server_num = servers.tls_on.execute("show server_version_num")[0][0]
    assert data["results"][0]["server_version"] == version_text(int(server_num))


def test_bad_keyword_is_a_configuration_error() -> None:
    from pgconnect.errors import ConfigError

    with pytest.raises(ConfigError):
        probe.check(
            {"host": "127.0.0.1", "no_such_keyword": "x"}, ["prefer"], effective_sslmode="prefer"
        )


# --------------------------------------------------------------------------- classify()


@pytest.mark.parametrize(
    ("message", "stage", "cls"),
    [
        (
            'could not translate host name "x.invalid" to address: Name or service not known',
            "dns",
            NetworkError,
        ),
        (
            'connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?',
            "tcp",
            NetworkError,
        ),
        (
            'connection to server on socket "/tmp/.s.PGSQL.1" failed: No such file or directory\n\tIs the server running locally and accepting connections on that socket?',
            "tcp",
            NetworkError,
        ),
        (
            'connection to server at "h", port 1 failed: server does not support SSL, but SSL was required',
            "tls",
            TLSError,
        ),
        (
            'connection to server at "h", port 1 failed: SSL error: certificate verify failed',
            "tls",
            TLSError,
        ),
        (
            'connection to server at "h", port 1 failed: server certificate for "a" (and 1 other name) does not match host name "h"',
            "tls",
            TLSError,
        ),
        (
            'connection to server at "h", port 1 failed: root certificate file "/x/root.crt" does not exist\nEither provide the file, use the system\'s trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.',
            "tls",
            TLSError,
        ),
        (
            'connection to server at "h", port 1 failed: FATAL:  pg_hba.conf rejects connection for host "h", user "u", database "d", no encryption',
            "auth",
            RejectedError,
        ),
        (
            'connection to server at "h", port 1 failed: FATAL:  no pg_hba.conf entry for host "h", user "u", database "d", no encryption',
            "auth",
            RejectedError,
        ),
        (
            'connection to server at "h", port 1 failed: FATAL:  password authentication failed for user "u"',
            "auth",
            RejectedError,
        ),
        (
            'connection to server at "h", port 1 failed: fe_sendauth: no password supplied',
            "auth",
            RejectedError,
        ),
        (
            'connection to server at "h", port 1 failed: FATAL:  database "d" does not exist',
            "auth",
            RejectedError,
        ),
        (
            'connection to server at "h", port 1 failed: FATAL:  role "r" does not exist',
            "auth",
            RejectedError,
        ),
        (
            'connection to server at "h", port 1 failed: FATAL:  sorry, too many clients already',
            "auth",
            RejectedError,
        ),
        (
            'connection to server at "h", port 1 failed: FATAL:  the database system is starting up',
            "auth",
            RejectedError,
        ),
    ],
)
def test_classify_rules(message: str, stage: str, cls: type[Exception]) -> None:
    failure = login.classify(message)
    assert failure.stage == stage
    assert type(failure.error) is cls
    assert "\n" not in failure.error.message
    assert failure.error.hint


def test_classify_dropped_connection_uses_the_stage_libpq_reached() -> None:
    text = 'connection to server at "h", port 1 failed: server closed the connection unexpectedly'
    assert login.classify(text, reached="auth").stage == "auth"
    assert login.classify(text, reached="tls").stage == "tls"
    assert isinstance(login.classify(text, reached="auth").error, NetworkError)
    # Hung up during the handshake: the TLS requirement was not met (exit 6).
    assert isinstance(login.classify(text, reached="tls").error, TLSError)
    eof = 'connection to server at "h", port 1 failed: SSL error: unexpected eof while reading'
    assert login.classify(eof, reached="auth").stage == "auth"


def test_classify_redacts_secrets() -> None:
    failure = login.classify("invalid URI postgresql://u:Sentinel-pw@h/d", ("Sentinel-pw",))
    assert "Sentinel-pw" not in failure.error.message


def test_no_thread_is_left_behind(servers: Servers, silent_listener: tuple[str, int]) -> None:
    """Every worker ends by the deadline (libpq's polling loop watches it), none lingers."""
    before = {t.name for t in threading.enumerate()}
    host, port = silent_listener
    probe.check({"host": host, "port": str(port)}, MODES, effective_sslmode="prefer", timeout=0.5)
    probe.check(servers.tls_on.params(), MODES, effective_sslmode="prefer")
    time.sleep(0.3)
    lingering = {t.name for t in threading.enumerate()} - before
    assert not {n for n in lingering if n.startswith("check-")}, lingering


def test_home_is_temporary() -> None:
    """The 'unset' CA cells rely on libpq's default ~/.postgresql/root.crt being absent."""
    assert not (Path(os.environ["HOME"]) / ".postgresql" / "root.crt").exists()
