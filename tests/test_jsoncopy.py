"""JSON built by pgconnect from COPY's text output (``pgconnect.jsoncopy``) against JSON built by
the server with ``row_to_json`` (the path ``-p`` takes), through the real CLI and a real server:
the same bytes for every kind of value, whether a batch of rows takes the fast way or not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Servers
from tests.querytools import query_project

# Values that make their column take the slow way in the batches of 2000 rows they fall in (each
# value of a list appears, in runs of consecutive rows); the other batches take the fast way.
ODD = {
    "s": "E'q\"uote', E'back\\\\slash', E'tab\\there', E'nl\\nx', E'\\x01ctl', 'ünïcødé \u2603', "
    "E'\\\\N', 'null', '', E'\\x7fdel', E'line\\u2028sep'",
    "n": "'NaN', 'Infinity', '-Infinity', '1e-7', '-0', '12345678901234567890.000001'",
    "ts": "'infinity', '-infinity', '0044-03-15 10:00:00+00 BC', '2024-01-01 10:00+05:30', "
    "'10000-01-01 00:00+00'",
    "j": """'{"a":\n\t"x\\\\ny"}', '[1, 2.50]', '"str"'""",
}

SQL = """
set time zone '{zone}';
select g,
       md5(g::text) as h,
       case when g % 3997 = 0 then null else g * 1.5 end as n,
       (case when g % 4500 < 6 then (array[{n}])[1 + g % 6] else (g * 0.25)::text end)::float8 as f,
       case when g % 4300 < 11 then (array[{s}])[1 + g % 11] else 'plain text ' || g end as s,
       -- alone in their batches: only the check for raw control characters sends them slow
       case g when 2500 then E'\\x01ctl' when 6500 then E'\\x7fdel\\u2028' else 'c' end as c,
       g % 2 = 0 as b,
       case when g % 5100 < 5 then (array[{ts}])[1 + g % 5]::timestamptz
            else timestamptz '2026-01-01 00:00+00' + g * interval '1 minute' end as ts,
       timestamp '2026-01-01' + g * interval '1 second' as t,
       date '2026-01-01' + g as d,
       time '10:00' + g * interval '1 ms' as tm,
       case when g % 4700 < 3 then (array[{j}])[1 + g % 3]::json
            else json_build_object('g', g) end as j,
       jsonb_build_object('k', g, 'v', array[g, g]) as jb,
       array[g, null] as arr,
       row(g, 'x') as rec,
       '\\x00ff'::bytea as by,
       interval '1 day' * g as iv,
       g::oid as o,
       '192.168.0.1'::inet as ip,
       1 as "?column?",
       2 as "?column?"
from generate_series({start}, 9000) g
"""


@pytest.fixture
def env(servers: Servers, isolated: Path) -> dict[str, str]:
    return query_project(servers.tls_on, isolated, name="jsoncopy")


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns"])
def test_copy_json_equals_row_to_json(cli: Any, env: dict[str, str], zone: str) -> None:
    def sql(start: str) -> str:
        return SQL.format(zone=zone, start=start, **ODD)

    built = cli("query", "--format", "jsonl", sql("1"), env=env, timeout=120)
    server = cli("query", "--format", "jsonl", "-p", "one=1", sql("%(one)s::int"), env=env)
    assert built.returncode == 0, built
    assert server.returncode == 0, server
    # Lines end at \n only (str.splitlines would also split at the U+2028 that JSON keeps raw).
    ours, theirs = built.stdout.split("\n")[:-1], server.stdout.split("\n")[:-1]
    assert len(ours) == len(theirs) == 9000
    for a, b in zip(ours, theirs, strict=True):
        assert a == b
    first = json.loads(ours[6])
    assert list(first)[-2:] == ["?column?", "?column?_2"]


def test_column_names_with_percent_signs_are_kept(cli: Any, env: dict[str, str]) -> None:
    # The JSON lines are put together with a %-format: a name's percent signs must not count.
    sql = 'select 1 as "100%", 2 as "%s", 3 as "%(x)s", 4 as "%%" from generate_series(1, 3)'
    result = cli("query", "--format", "jsonl", sql, env=env)
    assert result.returncode == 0, result
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"100%": 1, "%s": 2, "%(x)s": 3, "%%": 4}
    ] * 3


def test_datestyle_not_iso_leaves_dates_to_the_server(cli: Any, env: dict[str, str]) -> None:
    sql = (
        "set datestyle to 'SQL, DMY'; "
        "select timestamptz '2024-02-29 13:14:15+00' as ts, date '2024-02-29' as d"
    )
    result = cli("query", "--format", "jsonl", sql, env=env)
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == {"ts": "2024-02-29T13:14:15+00:00", "d": "2024-02-29"}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "plain"])
def test_an_error_late_in_a_copy_is_the_servers_error(
    cli: Any, env: dict[str, str], fmt: str
) -> None:
    # Rows are read straight from libpq while it has them (pgconnect.copyout); the server's
    # error at the end must still come out as the error, with the rows before it written.
    sql = "select g, 10 / (6000 - g) as q from generate_series(1, 9000) g"
    result = cli("query", "--format", fmt, sql, env=env)
    assert result.returncode == 1, result
    assert "error: division by zero" in result.stderr
    assert "SQLSTATE: 22012" in result.stderr
    assert len(result.stdout.splitlines()) >= 2000
