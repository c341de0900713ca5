"""Bad input, table by table: each case ends in one clear line and the documented exit status (README.md, "Exit status").

"One clear line": exactly one ``error:`` line on stderr (a ``hint:`` may follow), no traceback,
nothing on stdout, and nothing changed on disk. Classes:

- a corpus of malformed project files (syntax, structure, names, values) → 3;
- sslmode spellings libpq rejects (``VERIFY-FULL``, ``required``, ``""``, ``" require"``) → 3
  as a variable, in the environment or inside DB_URL; 2 as ``check --sslmode``;
- ports (``0``, ``99999``, ``54x32``, ``-1``, mismatched host/port lists) → 3;
- the invalid URIs of libpq's own regression suite (src/interfaces/libpq/test/regress.in), with
  a password added where the syntax allows → 3, the password never shown;
- NUL bytes in files, secrets, URIs and SQL → 2 or 3, and SQL is never cut short at the NUL;
- psql meta-commands given to ``query`` → 2, before any connection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import KeyringSession, Result, Servers, project_for, run_cli, write_project
from tests.faultkit import SENTINEL, error_lines, has_traceback, tally
from tests.libpq_cases import LIBPQ_INVALID_URIS

# --------------------------------------------------------------------------- helpers


def run_many(
    calls: Sequence[tuple[Sequence[str], dict[str, str], str | bytes | None]], cwd: Path
) -> list[Result]:
    """Run several CLI calls at once (each a real subprocess); results in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [
            pool.submit(run_cli, *args, env=env, input=data, cwd=cwd) for args, env, data in calls
        ]
        return [f.result() for f in futures]


def assert_one_clear_line(result: Result, status: int, *hidden: str) -> str:
    """The run failed with STATUS and said so in one error line; returns that line."""
    assert result.returncode == status, result
    assert not has_traceback(result), result
    assert "this is a bug in pgconnect" not in result.stderr, result
    lines = error_lines(result)
    assert len(lines) == 1, result
    assert result.stdout == "", result
    for value in hidden:
        assert value not in result.stderr, result
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------- malformed project files

GOOD_HEAD = 'name = "bad"\n'

# (id, file bytes, a regex the error line must match). Syntax errors name line and column.
TOML_CORPUS: list[tuple[str, bytes, str]] = [
    ("unterminated-basic-string", b'name = "bad\n', r"pgconnect\.toml:1:\d+: invalid TOML"),
    ("unterminated-literal-string", b"name = 'bad\n", r":2:1: invalid TOML at the end"),
    ("unterminated-multiline", b'name = """bad\n[vars]\n', r":3:1: invalid TOML at the end"),
    ("unterminated-array", b'name = "bad"\nsecrets = ["A"\n', r":3:1: invalid TOML"),
    ("duplicate-key", GOOD_HEAD.encode() + b'[vars]\nA = "1"\nA = "2"\n', r":4:\d+: invalid TOML"),
    ("duplicate-top-level", b'name = "a"\nname = "b"\n', r":2:\d+: invalid TOML"),
    ("duplicate-table", GOOD_HEAD.encode() + b"[vars]\n[vars]\n", r":3:\d+: invalid TOML"),
    (
        "duplicate-env-table",
        GOOD_HEAD.encode() + b"[env.a.vars]\n[env.a.vars]\n",
        r":3:\d+: invalid TOML",
    ),
    ("bad-escape", GOOD_HEAD.encode() + b'[vars]\nA = "x\\qy"\n', r":3:\d+: invalid TOML"),
    ("bad-unicode-escape", GOOD_HEAD.encode() + b'[vars]\nA = "\\uZZZZ"\n', r"invalid TOML"),
    ("surrogate-escape", GOOD_HEAD.encode() + b'[vars]\nA = "\\uD800"\n', r"invalid TOML"),
    ("raw-nul-byte", GOOD_HEAD.encode() + b'[vars]\nA = "x\x00y"\n', r":3:\d+: invalid TOML"),
    ("escaped-nul", GOOD_HEAD.encode() + b'[vars]\nA = "x\\u0000y"\n', r"A: value contains a NUL"),
    ("invalid-utf8", GOOD_HEAD.encode() + b'[vars]\nA = "\xff\xfe"\n', r"not UTF-8 text"),
    ("bom", b'\xef\xbb\xbfname = "bad"\n', r":1:1: invalid TOML: .*byte-order mark"),
    ("header-unclosed", GOOD_HEAD.encode() + b"[vars\n", r":2:\d+: invalid TOML"),
    ("key-without-value", GOOD_HEAD.encode() + b"[vars]\nA =\n", r":3:\d+: invalid TOML"),
    ("lone-cr", b'name = "bad"\r[vars]\n', r"invalid TOML"),
    ("deep-nesting", b"name = " + b"[" * 2000 + b"]" * 2000 + b"\n", r"nested too deeply"),
    ("vars-as-array", GOOD_HEAD.encode() + b'vars = ["A"]\n', r"vars\]?'? must be a table"),
    ("vars-array-of-tables", GOOD_HEAD.encode() + b"[[vars]]\nA = 1\n", r"must be a table"),
    ("env-as-string", GOOD_HEAD.encode() + b'env = "staging"\n', r"'env' must be a table"),
    ("env-entry-as-string", GOOD_HEAD.encode() + b'[env]\nstaging = "x"\n', r"must be a table"),
    ("env-vars-as-array", GOOD_HEAD.encode() + b"[env.s]\nvars = [1]\n", r"must be a table"),
    ("env-unknown-key", GOOD_HEAD.encode() + b"[env.s]\nfoo = 1\n", r"unknown key 'foo'"),
    ("env-name-with-space", GOOD_HEAD.encode() + b'[env."a b".vars]\n', r"environment name"),
    ("secrets-as-string", b'name = "bad"\nsecrets = "DB_PASSWORD"\n', r"must be a list of names"),
    ("secrets-of-numbers", b'name = "bad"\nsecrets = [1]\n', r"must be a list of names"),
    ("secret-lower-case", b'name = "bad"\nsecrets = ["db_password"]\n', r"invalid variable name"),
    ("var-lower-case", GOOD_HEAD.encode() + b'[vars]\ndb_host = "x"\n', r"invalid variable name"),
    ("var-with-dash", GOOD_HEAD.encode() + b'[vars]\nDB-HOST = "x"\n', r"invalid variable name"),
    ("var-unknown-db-name", GOOD_HEAD.encode() + b'[vars]\nDB_FOO = "x"\n', r"maps to no libpq"),
    ("var-float", GOOD_HEAD.encode() + b"[vars]\nDB_PORT = 5432.0\n", r"must be a string"),
    ("var-boolean", GOOD_HEAD.encode() + b"[vars]\nDB_SSLSNI = true\n", r"must be a string"),
    ("var-date", GOOD_HEAD.encode() + b"[vars]\nA = 1979-05-27\n", r"must be a string"),
    ("var-inline-table", GOOD_HEAD.encode() + b"[vars]\nA = {b = 1}\n", r"must be a string"),
    ("var-array", GOOD_HEAD.encode() + b'[vars]\nA = ["x"]\n', r"must be a string"),
    ("name-empty", b'name = ""\n', r"'name' must be a non-empty string"),
    ("name-not-string", b"name = 7\n", r"'name' must be a non-empty string"),
    ("name-with-colon", b'name = "a:b"\n', r"may use only letters"),
    ("unknown-top-level", b'name = "bad"\nhost = "x"\n', r"unknown top-level key 'host'"),
    ("password-in-vars", GOOD_HEAD.encode() + b'[vars]\nDB_PASSWORD = "pw"\n', r"is a secret"),
    (
        "password-in-db-url",
        GOOD_HEAD.encode() + b'[vars]\nDB_URL = "postgresql://a:pw@h/db"\n',
        r"DB_URL carries a password",
    ),
    (
        "db-url-malformed",
        GOOD_HEAD.encode() + b'[vars]\nDB_URL = "postgresql://[::1/db"\n',
        r"DB_URL is not a valid connection string",
    ),
    (
        "db-url-bad-sslmode",
        GOOD_HEAD.encode() + b'[vars]\nDB_URL = "postgresql://h/db?sslmode=required"\n',
        r"DB_URL has an invalid sslmode",
    ),
    (
        "port-list-mismatch",
        GOOD_HEAD.encode() + b'[vars]\nDB_HOST = "a,b,c"\nDB_PORT = "1,2"\n',
        r"DB_PORT lists 2 ports for 3 hosts",
    ),
    (
        "port-list-mismatch-in-env",
        GOOD_HEAD.encode() + b'[vars]\nDB_HOST = "a,b"\n[env.s.vars]\nDB_PORT = "1,2,3"\n',
        r"\[env\.s\.vars\] DB_PORT lists 3 ports for 2 hosts",
    ),
]

# Commands every bad file goes through: a reader, an editor, and one that connects.
FILE_COMMANDS = [["var", "list"], ["var", "set", "APP_MODE", "x"], ["check", "--json"]]


@pytest.mark.parametrize(
    ("text", "pattern"), [c[1:] for c in TOML_CORPUS], ids=[c[0] for c in TOML_CORPUS]
)
def test_a_malformed_project_file_is_one_line_exit_3_and_left_alone(
    isolated: Path, text: bytes, pattern: str
) -> None:
    path = isolated / "pgconnect.toml"
    path.write_bytes(text)
    before = snapshot(isolated)
    calls = [(args, {"DB_PASSWORD": SENTINEL}, None) for args in FILE_COMMANDS]
    for args, result in zip(FILE_COMMANDS, run_many(calls, isolated), strict=True):
        line = assert_one_clear_line(result, 3, SENTINEL)
        assert str(path) in line, (args, line)
        assert re.search(pattern, line), (args, line)
    assert snapshot(isolated) == before
    tally("bad input: malformed project files", 1)
    tally("bad input: command runs", len(FILE_COMMANDS))


def test_the_corpus_is_big_enough() -> None:
    assert len(TOML_CORPUS) >= 20
    assert len({c[0] for c in TOML_CORPUS}) == len(TOML_CORPUS)


# --------------------------------------------------------------------------- sslmode spellings

BAD_SSLMODES = ["VERIFY-FULL", "required", "", " require", "require ", "verify_full", "Disable"]


@pytest.fixture
def plain_project(isolated: Path) -> Path:
    return write_project(
        isolated, 'name = "bad-input"\n[vars]\nDB_HOST = "127.0.0.1"\nDB_NAME = "app"\n'
    )


@pytest.mark.parametrize("mode", BAD_SSLMODES, ids=lambda m: repr(m))
def test_sslmode_spellings_libpq_rejects(isolated: Path, plain_project: Path, mode: str) -> None:
    before = snapshot(isolated)
    url = f"postgresql://127.0.0.1/app?sslmode={quote(mode, safe='')}"
    calls: list[tuple[Sequence[str], dict[str, str], str | bytes | None]] = [
        (["var", "set", "DB_SSLMODE", mode], {}, None),
        (["var", "set", "--env", "staging", "DB_SSLMODE", mode], {}, None),
        (["explain"], {"DB_SSLMODE": mode}, None),
        (["check"], {"DB_SSLMODE": mode, "DB_PASSWORD": SENTINEL}, None),
        (["var", "set", "DB_URL", url], {}, None),
        (["explain", "--json"], {"DB_URL": url}, None),
        (["check", "--sslmode", mode], {"DB_PASSWORD": SENTINEL}, None),
    ]
    results = run_many(calls, isolated)
    for (args, _, _), result in zip(calls, results, strict=True):
        status = 2 if "--sslmode" in args else 3
        line = assert_one_clear_line(result, status, SENTINEL)
        assert repr(mode) in line, (args, line)
    assert snapshot(isolated) == before
    tally("bad input: sslmode spellings", 1)
    tally("bad input: command runs", len(calls))


# --------------------------------------------------------------------------- ports

BAD_PORTS = ["0", "99999", "65536", "54x32", "-1", "0x10", "²", "", "5432,5433,"]


@pytest.mark.parametrize("port", BAD_PORTS, ids=lambda p: repr(p))
def test_ports_libpq_rejects(isolated: Path, plain_project: Path, port: str) -> None:
    before = snapshot(isolated)
    calls: list[tuple[Sequence[str], dict[str, str], str | bytes | None]] = [
        (["var", "set", "--", "DB_PORT", port], {}, None),
        (["explain"], {"DB_PORT": port}, None),
        (["check"], {"DB_PORT": port, "DB_PASSWORD": SENTINEL}, None),
    ]
    if port.isascii() and port.isdigit():
        # A URI can only hold digits there; the rest are URI syntax errors tested below.
        url = f"postgresql://127.0.0.1:{port}/app"
        calls += [(["var", "set", "DB_URL", url], {}, None), (["explain"], {"DB_URL": url}, None)]
    for (args, _, _), result in zip(calls, run_many(calls, isolated), strict=True):
        line = assert_one_clear_line(result, 3, SENTINEL)
        assert "DB_PORT" in line, (args, line)
    assert snapshot(isolated) == before
    tally("bad input: ports", 1)
    tally("bad input: command runs", len(calls))


@pytest.mark.parametrize(
    ("hosts", "ports"),
    [("a,b,c", "1,2"), ("a,b", "1,2,3"), ("a", "1,2"), ("/tmp,b", "1,2,3")],
)
def test_mismatched_host_and_port_lists(isolated: Path, hosts: str, ports: str) -> None:
    path = write_project(isolated, f'name = "lists"\n[vars]\nDB_HOST = "{hosts}"\n')
    before = snapshot(isolated)
    calls: list[tuple[Sequence[str], dict[str, str], str | bytes | None]] = [
        (["var", "set", "DB_PORT", ports], {}, None),
        (["explain"], {"DB_PORT": ports}, None),
        (["check"], {"DB_PORT": ports, "DB_PASSWORD": SENTINEL}, None),
        (["explain"], {"DB_URL": f"postgresql:///app?host={quote(hosts)}&port={ports}"}, None),
    ]
    for (args, _, _), result in zip(calls, run_many(calls, isolated), strict=True):
        line = assert_one_clear_line(result, 3, SENTINEL)
        assert re.search(r"DB_PORT lists \d+ ports for \d+ hosts", line), (args, line)
    assert snapshot(isolated) == before
    assert path.exists()
    tally("bad input: ports", 1)
    tally("bad input: command runs", len(calls))


# --------------------------------------------------------------------------- libpq's own bad URIs


def with_password(uri: str) -> str | None:
    """URI with user:SENTINEL@ in front of the host, where the URI has an authority."""
    for prefix in ("postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return f"{prefix}app:{SENTINEL}@{uri[len(prefix) :]}"
    return None


URI_CASES = [pytest.param(u, id=u) for u in LIBPQ_INVALID_URIS] + [
    pytest.param(p, id="pw:" + u) for u in LIBPQ_INVALID_URIS if (p := with_password(u))
]


@pytest.mark.parametrize("uri", URI_CASES)
def test_libpq_invalid_uris(
    isolated: Path, plain_project: Path, keyring_session: KeyringSession, uri: str
) -> None:
    before = snapshot(isolated)
    calls: list[tuple[Sequence[str], dict[str, str], str | bytes | None]] = [
        (["explain"], {"DB_URL": uri}, None),
        (["check"], {"DB_URL": uri}, None),
        (["var", "set", "DB_URL", uri], {}, None),
        (["secret", "put", "DB_URL"], keyring_session.environ(), uri),
    ]
    calls.append((["url"], {"DB_URL": uri}, None))
    calls.append((["query", "select 1"], {"DB_URL": uri}, None))
    calls.append((["exec", "--", "true"], {"DB_URL": uri}, None))
    calls.append((["init", "--from-url", "-", "--force"], keyring_session.environ(), uri))
    for (args, _, _), result in zip(calls, run_many(calls, isolated), strict=True):
        line = assert_one_clear_line(result, 3, SENTINEL)
        assert "connection string" in line, (args, line)
    assert snapshot(isolated) == before
    tally("bad input: libpq's invalid URIs (with and without a password)", 1)
    tally("bad input: command runs", len(calls))


# --------------------------------------------------------------------------- NUL bytes


def test_nul_bytes_in_secrets_are_refused_before_anything_is_stored(
    isolated: Path, plain_project: Path, keyring_session: KeyringSession
) -> None:
    env = keyring_session.environ()
    before = snapshot(isolated)
    calls: list[tuple[Sequence[str], dict[str, str], str | bytes | None]] = [
        (["secret", "put", "DB_PASSWORD"], env, f"{SENTINEL}\x00tail"),
        (["secret", "bulk", "-"], env, json.dumps({"DB_PASSWORD": f"{SENTINEL}\x00tail"})),
        (["secret", "bulk", "-"], env, f"DB_PASSWORD={SENTINEL}\x00tail\n"),
        (["secret", "put", "DB_URL"], env, "postgresql://h/db?application_name=a\x00b"),
    ]
    for (args, _, _), result in zip(calls, run_many(calls, isolated), strict=True):
        line = assert_one_clear_line(result, 2)
        assert "NUL" in line, (args, line)
        assert SENTINEL not in result.stderr
    assert snapshot(isolated) == before
    assert keyring_session.lookup("pgconnect:bad-input", "DB_PASSWORD") is None
    tally("bad input: NUL bytes", len(calls))
    tally("bad input: command runs", len(calls))


def test_a_stored_secret_with_a_nul_byte_is_exit_3_not_a_cut_password(
    isolated: Path, keyring_session: KeyringSession
) -> None:
    """A value another tool stored: libpq would log in with what precedes the NUL."""
    name = "nul-" + SENTINEL[-6:]
    write_project(isolated, f'name = "{name}"\nsecrets = ["DB_PASSWORD"]\n[vars]\nDB_HOST = "h"\n')
    stored = keyring_session.secret_tool(
        "store",
        "--label",
        "nul",
        "service",
        f"pgconnect:{name}",
        "username",
        "DB_PASSWORD",
        input=f"{SENTINEL}\x00tail",
    )
    assert stored.returncode == 0, stored.stderr
    env = keyring_session.environ()
    calls: list[tuple[Sequence[str], dict[str, str], str | bytes | None]] = [
        (["explain"], env, None),
        (["check"], env, None),
    ]
    calls.append((["query", "select 1"], env, None))
    for (args, _, _), result in zip(calls, run_many(calls, isolated), strict=True):
        line = assert_one_clear_line(result, 3, SENTINEL)
        assert "NUL" in line, (args, line)
    tally("bad input: NUL bytes", len(calls))
    tally("bad input: command runs", len(calls))


def test_nul_in_sql_is_refused_and_nothing_runs(servers: Servers, isolated: Path) -> None:
    """libpq sends SQL as a C string: 'delete from t\\0 where id = 5' would delete every row."""
    server = servers.tls_on
    table = "nul_" + SENTINEL[-8:].lower()
    server.execute(f"create table {table} as select generate_series(1, 5) as id")
    try:
        project_for(server, isolated, name="nul")
        env = {"DB_PASSWORD": server.password}
        sql_file = isolated / "q.sql"
        delete = "delete from " + table + "\x00 where id = 5"  # noqa: S608
        sql_file.write_bytes(f"select 1;\n{delete};\n".encode())
        calls: list[tuple[Sequence[str], dict[str, str], str | bytes | None]] = [
            (["query"], env, delete),
            (["query", "-"], env, delete.encode()),
            (["query", "-f", str(sql_file)], env, None),
            (["query", "--json"], env, b"select 1 as a, '\x00' as b"),
        ]
        for (args, _, _), result in zip(calls, run_many(calls, isolated), strict=True):
            line = assert_one_clear_line(result, 2)
            assert "NUL byte" in line, (args, line)
        assert server.execute(f"select count(*) from {table}") == [(5,)]  # noqa: S608
        line = assert_one_clear_line(run_many([calls[2]], isolated)[0], 2)
        assert "line 2" in line
    finally:
        server.execute(f"drop table {table}")
    tally("bad input: NUL bytes", len(calls))
    tally("bad input: command runs", len(calls) + 1)


# --------------------------------------------------------------------------- psql meta-commands

META = [
    "\\dt",
    "\\q",
    "select 1 \\gset",
    "\\x",
    "select 1;\n\\d users",
    "\\\\",
    "\\copy t to stdout",
    "\\i setup.sql",
    "\\set x 1",
    "\\c otherdb",
    "select 1 \\g",
    "\\! ls",
]


@pytest.mark.parametrize("sql", META, ids=lambda s: repr(s))
def test_psql_meta_commands_in_query_are_refused_before_connecting(
    isolated: Path, refused_port: int, sql: str
) -> None:
    # The project points at a closed port: exit 2, not 5, proves nothing tried to connect.
    write_project(
        isolated, f'name = "meta"\n[vars]\nDB_HOST = "127.0.0.1"\nDB_PORT = "{refused_port}"\n'
    )
    calls: list[tuple[Sequence[str], dict[str, str], str | bytes | None]] = [
        (["query", sql], {"DB_PASSWORD": SENTINEL}, None),
        (["query", "--json"], {"DB_PASSWORD": SENTINEL}, sql),
    ]
    for (args, _, _), result in zip(calls, run_many(calls, isolated), strict=True):
        line = assert_one_clear_line(result, 2, SENTINEL)
        assert "psql meta-command" in line, (args, line)
    tally("bad input: psql meta-commands in query", 1)
    tally("bad input: command runs", len(calls))
