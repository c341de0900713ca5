"""The one error boundary (``pgconnect.cli.main``): every exit status of the table, each through a
real subprocess of the CLI, and one Ctrl-C behaviour for every long-running command.

A failure is one ``error:`` line (and a ``hint:`` line), never Click's usage block and never a
traceback; Ctrl-C (SIGINT) is ``error: interrupted`` and exit 130 wherever it lands.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pgconnect.errors import ExitCode
from tests.conftest import (
    KeyringSession,
    Result,
    Servers,
    cli_environ,
    project_for,
    run_cli,
    write_project,
)

SENTINEL = "Sentinel-boundary-" + secrets.token_hex(4)


def _one_error(result: Result, code: int, starts: str = "") -> None:
    """Exit CODE, and stderr is one error line plus at most one hint line."""
    assert result.returncode == code, result
    lines = result.stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, result
    assert errors[0].startswith(f"error: {starts}"), result
    assert all(ln.startswith(("error: ", "hint: ", "warning: ")) for ln in lines), result
    assert "Traceback" not in result.stderr, result
    assert "Usage:" not in result.output, result
    assert SENTINEL not in result.output, result


# --------------------------------------------------------------------------- one test per code


def test_exit_0_success() -> None:
    result = run_cli("--version")
    assert result.returncode == ExitCode.OK, result
    assert result.stdout.startswith("pgconnect "), result
    assert result.stderr == ""


def test_exit_1_the_server_reports_an_sql_error(servers: Servers, isolated: Path) -> None:
    project_for(servers.tls_on, isolated)
    result = run_cli("query", "select 1/0", env={"DB_PASSWORD": servers.tls_on.password})
    assert result.returncode == ExitCode.FAILURE, result
    assert result.stderr.startswith("error: division by zero"), result
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        (["query", "select 1", "--nope"], "No such option: --nope"),
        (["query", "--timeout", "abc", "x"], "Invalid value for '--timeout'"),
        (["var", "set"], "Missing argument"),
        (["nosuch"], "No such command 'nosuch'"),
        (["check", "--sslmode", "sometimes"], "--sslmode 'sometimes' is not one of"),
        (["secret", "put", "DB_PASSWORD", SENTINEL], "secret put takes no value"),
    ],
)
def test_exit_2_usage_is_one_line_and_a_hint(isolated: Path, args: list[str], starts: str) -> None:
    write_project(isolated, 'name = "usage"\n[vars]\nDB_HOST = "localhost"\n')
    result = run_cli(*args)
    _one_error(result, ExitCode.USAGE, starts)


def test_exit_2_click_errors_get_the_commands_help_as_hint(isolated: Path) -> None:
    result = run_cli("var", "set", "DB_HOST")
    _one_error(result, ExitCode.USAGE, "Missing argument")
    assert result.stderr.splitlines()[-1] == "hint: pgconnect var set --help shows the usage"


def test_exit_3_configuration(isolated: Path) -> None:
    _one_error(run_cli("explain"), ExitCode.CONFIG, "no pgconnect.toml")
    write_project(isolated, 'name = "cfg"\n[vars]\nDB_PORT = "http"\n')
    _one_error(run_cli("explain"), ExitCode.CONFIG)


def test_exit_4_secret_store(isolated: Path) -> None:
    write_project(isolated, 'name = "store"\nsecrets = ["DB_PASSWORD"]\n[vars]\n')
    # No D-Bus session in the child's environment: no Secret Service to ask. (secret list and
    # explain only warn then: they need no value; a command that needs the value is exit 4.)
    _one_error(run_cli("url", "--reveal"), ExitCode.SECRET_STORE, "no OS keyring")


def test_exit_5_network(servers: Servers, isolated: Path, refused_port: int) -> None:
    project_for(servers.tls_on, isolated, extra=[f'[env.x.vars]\nDB_PORT = "{refused_port}"'])
    result = run_cli("query", "-e", "x", "select 1", env={"DB_PASSWORD": SENTINEL})
    _one_error(result, ExitCode.NETWORK)


def test_exit_6_tls(servers: Servers, isolated: Path) -> None:
    project_for(servers.tls_off, isolated)  # verify-full against a server without TLS
    result = run_cli("query", "select 1", env={"DB_PASSWORD": SENTINEL})
    _one_error(result, ExitCode.TLS)


def test_exit_7_rejected(servers: Servers, isolated: Path) -> None:
    project_for(servers.tls_on, isolated)
    result = run_cli("query", "select 1", env={"DB_PASSWORD": SENTINEL})
    _one_error(result, ExitCode.REJECTED)
    assert "password authentication failed" in result.stderr


def test_a_commands_own_status_passes_through(servers: Servers, isolated: Path) -> None:
    """check's verdict and exec's child choose the status; the boundary adds no line."""
    project_for(servers.tls_on, isolated)
    result = run_cli("check", env={"DB_PASSWORD": SENTINEL})
    assert result.returncode == ExitCode.REJECTED, result
    assert "error:" not in result.stderr, result
    result = run_cli("exec", "--", sys.executable, "-c", "raise SystemExit(42)")
    assert (result.returncode, result.stderr) == (42, ""), result


def test_exit_126_127_exec_cannot_run(isolated: Path) -> None:
    write_project(isolated, 'name = "ex"\n[vars]\nDB_HOST = "localhost"\n')
    _one_error(run_cli("exec", "--", "no-such-command-pgc"), 127, "no-such-command-pgc: command")
    script = isolated / "not-executable.sh"
    script.write_text("#!/bin/sh\n")
    _one_error(run_cli("exec", "--", str(script)), 126, f"{script}: permission denied")


# --------------------------------------------------------------------------- signals


def _syscall(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/syscall").read_text().split()
    return []


def _children(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return []


def _sockets(pid: int) -> int:
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


@contextlib.contextmanager
def _running(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgconnect", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=cli_environ(env),
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _interrupt(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], sig: int = signal.SIGINT
) -> tuple[int, str]:
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the command never reached its long-running part"
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err.decode()


def _interrupted(code: int, stderr: str, expected: int = 130, line: str = "interrupted") -> None:
    assert code == expected, stderr
    assert stderr.splitlines()[-1:] == [f"error: {line}"], stderr
    assert "Traceback" not in stderr, stderr


# The statement runs (pgconnect may wrap it, e.g. in COPY … TO STDOUT).
_ACTIVE = (
    "select 1 from pg_stat_activity where state = 'active' and pid <> pg_backend_pid() "
    "and position(%s in query) > 0"
)


def test_ctrl_c_in_query(servers: Servers, isolated: Path) -> None:
    server = servers.tls_on
    project_for(server, isolated)
    marker = f"select pg_sleep(30) as t{secrets.token_hex(4)}"

    def running() -> bool:
        return bool(server.execute(_ACTIVE, marker))

    with _running(["query", marker], isolated, {"DB_PASSWORD": server.password}) as proc:
        _interrupted(*_interrupt(proc, running))
    time.sleep(0.5)
    assert not server.execute(_ACTIVE, marker)  # cancelled on the server too


def test_sigterm_in_query_is_143(servers: Servers, isolated: Path) -> None:
    server = servers.tls_on
    project_for(server, isolated)
    marker = f"select pg_sleep(30) as t{secrets.token_hex(4)}"

    def running() -> bool:
        return bool(server.execute(_ACTIVE, marker))

    with _running(["query", marker], isolated, {"DB_PASSWORD": server.password}) as proc:
        code, err = _interrupt(proc, running, signal.SIGTERM)
    _interrupted(code, err, 143, "terminated")


def test_ctrl_c_in_check(silent_listener: tuple[str, int], isolated: Path) -> None:
    host, port = silent_listener
    write_project(
        isolated, f'name = "c"\n[vars]\nDB_HOST = "{host}"\nDB_PORT = "{port}"\nDB_USERNAME = "u"\n'
    )
    with _running(["check", "--timeout", "60"], isolated) as proc:
        _interrupted(*_interrupt(proc, lambda: _sockets(proc.pid) > 0))


def test_ctrl_c_in_exec(isolated: Path) -> None:
    write_project(isolated, 'name = "e"\n[vars]\nDB_HOST = "localhost"\n')
    with _running(["exec", "--", "sleep", "60"], isolated) as proc:
        _interrupted(*_interrupt(proc, lambda: bool(_children(proc.pid))))


def test_ctrl_c_in_secret_put_waiting_on_stdin(isolated: Path) -> None:
    write_project(isolated, 'name = "s"\n[vars]\n')
    with _running(["secret", "put", "DB_PASSWORD"], isolated) as proc:
        # read(0, …): the command is waiting for the value on stdin.
        code, err = _interrupt(proc, lambda: _syscall(proc.pid)[:2] == ["0", "0x0"])
    _interrupted(code, err)
    assert "DB_PASSWORD" not in (isolated / "pgconnect.toml").read_text()


def test_ctrl_c_in_sandbox_start(keyring_session: KeyringSession) -> None:
    folder = Path(tempfile.mkdtemp(prefix="pgconnect-test-boundary-"))
    os.chmod(folder, 0o755)  # the server user must reach it when the tests run as root
    env = keyring_session.environ()
    try:
        assert run_cli("init", "--name", f"b-{secrets.token_hex(4)}", cwd=folder).returncode == 0
        with _running(["sandbox", "start"], folder, env) as proc:
            # initdb (or pg_ctl) is running: the slow part of a start.
            _interrupted(*_interrupt(proc, lambda: bool(_children(proc.pid))))
    finally:
        run_cli("sandbox", "stop", cwd=folder, env=env)
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_no_traceback_module_is_left_to_python(isolated: Path) -> None:
    """Every exit of ``main`` is a ``sys.exit`` with the table's status (a smoke test of the
    boundary's own code paths, in-process: no Click exception escapes)."""
    from pgconnect.cli import main

    code: Any = None
    for args in (["nosuch"], ["var"], ["explain"]):
        with pytest.raises(SystemExit) as info:
            main(args)
        code = info.value.code
        assert isinstance(code, int), args
    assert code == ExitCode.CONFIG
