"""Start-up hygiene (benchmarks/README.md, P1): the light commands import none of the heavy modules.

A CLI used in shell loops is judged by its start-up time; psycopg, keyring, tomlkit and rich's table
machinery each cost tens of milliseconds. The commands below must not pay for them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli_environ, write_project

HEAVY = ("psycopg", "keyring", "tomlkit", "rich.table", "secretstorage", "cryptography")

_PROBE = """
import json, sys
prefixes = tuple(json.loads(sys.argv[2]))
sys.argv = ["pgconnect", *json.loads(sys.argv[1])]
from pgconnect.cli import main
try:
    main()
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] if m.split(".")[0] != "rich" else m
                for m in sys.modules if m.startswith(prefixes)})
sys.stderr.write("\\nIMPORTED=" + json.dumps(heavy) + "\\n")
"""


def imported_by(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> list[str]:
    return run_and_list_imports(args, cwd, extra_env)[1]


def run_and_list_imports(
    args: list[str], cwd: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the CLI in a fresh interpreter: the process, and which of HEAVY it imported."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_environ(extra_env),
        timeout=60,
    )
    marker = [ln for ln in proc.stderr.splitlines() if ln.startswith("IMPORTED=")]
    assert marker, proc
    result: list[str] = json.loads(marker[-1].removeprefix("IMPORTED="))
    return proc, result


@pytest.fixture
def project(isolated: Path) -> Path:
    return write_project(
        isolated,
        'name = "startup"\n[vars]\nDB_HOST = "db.example.com"\nDB_PORT = "5432"\n'
        '[env.staging.vars]\nDB_HOST = "staging.example.com"\n',
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["var", "--help"],
        ["var", "list"],
        ["var", "list", "--json"],
        ["var", "get", "DB_HOST"],
        ["explain"],
        ["explain", "--json", "--env", "staging"],
        ["var", "set", "DB_PORT", "1"],
        ["url"],
        ["url", "--format", "conninfo"],
        ["url", "--format", "env"],
        ["url", "--format", "json", "--env", "staging"],
        ["query", "--help"],
        ["check", "--help"],
    ],
    ids=lambda a: " ".join(a),
)
def test_light_commands_import_nothing_heavy(project: Path, args: list[str]) -> None:
    heavy = imported_by(args, project.parent)
    if args[:2] == ["var", "set"]:
        heavy.remove("tomlkit")  # editing keeps the user's formatting; reading never needs it
    assert heavy == []


def test_connection_reading_uses_tomllib_not_tomlkit(project: Path) -> None:
    # explain reads the file the way every connecting command does.
    assert "tomlkit" not in imported_by(["explain"], project.parent)


def test_editing_uses_tomlkit(project: Path) -> None:
    # The converse, so the probe above can fail: var set does load tomlkit.
    assert "tomlkit" in imported_by(["var", "set", "DB_NAME", "x"], project.parent)


def test_probe_sees_psycopg_when_imported(project: Path) -> None:
    # --version reports libpq's version, so it must import psycopg: proves the probe can fail.
    assert "psycopg" in imported_by(["--version"], project.parent)
