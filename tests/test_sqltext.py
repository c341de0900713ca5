"""Splitting SQL the way psql does, and what pgconnect learns about each statement (no server)."""

from __future__ import annotations

import pytest

from pgconnect import sqltext


def texts(sql: str) -> list[str]:
    return [s.text for s in sqltext.split(sql)]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select 1", ["select 1"]),
        ("select 1;", ["select 1"]),
        ("select 1; select 2 ;\n", ["select 1", "select 2"]),
        ("  \n select 1  \n", ["select 1"]),
        ("select ';' as a; select 2", ["select ';' as a", "select 2"]),
        ("select 'it''s; here'; select 2", ["select 'it''s; here'", "select 2"]),
        ("select E'back\\'slash;'; select 2", ["select E'back\\'slash;'", "select 2"]),
        ('select 1 as "a;b"; select 2', ['select 1 as "a;b"', "select 2"]),
        ("select $$a;b$$; select 2", ["select $$a;b$$", "select 2"]),
        ("select $fn$ $$; $fn$; select 2", ["select $fn$ $$; $fn$", "select 2"]),
        ("select 1 -- a; comment\n; select 2", ["select 1 -- a; comment", "select 2"]),
        (
            "select /* a; /* nested; */ b; */ 1; select 2",
            ["select /* a; /* nested; */ b; */ 1", "select 2"],
        ),
        ("select (1;2); select 3", ["select (1;2)", "select 3"]),
        ("select U&'d\\0061t;a'; select 2", ["select U&'d\\0061t;a'", "select 2"]),
        ("select $1; select 2", ["select $1", "select 2"]),
        ("-- only a comment\n", []),
        (";;  ;", []),
        ("/* c */ ; select 1", ["select 1"]),
        ("select 'unterminated; select 2", ["select 'unterminated; select 2"]),
    ],
)
def test_split_like_psql(sql: str, expected: list[str]) -> None:
    assert texts(sql) == expected


def test_begin_atomic_body_is_one_statement() -> None:
    sql = (
        "create or replace function f() returns int language sql\n"
        "begin atomic\n  select 1;\n  select case when true then 2 end;\nend;\n"
        "select f()"
    )
    out = texts(sql)
    assert len(out) == 2
    assert out[0].endswith("end")
    assert out[1] == "select f()"


def test_plpgsql_begin_in_dollar_quotes_and_transaction_begin() -> None:
    sql = "begin; create function g() returns int as $$ begin return 1; end $$ language plpgsql; commit"
    assert [s.verb for s in sqltext.split(sql)] == ["begin", "create", "commit"]


def test_offsets_point_into_the_whole_text() -> None:
    sql = "select 1;\n  select 2"
    second = sqltext.split(sql)[1]
    assert sql[second.start : second.end] == "select 2"
    assert sqltext.locate(sql, second.start + 7) == (2, "  select 2", 9)


@pytest.mark.parametrize(
    ("sql", "is_query"),
    [
        ("select 1", True),
        ("SELECT * FROM t WHERE x IN (SELECT 1)", True),
        ("values (1), (2)", True),
        ("table t", True),
        ("(select 1) union (select 2)", True),
        ("with a as (select 1) select * from a", True),
        ("with recursive r(n) as (select 1 union all select n+1 from r) select * from r", True),
        ("select 1 into newtable", False),
        ("with d as (delete from t returning *) select * from d", False),
        ("with a as (select 1) insert into t select * from a", False),
        ("insert into t values (1) returning *", False),
        ("show search_path", False),
        ("explain select 1", False),
        ("create table t (x int)", False),
        ('select 1 as "into"', True),
    ],
)
def test_which_statements_are_plain_queries(sql: str, is_query: bool) -> None:
    (stmt,) = sqltext.split(sql)
    assert stmt.is_query() is is_query


@pytest.mark.parametrize(
    ("sql", "returns"),
    [
        ("insert into t values (1) returning *", True),
        ("UPDATE t SET x = 1 RETURNING x, y", True),
        ("delete from t where x in (select 1) returning x", True),
        ("with a as (select 1) insert into t select * from a returning *", True),
        ("with d as (delete from t returning *) select * from d", True),
        ("merge into t using s on t.id = s.id when matched then delete returning *", True),
        ("insert into t values (1)", False),
        ("insert into t select x from (select 1 as returning) s", False),  # not top level
        ('insert into t values (1) returning "x"', True),
        ("with d as (delete from t returning *) select * into u from d", False),
        ("select 1", False),
        ("select returning from t", False),
        ("explain insert into t values (1) returning *", False),
    ],
)
def test_which_statements_modify_and_return_rows(sql: str, returns: bool) -> None:
    (stmt,) = sqltext.split(sql)
    assert stmt.modifies_and_returns() is returns


@pytest.mark.parametrize(
    ("sql", "direction"),
    [
        ("copy t to stdout", "out"),
        ("COPY (select 1) TO STDOUT WITH (FORMAT csv)", "out"),
        ("copy t from stdin", "in"),
        ("copy t to '/tmp/x'", None),
        ("select 'copy to stdout'", None),
    ],
)
def test_copy_direction(sql: str, direction: str | None) -> None:
    (stmt,) = sqltext.split(sql)
    assert stmt.copy_direction() == direction


@pytest.mark.parametrize(
    ("sql", "controls"),
    [
        ("begin", True),
        ("start transaction read write", True),
        ("commit", True),
        ("end", True),
        ("rollback", True),
        ("abort", True),
        ("rollback to savepoint s", False),
        ("prepare transaction 'x'", True),
        ("savepoint s", False),
        ("select 'commit'", False),
    ],
)
def test_transaction_control(sql: str, controls: bool) -> None:
    (stmt,) = sqltext.split(sql)
    assert stmt.controls_transaction() is controls


def test_placeholders_only_outside_literals_and_comments() -> None:
    sql = "select %(a)s, '%(b)s', \"%(c)s\", $$%(d)s$$ /* %(e)s */, %(f)s -- %(g)s\n, 5 %% 2"
    (stmt,) = sqltext.split(sql)
    assert [p.name for p in stmt.placeholders] == ["a", "f"]
    assert [sql[p.start : p.end] for p in stmt.placeholders] == ["%(a)s", "%(f)s"]
    assert [sql[q : q + 2] for q in stmt.percents] == ["%%"]


@pytest.mark.parametrize(
    ("sql", "meta"),
    [
        ("\\dt", "\\dt"),
        ("select 1 \\gset", "\\gset"),
        ("select 1;\n\\d+ users", "\\d+"),
        ("select '\\dt'", None),
        ("select E'\\\\dt'", None),
        ("select $$\\dt$$", None),
        ("select 1 -- \\dt", None),
    ],
)
def test_psql_meta_commands_are_found(sql: str, meta: str | None) -> None:
    found = [sqltext.meta_command(s) for s in sqltext.split(sql)]
    assert (next((m for m in found if m), None)) == meta
