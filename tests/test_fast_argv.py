"""The start-up fast path (benchmarks/README.md, P1): plain ``query`` and ``url`` argument lists run without Typer.

The fast parser (pgconnect/cli/argv.py) must never read an argument list differently from Typer:
either it returns exactly the parameters Typer would pass to the command, or it declines and
Typer parses. These tests hold it to that against the real Typer app, for every command in
``pgconnect.cli.FAST``, and run real commands through both paths.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import pgconnect.cli as cli_package
from pgconnect.cli import argv, common, query, root, url
from pgconnect.render import OutputFormat
from tests.conftest import Servers, cli_environ
from tests.querytools import query_project

MODULES: dict[str, ModuleType] = {"query": query, "url": url}


def test_every_fast_command_is_tested_here() -> None:
    assert set(cli_package.FAST) == set(MODULES)


def typer_reads(
    command: str, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], Any]:
    """What Typer passes to the module's ``run`` for ``pgconnect COMMAND ARGS``, and
    common.STATE after."""
    import typer

    seen: dict[str, Any] = {}
    monkeypatch.setattr(common, "STATE", common.State())
    monkeypatch.setattr(MODULES[command], "run", lambda **kw: seen.update(kw))
    click_command = typer.main.get_command(root.build_app((root.COMMANDS[command],)))
    click_command.main(args=[command, *args], prog_name="pgconnect", standalone_mode=False)
    return seen, common.STATE


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal parameters, NaN included (--timeout nan reads as NaN on both paths)."""
    return {k: repr(v) for k, v in a.items()} == {k: repr(v) for k, v in b.items()}


def fast_reads(
    command: str, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(common, "STATE", common.State())
    monkeypatch.setattr(MODULES[command], "run", lambda **kw: seen.update(kw))
    go = cli_package._fast_command([command, *args])
    assert go is not None, args
    go()
    return seen, common.STATE


def accepts(command: str, args: list[str]) -> bool:
    module = MODULES[command]
    return argv.parse(args, module.OPTIONS, module.POSITIONALS) is not None


# --------------------------------------------------------------------------- the option table


def test_the_generated_table_is_current() -> None:
    """Each option is declared once, in its Typer command: fast_table.py is generated from it
    (python -m pgconnect.cli.generate) and must match what the generator writes now."""
    from pgconnect.cli import generate

    assert generate.FAST_TABLE.read_text(encoding="utf-8") == generate.fast_table(), (
        "pgconnect/cli/fast_table.py is stale: run python -m pgconnect.cli.generate"
    )


@pytest.mark.parametrize("command", sorted(MODULES))
def test_the_table_matches_the_typer_declaration(command: str) -> None:
    """What the table says, converted, is what Typer declares (names, kinds, defaults)."""
    import typer

    module = MODULES[command]
    group = typer.main.get_command(root.build_app((root.COMMANDS[command],)))
    sub = group.commands[command]  # type: ignore[attr-defined]
    positionals = [p.name for p in sub.params if p.param_type_name == "argument"]
    assert tuple(positionals) == module.POSITIONALS
    declared = {
        p.name: (
            tuple(sorted(p.opts + p.secondary_opts)),
            p.multiple,
            False if p.is_flag else p.default,
        )
        for p in sub.params
        if p.param_type_name == "option"
    }
    table = {o.dest: (tuple(sorted(o.names)), o.multiple, o.default) for o in module.OPTIONS}
    assert table == declared
    fmt = next(o for o in module.OPTIONS if o.dest == "fmt")
    fmt_enum = OutputFormat if command == "query" else url.Format
    assert fmt.convert is not None
    assert [fmt.convert(f.value) for f in fmt_enum] == list(fmt_enum)
    assert fmt.convert("xml") is None


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
    "--reveal",
    "--reveal=1",
    "--format=uri",
    "conninfo",
    "env",
    "URI",
]


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("query", ["select 1"]),
        ("query", ["select 1", "--format", "json"]),
        ("query", ["--json", "select 1"]),
        ("query", ["-f", "q.sql", "--format", "CSV"]),
        ("query", ["select %(a)s", "-p", "a=1", "-pb=2", "--param", "c=3", "--param=d=4"]),
        ("query", ["--read-only", "--timeout", "2.5", "--max-rows", "0", "-e", "staging", "x"]),
        ("query", ["--config", "p.toml", "--debug", "--env=prod", "-"]),
        ("query", ["--format", "table", "--format", "csv", "select 1"]),
        ("query", []),
        ("url", []),
        ("url", ["--reveal"]),
        ("url", ["--format", "env", "-e", "staging"]),
        ("url", ["--format=json", "--config", "p.toml", "--debug", "--reveal"]),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else a,
)
def test_plain_argument_lists_take_the_fast_path_and_read_as_typer_does(
    command: str, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, fast_state = fast_reads(command, args, monkeypatch)
    slow, slow_state = typer_reads(command, args, monkeypatch)
    assert same(fast, slow), (fast, slow)
    assert fast_state == slow_state


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("query", ["--help"]),
        ("query", ["select 1", "-h"]),
        ("query", ["--", "select 1"]),
        ("query", ["--nope", "select 1"]),
        ("query", ["select 1", "select 2"]),
        ("query", ["--timeout", "abc", "select 1"]),
        ("query", ["--max-rows", "1.5"]),
        ("query", ["--format", "xml"]),
        ("query", ["--format", "cſv"]),
        ("query", ["--json=yes"]),
        ("query", ["--file"]),
        ("query", ["--file", "--json"]),
        ("query", ["-1"]),
        ("url", ["--format", "URI"]),  # url's choice is case-sensitive under Typer
        ("url", ["extra"]),
        ("url", ["--json"]),
        ("url", ["--reveal=yes"]),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else a,
)
def test_anything_else_goes_to_typer(command: str, args: list[str]) -> None:
    assert cli_package._fast_command([command, *args]) is None


def test_completion_always_goes_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    from pgconnect.completion import COMPLETE_VAR

    assert cli_package._fast_command(["url"]) is not None
    monkeypatch.setenv(COMPLETE_VAR, "bash_complete")
    assert cli_package._fast_command(["url"]) is None


VALUES = ["csv", "JSON", "Tsv", "xml", "1", "0", "-1", "2.5", "nan", "1_0", " 2 ", "a=1", "-", ""]
VALUES += ["uri", "conninfo", "env", "json", "URI"]


def _flatten(chunks: list[list[str]]) -> list[str]:
    return [token for chunk in chunks for token in chunk]


def shaped(module: ModuleType) -> st.SearchStrategy[list[str]]:
    """Argument lists shaped the way people type them (options with values, flags, one SQL):
    most of these the fast path accepts, so the comparison below has plenty to compare."""
    value_options = [n for o in module.OPTIONS if o.convert is not None for n in o.names]
    flags = [n for o in module.OPTIONS if o.convert is None for n in o.names]
    chunks = [
        st.tuples(
            st.sampled_from(value_options), st.sampled_from(VALUES) | st.text(max_size=5)
        ).map(lambda t: [t[0], t[1]] if t[0].startswith("--") else [t[0] + t[1]]),
        st.tuples(st.sampled_from(value_options), st.sampled_from(VALUES)).map(
            lambda t: [f"{t[0]}={t[1]}"] if t[0].startswith("--") else [t[0], t[1]]
        ),
        st.sampled_from(flags).map(lambda f: [f]),
    ]
    if module.POSITIONALS:
        chunks.append(st.sampled_from(["select 1", "x", "-"]).map(lambda q: [q]))
    return st.lists(st.one_of(chunks), max_size=6).map(_flatten)


COMMAND_AND_ARGS = st.sampled_from(sorted(MODULES)).flatmap(
    lambda c: st.tuples(
        st.just(c),
        shaped(MODULES[c]) | st.lists(st.sampled_from(TOKENS) | st.text(max_size=6), max_size=7),
    )
)


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=COMMAND_AND_ARGS)
@example(case=("query", ["--timeout", " 2 ", "x"]))
@example(case=("query", ["--timeout", "nan", "x"]))
@example(case=("query", ["--max-rows", "1_0"]))
@example(case=("query", ["--max-rows", "१२"]))
@example(case=("query", ["-e=staging", "x"]))
@example(case=("url", ["--format", "env", "--format", "uri"]))
def test_whatever_the_fast_path_accepts_typer_reads_the_same(
    case: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    command, args = case
    if not accepts(command, args):
        return  # Typer parses it, as before the fast path existed
    with monkeypatch.context() as m:
        fast, fast_state = fast_reads(command, args, m)
    with monkeypatch.context() as m:
        slow, slow_state = typer_reads(command, args, m)
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


def test_url_runs_without_typer_and_prints_what_typer_prints(
    env: dict[str, str], isolated: Path
) -> None:
    fast, modules = _modules_after(["url", "--format", "conninfo"], env, isolated)
    assert not _typer_loaded(modules)
    slow, modules = _modules_after(["url", "--format", "conninfo", "--"], env, isolated)
    assert _typer_loaded(modules)
    assert fast == slow
    assert "password=****" in fast


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
