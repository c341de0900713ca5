"""Test fixtures: isolation from the machine, and running the CLI as a real subprocess.

Every test runs with ``PG*``/``DB_*``/``PGCONNECT_*`` cleared, a temporary HOME and working folder,
and no ambient D-Bus session (so never the developer's keyring).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.plugin_servers import Server

REPO = Path(__file__).resolve().parent.parent
_CLEARED_PREFIXES = ("PG", "DB_", "PGCONNECT_")


def clean_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment minus everything that could change libpq's or pgconnect's mind."""
    env = dict(os.environ if base is None else base)
    for key in list(env):
        if key.startswith(_CLEARED_PREFIXES) or key in ("NO_COLOR", "FORCE_COLOR", "COLUMNS"):
            del env[key]
    return env


# --------------------------------------------------------------------------- isolation & CLI


@pytest.fixture(autouse=True)
def _core_limit_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that runs ``pgconnect.cli.main()`` in pytest's own process must not set
    RLIMIT_CORE to 0 (soft and hard) for the whole session: a later test could no longer allow
    core dumps in a child (tests/test_trust_core.py proves the CLI's own limit in a subprocess)."""
    import pgconnect.cli

    monkeypatch.setattr(pgconnect.cli, "_no_core_dumps", lambda: None)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Clear PG*/DB_*/PGCONNECT_*, use a temporary HOME, and work in a temporary folder."""
    for key in list(os.environ):
        if key.startswith(_CLEARED_PREFIXES) or key in ("NO_COLOR", "FORCE_COLOR"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    # No ambient keyring: tests that want one use the keyring_session fixture explicitly.
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    argv: list[str]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __repr__(self) -> str:  # shown by assert messages
        return (
            f"Result(rc={self.returncode}, argv={self.argv!r},\n"
            f"stdout={self.stdout[-3000:]!r},\nstderr={self.stderr[-3000:]!r})"
        )


def cli_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = clean_environ()
    env["PYTHONPATH"] = str(REPO)
    env.setdefault("COLUMNS", "200")
    env.update(extra or {})
    return env


def run_cli(
    *args: str,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> Result:
    """Run ``python -m pgconnect ARGS`` as a real subprocess, the way a user's shell would."""
    argv = [sys.executable, "-m", "pgconnect", *args]
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        argv,
        input=data if data is not None else b"",
        capture_output=True,
        env=cli_environ(env),
        cwd=cwd,
        timeout=timeout,
    )
    return Result(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
        argv,
    )


@pytest.fixture
def cli() -> Any:
    """``cli("var", "list")`` runs the CLI as a subprocess in the test's folder and environment."""

    def call(
        *args: str,
        input: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> Result:
        return run_cli(*args, input=input, env=env, cwd=cwd, timeout=timeout)

    return call


def write_project(folder: Path, text: str) -> Path:
    path = folder / "pgconnect.toml"
    path.write_text(text)
    return path


def project_for(
    server: Server,
    folder: Path,
    *,
    name: str = "t",
    sslmode: str = "verify-full",
    extra: Sequence[str] = (),
) -> Path:
    """A project file pointing at SERVER (password to be supplied by env or secret)."""
    lines = [
        f'name = "{name}"',
        "[vars]",
        f'DB_HOST = "{server.host}"',
        f'DB_PORT = "{server.port}"',
        f'DB_USERNAME = "{server.user}"',
        f'DB_NAME = "{server.dbname}"',
        f'DB_SSLMODE = "{sslmode}"',
        f'DB_SSLROOTCERT = "{server.ca_file}"',
        *extra,
    ]
    return write_project(folder, "\n".join(lines) + "\n")
