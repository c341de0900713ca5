"""Every command is documented (help with examples, a README mention), --version, NO_COLOR,
and no prompt when stdin is not a terminal.

Commands are discovered from the app's command tree, so commands merged later are covered as soon
as they are registered.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from pgconnect import __version__
from pgconnect.cli import app
from tests import cli_tree
from tests.cli_tree import python_argv, run_in_pty
from tests.conftest import REPO, KeyringSession, Servers, cli_environ, project_for, run_cli

README = (REPO / "README.md").read_text()
ALL = [p for p, _ in cli_tree.walk()]


def _id(path: tuple[str, ...]) -> str:
    return " ".join(path) or "(root)"


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_help_has_examples_that_use_the_command(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="pgconnect")
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output, f"`pgconnect {_id(path)} --help` has no Examples: block"
    examples = result.output.split("Examples:", 1)[1]
    invocation = " ".join(["pgconnect", *path])
    assert any(invocation in line for line in examples.splitlines()), (
        f"no example in `{invocation} --help` runs `{invocation}`"
    )


@pytest.mark.parametrize("path", [p for p in ALL if p], ids=_id)
def test_readme_mentions_every_command(path: tuple[str, ...]) -> None:
    assert f"pgconnect {' '.join(path)}" in README


def test_the_command_tree_is_not_empty() -> None:
    """Guard for the walking tests: the walk really finds commands and groups."""
    paths = cli_tree.paths()
    assert {("init",), ("var",), ("var", "set"), ("sandbox",), ("sandbox", "start")} <= set(paths)


def test_version_names_pgconnect_psycopg_and_libpq(cli: Any) -> None:
    result = cli("--version")
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[0] == f"pgconnect {__version__}"
    assert lines[1].startswith(f"psycopg {psycopg.__version__} (")
    libpq = psycopg.pq.version()
    assert lines[2] == f"libpq {libpq // 10000}.{libpq % 10000}"


# --------------------------------------------------------------------------- NO_COLOR

ESC = b"\x1b"


def _pty_env(extra: dict[str, str]) -> dict[str, str]:
    env = cli_environ({"TERM": "xterm-256color", "COLUMNS": "120"})
    env.update(extra)
    return env


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("sandbox", "--help"),
        ("var", "bogus"),
        ("sandbox", "status"),
        ("var", "list"),
        ("explain",),
    ],
    ids=" ".join,
)
def test_no_color_output_on_a_terminal_has_no_escapes(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    (tmp_path / "pgconnect.toml").write_text('name = "nc"\n[vars]\nDB_HOST = "h"\n')
    _, output = run_in_pty(python_argv(*args), env=_pty_env({"NO_COLOR": "1"}), cwd=tmp_path)
    assert output.strip()
    assert ESC not in output, output


@pytest.mark.slow
def test_sandbox_start_spinner_on_a_terminal_and_plain_with_no_color(
    tmp_path: Path, keyring_session: KeyringSession
) -> None:
    """On a terminal start shows a spinner (escape sequences); with NO_COLOR plain lines only.
    Neither when stderr is not a terminal (the other sandbox tests' output has no escapes)."""
    outputs = {}
    for label, extra in (("tty", {}), ("no_color", {"NO_COLOR": "1"})):
        folder = tmp_path / label
        folder.mkdir()
        name = f"nc-{uuid.uuid4().hex[:8]}"
        env = _pty_env({**keyring_session.environ(), **extra})
        assert run_cli("init", "--name", name, cwd=folder).returncode == 0
        try:
            status, output = run_in_pty(python_argv("sandbox", "start"), env=env, cwd=folder)
            assert status == 0, output
            outputs[label] = output
        finally:
            run_cli("sandbox", "stop", env=keyring_session.environ(), cwd=folder)
    assert b"\x1b[" in outputs["tty"]  # the spinner really drew on the terminal
    assert ESC not in outputs["no_color"], outputs["no_color"]
    assert b"starting the sandbox..." in outputs["no_color"]
    assert b"sandbox running" in outputs["no_color"]
    piped = run_cli("sandbox", "status")  # not a terminal
    assert "\x1b" not in piped.output


def test_no_color_query_table_has_no_escapes(servers: Servers, tmp_path: Path) -> None:
    project_for(servers.tls_on, tmp_path, name="nc-query")
    env = _pty_env({"NO_COLOR": "1", "DB_PASSWORD": servers.tls_on.password})
    status, output = run_in_pty(
        python_argv("query", "--format", "table", "select 1 as n, 'x' as s"), env=env, cwd=tmp_path
    )
    assert status == 0, output
    assert ESC not in output, output


def test_no_color_check_has_no_escapes(servers: Servers, tmp_path: Path) -> None:
    project_for(servers.tls_on, tmp_path, name="nc-check")
    env = _pty_env({"NO_COLOR": "1", "DB_PASSWORD": servers.tls_on.password})
    status, output = run_in_pty(python_argv("check", "--sslmode", "all"), env=env, cwd=tmp_path)
    assert status == 0, output
    assert ESC not in output, output


# --------------------------------------------------------------------------- no prompts

# Commands not run here, and why: `sandbox start` builds a server (its own tests run it without a
# terminal); `psql` hands the terminal to psql, whose own prompts are psql's.
NOT_RUN = {("sandbox", "start"), ("psql",)}

_VALUES = {"name": "DB_PASSWORD", "value": "x", "sql": "select 1", "url": "-"}


def _argv_for(path: tuple[str, ...], cmd: Any) -> list[str]:
    """The command with a value for each required argument (``exec`` gets ``-- true``)."""
    argv = list(path)
    for param in cmd.params:
        if getattr(param, "param_type_name", "") != "argument" or not param.required:
            continue
        if param.nargs == -1:
            argv += ["--", "true"]
        else:
            argv.append(_VALUES.get(param.name or "", "x"))
    return argv


@pytest.mark.parametrize(
    ("path", "cmd"),
    [pytest.param(p, c, id=_id(p)) for p, c in cli_tree.leaves() if p not in NOT_RUN],
)
def test_no_prompt_when_stdin_is_not_a_terminal(
    path: tuple[str, ...],
    cmd: Any,
    tmp_path: Path,
    refused_port: int,
    keyring_session: KeyringSession,
) -> None:
    """Every command, stdin an empty pipe and no controlling terminal: it ends on its own (no
    waiting for input), with no prompt text and no 'Aborted!' from a prompt that hit EOF."""
    (tmp_path / "pgconnect.toml").write_text(
        f'name = "np-{uuid.uuid4().hex[:8]}"\nsecrets = ["DB_PASSWORD"]\n[vars]\n'
        f'DB_HOST = "127.0.0.1"\nDB_PORT = "{refused_port}"\nDB_SSLMODE = "disable"\n'
        '[env.staging.vars]\nDB_NAME = "s"\n'
    )
    argv = _argv_for(path, cmd)
    proc = subprocess.run(
        [sys.executable, "-m", "pgconnect", *argv],
        input=b"",
        capture_output=True,
        env=cli_environ(keyring_session.environ()),
        cwd=tmp_path,
        timeout=60,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
    )
    out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    assert "Aborted" not in out, (argv, out)
    assert "input may be echoed" not in out, (argv, out)  # getpass fell back to stdin
    assert not re.search(r"(?im)^[^\n]*(password|confirm|\[y/n\])[^\n]*: ?$", out), (argv, out)
    assert "Traceback" not in out, (argv, out)
