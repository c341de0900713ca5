"""Redaction and escaping: ``safetext.redact`` on a table of shapes, and a property test of the CLI.

The property test generates malformed (and some well-formed) URIs and ``key=value`` strings
around SENTINEL as a password — random schemes, case, blanks, quotes, percent-encoding, every
secret keyword (``password``, ``sslpassword``, ``oauth_client_secret``, ``scram_client_key``,
``scram_server_key``) spelled in random case or percent-encoded, the password split by a ``/``,
``@``, blank, quote or ``&`` — and gives each string to every command that reads a connection
string: ``query``, ``exec``, ``check``, ``url``, ``init --from-url -``, ``secret bulk`` and
``var set``. Neither SENTINEL, nor either half of it, nor the password as written (when it was
percent-encoded) may appear on stdout or stderr, nor in the project file; no run may end with
"this is a bug".

Most examples run the commands in-process through the CLI's entry point (``pgconnect.cli.main``)
to stay fast; a smaller sample runs them as real subprocesses. In-process, the held-secret mask
(``common.mask_held``) is cleared before each run, so it cannot hide what redaction missed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgconnect.params import SECRET_KEYWORDS
from pgconnect.safetext import MASK, escape, redact
from tests.conftest import Result, run_cli, write_project
from tests.faultkit import SENTINEL, tally

HALF = len(SENTINEL) // 2

# --------------------------------------------------------------------------- redact, table


def split(sep: str) -> str:
    return SENTINEL[:HALF] + sep + SENTINEL[HALF:]


def hidden_parts(written: str = SENTINEL) -> tuple[str, ...]:
    return (SENTINEL, SENTINEL[:HALF], SENTINEL[HALF:], written)


REDACT_CASES = [
    f'missing "=" after "postgresql+psycopg2://app:{SENTINEL}@host/app" in connection info',
    f"postgis://app:{SENTINEL}@host/app",
    f"POSTGRESQL://app:{SENTINEL}@host/app",
    f"jdbc:postgresql://app:{SENTINEL}@host/app",
    f'in URI: "postgresql://a b:{split(" ")}@h/d"',
    f"postgresql://a'b:{split(chr(39))}@h/d",
    f"postgresql://app:{split('/')}@host/app",
    f"postgresql://app:{split('@')}@host/app",
    f"postgresql:/app:{SENTINEL}@host/app",
    f"host=h password={SENTINEL} port=5",
    f"host=h PASSWORD = '{split(' ')}' port=5",
    f"host=h password='{split(' ')}",  # unterminated
    f"host=h password={split(chr(92) + ' ')}",  # an escaped blank
    f"host=h passw%6Frd={SENTINEL}",
    f"host=h %70assword={SENTINEL}",
    f"host=h scram_server_key={SENTINEL}",
    f"host=h scram_client_key={SENTINEL}",
    f"host=h sslpassword={SENTINEL}",
    f"host=h oauth_client_secret={SENTINEL}",
    f"postgresql://h/d?sslpassword={split(' ')}&sslmode=require",
    f"postgresql://h/d?passw%6Frd={split('&')}",
    f"DB_PASSWORD={SENTINEL}",
    f"export PGPASSWORD='{SENTINEL}'",
    f'{{"password": "{split(" ")}"}}',
    f"{{'DB_PASSWORD': '{SENTINEL}'}}",
]


def case_id(text: str) -> str:
    """The case with the (random) sentinel spelled PW: ids must be the same in every process
    that collects them (pytest-xdist's workers each collect the suite)."""
    return (
        text.replace(SENTINEL, "PW").replace(SENTINEL[:HALF], "PW1").replace(SENTINEL[HALF:], "PW2")
    )


@pytest.mark.parametrize("text", REDACT_CASES, ids=case_id)
def test_redact_masks_every_shape(text: str) -> None:
    shown = redact(text)
    for part in hidden_parts():
        assert part not in shown, shown
    assert MASK in shown


def test_redact_keeps_what_is_not_secret() -> None:
    assert redact("postgresql://app@db.example.com:5432/app?sslmode=require") == (
        "postgresql://app@db.example.com:5432/app?sslmode=require"
    )
    assert redact("host=db port=5432 user=app") == "host=db port=5432 user=app"
    assert redact(f"x {SENTINEL} y", SENTINEL) == f"x {MASK} y"
    assert redact("a%2Fb", "a/b") == MASK


def test_escape() -> None:
    assert escape("a\x1b[31mb\x9b\u202e\tc\nd\udcff") == "a\\x1b[31mb\\x9b\\u202e\\tc\nd\\xff"


# --------------------------------------------------------------------------- the strategy


def _spell(word: str, draw: st.DrawFn) -> str:
    """WORD in random case, some letters percent-encoded (libpq decodes URI query keywords)."""
    out = []
    for ch in word:
        how = draw(st.integers(0, 5))
        if how == 0:
            out.append(f"%{ord(ch):02X}")
        elif how == 1:
            out.append(f"%{ord(ch):02x}")
        elif how == 2:
            out.append(ch.upper())
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True)
class Case:
    dsn: str
    written: str  # the password as it stands in DSN


SCHEMES = st.one_of(
    st.sampled_from(
        [
            "postgresql://",
            "postgres://",
            "POSTGRESQL://",
            "Postgres://",
            "postgis://",
            "postgresql+psycopg2://",
            "postgresql+asyncpg://",
            "jdbc:postgresql://",
            "postgresql:/",
            "postgresql:///",
        ]
    ),
    st.from_regex(r"[A-Za-z][A-Za-z0-9+.\-]{0,10}(\+[a-z0-9]{1,8})?://", fullmatch=True),
)
SEPARATORS = st.sampled_from(["", "", "", "/", "@", " ", "'", '"', "&", "?", "#", ":", "%", "\\"])
USERS = st.sampled_from(["app", "", "a b", "a'b", 'a"b', "us%65r", "APP", " app"])
HOSTS = st.sampled_from(
    ["host", "h:5432", "[::1", "[::1]:5432", "", "h1,h2:5", "db.example.com", "h:5x"]
)
TAILS = st.sampled_from(
    ["", "/app", "/app?sslmode=require", "?sslmode=VERIFY", "/a b", "/db?x", "/db?port=1&"]
)
BLANKS = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def passwords(draw: st.DrawFn) -> str:
    """SENTINEL, maybe split by a separator, maybe partly percent-encoded."""
    text = split(draw(SEPARATORS))
    if draw(st.booleans()):
        head = draw(st.integers(0, 3))
        text = (
            text[:head]
            + "".join(f"%{ord(c):02X}" for c in text[head : head + 3])
            + text[head + 3 :]
        )
    return text


@st.composite
def uris(draw: st.DrawFn) -> Case:
    password = draw(passwords())
    scheme = draw(SCHEMES)
    lead = draw(st.sampled_from(["", "", " "]))
    if draw(st.booleans()):
        dsn = f"{lead}{scheme}{draw(USERS)}:{password}@{draw(HOSTS)}{draw(TAILS)}"
    else:
        keyword = _spell(draw(st.sampled_from(sorted(SECRET_KEYWORDS))), draw)
        tail = draw(st.sampled_from(["", "&sslmode=require", "&x", "&"]))
        dsn = f"{lead}{scheme}{draw(HOSTS)}/db?{keyword}={password}{tail}"
    return Case(dsn, password)


@st.composite
def conninfos(draw: st.DrawFn) -> Case:
    password = draw(passwords())
    keyword = draw(st.sampled_from(sorted(SECRET_KEYWORDS)))
    if draw(st.booleans()):
        keyword = _spell(keyword, draw)
    quote = draw(st.sampled_from(["", "'", "'", '"']))
    close = quote if quote != "'" or draw(st.booleans()) else ""  # sometimes unterminated
    pair = f"{keyword}{draw(BLANKS)}={draw(BLANKS)}{quote}{password}{close}"
    others = draw(
        st.lists(
            st.sampled_from(
                [
                    "host=h",
                    "port=5x",
                    "x",
                    "'",
                    "user='a b'",
                    "sslmode=VERIFY",
                    "dbname=",
                    "=",
                    "a=b=c",
                ]
            ),
            max_size=3,
        )
    )
    at = draw(st.integers(0, len(others)))
    words = [*others[:at], pair, *others[at:]]
    return Case(draw(BLANKS) + " ".join(words) + draw(BLANKS), password)


CASES = st.one_of(uris(), conninfos())

# --------------------------------------------------------------------------- the commands

READERS = ["query", "exec", "check", "url", "init --from-url -", "secret bulk", "var set"]
PROJECT = 'name = "prop"\n[vars]\nDB_CONNECT_TIMEOUT = "2"\n'
#: Explicit DB_HOST/DB_PORT win over a DSN's: a string that happens to be valid connects to a
#: socket folder that does not exist and fails at once, whatever host it names.
BASE_ENV = {"PGCONNECT_SECRET_STORE": "file", "DB_HOST": "/nonexistent-pgconnect", "DB_PORT": "1"}


def invocation(reader: str, dsn: str) -> tuple[list[str], dict[str, str], str | None]:
    env = dict(BASE_ENV)
    if reader == "init --from-url -":
        return ["init", "--from-url", "-", "--force"], env, dsn
    if reader == "secret bulk":
        return ["secret", "bulk", "-"], env, json.dumps({"DB_URL": dsn})
    if reader == "var set":
        return ["var", "set", "DB_URL", dsn], env, None
    env["DB_URL"] = dsn
    args = {
        "query": ["query", "select 1"],
        "exec": ["exec", "--", "true"],
        "check": ["check", "--timeout", "2"],
        "url": ["url"],
    }[reader]
    return args, env, None


def check_run(case: Case, reader: str, result: Result, project_text: str) -> None:
    assert "this is a bug" not in result.stderr, (case, reader, result)
    assert "Traceback" not in result.stderr, (case, reader, result)
    assert result.returncode != 1 or reader == "exec", (case, reader, result)
    for part in hidden_parts(case.written):
        assert part not in result.stdout, (case, reader, part, result)
        assert part not in result.stderr, (case, reader, part, result)
        assert part not in project_text, (case, reader, part, project_text)


@contextlib.contextmanager
def _environ(extra: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_in_process(args: list[str], env: dict[str, str], data: str | None) -> Result:
    """``pgconnect ARGS`` through the CLI's entry point in this process, streams captured."""
    from pgconnect import cli, secret
    from pgconnect.cli import common, main

    common.STATE.debug = False
    common.STATE.env = None
    common.STATE.config = None
    common.STARTED = time.monotonic()
    secret._HELD.clear()  # as in a new process: the held-secret mask must not hide a leak
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.StringIO()
    stdin = io.TextIOWrapper(io.BytesIO((data or "").encode()), encoding="utf-8")
    code = 0
    saved_stdin = sys.stdin
    sys.stdin = stdin
    # main() lowers RLIMIT_CORE for good (soft and hard): in pytest's own process that would
    # keep later tests from raising it for the child they crash on purpose.
    saved_no_core_dumps = cli._no_core_dumps
    cli._no_core_dumps = lambda: None
    try:
        with _environ(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(args)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdin = saved_stdin
        cli._no_core_dumps = saved_no_core_dumps
    out.flush()
    raw = out.buffer.getvalue()
    return Result(code, raw.decode("utf-8", "replace"), err.getvalue(), args)


@given(case=CASES)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_connection_string_shape_shows_its_password_in_process(
    isolated: Path, case: Case
) -> None:
    project = isolated / "pgconnect.toml"
    for reader in READERS:
        project.write_text(PROJECT)
        result = run_in_process(*invocation(reader, case.dsn))
        check_run(case, reader, result, project.read_text())
    tally("redaction property: in-process runs", len(READERS))


@given(case=CASES)
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_connection_string_shape_shows_its_password_in_a_subprocess(
    isolated: Path, case: Case
) -> None:
    project = isolated / "pgconnect.toml"
    for reader in READERS:
        project.write_text(PROJECT)
        args, env, data = invocation(reader, case.dsn)
        result = run_cli(*args, env=env, input=data)
        check_run(case, reader, result, project.read_text())
    tally("redaction property: subprocess runs", len(READERS))


@pytest.mark.parametrize("key", ["PASSWORD", "Password", "pass%77ord", "pwd", "secret"])
def test_a_value_under_an_unknown_uri_keyword_is_never_quoted(key: str, isolated: Path) -> None:
    # libpq's keywords are case-sensitive: PASSWORD is not libpq's, but it may well be the
    # password as another driver takes it, so the parser's "unexpected spaces" never quotes it.
    write_project(isolated, 'name = "r"\n[vars]\n')
    url = f"postgresql://h/db?{key}={split(' ')}"
    result = run_cli("url", env={"DB_URL": url})
    assert result.returncode == 3, result
    for part in hidden_parts():
        assert part not in result.output, result
