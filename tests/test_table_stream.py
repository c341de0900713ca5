"""The table format: the same look as the rich renderer it replaced for small results (golden
outputs recorded from it), streaming with flat memory for any row count, never folding a value in
the middle of a token, through the real CLI on a real pseudo-terminal."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pgconnect import render
from tests.conftest import Servers
from tests.ptytools import run_on_terminal
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
