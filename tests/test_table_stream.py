"""The table format: the same look as the rich renderer it replaced for small results (golden
outputs recorded from it), streaming with flat memory for any row count, never folding a value in
the middle of a token, through the real CLI on a real pseudo-terminal."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from pgconnect import render
from tests.conftest import Servers
from tests.ptytools import peak_rss_on_terminal, run_on_terminal
from tests.querytools import query_project
from tests.table_cases import CASES, columns

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def env(servers: Servers, isolated: Path) -> dict[str, str]:
    return query_project(servers.tls_on, isolated, name="tables")


# --------------------------------------------------------------------------- small results


def table_bytes(
    cols: list[render.Column], rows: list[list[str | None]], width: int, color: bool
) -> str:
    buf = io.BytesIO()
    style = render.TableStyle(width=width, color=color, max_rows=None)
    writer = render.Writer(render.OutputFormat.table, buf, table=style)
    writer.write(render.TextRows(cols, rows))
    writer.finish()
    return buf.getvalue().decode()


@pytest.mark.parametrize("name", list(CASES))
def test_small_results_look_as_the_rich_renderer_drew_them(name: str) -> None:
    want = json.loads((GOLDEN / "table_rich.json").read_text())[name]
    case = CASES[name]
    _, rows, width, color = case
    got = table_bytes(columns(case), rows, width, color)
    assert got == want, f"\n{got}\n---- the rich renderer:\n{want}"


# --------------------------------------------------------------------------- the CLI, recorded

#: (SQL, extra arguments, terminal columns, colour) run through the CLI on a pseudo-terminal; what
#: the rich renderer printed for each is in golden/table_cli.json.
CLI_CASES: dict[str, tuple[str, list[str], int, bool]] = {
    "md5": ("select g, md5(g::text) from generate_series(1, 5) g", [], 200, False),
    "types": (
        "set time zone 'UTC'; select 1.5::numeric as n, null::text as t, 'x y' as s, "
        "'2024-02-29 13:14:15+02'::timestamptz as ts, 42::int8 as big, true as b, "
        "'{1,2}'::int[] as arr, '\\x00ff'::bytea as bin",
        [],
        200,
        False,
    ),
    "types-color": (
        "select 1.5::numeric as n, null::text as t, E'tab\\there' as s, 7 as i",
        [],
        120,
        True,
    ),
    "multi-line-and-controls": (
        "select 1 as id, E'first\\nsecond' as m, E'\\x1b[31mred' as esc "
        "union all select 2, 'one', E'\\u202eevil'",
        [],
        100,
        False,
    ),
    "records": (
        "select " + ", ".join(f"{1000 + i} as column_{i}" for i in range(12)),
        [],
        40,
        False,
    ),
    "parameters": (
        "select %(n)s::int as n, %(s)s as s",
        ["-p", "n=5", "-p", "s=hello"],
        80,
        False,
    ),
    "several-results": ("select 1 as a; select 'x' as b, null as c", [], 80, False),
    "capped": ("select g from generate_series(1, 12) g", ["--max-rows", "10"], 80, False),
    "no-rows": ("select 1 as a, 'b' as b where false", [], 80, False),
}


def run_case(name: str, env: dict[str, str], cwd: Path) -> str:
    sql, extra, columns, color = CLI_CASES[name]
    environ = {**env} if color else {**env, "NO_COLOR": "1"}
    run = run_on_terminal(
        ["query", "--format", "table", *extra, sql], env=environ, cwd=cwd, columns=columns
    )
    assert run.status == 0, run.text
    return run.text


def test_the_cli_prints_small_results_as_the_rich_renderer_did(
    env: dict[str, str], isolated: Path
) -> None:
    path = GOLDEN / "table_cli.json"
    got = {name: run_case(name, env, isolated) for name in CLI_CASES}
    if os.environ.get("RECORD_TABLE_GOLDEN") == "1":  # only ever run against the old renderer
        path.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
        pytest.skip("recorded")
    want: dict[str, Any] = json.loads(path.read_text())
    assert set(want) == set(CLI_CASES)
    for name in CLI_CASES:
        assert got[name] == want[name], (
            f"{name}:\n{got[name]}\n---- the rich renderer:\n{want[name]}"
        )


# --------------------------------------------------------------------------- streaming

BIG = "select g, md5(g::text) from generate_series(1, {n}) g"


def test_memory_does_not_grow_with_the_row_count(env: dict[str, str], isolated: Path) -> None:
    """The same table of 10k and of 200k rows on a 200-column terminal: peak RSS within a few
    MiB (the rich renderer held every row: 392 MiB for 100k)."""
    peaks = {}
    for n in (10_000, 200_000):
        status, peaks[n] = peak_rss_on_terminal(
            ["query", "--format", "table", "--max-rows", "0", BIG.format(n=n)],
            env={**env, "NO_COLOR": "1"},
            cwd=isolated,
        )
        assert status == 0
    assert peaks[200_000] - peaks[10_000] <= 4, peaks
    assert peaks[200_000] <= 64, peaks


def test_rows_stream_in_one_table_with_room_for_growing_numbers(
    env: dict[str, str], isolated: Path
) -> None:
    run = run_on_terminal(
        ["query", "--format", "table", "--max-rows", "0", BIG.format(n=20_000)],
        env={**env, "NO_COLOR": "1"},
        cwd=isolated,
    )
    assert run.status == 0, run.text[-2000:]
    lines = run.text.splitlines()
    # One table: ids from 1 to 20000 fit the width fixed from the first 1000 rows.
    assert sum(1 for ln in lines if ln.startswith("╭")) == 1
    assert lines[3] == "│       1 │ c4ca4238a0b923820dcc509a6f75849b │"
    assert "│   20000 │ " in run.text
    body = [ln for ln in lines if ln.startswith("│")]
    assert len(body) == 20_001
    assert len({len(ln) for ln in body}) == 1
    assert lines[-1] == "(20000 rows)"


def test_an_error_mid_stream_ends_the_table_first(env: dict[str, str], isolated: Path) -> None:
    sql = "select g, 10 / (3000 - g) as q from generate_series(1, 5000) g"
    run = run_on_terminal(
        ["query", "--format", "table", "--max-rows", "0", sql],
        env={**env, "NO_COLOR": "1"},
        cwd=isolated,
    )
    assert run.status == 1, run.text[-2000:]
    lines = run.text.splitlines()
    bottom = next(i for i, ln in enumerate(lines) if ln.startswith("╰"))
    assert "error: division by zero" in "\n".join(lines[bottom + 1 :])
    assert "│    2000 │    0 │" in run.text  # rows came out as they arrived


# --------------------------------------------------------------------------- never mid-token

WIDE = (
    "select g, md5(g::text) as h1, timestamp '2026-12-01 19:16:11.123456' + "  # noqa: S608
    "g * interval "
    "'1 second' as ts, md5((g + 1)::text) as h2, 'words that may wrap at spaces' as t, "
    "g * 1.5 as x, date '2026-01-01' + g as d, md5((g + 2)::text) as h3, "
    + ", ".join(f"{i} as c{i}" for i in range(12))
    + " from generate_series(1, 3) g"
)


def _tokens(sql_result: str) -> list[str]:
    return [t for t in sql_result.split("\t") if t]


@pytest.mark.parametrize("columns", [150, 80, 300])
def test_twenty_columns_never_fold_a_value_mid_token(
    cli: Any, env: dict[str, str], isolated: Path, columns: int
) -> None:
    """A 20-column result: a table when it fits, else records; every md5, timestamp, date and
    number whole on one line, and no line wider than the terminal except one holding a whole
    value (which the terminal then wraps)."""
    plain = cli("query", "--format", "plain", WIDE, env=env)
    assert plain.returncode == 0, plain
    values = [t for line in plain.stdout.splitlines() for t in _tokens(line)]
    run = run_on_terminal(
        ["query", "--format", "table", WIDE],
        env={**env, "NO_COLOR": "1"},
        cwd=isolated,
        columns=columns,
    )
    assert run.status == 0, run.text
    lines = run.text.splitlines()
    for value in values:
        if " " in value and not value[0].isdigit():
            continue  # text with spaces may wrap at them
        assert any(value in ln for ln in lines), (value, run.text)
    for ln in lines:
        assert len(ln) <= columns or any(v in ln and len(v) > columns // 3 for v in values), ln
    if columns >= 300:
        assert lines[1].startswith("│ ")  # it fits: a table
    else:
        assert lines[0].startswith("record 1 ")


def test_a_too_wide_text_column_wraps_at_spaces_only(env: dict[str, str], isolated: Path) -> None:
    sentence = "the quick brown fox jumps over the lazy dog " * 4
    sql = f"select 'c4ca4238a0b923820dcc509a6f75849b' as h, '{sentence.strip()}' as t"
    run = run_on_terminal(
        ["query", "--format", "table", sql], env={**env, "NO_COLOR": "1"}, cwd=isolated, columns=80
    )
    assert run.status == 0, run.text
    lines = [ln for ln in run.text.splitlines() if ln.startswith("│")]
    assert all(len(ln) <= 80 for ln in run.text.splitlines())
    assert "c4ca4238a0b923820dcc509a6f75849b" in lines[1]
    words = " ".join(ln.split("│")[2].strip() for ln in lines[1:])
    assert words == sentence.strip()  # every word whole, in order


# --------------------------------------------------------------------------- pg_stat_activity


@pytest.mark.parametrize(
    ("extra", "statement"),
    [
        (["--format", "table", "--max-rows", "0"], "/* pgconnect query: select g as {m}"),
        (["--format", "jsonl", "-p", "one=1"], "/* pgconnect query: select g as {m}"),
        (["--format", "csv"], "COPY (\nselect g as {m}"),
    ],
)
def test_dbas_see_the_running_sql_and_the_application(
    servers: Servers, env: dict[str, str], isolated: Path, extra: list[str], statement: str
) -> None:
    """While rows stream, pg_stat_activity shows the user's SQL (the cursor's FETCH carries it
    in a comment) and application_name 'pgconnect query'."""
    from tests.querytools import start_cli, wait_for

    mark = "m" + uuid.uuid4().hex[:10]
    start = "%(one)s::int" if "-p" in extra else "1"
    # The first 2000 rows come at once; the next fetch sleeps, so it is seen running.
    sql = (
        f"select g as {mark}, case when g > 2500 then pg_sleep(60) end as s "  # noqa: S608
        f"from generate_series({start}, 5000) g"
    )
    proc = start_cli("query", *extra, sql, env=env, cwd=isolated)
    seen: list[tuple[str, str]] = []

    def running() -> bool:
        rows = servers.tls_on.execute(
            "select query, application_name from pg_stat_activity where state = 'active' "
            "and pid <> pg_backend_pid() and strpos(query, %s) > 0",
            mark,
        )
        seen[:] = [(str(q), str(a)) for q, a in rows]
        return any("pg_sleep" in q and not q.startswith("DECLARE") for q, _ in seen)

    try:
        assert wait_for(running, 30), seen
        query, application = seen[0]
        assert application == "pgconnect query"
        assert query.startswith(statement.format(m=mark)), query
        if "FETCH" in query:
            assert query.endswith("*/ FETCH FORWARD 2000 FROM pgconnect_rows"), query
    finally:
        # SIGTERM cancels the query on the server too (SIGINT is ignored by a background job).
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
