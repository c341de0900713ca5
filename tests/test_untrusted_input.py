"""Input from someone else, through the real CLI: no secret echoed, one line, the documented code.

Each case is a real subprocess of ``python -m pgconnect`` with SENTINEL as the password, and
checks that SENTINEL (and each half of it, where the case splits it) is on neither stdout nor
stderr, that the run ended with exactly one ``error:`` line (a ``hint:`` may follow), no
traceback and no "this is a bug", and with the exit status of the README's table:

- malformed connection strings that carry the password (another scheme, upper case, a space or
  quote in the user name, a percent-encoded keyword, ``scram_server_key=``, a raw ``/`` or ``@``
  in the password) through every command that reads one: ``query``, ``exec``, ``check``, ``url``,
  ``init --from-url -``, ``secret bulk``, ``var set`` and ``init --from-wrangler`` → 3;
- values on their way to the secret store that fail validation → 3, never quoted; a value typed
  where ``secret put`` wants the name → 2, never quoted;
- bytes that are not UTF-8 in the project file (3), in stdin (2), in argv (2) and in the
  environment (3); ``--timeout inf|nan|-1`` (2); a port of 5000 digits (3); JSON nested 100000
  deep (2); an environment name of 300 characters (3);
- terminal escape sequences from the project file and from the server's messages (error, detail,
  hint, notice) are shown escaped, while ``--format csv|json|plain`` stays byte-exact.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import Result, Servers, cli_environ, project_for, run_cli, write_project
from tests.faultkit import SENTINEL, error_lines, has_traceback, tally

HALF = len(SENTINEL) // 2
#: What must not be shown: the password, and each half of it (a case may split it at HALF).
HIDDEN = (SENTINEL, SENTINEL[:HALF], SENTINEL[HALF:])
ESC = "\x1b[31m"


def split(sep: str) -> str:
    """SENTINEL with SEP inserted in the middle."""
    return SENTINEL[:HALF] + sep + SENTINEL[HALF:]


def assert_refused(result: Result, status: int, *hidden: str) -> str:
    """One error line, STATUS, nothing hidden shown, no traceback; returns the error line."""
    assert result.returncode == status, result
    assert "this is a bug" not in result.stderr, result
    assert not has_traceback(result), result
    lines = error_lines(result)
    assert len(lines) == 1, result
    for value in (*HIDDEN, *hidden):
        assert value not in result.stdout, result
        assert value not in result.stderr, result
    assert "\x1b" not in result.stderr, result
    return lines[0]


def run_many(
    calls: Sequence[tuple[Sequence[str], dict[str, str], str | bytes | None]],
) -> list[Result]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(run_cli, *a, env=e, input=i) for a, e, i in calls]
        return [f.result() for f in futures]


def run_bytes(
    args: Sequence[bytes], env: dict[str, str] | None = None, data: bytes = b""
) -> Result:
    """The CLI with argv or environment bytes that are not UTF-8 (run_cli takes text)."""
    argv = [sys.executable.encode(), b"-m", b"pgconnect", *args]
    environ: dict[bytes, bytes] = {k.encode(): v.encode() for k, v in cli_environ().items()}
    for key, value in (env or {}).items():
        environ[key.encode("utf-8", "surrogateescape")] = value.encode("utf-8", "surrogateescape")
    proc = subprocess.run(argv, input=data, capture_output=True, env=environ, timeout=60)
    return Result(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
        [a.decode("utf-8", "replace") for a in argv],
    )


@pytest.fixture
def project(isolated: Path) -> Path:
    return write_project(isolated, 'name = "untrusted"\n[vars]\nDB_HOST = "/nonexistent-pg"\n')


# --------------------------------------------------------------------------- connection strings

#: (id, a malformed or ambiguous connection string carrying the password).
MALFORMED = [
    ("psycopg2-scheme", f"postgresql+psycopg2://app:{SENTINEL}@host/app"),
    ("asyncpg-scheme", f"postgresql+asyncpg://app:{SENTINEL}@host/app"),
    ("postgis-scheme", f"postgis://app:{SENTINEL}@host/app"),
    ("upper-case-scheme", f"POSTGRESQL://app:{SENTINEL}@host/app"),
    ("jdbc", f"jdbc:postgresql://app:{SENTINEL}@host/app"),
    ("space-in-user", f"postgresql://a b:{SENTINEL}@host/app"),
    ("space-in-password", f"postgresql+asyncpg://app:{split(' ')}@host/app"),
    ("quote-in-user", f"postgresql://a'b:{split(chr(34))}@host app"),
    ("slash-in-password", f"postgresql://app:{split('/')}@host/app"),
    ("at-in-password", f"postgresql://app:{split('@')}@host/app"),
    ("encoded-keyword-uri", f"postgresql://host/app?passw%6Frd={split('&')}"),
    ("encoded-keyword-kv", f"host=h passw%6Frd={SENTINEL} x"),
    ("scram-server-key", f"host=h scram_server_key={split(' ')}"),
    ("scram-client-key-quoted", f"host=h scram_client_key = '{split(' ')}"),
    ("sslpassword-after-junk", f"host=h junk sslpassword={SENTINEL}"),
    ("oauth-secret-upper", f"host=h OAUTH_CLIENT_SECRET={SENTINEL}"),
    ("leading-blank-uri", f" postgresql://app:{split(' ')}@host/app"),
]

#: (command, how the string is given): every command that reads a connection string.
READERS = [
    "query",
    "exec",
    "check",
    "url",
    "init --from-url -",
    "secret bulk",
    "var set",
    "init --from-wrangler",
]


def _call(reader: str, dsn: str) -> tuple[list[str], dict[str, str], str | None]:
    env = {"PGCONNECT_SECRET_STORE": "file"}
    if reader == "init --from-url -":
        return ["init", "--from-url", "-", "--force"], env, dsn
    if reader == "secret bulk":
        return ["secret", "bulk", "-"], env, json.dumps({"DB_URL": dsn})
    if reader == "var set":
        return ["var", "set", "DB_URL", dsn], env, None
    if reader == "init --from-wrangler":
        # wrangler.toml's [vars]; a JSON string is a TOML basic string.
        Path("wrangler.toml").write_text(f'name = "w"\n[vars]\nDB_URL = {json.dumps(dsn)}\n')
        return ["init", "--from-wrangler", "--force"], env, None
    env["DB_URL"] = dsn
    args = {
        "query": ["query", "select 1"],
        "exec": ["exec", "--", "true"],
        "check": ["check", "--timeout", "3"],
        "url": ["url"],
    }[reader]
    return args, env, None


@pytest.mark.parametrize("dsn", [d for _, d in MALFORMED], ids=[i for i, _ in MALFORMED])
def test_a_malformed_connection_string_never_shows_its_password(project: Path, dsn: str) -> None:
    before = project.read_bytes()
    results = run_many([_call(reader, dsn) for reader in READERS])
    for reader, result in zip(READERS, results, strict=True):
        line = assert_refused(result, 3)
        assert "connection string" in line or "DB_URL" in line, (reader, result)
    assert project.read_bytes() == before  # var set and init --force changed nothing
    tally("untrusted input: malformed connection strings x readers", len(results))


def test_the_messages_still_say_what_is_wrong(project: Path) -> None:
    results = run_many(
        [
            _call("url", f"postgresql+psycopg2://app:{SENTINEL}@host/app"),
            _call("url", f"postgresql://app:{split('/')}@host/app"),
            _call("url", f"postgresql://a b:{SENTINEL}@host/app"),
        ]
    )
    scheme, slash, space = (assert_refused(r, 3) for r in results)
    assert '"postgresql+psycopg2://"' in scheme
    assert '"postgresql://"' in scheme
    assert "%2F" in slash
    assert '"a b"' in space
    assert "postgresql://a b:****@host/app" in space


# --------------------------------------------------------------------------- values for the store

STORE_BOUND = [
    ("DB_SSLMODE", SENTINEL),
    ("DB_PORT", SENTINEL),
    ("DB_CONNECT_TIMEOUT", SENTINEL),
    ("DB_KEEPALIVES", SENTINEL),
    ("DB_TARGET_SESSION_ATTRS", SENTINEL),
    ("DB_URL", f"postgresql://h:{SENTINEL}/db"),
    ("DB_URL", f"host=h sslmode={SENTINEL}"),
]


@pytest.mark.parametrize(
    ("name", "value"),
    STORE_BOUND,
    # The sentinel is random: ids must be the same in every process that collects them.
    ids=[n + "-" + v.replace(SENTINEL, "PW")[:12] for n, v in STORE_BOUND],
)
def test_a_value_for_the_store_that_fails_validation_is_never_quoted(
    project: Path, name: str, value: str
) -> None:
    env = {"PGCONNECT_SECRET_STORE": "file"}
    results = run_many(
        [
            (["secret", "bulk", "-"], env, json.dumps({name: value})),
            (["secret", "bulk", "-"], env, f"{name}={value}\n"),
            (["secret", "put", name], env, value),
        ]
    )
    for result in results:
        assert "nothing was" in assert_refused(result, 3)
    tally("untrusted input: store-bound values", len(results))


def test_a_value_typed_where_the_name_belongs_is_never_quoted(project: Path) -> None:
    lower = "pw-" + SENTINEL.lower()
    results = run_many(
        [
            (["secret", "put", SENTINEL, "DB_PASSWORD"], {}, None),
            (["secret", "put", "DB_PASSWORD", SENTINEL], {}, None),
            (["secret", "put", lower], {"PGCONNECT_SECRET_STORE": "file"}, "x"),
        ]
    )
    assert_refused(results[0], 2)
    assert_refused(results[1], 2)
    assert_refused(results[2], 3, lower)


# --------------------------------------------------------------------------- bad input


def test_bytes_that_are_not_utf8(isolated: Path) -> None:
    write_project(isolated, 'name = "u"\n[vars]\nDB_HOST = "/nonexistent-pg"\n')
    cases = [
        (run_bytes([b"var", b"set", b"DB_HOST", b"\xff\xfe"]), 2),
        (run_bytes([b"query", b"select '\xff'"]), 2),
        (run_bytes([b"url", b"-e", b"st\xff"]), 2),
        (run_bytes([b"url"], env={"DB_HOST": "h\udcff"}), 3),
        (run_bytes([b"query", b"select 1"], env={"DB_PASSWORD": SENTINEL + "\udcff"}), 3),
        (run_bytes([b"url"], env={"DB_URL": f"postgresql://app:{SENTINEL}@h/\udcff"}), 3),
        (run_bytes([b"url"], env={"PGPASSWORD": "\udcff" + SENTINEL}), 3),
        (run_bytes([b"url"], env={"DB_\udcff": "1"}), 3),
        (
            run_bytes(
                [b"secret", b"bulk", b"-"],
                data=b'{"DB_PASSWORD": "\xff' + SENTINEL.encode() + b'"}',
            ),
            2,
        ),
        (run_bytes([b"query", b"-"], data=b"select '\xff'"), 2),
        (run_bytes([b"init", b"--from-url", b"-", b"--force"], data=b"postgresql://a:\xff@h/d"), 2),
    ]
    for result, status in cases:
        line = assert_refused(result, status)
        assert "UTF-8" in line, result
    (isolated / "pgconnect.toml").write_bytes(b'name = "u"\n[vars]\nDB_HOST = "\xff"\n')
    before = (isolated / "pgconnect.toml").read_bytes()
    for args in (["url"], ["var", "list"], ["var", "set", "DB_PORT", "5432"]):
        assert "UTF-8" in assert_refused(run_cli(*args), 3)
    assert (isolated / "pgconnect.toml").read_bytes() == before
    tally("untrusted input: bytes that are not UTF-8", len(cases) + 3)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "-1", "0", "1e300"])
def test_timeouts_that_are_not_a_number_of_seconds(project: Path, value: str) -> None:
    for args in (["check", "--timeout", value], ["query", "--timeout", value, "select 1"]):
        assert "--timeout" in assert_refused(run_cli(*args), 2)


def test_a_port_of_5000_digits(project: Path) -> None:
    port = "9" * 5000
    results = run_many(
        [
            (["var", "set", "DB_PORT", port], {}, None),
            (["url"], {"DB_PORT": port}, None),
            (["check", "--timeout", "3"], {"DB_PORT": "0" * 4999 + "1"}, None),
            (["url"], {"DB_URL": f"postgresql://h:{port}/db"}, None),
            (
                ["secret", "bulk", "-"],
                {"PGCONNECT_SECRET_STORE": "file"},
                json.dumps({"DB_PORT": port}),
            ),
            (["query", "--max-rows", port, "select 1"], {}, None),
        ]
    )
    for result in results[:5]:
        line = assert_refused(result, 3)
        assert "port" in line, result
        assert len(line) < 400, result
    assert len(assert_refused(results[5], 2)) < 400


def test_json_nested_100000_deep_and_huge_numbers(project: Path) -> None:
    env = {"PGCONNECT_SECRET_STORE": "file"}
    deep = '{"A":' * 100000
    results = run_many(
        [
            (["secret", "bulk", "-"], env, deep),
            (["secret", "bulk", "-"], env, "[" * 100000),
            (["secret", "bulk", "-"], env, '{"DB_PASSWORD": ' + "1" * 5000 + "}"),
        ]
    )
    for result in results:
        assert "nothing was changed" in assert_refused(result, 2)


def test_an_environment_name_of_300_characters(project: Path) -> None:
    name = "e" * 300
    env = {"PGCONNECT_SECRET_STORE": "file"}
    results = run_many(
        [
            (["var", "set", "--env", name, "DB_HOST", "h"], {}, None),
            (["url", "--env", name], {}, None),
            (["secret", "put", "--env", name, "DB_PASSWORD"], env, SENTINEL),
            (["var", "list"], {"PGCONNECT_ENV": name}, None),
        ]
    )
    for result in results:
        assert "at most 63 characters" in assert_refused(result, 3)
    assert name not in project.read_text()


# --------------------------------------------------------------------------- terminal escapes


def test_escape_sequences_from_the_project_file_are_shown_escaped(isolated: Path) -> None:
    write_project(
        isolated,
        'name = "esc"\n[vars]\nDB_APPLICATION_NAME = "a\\u001b[31mred\\u009b2J"\n'
        'PLAIN = "\\u001b]0;title\\u0007"\n',
    )
    listing = run_cli("var", "list")
    assert listing.returncode == 0, listing
    assert "\x1b" not in listing.stdout, listing
    assert "\x9b" not in listing.stdout, listing
    assert "a\\x1b[31mred\\x9b2J" in listing.stdout, listing
    explain = run_cli("explain")
    assert explain.returncode == 0, explain
    assert "\\x1b[31m" in explain.stdout, explain
    # `var get` is for scripts: the value exactly.
    got = run_cli("var", "get", "PLAIN")
    assert got.stdout == "\x1b]0;title\x07\n", got

    write_project(isolated, 'name = "esc"\n[vars]\n"DB_\\u001b[2J" = "x"\n')
    assert "\\x1b[2J" in assert_refused(run_cli("url"), 3)
    write_project(isolated, 'name = "esc"\n[env."x\\u001b[2J".vars]\nDB_HOST = "h"\n')
    assert "\\x1b[2J" in assert_refused(run_cli("url"), 3)
    write_project(isolated, 'name = "esc"\n[vars]\nDB_SSLMODE = "\\u001b[2J"\n')
    assert "\\x1b[2J" in assert_refused(run_cli("url"), 3)


def test_escape_sequences_from_the_server_are_shown_escaped(
    servers: Servers, isolated: Path
) -> None:
    server = servers.tls_on
    project_for(server, isolated, sslmode="verify-full")
    env = {"DB_PASSWORD": server.password}
    failing = (
        "do $$ begin raise notice E'note \\x1b[2J'; raise exception E'boom \\x1b[31m' "
        "using detail = E'detail \\x1b]0;t\\x07', hint = E'hint \\u009b1m'; end $$"
    )
    failed = run_cli("query", failing, env=env)
    assert failed.returncode == 1, failed
    for text in ("note \\x1b[2J", "boom \\x1b[31m", "detail \\x1b]0;t\\x07", "hint \\x9b1m"):
        assert text in failed.stderr, failed
    for raw in ("\x1b", "\x9b", "\x07"):
        assert raw not in failed.stderr, failed

    header = "select E'v\\x1b[2J' as \"c\x1b[31m\""
    table = run_cli("query", "--format", "table", header, env=env)
    assert table.returncode == 0, table
    assert "\x1b" not in table.stdout, table
    assert "c\\x1b[31m" in table.stdout, table
    assert "v\\x1b[2J" in table.stdout, table
    # Formats for scripts stay byte-exact.
    csv = run_cli("query", "--format", "csv", header, env=env)
    assert csv.stdout == "c\x1b[31m\r\nv\x1b[2J\r\n" or csv.stdout == "c\x1b[31m\nv\x1b[2J\n", csv
    js = run_cli("query", "--format", "json", header, env=env)
    assert json.loads(js.stdout) == [{"c\x1b[31m": "v\x1b[2J"}], js


# --------------------------------------------------------------------------- every option, odd values

#: Values of the kinds that used to end in "this is a bug": empty, NUL, not UTF-8 (a lone
#: surrogate, as Python keeps such argv bytes), infinities, huge numbers, escapes, long words.
ODD_VALUES = ["", "\x00", "\udcff", "inf", "nan", "-1", "9" * 5000, ESC + "x", "a" * 300, "%", "="]


def test_every_option_and_argument_of_every_command_with_odd_values(isolated: Path) -> None:
    """The fuzz pass, kept: each option and argument of each command (the sandbox's aside: they
    start servers) given each odd value, in-process; no run may end as a bug, show a raw escape
    or the password."""
    from tests.cli_tree import leaves
    from tests.test_redaction import run_in_process

    project = isolated / "pgconnect.toml"
    text = 'name = "fz"\n[vars]\nDB_HOST = "/nonexistent-pg"\nDB_CONNECT_TIMEOUT = "1"\n'
    env = {"PGCONNECT_SECRET_STORE": "file", "DB_PASSWORD": SENTINEL}
    runs = 0
    for path, command in leaves():
        if path[0] == "sandbox":
            continue
        names = [p.name for p in command.params if p.param_type_name == "argument"]
        options = [
            p.opts[0]
            for p in command.params
            if p.param_type_name == "option" and not p.is_flag and p.opts[0] != "--help"
        ]
        plain = ["DB_HOST", "x"][: len(names)]
        calls = [[*path, opt, value, *plain] for opt in options for value in ODD_VALUES]
        for i in range(len(names)):
            for value in ODD_VALUES:
                args = list(plain) if len(plain) == len(names) else ["DB_HOST"] * len(names)
                args[i] = value
                calls.append([*path, *args])
        for args in calls:
            project.write_text(text)
            result = run_in_process(args, env, "x")
            assert "this is a bug" not in result.stderr, result
            assert "Traceback" not in result.stderr, result
            assert "\x1b" not in result.stderr, result
            assert SENTINEL not in result.output, result
            runs += 1
    tally("untrusted input: odd values for every option and argument", runs)
