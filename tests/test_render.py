"""Values → JSON, CSV, plain and tables: unit tables of odd cases, and the type table through the
real CLI against a real server, by each of the three ways a statement can run (the server
building the output through COPY, a cursor because of -p parameters, and a statement run as
written with the values converted in Python) — all must print the same."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pgconnect import pgvalues, render
from pgconnect.render import Column, OutputFormat, TableStyle
from tests.conftest import Servers
from tests.querytools import query_project


def reject(constant: str) -> Any:
    raise AssertionError(f"bare {constant} in the JSON output")


def loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_constant=reject)


# --------------------------------------------------------------------------- unit tables


@pytest.mark.parametrize(
    ("text", "oid", "expected"),
    [
        (None, pgvalues.INT4, "null"),
        ("42", pgvalues.INT4, "42"),
        ("-9223372036854775808", pgvalues.INT8, "-9223372036854775808"),
        ("123456789012345678901234567890.000000000000000001", pgvalues.NUMERIC, None),
        ("1.50", pgvalues.NUMERIC, "1.50"),
        ("NaN", pgvalues.NUMERIC, '"NaN"'),
        ("Infinity", pgvalues.FLOAT8, '"Infinity"'),
        ("-Infinity", pgvalues.FLOAT4, '"-Infinity"'),
        ("1e+300", pgvalues.FLOAT8, "1e+300"),
        ("-0", pgvalues.FLOAT8, "-0"),
        ("t", pgvalues.BOOL, "true"),
        ("f", pgvalues.BOOL, "false"),
        ('{"a": [1, 2.50]}', pgvalues.JSON, '{"a": [1, 2.50]}'),
        ('{"a":\n\t1}', pgvalues.JSON, '{"a":  1}'),
        ("\\x00ff", pgvalues.BYTEA, '"\\\\x00ff"'),
        ("2024-01-02", pgvalues.DATE, '"2024-01-02"'),
        ("2024-01-02 03:04:05+00", pgvalues.TIMESTAMPTZ, '"2024-01-02T03:04:05+00:00"'),
        ("2024-01-02 03:04:05.5+05:30", pgvalues.TIMESTAMPTZ, '"2024-01-02T03:04:05.5+05:30"'),
        ("2024-01-02 03:04:05", pgvalues.TIMESTAMP, '"2024-01-02T03:04:05"'),
        ("0044-03-15 10:00:00+00 BC", pgvalues.TIMESTAMPTZ, '"0044-03-15T10:00:00+00:00 BC"'),
        ("infinity", pgvalues.TIMESTAMP, '"infinity"'),
        ("12:00:00-07", pgvalues.TIMETZ, '"12:00:00-07:00"'),
        ("1 day 02:00:00", pgvalues.INTERVAL, '"1 day 02:00:00"'),
        ("255", pgvalues.OID, '"255"'),
        ("$1.00", pgvalues.MONEY, '"$1.00"'),
        ("{1,NULL,3}", 1007, "[1,null,3]"),
        ('{{a,"b c"},{"\\"q\\"",NULL}}', 1009, '[["a","b c"],["\\"q\\"",null]]'),
        ('{NaN,"1.0"}', 1231, '["NaN",1.0]'),
        ("[0:1]={1,2}", 1007, "[1,2]"),
        ("{}", 1007, "[]"),
        ('{"{\\"a\\": 1}"}', 3807, '[{"a": 1}]'),
        ('{"(1,2)";"(3,4)"}', 1020, '["(1,2)","(3,4)"]'),  # box[]: ';' separates
        ("x\x1b[31m\u2603", 25, '"x\\u001b[31m\u2603"'),
    ],
)
def test_json_value(text: str | None, oid: int, expected: str | None) -> None:
    assert pgvalues.json_value(text, oid) == (text if expected is None else expected)


def test_json_value_keeps_text_times_when_datestyle_is_not_iso() -> None:
    assert pgvalues.json_value("01/02/2024", pgvalues.DATE, iso_dates=False) == '"01/02/2024"'


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["a", "b"], ["a", "b"]),
        (["?column?", "?column?"], ["?column?", "?column?_2"]),
        (["a", "a", "a_2", "a"], ["a", "a_3", "a_2", "a_4"]),
    ],
)
def test_unique_names(names: list[str], expected: list[str]) -> None:
    assert pgvalues.unique_names(names) == expected


def test_rename_keys_keeps_values_byte_exact() -> None:
    text = '{"a":1.50,"a":{"x": [1, 2.0]},"b":"s\\"q"}'
    assert pgvalues.rename_keys(text, ["a", "a_2", "b"]) == (
        '{"a":1.50,"a_2":{"x": [1, 2.0]},"b":"s\\"q"}'
    )


@pytest.mark.parametrize(
    ("copy", "plain"),
    [
        (b"a\tb\n", b"a\tb\n"),
        (b"back\\\\slash\tnew\\nline\\ttab\\rcr\n", b"back\\slash\tnew\nline\ttab\rcr\n"),
        (b"\\\\n is not a newline\n", b"\\n is not a newline\n"),
        (b"\\b\\f\\v\n", b"\b\f\v\n"),
    ],
)
def test_unescape_copy_text(copy: bytes, plain: bytes) -> None:
    assert render.unescape_copy_text(copy) == plain


def test_unescape_copy_json_flattens_raw_whitespace_only() -> None:
    copy = b'{"s":"a\\\\nb \\\\\\\\ c","j":{"x":\\n\\t1}}\n'
    assert render.unescape_copy_json(copy) == b'{"s":"a\\nb \\\\ c","j":{"x":  1}}\n'
    assert json.loads(render.unescape_copy_json(copy)) == {"s": "a\nb \\ c", "j": {"x": 1}}


def table(columns: list[Column], rows: list[list[str | None]], width: int = 100) -> str:
    return render.render_table(columns, rows, TableStyle(width=width, color=False))


def test_table_cells_are_never_markup_and_controls_are_escaped() -> None:
    out = table(
        [Column("[red]name[/]", 25)],
        [["[bold]x[/]"], ["\x1b[31mred\x1b[0m"], ["\x1b]0;title\x07"], ["a\rb\tc"], ["\u202eevil"]],
    )
    assert "[bold]x[/]" in out
    assert "[red]name[/]" in out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\r" not in out
    assert "\u202e" not in out
    assert "\\x1b[31mred\\x1b[0m" in out
    assert "\\x1b]0;title\\x07" in out
    assert "a\\rb\\tc" in out
    assert "\\u202eevil" in out


def test_table_with_color_still_never_sends_data_escapes() -> None:
    out = render.render_table(
        [Column("v", 25)], [["\x1b[2J"], [None]], TableStyle(width=80, color=True)
    )
    # rich's own SGR styles are the only escape sequences; the data's "clear screen" is text.
    plain = re.sub("\x1b\\[[0-9;]*m", "", out)
    assert "\x1b" not in plain
    assert "\\x1b[2J" in plain


def test_table_never_cuts_or_folds_values() -> None:
    # 700 digits are one word: no table column can hold it on 60 cells, so the row is a record
    # and the value is written whole on one line (the terminal wraps it; copying it gets it whole).
    value = "".join(str(i % 10) for i in range(700))
    out = table([Column("v", 25), Column("w", 25)], [[value, "short"]], width=60)
    assert "…" not in out
    assert "record 1" in out
    lines = out.splitlines()
    assert lines[1] == "v " + value
    assert lines[2].rstrip() == "w short"
    assert all(len(line) <= 60 for line in lines if value not in line)


def test_too_many_columns_are_shown_as_records_not_squeezed_out() -> None:
    cols = [Column(f"column_{i}", 23) for i in range(12)]
    out = table(cols, [[str(1000 + i) for i in range(12)]], width=40)
    for i in range(12):
        assert f"column_{i}" in out
        assert str(1000 + i) in out
    assert "record 1" in out


def test_null_and_right_aligned_numbers() -> None:
    out = table([Column("n", pgvalues.NUMERIC), Column("t", 25)], [["1.5", None], ["100", "x"]])
    lines = out.splitlines()
    assert "NULL" in out
    assert any("│ 1.5 │" in ln for ln in lines)
    assert any("│   n │" in ln for ln in lines)


def write(fmt: OutputFormat, *results: render.Result, statements: int = 1) -> bytes:
    buf = io.BytesIO()
    writer = render.Writer(fmt, buf, statements=statements)
    for result in results:
        writer.write(result)
    writer.finish()
    return buf.getvalue()


def test_machine_formats_print_the_last_result_only() -> None:
    first = render.TextRows([Column("a", 23)], [["1"]])
    second = render.TextRows([Column("b", 23)], [["2"], [None]])
    assert write(OutputFormat.json, first, second, statements=2) == b'[\n{"b":2},\n{"b":null}\n]\n'
    assert write(OutputFormat.csv, first, second, statements=2) == b"b\n2\n\n"


def test_json_with_no_result_is_an_empty_array() -> None:
    assert write(OutputFormat.json) == b"[]\n"
    assert write(OutputFormat.jsonl) == b""
    empty = render.TextRows([Column("a", 23)], [])
    assert write(OutputFormat.json, empty) == b"[]\n"


def test_csv_quotes_like_copy() -> None:
    rows = render.TextRows(
        [Column("a,b", 25), Column("c", 25)],
        [["", None], ['q"', "x\ny"], ["\\.", "plain"]],
    )
    assert write(OutputFormat.csv, rows) == (b'"a,b",c\n"",\n"q""","x\ny"\n"\\.",plain\n')


# --------------------------------------------------------------------------- the type table

D = Decimal
# (column, SQL expression, expected value after json.loads(parse_float=Decimal)).
TYPES: list[tuple[str, str, Any]] = [
    ("i2", "32767::int2", 32767),
    ("i4", "(-2147483648)::int4", -2147483648),
    ("i8", "9223372036854775807::int8", 9223372036854775807),
    ("f4", "1.5::float4", D("1.5")),
    ("f8", "0.1::float8", D("0.1")),
    ("f8_big", "1e300::float8", D("1e300")),
    ("f8_nan", "'NaN'::float8", "NaN"),
    ("f8_inf", "'Infinity'::float8", "Infinity"),
    ("f4_ninf", "'-Infinity'::float4", "-Infinity"),
    (
        "num",
        "123456789012345678901234567890.000000000000000001::numeric",
        D("123456789012345678901234567890.000000000000000001"),
    ),
    ("num_scale", "1.50::numeric(5,2)", D("1.50")),
    ("num_nan", "'NaN'::numeric", "NaN"),
    ("num_inf", "'-Infinity'::numeric", "-Infinity"),
    ("yes", "true", True),
    ("no", "false", False),
    (
        "txt",
        "E'snow \u2603 \"dq\" ''sq'' back\\\\slash\\nline\\ttab\\r'",
        "snow \u2603 \"dq\" 'sq' back\\slash\nline\ttab\r",
    ),
    ("bin", "'\\x00ff10'::bytea", "\\x00ff10"),
    ("d", "'2024-02-29'::date", "2024-02-29"),
    ("t", "'13:14:15.5'::time", "13:14:15.5"),
    ("ttz", "'13:14:15+05:30'::timetz", "13:14:15+05:30"),
    ("ts", "'2024-02-29 13:14:15.123456'::timestamp", "2024-02-29T13:14:15.123456"),
    ("tstz", "'2024-02-29 13:14:15+02'::timestamptz", "2024-02-29T11:14:15+00:00"),
    ("tstz_inf", "'infinity'::timestamptz", "infinity"),
    ("iv", "'1 day 02:03:04'::interval", "1 day 02:03:04"),
    (
        "id",
        "'6ba7b810-9dad-11d1-80b4-00c04fd430c8'::uuid",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    ),
    ("j", """'{"b": [1, 2.50], "a": null}'::json""", {"b": [1, D("2.50")], "a": None}),
    ("jb", """'{"b": 1, "a": [true, "x"]}'::jsonb""", {"a": [True, "x"], "b": 1}),
    ("ia", "array[1,2,3]", [1, 2, 3]),
    (
        "ta",
        """array['a', 'b c', '"q"', 'NULL', '', 'x,y', 'back\\slash']""",
        ["a", "b c", '"q"', "NULL", "", "x,y", "back\\slash"],
    ),
    ("nested", "array[[1,2],[3,NULL]]", [[1, 2], [3, None]]),
    ("tnull", "array[NULL, 'x']::text[]", [None, "x"]),
    ("numa", "array['NaN', 1.0]::numeric[]", ["NaN", D("1.0")]),
    ("da", "array['2024-01-01'::date]", ["2024-01-01"]),
    ("tsa", "array['2024-01-01 10:00+00'::timestamptz]", ["2024-01-01T10:00:00+00:00"]),
    ("ip", "'192.168.0.1/24'::inet", "192.168.0.1/24"),
    ("net", "'10.0.0.0/8'::cidr", "10.0.0.0/8"),
    ("cash", "12.34::money", "MONEY"),  # the server's locale decides: compared with its text
    ("nothing", "NULL::text", None),
]

SELECT = "select " + ", ".join(f"{expr} as {name}" for name, expr, _ in TYPES)
DELETE = "delete from types_t returning *"  # a statement run as written, rows converted in Python
# Three ways to run the same query (see the module docstring); SET makes timestamptz repeatable.
WAYS = {
    "copy": ("SET TIME ZONE 'UTC'; " + SELECT, []),
    "cursor": ("SET TIME ZONE 'UTC'; " + SELECT + " where %(one)s::int = 1", ["-p", "one=1"]),
    "as-written": (f"SET TIME ZONE 'UTC'; create temp table types_t as {SELECT}; {DELETE}", []),
}


@pytest.fixture
def typed_env(servers: Servers, isolated: Path) -> dict[str, str]:
    return query_project(servers.tls_on, isolated, name="types")


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize("fmt", ["--json", "--format=jsonl"])
def test_type_table(
    cli: Any, servers: Servers, typed_env: dict[str, str], way: str, fmt: str
) -> None:
    sql, extra = WAYS[way]
    result = cli("query", fmt, *extra, sql, env=typed_env)
    assert result.returncode == 0, result
    text = result.stdout
    if fmt == "--json":
        rows = loads(text)
        assert isinstance(rows, list)
    else:
        assert text.endswith("\n")
        assert text.count("\n") == 1
        rows = [loads(line) for line in text.splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert list(row) == [name for name, _, _ in TYPES]  # column order kept
    money = servers.tls_on.execute("select 12.34::money::text")[0][0]
    for name, _, expected in TYPES:
        want = money if expected == "MONEY" else expected
        got = row[name]
        assert got == want, (name, got, want)
        assert type(got) is type(want), (name, got, want)
    # Numbers exactly as PostgreSQL wrote them, and json text embedded untouched.
    assert "123456789012345678901234567890.000000000000000001" in text
    assert '"num_scale":1.50' in text
    assert '{"b": [1, 2.50], "a": null}' in text


def test_the_three_ways_print_identical_bytes(cli: Any, typed_env: dict[str, str]) -> None:
    for fmt in ("json", "jsonl", "csv", "tsv", "plain"):
        outputs = {}
        for way, (sql, extra) in WAYS.items():
            result = cli("query", "--format", fmt, *extra, sql, env=typed_env)
            assert result.returncode == 0, result
            outputs[way] = result.stdout
        assert outputs["copy"] == outputs["cursor"] == outputs["as-written"], fmt


def test_duplicate_column_names_get_unique_keys(cli: Any, typed_env: dict[str, str]) -> None:
    for extra in ([], ["-p", "x=1"]):
        sql = "select 1, 2, 'a' as k, 'b' as k" + (" where %(x)s::int = 1" if extra else "")
        result = cli("query", "--json", *extra, sql, env=typed_env)
        assert result.returncode == 0, result
        assert loads(result.stdout) == [{"?column?": 1, "?column?_2": 2, "k": "a", "k_2": "b"}]


def test_csv_and_tsv_parse_to_the_same_rows(cli: Any, typed_env: dict[str, str]) -> None:
    sql = """select 'a,b' x, 'q"uote' y, E'multi\\nline' z, '' e, null n, E'tab\\there' t"""
    out_csv = cli("query", "--format", "csv", sql, env=typed_env)
    out_tsv = cli("query", "--format", "tsv", sql, env=typed_env)
    assert out_csv.returncode == 0
    assert out_tsv.returncode == 0
    rows_csv = list(csv.reader(io.StringIO(out_csv.stdout)))
    rows_tsv = list(csv.reader(io.StringIO(out_tsv.stdout), delimiter="\t"))
    assert (
        rows_csv
        == rows_tsv
        == [
            ["x", "y", "z", "e", "n", "t"],
            ["a,b", 'q"uote', "multi\nline", "", "", "tab\there"],
        ]
    )
    # COPY's CSV tells NULL (nothing) from the empty string ("").
    assert out_csv.stdout.endswith('line","",,tab\there\n')
