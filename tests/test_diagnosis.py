"""The classification of libpq's failures: every message has its stage, exit status and hint.

Three layers of proof:
1. every example of every rule (copied from libpq's sources) lands on that rule;
2. every message string in the libpq this pgconnect runs (psycopg's own libpq, read from the
   shared library) is either classified by a specific rule or listed below as one a connection
   cannot produce (query-time, printing, cancel, internal), with the reason;
3. one real reproduction per rule a local server can produce, against the suite's servers, with
   psql (libpq 15) agreeing on connect / not connect where psql 15 knows the parameter.
"""

from __future__ import annotations

import glob
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pgconnect import connect, diagnosis, probe
from pgconnect.errors import ConfigError, ExitCode
from tests.conftest import Server, Servers, clean_environ
from tests.plugin_check import KEY_PASSPHRASE, ROLE_PASSWORD, ClientPKI

# --------------------------------------------------------------------------- 1. the examples

_EXAMPLES = [
    pytest.param(rule, example, id=f"{rule.source}:{example[:50]}")
    for rule in diagnosis.RULES
    for example in rule.examples
]


@pytest.mark.parametrize(("rule", "example"), _EXAMPLES)
def test_every_example_lands_on_its_rule(rule: diagnosis.Rule, example: str) -> None:
    text = f'connection to server at "db", port 5432 failed: {example}'
    failure = connect.classify(text, reached="auth")
    assert failure.error.hint == rule.hint or rule.hint in (failure.error.hint or "")
    assert type(failure.error) is rule.error
    assert failure.stage == (rule.stage or "auth")
    assert "\n" not in failure.error.message


def test_every_rule_has_examples_and_a_hint() -> None:
    for rule in diagnosis.RULES:
        assert rule.examples, rule.pattern
        assert len(rule.hint) > 20, rule.pattern
        re.compile(rule.pattern)


# --------------------------------------------------------------------------- 2. libpq's strings

#: Strings in libpq that a connection attempt cannot produce, by family, with the reason.
NOT_AT_CONNECT = [
    (r"^\t?Is the server running", "second line of 'Connection refused' (classified with it)"),
    (r"^connection to server (at|on socket)", "the prefix of every attempt's message"),
    (r"PQcancel|PQrequestCancel|cancel (packet|request)|cancellation key", "fe-cancel.c"),
    (
        r"pipeline|COPY|PQexec|PQgetline|PGresult|command string|statement name|"
        r"number of parameters|parameter number|row number|column number|length must be given|"
        r"another command is already in progress|asyncStatus|ExecStatusType|"
        r"could not interpret result|query result|large object|lo_|pqGetInt|pqPutInt|"
        r"escaped (bytea|string) size|multibyte character|output buffer|input buffer|"
        r"connection in wrong state|INT_MAX tuples|error result|OID of function|"
        r"could not (open|read from|write to) file",
        "fe-exec.c / fe-lobj.c / fe-misc.c: queries, COPY and large objects after login",
    ),
    (
        r"<t[hdr]|<table|<center|Query returned|RECORD|row%s|Value\n|overlong field separator|"
        r"^%Y|^ !\"#",
        "fe-print.c: PQprint's output",
    ),
    (
        r"^(DETAIL|CONTEXT|SCHEMA NAME|TABLE NAME|COLUMN NAME|DATATYPE NAME|CONSTRAINT NAME):|"
        r"at character %s|no error (text|message) available|<unexpected empty error>",
        "fe-protocol3.c: labels of a server error's fields",
    ),
    (
        r"^(SELECT|SHOW|select|show|set client_encoding|ALTER USER)|password.encryption|"
        r"unexpected shape of result set returned for SHOW",
        "SQL libpq sends, and PQchangePassword/PQencryptPasswordConn (not connecting)",
    ),
    (
        r"^WARNING: ",
        "printed on stderr by libpq as a warning; the connection goes on (passfile, keylog)",
    ),
    (
        r"internal error|probably indicative of memory corruption|incorrectly linked|"
        r"connection pointer is NULL|destination buffer too small|drained only",
        "libpq's internal consistency checks: no input can cause them",
    ),
    (
        r"Expected |Token \"|JSON|Unicode|\\u|Escape sequence|Character with value|"
        r"input string ended|incremental lexer|json parse error",
        "src/common/jsonapi.c: reported inside an OAuth error ('failed to parse …'), "
        "classified with it",
    ),
    (
        r"^GCC: |^libpq socket$|^p=tls-server-end|^connection not oleft$|^/var/run|"
        r"^OpenSSL failure$|^no SSL error reported$|^SSL error code|^no application protocol$|"
        r"^operating system error|^password retrieved from file",
        "not messages (compiler tags, names, fragments joined in the binary) or the second "
        "line of a message classified by its first",
    ),
    (r"retrying connection with new bearer token", "an OAuth progress note, not a failure"),
]


def _libpq_strings() -> list[str]:
    import psycopg

    wheel = Path(psycopg.__file__).resolve().parent.parent
    found = sorted(glob.glob(str(wheel / "psycopg_binary.libs" / "libpq-*.so*")))
    if not found:
        pytest.skip("psycopg is not the binary wheel: no bundled libpq to read messages from")
    data = Path(found[0]).read_bytes()
    out = set()
    for raw in re.findall(rb"[\x20-\x7e\t\n]{12,}", data):
        text = raw.decode()
        if " " in text and re.search(r"[a-z]{3}", text):
            out.add(text)
    return sorted(out)


def _sample(fmt: str) -> str:
    """A libpq format string with its conversions filled in, as a user would see it."""
    fmt = fmt.replace("%%", "%")
    fmt = re.sub(r"%\.\*s", "x", fmt)
    fmt = re.sub(r"%-?\*?s", "x", fmt)
    fmt = re.sub(r"%(l|z|ll)?[duxX]|%0\d+x", "7", fmt)
    return fmt.replace("%c", "H").replace("%m", "Permission denied")


def test_every_libpq_message_is_classified_or_out_of_reach() -> None:
    unclassified = []
    for text in _libpq_strings():
        if any(re.search(p, text) for p, _ in NOT_AT_CONNECT):
            continue
        sample = _sample(text)
        if not any(re.search(r.pattern, sample, re.IGNORECASE) for r in diagnosis.RULES):
            unclassified.append(text)
    assert not unclassified, "libpq messages with no rule:\n" + "\n".join(unclassified)


# --------------------------------------------------------------------------- 3. real reproductions


def psql_connects(conn: dict[str, str], password: str | None) -> bool:
    """psql 15 with the same parameters: did it log in?"""
    words = {k: v for k, v in conn.items() if k not in ("password", "sslpassword")}
    conninfo = " ".join(f"{k}='{v}'" for k, v in words.items())
    env = clean_environ()
    if password:
        env["PGPASSWORD"] = password
    if conn.get("sslpassword"):
        # psql has no environment variable for it; a service file would do, this is simpler
        conninfo += f" sslpassword='{conn['sslpassword']}'"
    proc = subprocess.run(
        ["psql", conninfo, "-XAtc", "SELECT 1"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    return proc.returncode == 0


def _base(server: Server, user: str, **extra: str) -> dict[str, str]:
    conn = {
        "host": "127.0.0.1",
        "port": str(server.port),
        "user": user,
        "dbname": "postgres",
        "sslrootcert": str(server.ca_file),
        "gssencmode": "disable",
        "connect_timeout": "10",
    }
    conn.update(extra)
    return conn


# (id, server, user, extra params, sslmode, ok, stage, exit, hint words, psql knows the params)
CASES: list[tuple[str, str, str, dict[str, Any], str, bool, str, ExitCode, str, bool]] = [
    (
        "cert-ok",
        "auth",
        "certuser",
        {"cert": "certuser"},
        "verify-full",
        True,
        "ready",
        ExitCode.OK,
        "",
        True,
    ),
    (
        "cert-missing",
        "auth",
        "certuser",
        {},
        "verify-full",
        False,
        "auth",
        ExitCode.REJECTED,
        "demands a client certificate",
        True,
    ),
    (
        "cert-wrong-cn",
        "auth",
        "certuser",
        {"cert": "wrongcn"},
        "verify-full",
        False,
        "auth",
        ExitCode.REJECTED,
        "CN",
        True,
    ),
    (
        "cert-unknown-ca",
        "auth",
        "certuser",
        {"cert": "otherca"},
        "verify-full",
        False,
        "tls",
        ExitCode.TLS,
        "does not trust the CA",
        True,
    ),
    (
        "mtls-ok",
        "auth",
        "mtlsuser",
        {"cert": "mtlsuser", "pw": 1},
        "verify-full",
        True,
        "ready",
        ExitCode.OK,
        "",
        True,
    ),
    (
        "mtls-missing",
        "auth",
        "mtlsuser",
        {"pw": 1},
        "require",
        False,
        "auth",
        ExitCode.REJECTED,
        "demands a client certificate",
        True,
    ),
    (
        "mtls-wrong-cn",
        "auth",
        "mtlsuser",
        {"cert": "wrongcn", "pw": 1},
        "require",
        False,
        "auth",
        ExitCode.REJECTED,
        "CN is 'someone-else'",
        True,
    ),
    (
        "cb-md5-role",
        "auth",
        "md5user",
        {"pw": 1, "channel_binding": "require"},
        "require",
        False,
        "auth",
        ExitCode.REJECTED,
        "needs SCRAM",
        True,
    ),
    (
        "cb-no-tls",
        "auth",
        "app",
        {"pw": 1, "channel_binding": "require"},
        "disable",
        False,
        "auth",
        ExitCode.TLS,
        "only works over TLS",
        True,
    ),
    (
        "require-auth-md5",
        "auth",
        "md5user",
        {"pw": 1, "require_auth": "scram-sha-256"},
        "require",
        False,
        "auth",
        ExitCode.REJECTED,
        "DB_REQUIRE_AUTH",
        False,
    ),
    (
        "require-auth-none",
        "auth",
        "app",
        {"pw": 1, "require_auth": "none"},
        "require",
        False,
        "auth",
        ExitCode.REJECTED,
        "DB_REQUIRE_AUTH",
        False,
    ),
    (
        "sslcertmode-require",
        "tls_on",
        "postgres",
        {"pw": 1, "sslcertmode": "require"},
        "require",
        False,
        "auth",
        ExitCode.TLS,
        "sslcertmode=require",
        False,
    ),
    (
        "direct-to-15",
        "auth",
        "app",
        {"pw": 1, "sslnegotiation": "direct"},
        "require",
        False,
        "tls",
        ExitCode.TLS,
        "PostgreSQL 17",
        False,
    ),
    ("md5-role-ok", "auth", "md5user", {"pw": 1}, "require", True, "ready", ExitCode.OK, "", True),
]


def _materialize(
    case_extra: dict[str, Any], server: Server, user: str, client_pki: ClientPKI
) -> tuple[dict[str, str], str | None]:
    extra = dict(case_extra)
    cert = extra.pop("cert", None)
    password = (
        (server.password if user == "postgres" else ROLE_PASSWORD)
        if extra.pop("pw", None)
        else None
    )
    conn = _base(server, user, **{k: str(v) for k, v in extra.items()})
    if cert:
        conn["sslcert"] = client_pki.cert(cert)
        conn["sslkey"] = client_pki.key(cert)
    return conn, password


@pytest.mark.parametrize(
    ("server_name", "user", "extra", "sslmode", "ok", "stage", "code", "hint", "psql_knows"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_real_reproduction(
    request: pytest.FixtureRequest,
    client_pki: ClientPKI,
    server_name: str,
    user: str,
    extra: dict[str, Any],
    sslmode: str,
    ok: bool,
    stage: str,
    code: ExitCode,
    hint: str,
    psql_knows: bool,
) -> None:
    if server_name == "auth":
        server: Server = request.getfixturevalue("auth_server")
    else:
        server = request.getfixturevalue("servers").by_name[server_name]
    conn, password = _materialize(extra, server, user, client_pki)
    full = {**conn, **({"password": password} if password else {})}
    report = probe.check(full, [sslmode], effective_sslmode=sslmode, timeout=10, environ={})
    result = report.result(sslmode)
    assert (result.ok, result.stage, result.exit_code) == (ok, stage, code), result
    assert hint in (result.hint or ""), result
    if password:
        assert password not in repr(report.as_json())
    if psql_knows:
        assert psql_connects({**conn, "sslmode": sslmode}, password) is ok


def test_requirepeer_names_the_socket_owner(servers: Servers) -> None:
    """requirepeer on the server's own Unix socket, naming another OS user."""
    server = servers.tls_on
    conn = {
        "host": str(server.cluster.socket_dir),
        "port": str(server.port),
        "user": "postgres",
        "dbname": "postgres",
        "password": server.password,
        "requirepeer": "nobody-at-all",
    }
    report = probe.check(conn, ["prefer"], effective_sslmode="prefer", timeout=10, environ={})
    r = report.result("prefer")
    assert (r.ok, r.stage, r.exit_code) == (False, "auth", ExitCode.REJECTED), r
    assert "DB_REQUIREPEER" in (r.hint or "")
    assert psql_connects({k: v for k, v in conn.items() if k != "password"}, None) is False


# --------------------------------------------------------------------------- local files: exit 3


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing-cert", "does not exist"),
        ("missing-key", "has no private key"),
        ("key-mismatch", "does not belong to"),
        ("key-readable", "chmod 600"),
        ("encrypted-no-password", "DB_SSLPASSWORD"),
        ("encrypted-wrong-password", "does not decrypt"),
    ],
)
def test_local_key_problems_are_config_errors_before_connecting(
    client_pki: ClientPKI, tmp_path: Path, case: str, words: str, refused_port: int
) -> None:
    """Exit 3 naming the file, before any connection: the port here refuses everything, so a
    connection attempt would have said 'Connection refused' instead."""
    conn = {
        "host": "127.0.0.1",
        "port": str(refused_port),
        "user": "certuser",
        "sslcert": client_pki.cert("certuser"),
        "sslkey": client_pki.key("certuser"),
    }
    if case == "missing-cert":
        conn["sslcert"] = str(tmp_path / "nope.crt")
    elif case == "missing-key":
        conn["sslkey"] = str(tmp_path / "nope.key")
    elif case == "key-mismatch":
        conn["sslkey"] = client_pki.key("mtlsuser")
    elif case == "key-readable":
        copy = tmp_path / "open.key"
        copy.write_bytes(Path(client_pki.key("certuser")).read_bytes())
        copy.chmod(0o644)
        conn["sslkey"] = str(copy)
    elif case == "encrypted-no-password":
        conn["sslkey"] = str(client_pki.folder / "encrypted.key")
    elif case == "encrypted-wrong-password":
        conn["sslkey"] = str(client_pki.folder / "encrypted.key")
        conn["sslpassword"] = "Sentinel-wrong-passphrase"
    with pytest.raises(ConfigError) as info:
        probe.check(conn, ["require"], effective_sslmode="require", timeout=5, environ={})
    text = f"{info.value.message} {info.value.hint}"
    assert words in text
    assert "Sentinel-wrong-passphrase" not in text
    assert str(Path(conn["sslkey"]).name) in text or Path(conn["sslcert"]).name in text


def test_encrypted_key_with_sslpassword_connects(
    auth_server: Server, client_pki: ClientPKI
) -> None:
    conn = _base(
        auth_server,
        "certuser",
        sslcert=client_pki.cert("certuser"),
        sslkey=str(client_pki.folder / "encrypted.key"),
        sslpassword=KEY_PASSPHRASE,
    )
    report = probe.check(conn, ["verify-full"], effective_sslmode="verify-full", environ={})
    r = report.result("verify-full")
    assert r.ok, r
    cc = report.client_certificate
    assert cc is not None
    assert (cc.key_encrypted, cc.sslpassword_available, cc.key_matches) == (True, True, True)
    assert cc.requested is True
    assert KEY_PASSPHRASE not in repr(report.as_json())
    assert psql_connects({**conn, "sslmode": "verify-full"}, None)


def test_libpq_itself_never_prompts_for_a_passphrase(
    auth_server: Server, client_pki: ClientPKI
) -> None:
    """Below the audit: libpq gets the dummy sslpassword, so an encrypted key fails with 'bad
    decrypt' (exit 3) rather than OpenSSL reading the terminal."""
    conn = _base(
        auth_server,
        "certuser",
        sslcert=client_pki.cert("certuser"),
        sslkey=str(client_pki.folder / "encrypted.key"),
        sslmode="require",
    )
    with pytest.raises(ConfigError) as info:
        connect.connect(conn).close()
    assert "DB_SSLPASSWORD" in (info.value.hint or "")


# --------------------------------------------------------------------------- several hosts


def test_primary_and_standby_each_reported(
    auth_server: Server, standby: Server, refused_port: int
) -> None:
    conn = {
        "host": "127.0.0.1,127.0.0.1,127.0.0.1",
        "port": f"{refused_port},{standby.port},{auth_server.port}",
        "user": "app",
        "password": ROLE_PASSWORD,
        "dbname": "postgres",
        "sslrootcert": str(auth_server.ca_file),
        "target_session_attrs": "read-write",
    }
    report = probe.check(conn, ["verify-full"], effective_sslmode="verify-full", environ={})
    r = report.result("verify-full")
    assert r.ok, r
    assert (r.host, r.port, r.role) == ("127.0.0.1", auth_server.port, "primary")
    hosts = {h.port: h for h in report.hosts}
    assert hosts[refused_port].ok is False
    assert hosts[refused_port].stage == "tcp"
    assert hosts[standby.port].role == "standby"
    assert hosts[standby.port].ok
    assert hosts[auth_server.port].role == "primary"
    assert hosts[standby.port].certificate is not None
    shape = report.as_json()["hosts"][0]
    assert set(shape) == {"host", "port", "ok", "stage", "role", "error", "certificate"}


def test_no_writable_host_says_so(auth_server: Server, standby: Server, refused_port: int) -> None:
    conn = {
        "host": "127.0.0.1,127.0.0.1",
        "port": f"{refused_port},{standby.port}",
        "user": "app",
        "password": ROLE_PASSWORD,
        "dbname": "postgres",
        "sslrootcert": str(auth_server.ca_file),
        "target_session_attrs": "read-write",
    }
    report = probe.check(conn, ["require"], effective_sslmode="require", environ={})
    r = report.result("require")
    assert (r.ok, r.stage, r.exit_code) == (False, "auth", ExitCode.REJECTED), r
    assert "no host accepted writes" in (r.hint or "")
    assert "nothing listens" not in (r.hint or "")
    assert f"{standby.port} standby" in (r.hint or "")
    words = {k: v for k, v in conn.items() if k != "password"}
    assert psql_connects({**words, "sslmode": "require"}, ROLE_PASSWORD) is False
    # and libpq agrees a standby is there for the asking
    words["target_session_attrs"] = "standby"
    assert psql_connects({**words, "sslmode": "require"}, ROLE_PASSWORD) is True


# --------------------------------------------------------------------------- libpq's own words


def _rule(fragment: str) -> diagnosis.Rule:
    """The rule whose pattern contains FRAGMENT (exactly one)."""
    found = [r for r in diagnosis.RULES if fragment in r.pattern]
    assert len(found) == 1, (fragment, [r.pattern for r in found])
    return found[0]


def _listener(answer: bytes | None) -> tuple[int, Any]:
    """A loopback port whose server sends ANSWER to whatever comes (None: hang up at once)."""
    import socket
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                if answer is not None:
                    conn.recv(64)
                    conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return sock.getsockname()[1], (stop, sock)


# (id, rule fragment, user, extra params, sslmode, stage, exit) — libpq's own verdict through
# connect.connect() (the path every command but check takes, with no audit in front).
LIBPQ_CASES: list[tuple[str, str, str, dict[str, str], str, str, ExitCode]] = [
    (
        "key-missing",
        "certificate present, but not private key",
        "certuser",
        {"sslcert": "@certuser.crt", "sslkey": "@nope.key"},
        "require",
        "tls",
        ExitCode.CONFIG,
    ),
    (
        "key-mismatch",
        "certificate does not match private key",
        "certuser",
        {"sslcert": "@certuser.crt", "sslkey": "@mtlsuser.key"},
        "require",
        "tls",
        ExitCode.CONFIG,
    ),
    (
        "key-readable",
        "has group or world access",
        "certuser",
        {"sslcert": "@certuser.crt", "sslkey": "@open.key"},
        "require",
        "tls",
        ExitCode.CONFIG,
    ),
    (
        "key-encrypted",
        "bad decrypt",
        "certuser",
        {"sslcert": "@certuser.crt", "sslkey": "@encrypted.key"},
        "require",
        "tls",
        ExitCode.CONFIG,
    ),
    (
        "direct-weak",
        "sslnegotiation=direct",
        "app",
        {"sslnegotiation": "direct"},
        "prefer",
        "tls",
        ExitCode.CONFIG,
    ),
    (
        "system-weak",
        "sslrootcert=system",
        "app",
        {"sslrootcert": "system"},
        "require",
        "tls",
        ExitCode.CONFIG,
    ),
    (
        "require-auth-mixed",
        "negative require_auth",
        "app",
        {"require_auth": "!md5,scram-sha-256"},
        "require",
        "auth",
        ExitCode.CONFIG,
    ),
    (
        "hostaddr-count",
        "could not match",
        "app",
        {"hostaddr": "127.0.0.1,127.0.0.1"},
        "require",
        "dns",
        ExitCode.CONFIG,
    ),
    (
        "no-password",
        "fe_sendauth: no password supplied",
        "app",
        {},
        "require",
        "auth",
        ExitCode.REJECTED,
    ),
    (
        "bad-password",
        "password authentication failed",
        "app",
        {"password": "wrong"},
        "require",
        "auth",
        ExitCode.REJECTED,
    ),
    # An unknown role under password authentication reads as a wrong password (auth.c hides
    # it on purpose), and the password hint says so.
    (
        "no-role",
        "password authentication failed",
        "ghost",
        {"password": "x"},
        "require",
        "auth",
        ExitCode.REJECTED,
    ),
    (
        "no-database",
        'database \\".*\\" does not exist',
        "app",
        {"pw": "1", "dbname": "ghost"},
        "require",
        "auth",
        ExitCode.REJECTED,
    ),
    (
        "nologin",
        "is not permitted to log in",
        "nologin",
        {"pw": "1"},
        "require",
        "auth",
        ExitCode.REJECTED,
    ),
    (
        "connection-limit",
        "too many (connections|clients)",
        "nolimit",
        {"pw": "1"},
        "require",
        "auth",
        ExitCode.REJECTED,
    ),
    (
        "closed-database",
        "does not allow connections",
        "app",
        {"pw": "1", "dbname": "closed"},
        "require",
        "auth",
        ExitCode.REJECTED,
    ),
    (
        "no-connect-privilege",
        "permission denied for database",
        "app",
        {"pw": "1", "dbname": "private"},
        "require",
        "auth",
        ExitCode.REJECTED,
    ),
    (
        "bad-option",
        "unrecognized configuration parameter",
        "app",
        {"pw": "1", "options": "-c no_such_setting=1"},
        "require",
        "auth",
        ExitCode.CONFIG,
    ),
    (
        "cb-trustless-tls",
        "channel binding required, but SSL not in use",
        "app",
        {"pw": "1", "channel_binding": "require"},
        "disable",
        "auth",
        ExitCode.TLS,
    ),
    (
        "wrong-ca",
        "certificate verify failed",
        "app",
        {"pw": "1", "sslrootcert": "@wrong-ca"},
        "verify-ca",
        "tls",
        ExitCode.TLS,
    ),
    (
        "missing-root",
        "root certificate file .* does not exist",
        "app",
        {"pw": "1", "sslrootcert": "@nope.crt"},
        "verify-ca",
        "tls",
        ExitCode.TLS,
    ),
]


@pytest.mark.parametrize(
    ("fragment", "user", "extra", "sslmode", "stage", "code"),
    [pytest.param(*c[1:], id=c[0]) for c in LIBPQ_CASES],
)
def test_libpq_reproduction_lands_on_its_rule(
    auth_server: Server,
    client_pki: ClientPKI,
    tmp_path: Path,
    fragment: str,
    user: str,
    extra: dict[str, str],
    sslmode: str,
    stage: str,
    code: ExitCode,
) -> None:
    from pgconnect.errors import PgconnectError

    rule = _rule(fragment)
    open_key = tmp_path / "open.key"
    open_key.write_bytes(Path(client_pki.key("certuser")).read_bytes())
    open_key.chmod(0o644)
    files = {
        "@open.key": str(open_key),
        "@nope.key": str(tmp_path / "nope.key"),
        "@nope.crt": str(tmp_path / "nope.crt"),
        "@encrypted.key": str(client_pki.folder / "encrypted.key"),
        "@wrong-ca": str(auth_server.wrong_ca_file),
    }
    params = dict(extra)
    if params.pop("pw", None):
        params["password"] = ROLE_PASSWORD
    for key, value in list(params.items()):
        if value.startswith("@"):
            name = value[1:]
            params[key] = files.get(value) or (
                client_pki.cert(name[:-4]) if name.endswith(".crt") else client_pki.key(name[:-4])
            )
    conn = _base(auth_server, user, sslmode=sslmode, **params)
    with pytest.raises(PgconnectError) as info:
        connect.connect(conn).close()
    err = info.value
    assert err.exit_code == code, err
    assert err.hint == rule.hint, (err.message, err.hint)
    failure = connect.classify(err.message, reached="auth")  # the one-line message still says it
    assert failure.stage == (rule.stage or "auth")
    assert failure.stage == stage
    assert ROLE_PASSWORD not in err.message


@pytest.mark.parametrize(
    ("answer", "fragment", "code"),
    [
        pytest.param(
            b"HTTP/1.1 400 Bad Request\r\n\r\n",
            "received invalid response to",
            ExitCode.NETWORK,
            id="http-on-the-port",
        ),
        pytest.param(
            None, "server closed the connection unexpectedly", ExitCode.TLS, id="hangs-up"
        ),
    ],
)
def test_not_postgresql_on_the_port(answer: bytes | None, fragment: str, code: ExitCode) -> None:
    port, (stop, sock) = _listener(answer)
    try:
        conn = {
            "host": "127.0.0.1",
            "port": str(port),
            "user": "u",
            "dbname": "d",
            "gssencmode": "disable",
        }
        report = probe.check(conn, ["prefer"], effective_sslmode="prefer", timeout=5, environ={})
        r = report.result("prefer")
        assert r.exit_code == code, r
        # Hanging up on the SSLRequest is "during the TLS handshake": the TLS requirement unmet.
        expected = diagnosis.DROPPED_IN_TLS if code == ExitCode.TLS else _rule(fragment).hint
        assert r.hint == expected, r
        assert psql_connects({**conn, "sslmode": "prefer"}, None) is False
    finally:
        stop.set()
        sock.close()
