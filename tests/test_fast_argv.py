"""``query``'s start-up fast path (issue #8): plain argument lists run without Typer.

The fast parser (pgconnect/cli/argv.py) must never read an argument list differently from Typer:
either it returns exactly the parameters Typer would pass to the command, or it declines and
Typer parses. These tests hold it to that against the real Typer app, and run real queries
through both paths.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pgconnect.cli import argv, common, query
from pgconnect.cli import root as cli_root
from pgconnect.render import OutputFormat
from tests.conftest import Servers, cli_environ
from tests.querytools import query_project


def typer_reads(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Any]:
    """What Typer passes to ``query.run`` for ``pgconnect query ARGS``, and common.STATE after."""
    import typer

    seen: dict[str, Any] = {}

    def capture(*a: Any) -> None:
        names = ("sql", "file", "fmt", "json_out", "param", "read_only", "timeout", "max_rows")
        seen.update(zip((*names, "config", "env"), a, strict=True))

    monkeypatch.setattr(common, "STATE", common.State())
    monkeypatch.setattr(query, "run", capture)
    command = typer.main.get_command(cli_root.build_app(("query",)))
    command.main(args=["query", *args], prog_name="pgconnect", standalone_mode=False)
    return seen, common.STATE


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal parameters, NaN included (--timeout nan reads as NaN on both paths)."""
    return {k: repr(v) for k, v in a.items()} == {k: repr(v) for k, v in b.items()}


def fast_reads(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(common, "STATE", common.State())
    monkeypatch.setattr(query, "run", lambda **kw: seen.update(kw))
    go = query.fast(args)
    assert go is not None, args
    go()
    return seen, common.STATE


# --------------------------------------------------------------------------- the option table


def test_the_table_matches_the_typer_declaration() -> None:
    import typer

    command = typer.main.get_command(cli_root.build_app(("query",)))
    sub = command.commands["query"]  # type: ignore[attr-defined]
    declared = {}
    for p in sub.params:
        if p.param_type_name == "argument":
            assert (p.name,) == query.POSITIONALS
            continue
        if p.name == "help":
            continue
        kind = "flag" if p.is_flag else type(p.type).__name__
        declared[p.name] = (tuple(sorted(p.opts + p.secondary_opts)), kind, p.multiple)
    convert_kind = {
        None: "flag",
        str: "StringParamType",
        float: "FloatParamType",
        int: "IntParamType",
    }
    table = {
        o.dest: (
            tuple(sorted(o.names)),
            "TyperChoice" if o.convert is query._format else convert_kind[o.convert],  # type: ignore[index]
            o.multiple,
        )
        for o in query.OPTIONS
    }
    assert table == declared
    choice = next(p for p in sub.params if p.name == "fmt")
    assert sorted(choice.type.choices) == sorted(f.value for f in OutputFormat)


# --------------------------------------------------------------------------- same reading as Typer

TOKENS = [
    "select 1",
    "",
    "-",
    "--",
    "-1",
    "--json",
    "--read-only",
    "--debug",
    "--format",
    "--format=csv",
    "--format=JSON",
    "--format=jsonl",
    "--format=",
    "--json=1",
    "-f",
    "-fq.sql",
    "--file",
    "--file=q.sql",
    "-p",
    "-pa=1",
    "--param",
    "--param=b=2",
    "--timeout",
    "--timeout=1.5",
    "--max-rows",
    "--max-rows=3",
    "--config",
    "--config=x.toml",
    "-e",
    "-e=staging",
    "-estaging",
    "--env",
    "--env=prod",
    "-h",
    "--help",
    "--nope",
    "-x",
    "-fe",
    "csv",
    "Tsv",
    "xml",
    "cſv",
    "a=1",
    "nan",
    "1_0",
    " 2 ",
    "1e3",
    "0x10",
    "+7",
    "07",
    "१२",
    "q.sql",
    "staging",
]


@pytest.mark.parametrize(
    "args",
    [
        ["select 1"],
        ["select 1", "--format", "json"],
        ["--json", "select 1"],
        ["-f", "q.sql", "--format", "CSV"],
        ["select %(a)s", "-p", "a=1", "-pb=2", "--param", "c=3", "--param=d=4"],
        ["--read-only", "--timeout", "2.5", "--max-rows", "0", "-e", "staging", "x"],
        ["--config", "p.toml", "--debug", "--env=prod", "-"],
        ["--format", "table", "--format", "csv", "select 1"],
        [],
    ],
    ids=lambda a: " ".join(a) or "(none)",
)
def test_plain_argument_lists_take_the_fast_path_and_read_as_typer_does(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, fast_state = fast_reads(args, monkeypatch)
    slow, slow_state = typer_reads(args, monkeypatch)
    assert same(fast, slow), (fast, slow)
    assert fast_state == slow_state


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["select 1", "-h"],
        ["--", "select 1"],
        ["--nope", "select 1"],
        ["select 1", "select 2"],
        ["--timeout", "abc", "select 1"],
        ["--max-rows", "1.5"],
        ["--format", "xml"],
        ["--format", "cſv"],
        ["--json=yes"],
        ["--file"],
        ["--file", "--json"],
        ["-1"],
    ],
    ids=lambda a: " ".join(a),
)
def test_anything_else_goes_to_typer(args: list[str]) -> None:
    assert query.fast(args) is None


VALUES = ["csv", "JSON", "Tsv", "xml", "1", "0", "-1", "2.5", "nan", "1_0", " 2 ", "a=1", "-", ""]
_VALUE_OPTIONS = [n for o in query.OPTIONS if o.convert is not None for n in o.names]
_FLAGS = [n for o in query.OPTIONS if o.convert is None for n in o.names]


def _flatten(chunks: list[list[str]]) -> list[str]:
    return [token for chunk in chunks for token in chunk]


#: Argument lists shaped the way people type them (options with values, flags, one SQL): most
#: of these the fast path accepts, so the comparison below has plenty to compare.
SHAPED = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(_VALUE_OPTIONS), st.sampled_from(VALUES) | st.text(max_size=5)
        ).map(lambda t: [t[0], t[1]] if t[0].startswith("--") else [t[0] + t[1]]),
        st.tuples(st.sampled_from(_VALUE_OPTIONS), st.sampled_from(VALUES)).map(
            lambda t: [f"{t[0]}={t[1]}"] if t[0].startswith("--") else [t[0], t[1]]
        ),
        st.sampled_from(_FLAGS).map(lambda f: [f]),
        st.sampled_from(["select 1", "x", "-"]).map(lambda q: [q]),
    ),
    max_size=6,
).map(_flatten)


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(args=SHAPED | st.lists(st.sampled_from(TOKENS) | st.text(max_size=6), max_size=7))
@example(args=["--timeout", " 2 ", "x"])
@example(args=["--timeout", "nan", "x"])
@example(args=["--max-rows", "1_0"])
@example(args=["--max-rows", "१२"])
@example(args=["-e=staging", "x"])
def test_whatever_the_fast_path_accepts_typer_reads_the_same(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if argv.parse(args, query.OPTIONS, query.POSITIONALS) is None:
        return  # Typer parses it, as before the fast path existed
    with monkeypatch.context() as m:
        fast, fast_state = fast_reads(args, m)
    with monkeypatch.context() as m:
        slow, slow_state = typer_reads(args, m)
    assert same(fast, slow), (fast, slow)
    assert fast_state == slow_state


# --------------------------------------------------------------------------- real runs, both paths


@pytest.fixture
def env(servers: Servers, isolated: Path) -> dict[str, str]:
    return query_project(servers.tls_on, isolated)


def _modules_after(args: list[str], env: dict[str, str], cwd: Path) -> tuple[str, list[str]]:
    probe = (
        "import json, sys\n"
        "sys.argv = ['pgconnect', *json.loads(sys.argv[1])]\n"
        "from pgconnect.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write('\\nMODULES=' + json.dumps(sorted(sys.modules)) + '\\n')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(args)],
        capture_output=True,
        text=True,
        env=cli_environ(env),
        cwd=cwd,
        timeout=60,
    )
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES="))
    return proc.stdout, json.loads(line.removeprefix("MODULES="))


def _typer_loaded(modules: list[str]) -> bool:
    return any(m == "typer" or m.startswith("typer.") for m in modules)


def test_a_plain_query_runs_without_typer(env: dict[str, str], isolated: Path) -> None:
    out, modules = _modules_after(
        ["query", "select 41 + 1 as n", "--format", "json"], env, isolated
    )
    assert json.loads(out) == [{"n": 42}]
    assert not _typer_loaded(modules)
    assert "psycopg" in modules  # the probe sees what the run imported


def test_an_unusual_query_runs_through_typer_with_the_same_result(
    env: dict[str, str], isolated: Path
) -> None:
    out, modules = _modules_after(
        ["query", "--format", "json", "--", "select 41 + 1 as n"], env, isolated
    )
    assert json.loads(out) == [{"n": 42}]
    assert _typer_loaded(modules)


def test_typer_still_words_the_usage_errors(cli: Any, isolated: Path) -> None:
    result = cli("query", "--timeout", "abc", "select 1")
    assert result.returncode == 2
    assert "Invalid value for '--timeout': 'abc' is not a valid float." in result.stderr
    result = cli("query", "select 1", "--nope")
    assert result.returncode == 2
    assert "No such option: --nope" in result.stderr


def test_fast_path_errors_take_the_same_boundary(cli: Any, isolated: Path) -> None:
    # Usage error raised by the command itself, reached through the fast path.
    result = cli("query", "--json", "--format", "csv", "select 1")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("error: --json and --format csv contradict each other")
    # --debug recorded by the fast path: an unexpected error would show its traceback; a
    # PgconnectError with --debug shows one too (as under Typer).
    debug = cli("query", "--debug", "--json", "--format", "csv", "select 1")
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr
