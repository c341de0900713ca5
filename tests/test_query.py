"""``pgconnect query`` end to end: the real CLI as a subprocess against the real test servers (and
a real PgBouncer in transaction mode), with real signals, pipes and psql to compare against."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Servers, cli_environ, project_for
from tests.querytools import (
    Bouncer,
    backends_running,
    pgbouncer,
    query_project,
    start_cli,
    wait_for,
)

SENTINEL = "Sentinel-Pw-7f3a9c"


@pytest.fixture
def env(servers: Servers, isolated: Path) -> dict[str, str]:
    """A project in the test's folder for the TLS server; the password from the environment."""
    return query_project(servers.tls_on, isolated)


def marker() -> str:
    return "m" + uuid.uuid4().hex[:12]


# --------------------------------------------------------------------------- where SQL comes from


def test_sql_from_argument_file_and_stdin(cli: Any, env: dict[str, str], isolated: Path) -> None:
    (isolated / "q.sql").write_text("select 'from file' as src;\n")
    assert cli("query", "select 'arg'", env=env).stdout == "arg\n"
    assert cli("query", "-f", "q.sql", env=env).stdout == "from file\n"
    assert cli("query", input="select 'stdin'", env=env).stdout == "stdin\n"
    assert cli("query", "-", input="select 'dash'", env=env).stdout == "dash\n"
    assert cli("query", "-f", "-", input="select 'f dash'", env=env).stdout == "f dash\n"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["select 1", "-f", "q.sql"], "", "not both"),
        (["-f", "missing.sql"], "", "cannot read missing.sql"),
        ([], "", "no SQL to run"),
        (["   "], "", "no SQL to run"),
        ([], "-- just a comment\n;;", "no SQL to run"),
        (["\\dt"], "", "\\dt (line 1) is a psql meta-command"),
        (["select 1;\n\\d+ users"], "", "\\d+ (line 2) is a psql meta-command"),
        (["select %(x)s", "-p", "y=1"], "", "%(x)s (line 1) has no value"),
        (["select 1", "-p", "novalue"], "", "expected NAME=VALUE"),
        (["select 1", "-p", "a=1", "-p", "a=2"], "", "-p a is given twice"),
        (["copy t from stdin"], "", "COPY … FROM STDIN is not supported"),
        (["--read-only", "begin; select 1; commit"], "", "BEGIN cannot be used with --read-only"),
        (["--timeout", "0", "select 1"], "", "--timeout must be"),
        (["--json", "--format", "csv", "select 1"], "", "contradict"),
        (["--max-rows", "5", "--format", "csv", "select 1"], "", "--max-rows only applies"),
        (["--format", "xml", "select 1"], "", "xml"),
    ],
)
def test_usage_errors_exit_2_before_connecting(
    cli: Any, isolated: Path, args: list[str], stdin: str, message: str
) -> None:
    # No project file and no server: usage errors are found before either is needed.
    (isolated / "q.sql").write_text("select 1")
    result = cli("query", *args, input=stdin)
    assert result.returncode == 2, result
    assert message in result.stderr
    assert result.stdout == ""


# --------------------------------------------------------------------------- formats


def test_default_format_on_a_pipe_is_plain(cli: Any, env: dict[str, str]) -> None:
    result = cli("query", "select count(*) from generate_series(1, 42)", env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "42\n", "")


def test_plain_is_tab_separated_raw_values_null_empty(cli: Any, env: dict[str, str]) -> None:
    sql = "select 1, null, 'a b', E'back\\\\slash', true union all select 2, 'x', '', 'y', false"
    for extra in ([], ["-p", "unused=1"]):  # the COPY way, and (with -p) the cursor way
        result = cli("query", *extra, sql, env=env)
        assert result.returncode == 0, result
        assert result.stdout == "1\t\ta b\tback\\slash\tt\n2\tx\t\ty\tf\n"


def test_csv_matches_psql(cli: Any, servers: Servers, env: dict[str, str]) -> None:
    server = servers.tls_on
    sql = (
        "select g, md5(g::text) as h, 'a,b' as comma, 'q\"uote' as quote, E'two\\nlines' as nl,"
        " null::text as nothing, '' as empty, g * 1.5 as num, '\u2603 snow' as uni,"
        " array[g, null] as arr, '2024-01-02 03:04:05+00'::timestamptz as ts"
        " from generate_series(1, 50) g"
    )
    ours = cli("query", "--format", "csv", sql, env=env)
    assert ours.returncode == 0, ours
    psql_env = cli_environ(
        {
            "PGHOST": server.host,
            "PGPORT": str(server.port),
            "PGUSER": server.user,
            "PGDATABASE": server.dbname,
            "PGPASSWORD": server.password,
            "PGSSLMODE": "disable",
        }
    )
    theirs = subprocess.run(
        ["psql", "-X", "--csv", "-c", sql],
        capture_output=True,
        text=True,
        env=psql_env,
        timeout=60,
        check=True,
    )
    ours_rows = list(csv.reader(io.StringIO(ours.stdout)))
    psql_rows = list(csv.reader(io.StringIO(theirs.stdout)))
    assert len(ours_rows) == 51
    assert ours_rows == psql_rows


def test_several_statements(cli: Any, env: dict[str, str]) -> None:
    sql = "select 1 as a; create temp table s(x int); select 2 as b, 3 as c; drop table s"
    assert cli("query", sql, env=env).stdout == "1\n2\t3\n"  # plain: every result set
    table = cli("query", "--format", "table", sql, env=env).stdout
    assert "│ a │" in table
    assert "│ b │ c │" in table
    assert cli("query", "--json", sql, env=env).stdout == '[\n{"b":2,"c":3}\n]\n'
    assert cli("query", "--format", "jsonl", sql, env=env).stdout == '{"b":2,"c":3}\n'
    assert cli("query", "--format", "csv", sql, env=env).stdout == "b,c\n2,3\n"
    # A result set without rows still counts as the last one; no result set at all is [].
    empty = cli("query", "--json", "select 1 as a; select 2 as b where false", env=env)
    assert empty.stdout == "[]\n"
    none = cli("query", "--json", "create temp table n(x int)", env=env)
    assert (none.returncode, none.stdout) == (0, "[]\n")


def test_statements_run_one_after_another_and_stop_at_the_first_error(
    cli: Any, servers: Servers, env: dict[str, str]
) -> None:
    name = "stop_" + marker()
    sql = f"create table {name}(x int); select 1/0; drop table {name}"
    result = cli("query", sql, env=env)
    assert result.returncode == 1
    assert "division by zero" in result.stderr
    assert servers.tls_on.execute(f"select count(*) from {name}") == [(0,)]  # noqa: S608 - committed, kept
    servers.tls_on.execute(f"drop table {name}")


@pytest.mark.parametrize("extra", [["--format", "csv"], ["--read-only", "--json"], ["-p", "x=1"]])
def test_sql_the_fast_path_cannot_wrap_runs_as_written(
    cli: Any, env: dict[str, str], extra: list[str]
) -> None:
    # An unbalanced parenthesis would close pgconnect's COPY ( … ) or subquery: the server's
    # error must still point at the user's text (inside --read-only's transaction too).
    result = cli("query", *extra, "select 1)", env=env)
    assert result.returncode == 1, result
    assert "LINE 1: select 1)\n" + " " * 16 + "^" in result.stderr
    wrapped = [
        (
            "with d as (delete from w returning x) select x from d order by x",
            '[{"x": 1}, {"x": 2}]',
        ),
        ("select x into temp w2 from w; table w2 order by x", '[{"x": 1}, {"x": 2}]'),
    ]
    for sql, expected in wrapped:
        full = f"create temp table w(x int); insert into w values (2), (1); {sql}"  # noqa: S608
        ok = cli("query", "--json", full, env=env)
        assert ok.returncode == 0, ok
        assert json.loads(ok.stdout) == json.loads(expected)


RETURNING_SETUP = (
    "create temp table r (id int, note text, price numeric, day date); "
    "insert into r select g, 'a,b \"c\"' || E'\\t' || g, g * 1.10, date '2025-01-31' + g "
    "from generate_series(1, 3) g; "
)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "plain", "json", "jsonl"])
@pytest.mark.parametrize(
    "sql",
    [
        "insert into r values (4, null, 'NaN', null) returning *",
        "update r set note = null where id = 2 returning id, note, price * 2 as twice",
        "with d as (delete from r where id = 3 returning *) select id, day from d",
        "delete from r where id > 100 returning id",  # no rows: a header, or []
    ],
)
def test_rows_of_data_modifying_statements_stream_like_a_query(
    cli: Any, env: dict[str, str], fmt: str, sql: str
) -> None:
    # INSERT/UPDATE/DELETE … RETURNING (and a WITH holding one) go through COPY (…) TO STDOUT,
    # which streams them; -p rules COPY out, so the same SQL with an unused -p runs as written
    # (the rows read whole). Both ways must print the same bytes.
    streamed = cli("query", "--format", fmt, RETURNING_SETUP + sql, env=env)
    whole = cli("query", "--format", fmt, "-p", "unused=1", RETURNING_SETUP + sql, env=env)
    assert streamed.returncode == 0, streamed
    assert whole.returncode == 0, whole
    assert streamed.stdout == whole.stdout
    assert streamed.stdout.strip() not in ("", "[]") or "id > 100" in sql


def test_a_streamed_data_modifying_statement_runs_once(cli: Any, env: dict[str, str]) -> None:
    # plain prints every result set: the RETURNING rows, then what the table holds after.
    then = "delete from r where id < 3 returning id; insert into r values (9) returning id; "
    sql = RETURNING_SETUP + then + "select count(*) from r"  # noqa: S608 - constant text
    result = cli("query", "--format", "plain", sql, env=env)
    assert (result.returncode, result.stdout) == (0, "1\n2\n9\n2\n")


def test_a_refused_copy_of_returning_rows_runs_as_written(cli: Any, env: dict[str, str]) -> None:
    # For json the statement becomes a CTE; a WITH holding DML cannot be nested in one
    # (feature_not_supported): pgconnect runs it as written, once, inside --timeout's transaction
    # too (the savepoint undoes the refused attempt).
    sql = (
        "create temp table r(x int); "
        "with a as (insert into r values (1) returning x) insert into r select x + 1 from a "
        "returning x; "
        "select count(*) as n from r"
    )
    for extra in ([], ["--timeout", "5"]):
        result = cli("query", "--format", "jsonl", *extra, sql, env=env)
        assert result.returncode == 0, result
        assert result.stdout == '{"n":2}\n'


def test_sql_starting_with_a_comment(cli: Any, env: dict[str, str]) -> None:
    result = cli("query", "--", "-- a comment\nselect 1 as a", env=env)
    assert (result.returncode, result.stdout) == (0, "1\n")


def test_user_copy_to_stdout_passes_through(cli: Any, env: dict[str, str]) -> None:
    result = cli("query", "copy (select 1, 'a b') to stdout with (format csv)", env=env)
    assert (result.returncode, result.stdout) == (0, "1,a b\n")


def test_notices_go_to_stderr(cli: Any, env: dict[str, str]) -> None:
    result = cli("query", "drop table if exists no_such_table_here; select 1", env=env)
    assert result.returncode == 0, result
    assert result.stdout == "1\n"
    assert "NOTICE:" in result.stderr
    assert "does not exist, skipping" in result.stderr


# --------------------------------------------------------------------------- table safety


def test_table_cells_are_data_not_markup_or_terminal_codes(cli: Any, env: dict[str, str]) -> None:
    sql = (
        "select '[bold]x[/]' as markup, E'\\x1b[31mred\\x1b[0m' as esc,"
        " E'\\x1b]0;pwned\\x07' as osc, E'a\\rb' as cr, '[link=http://x]y[/link]' as \"[i]h[/i]\""
    )
    result = cli("query", "--format", "table", sql, env=env)
    assert result.returncode == 0, result
    out = result.stdout
    assert "[bold]x[/]" in out
    assert "[link=http://x]y[/link]" in out
    assert "[i]h[/i]" in out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\r" not in out
    assert "\\x1b[31mred\\x1b[0m" in out
    assert "\\x1b]0;pwned\\x07" in out
    assert "a\\rb" in out


def test_table_caps_rows_and_says_how_many_more(cli: Any, env: dict[str, str]) -> None:
    sql = "select g from generate_series(1, 1234) g"
    result = cli("query", "--format", "table", sql, env=env)
    assert result.returncode == 0, result
    assert "│ 1000 │" in result.stdout
    assert "│ 1001 │" not in result.stdout
    assert "(1234 rows)" in result.stderr
    assert "234 more rows not shown" in result.stderr
    small = cli("query", "--format", "table", "--max-rows", "3", sql, env=env)
    assert "│ 3 │" in small.stdout
    assert "│ 4 │" not in small.stdout
    assert "1231 more rows not shown (--max-rows 3" in small.stderr
    every = cli("query", "--format", "table", "--max-rows", "0", sql, env=env)
    assert "│ 1234 │" in every.stdout
    assert "more rows" not in every.stderr


def test_table_shows_long_values_whole(cli: Any, env: dict[str, str]) -> None:
    value = "".join(str(i % 10) for i in range(500))
    result = cli(
        "query",
        "--format",
        "table",
        f"select '{value}' as v, 'x' as w",
        env={**env, "COLUMNS": "50"},
    )
    assert result.returncode == 0, result
    assert "…" not in result.stdout
    assert "".join(c for c in result.stdout if c.isdigit()) == value


# --------------------------------------------------------------------------- parameters, modes


def test_parameter_values_stay_data(cli: Any, servers: Servers, env: dict[str, str]) -> None:
    name = "inj_" + marker()
    servers.tls_on.execute(f"create table {name}(x text)")
    evil = f"x'; drop table {name}; --"
    result = cli(
        "query",
        "--json",
        "-p",
        f"v={evil}",
        f"insert into {name} values (%(v)s) returning x",  # noqa: S608
        env=env,
    )
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == [{"x": evil}]
    assert servers.tls_on.execute(f"select x from {name}") == [(evil,)]  # noqa: S608
    servers.tls_on.execute(f"drop table {name}")


def test_parameters_bind_server_side(cli: Any, env: dict[str, str]) -> None:
    sql = (
        "select %(n)s + 1 as n, %(n)s::text || %(s)s as s, 7 %% 3 as modulo,"
        " '%(n)s' as literal, %(s)s is null as isnull"
    )
    result = cli("query", "--json", "-p", "n=41", "-p", "s= é", sql, env=env)
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == [
        {"n": 42, "s": "41 é", "modulo": 1, "literal": "%(n)s", "isnull": False}
    ]
    unused = cli("query", "-p", "n=1", "-p", "extra=2", "select %(n)s", env=env)
    assert unused.returncode == 0
    assert "-p extra is not used" in unused.stderr


def test_read_only(cli: Any, servers: Servers, env: dict[str, str]) -> None:
    name = "ro_" + marker()
    refused = cli("query", "--read-only", f"create table {name}(x int)", env=env)
    assert refused.returncode == 1
    assert "read-only transaction" in refused.stderr
    assert "SQLSTATE: 25006" in refused.stderr
    sneaky = cli(
        "query", "--read-only", f"set transaction read write; create table {name}(x int)", env=env
    )
    assert sneaky.returncode == 1, sneaky
    assert servers.tls_on.execute("select to_regclass(%s) is null", name) == [(True,)]
    fine = cli("query", "--read-only", "select current_setting('transaction_read_only')", env=env)
    assert (fine.returncode, fine.stdout) == (0, "on\n")


def test_timeout_cancels_a_slow_statement(cli: Any, env: dict[str, str]) -> None:
    started = time.monotonic()
    result = cli("query", "--timeout", "0.5", "select pg_sleep(20)", env=env)
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert "statement timeout" in result.stderr
    assert "SQLSTATE: 57014" in result.stderr
    ok = cli("query", "--timeout", "5", "show statement_timeout", env=env)
    assert (ok.returncode, ok.stdout) == (0, "5s\n")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("extra", [[], ["--json"], ["--json", "-p", "x=1"], ["--format", "table"]])
def test_syntax_error_shows_the_line_and_a_caret(
    cli: Any, env: dict[str, str], extra: list[str]
) -> None:
    sql = (
        "select 1;\n  select %(x)s, * form pg_class"
        if "-p" in extra
        else "select 1;\nselect * form pg_class"
    )
    result = cli("query", *extra, sql, env=env)
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    lines = lines[lines.index('error: syntax error at or near "form"') :]
    line = next(ln for ln in lines if ln.startswith("LINE 2: "))
    caret = lines[lines.index(line) + 1]
    assert caret.strip() == "^"
    assert line[caret.index("^") :].startswith("form")
    assert "SQLSTATE: 42601" in lines


def test_error_detail_hint_context(cli: Any, env: dict[str, str]) -> None:
    sql = (
        "do $$ begin raise exception 'boom' using detail = 'the detail', "
        "hint = 'the hint', errcode = '22023'; end $$"
    )
    result = cli("query", sql, env=env)
    assert result.returncode == 1
    err = result.stderr
    assert "error: boom" in err
    assert "DETAIL: the detail" in err
    assert "hint: the hint" in err
    assert "CONTEXT: PL/pgSQL function" in err
    assert "SQLSTATE: 22023" in err
    missing = cli("query", "select * from no_such_relation_x", env=env)
    assert missing.returncode == 1
    assert 'relation "no_such_relation_x" does not exist' in missing.stderr
    assert "LINE 1: select * from no_such_relation_x" in missing.stderr
    assert "SQLSTATE: 42P01" in missing.stderr


def test_sentinel_password_never_shown_on_error_paths(
    cli: Any, servers: Servers, isolated: Path, refused_port: int
) -> None:
    server = servers.tls_on
    role = "sentinel_" + marker()
    server.create_role(role, SENTINEL)
    project_for(server, isolated, name="sentinel")
    good = {"DB_PASSWORD": SENTINEL, "DB_USERNAME": role}
    cases = [
        ({**good, "DB_PASSWORD": SENTINEL + "-wrong"}, ["select 1"], 7),
        ({**good, "DB_PORT": str(refused_port)}, ["select 1"], 5),
        (good, ["select * form t"], 1),
        (good, [f"select '{SENTINEL}'::int"], 1),
        (good, ["--json", "-p", "v=1", f"select '{SENTINEL}'::int + %(v)s"], 1),
        (good, [f"select 1/0 as {role}"], 1),
    ]
    for environ, args, code in cases:
        result = cli("query", *args, env=environ)
        assert result.returncode == code, result
        assert SENTINEL not in result.stdout, result
        assert SENTINEL not in result.stderr, result


def test_rejected_login_names_the_missing_secret(
    cli: Any, servers: Servers, isolated: Path, keyring_session: Any
) -> None:
    path = project_for(servers.tls_on, isolated, name="missing-" + marker())
    path.write_text('secrets = ["DB_PASSWORD"]\n' + path.read_text())
    result = cli("query", "select 1", env=keyring_session.environ())
    assert result.returncode == 7, result
    assert "DB_PASSWORD" in result.stderr


# --------------------------------------------------------------------------- interruptions


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGQUIT, 131)],
)
@pytest.mark.parametrize("extra", [[], ["--json", "-p", "s=30"]])
def test_signal_cancels_the_query_on_the_server(
    servers: Servers, env: dict[str, str], isolated: Path, sig: int, code: int, extra: list[str]
) -> None:
    tag = marker()  # in the SQL, and the application_name (a cursor's FETCH hides the SQL)
    seconds = "%(s)s::float" if extra else "30"
    proc = start_cli(
        "query",
        *extra,
        f"select pg_sleep({seconds}) as {tag}",
        env={**env, "DB_APPLICATION_NAME": tag},
        cwd=isolated,
    )
    try:
        assert wait_for(lambda: backends_running(servers.tls_on, tag) == 1, 30), "never started"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == code, err
        started = time.monotonic()
        assert wait_for(lambda: backends_running(servers.tls_on, tag) == 0, 2.0)
        assert time.monotonic() - started <= 2.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("extra", [["--format", "csv"], ["--format", "jsonl", "-p", "n=1"]])
def test_closed_stdout_ends_quietly_and_cancels(
    servers: Servers, env: dict[str, str], isolated: Path, extra: list[str]
) -> None:
    tag = marker()
    one = "%(n)s::int" if "-p" in extra else "1"
    sql = f"select g as {tag}, repeat('x', 500) from generate_series({one}, 3000000) g"  # noqa: S608
    proc = start_cli("query", *extra, sql, env={**env, "DB_APPLICATION_NAME": tag}, cwd=isolated)
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        first = proc.stdout.readline()  # like `| head -1`
        assert first
        proc.stdout.close()
        rc = proc.wait(timeout=30)
        err = proc.stderr.read().decode()
        assert rc == 0, err
        assert err == ""
        assert wait_for(lambda: backends_running(servers.tls_on, tag) == 0, 2.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_head_in_a_shell_pipeline(env: dict[str, str], isolated: Path) -> None:
    query = "'select g from generate_series(1, 5000000) g'"
    cmd = f"{sys.executable} -m pgconnect query --format csv {query} | head -2"
    cmd += '; echo "status=${PIPESTATUS[0]}"'
    proc = subprocess.run(
        ["bash", "-c", cmd],
        capture_output=True,
        text=True,
        env=cli_environ(env),
        cwd=isolated,
        timeout=60,
    )
    assert proc.stdout == "g\n1\nstatus=0\n", proc
    assert proc.stderr == ""


# --------------------------------------------------------------------------- poolers


@pytest.fixture(scope="session")
def bouncer(servers: Servers) -> Iterator[Bouncer]:
    with pgbouncer(servers.tls_on, pool_size=1) as running:
        yield running


def test_repeated_queries_through_pgbouncer_transaction_mode(
    cli: Any, servers: Servers, bouncer: Bouncer, isolated: Path
) -> None:
    project_for(servers.tls_on, isolated, name="pooled", sslmode="disable")
    pooled = {"DB_PASSWORD": servers.tls_on.password, "DB_PORT": str(bouncer.port)}
    runs: list[tuple[list[str], str]] = [
        (["select 1"], "1\n"),
        (["--json", "select 1 as a"], '[\n{"a":1}\n]\n'),
        (["--format", "csv", "select 'x' as b"], "b\nx\n"),
        (["--format", "jsonl", "-p", "v=5", "select %(v)s::int * 2 as c"], '{"c":10}\n'),
        (["--format", "table", "select 'ok' as d"], "╭────╮\n│ d  │\n├────┤\n│ ok │\n╰────╯\n"),
        (["-p", "v=a", "select %(v)s || %(v)s"], "aa\n"),
        (["--read-only", "--timeout", "3", "select current_setting('statement_timeout')"], "3s\n"),
        (["show statement_timeout"], "0\n"),  # the transaction-local setting did not leak
        (["select 1; select 2"], "1\n2\n"),
        (
            ["--json", "-p", "v=1", "select %(v)s::int as e union all select 2"],
            '[\n{"e":1},\n{"e":2}\n]\n',
        ),
    ]
    # Several clients at once share the single server connection between transactions.
    many = [
        start_cli(
            "query", "-p", f"i={i}", "select %(i)s::int, pg_sleep(0.2)", env=pooled, cwd=isolated
        )
        for i in range(4)
    ]
    assert len(runs) == 10
    for args, expected in runs:
        result = cli("query", *args, env=pooled)
        assert result.returncode == 0, (result, bouncer.log()[-2000:])
        assert result.stdout == expected, result
    for i, proc in enumerate(many):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out == f"{i}\t\n".encode()


# --------------------------------------------------------------------------- memory


def peak_rss_mib(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """Peak RSS of ARGV, measured in a fresh parent so nothing else counts (RUSAGE_CHILDREN)."""
    probe = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        capture_output=True,
        text=True,
        env=cli_environ(env),
        cwd=cwd,
        timeout=300,
        check=True,
    ).stdout.split()
    return int(out[0]) / 1024, int(out[1])


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["--format", "csv"],
        ["--format", "jsonl"],
        ["--format", "json"],
        ["--format", "plain"],
        ["--format", "jsonl", "-p", "one=1"],  # a cursor instead of COPY
        ["--format", "csv", "-p", "one=1"],
        ["--format", "csv", "--returning"],  # INSERT … RETURNING through COPY
        ["--format", "jsonl", "--returning"],
    ],
)
def test_memory_stays_flat_for_a_million_rows(
    env: dict[str, str], isolated: Path, args: list[str]
) -> None:
    start = "%(one)s::int" if "-p" in args else "1"
    sql = f"select g, md5(g::text), now(), g*1.5 from generate_series({start},1000000) g"  # noqa: S608
    if "--returning" in args:
        args = [a for a in args if a != "--returning"]
        sql = (
            "create temp table m (g int, h text, t timestamptz, f numeric); "
            f"insert into m {sql} returning *"
        )
    argv = [sys.executable, "-m", "pgconnect", "query", *args, sql]
    peak, rc = peak_rss_mib(argv, env, isolated)
    assert rc == 0
    assert peak <= 64, f"peak RSS {peak:.1f} MiB"
