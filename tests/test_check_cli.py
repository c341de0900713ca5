"""``pgconnect check`` as a user runs it: a real subprocess, a real project file, real servers."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import secrets
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pgconnect import params
from tests.conftest import KeyringSession, Result, Server, Servers, cli_environ
from tests.test_probe import psql_verdict

Cli = Callable[..., Result]


def write_project(
    folder: Path,
    server: Server | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    sslmode: str = "verify-full",
    rootcert: str | None = "right",
    dbname: str | None = None,
    name: str = "checked",
    extra: Sequence[str] = (),
) -> Path:
    lines = [f'name = "{name}"']
    lines += [line for line in extra if not line.startswith("DB_")]
    lines.append("[vars]")
    lines.append(f'DB_HOST = "{host or (server.host if server else "127.0.0.1")}"')
    lines.append(f'DB_PORT = "{port or (server.port if server else 5432)}"')
    lines.append(f'DB_USERNAME = "{server.user if server else "app"}"')
    lines.append(f'DB_NAME = "{dbname or (server.dbname if server else "app")}"')
    lines.append(f'DB_SSLMODE = "{sslmode}"')
    if server is not None and rootcert is not None:
        root = {
            "right": str(server.ca_file),
            "wrong": str(server.wrong_ca_file),
            "missing": str(folder / "no-such-root.crt"),
        }.get(rootcert, rootcert)
        lines.append(f'DB_SSLROOTCERT = "{root}"')
    lines += [line for line in extra if line.startswith("DB_")]
    path = folder / "pgconnect.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_check(
    cli: Cli,
    *args: str,
    password: str | None,
    sentinels: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> Result:
    """Run ``pgconnect check ARGS`` with DB_PASSWORD in the environment (never argv); every
    password involved must be absent from stdout and stderr, whatever happened."""
    full_env = dict(env or {})
    if password is not None:
        full_env["DB_PASSWORD"] = password
    result = cli("check", *args, env=full_env, timeout=timeout)
    for secret in (*sentinels, *([password] if password else [])):
        assert secret not in result.stdout, result
        assert secret not in result.stderr, result
    return result


def as_json(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# --------------------------------------------------------------------------- matrix cells via the CLI


@pytest.mark.parametrize(
    ("name", "rootcert"),
    [("tls_on", "right"), ("tls_only", "wrong"), ("tls_off", "unset"), ("wrong_host", "missing")],
)
def test_cli_matrix_cells_agree_with_psql(
    cli: Cli, servers: Servers, isolated: Path, name: str, rootcert: str
) -> None:
    server = servers.by_name[name]
    write_project(isolated, server, rootcert=None if rootcert == "unset" else rootcert)
    result = run_check(cli, "--sslmode", "all", "--json", password=server.password)
    data = as_json(result)
    conn = {"host": server.host, "port": str(server.port), "user": server.user}
    conn["dbname"] = server.dbname
    if rootcert != "unset":
        conn["sslrootcert"] = {
            "right": str(server.ca_file),
            "wrong": str(server.wrong_ca_file),
            "missing": str(isolated / "no-such-root.crt"),
        }[rootcert]
    assert [r["sslmode"] for r in data["results"]] == list(params.SSLMODES)
    for r in data["results"]:
        assert (r["ok"], r["encrypted"]) == psql_verdict(server, conn, r["sslmode"]), r
    # The exit status is the effective mode's (the project says verify-full).
    effective = next(r for r in data["results"] if r["sslmode"] == "verify-full")
    assert data["effective_sslmode"] == "verify-full"
    expected_rc = 0 if effective["ok"] else {"tls": 6, "auth": 7}.get(effective["stage"], 5)
    assert result.returncode == expected_rc, result


# --------------------------------------------------------------------------- stages and exit codes


def test_ok_prints_table_stages_and_certificate(cli: Cli, servers: Servers, isolated: Path) -> None:
    server = servers.tls_on
    write_project(isolated, server)
    result = run_check(cli, password=server.password)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"postgres@127.0.0.1:{server.port}/postgres")
    assert "effective sslmode verify-full" in lines[0]
    header = next(line for line in lines if line.startswith("sslmode"))
    assert header.split() == [
        "sslmode",
        "result",
        "stage",
        "encrypted",
        "tls",
        "cipher",
        "server",
        "ms",
    ]
    row = next(line for line in lines if line.startswith("verify-full"))
    assert row.split()[:5] == ["verify-full", "ok", "ready", "yes", "TLSv1.3"]
    stages = next(line for line in lines if line.startswith("stages:"))
    assert "tcp" in stages
    assert "tls" in stages
    assert stages.endswith("→ ready")
    assert "SAN        DNS:localhost, IP:127.0.0.1, IP:::1" in result.stdout
    assert "days left)" in result.stdout
    assert result.stderr == ""  # verify-full to loopback: nothing to warn about


def test_json_certificate_block(cli: Cli, servers: Servers, isolated: Path) -> None:
    server = servers.tls_on
    write_project(isolated, server)
    data = as_json(run_check(cli, "--json", password=server.password))
    cert = data["certificate"]
    assert cert["san"] == ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    assert 363 <= cert["days_left"] <= 365
    assert cert["subject"] == "CN=localhost"
    assert data["target"] == {
        "host": "127.0.0.1",
        "port": server.port,
        "dbname": "postgres",
        "user": "postgres",
    }
    assert len(data["results"]) == 1  # without --sslmode: only the effective mode


def test_certificate_null_for_a_server_without_tls(
    cli: Cli, servers: Servers, isolated: Path
) -> None:
    server = servers.tls_off
    write_project(isolated, server, sslmode="prefer")
    result = run_check(cli, "--sslmode", "all", "--json", password=server.password)
    data = as_json(result)
    assert data["certificate"] is None
    assert result.returncode == 0  # the effective mode (prefer) connected, in plaintext
    assert any("sslmode=prefer connected in plaintext" in w for w in data["warnings"])
    assert "warning: sslmode=prefer connected in plaintext" in result.stderr


def test_exit_status_is_the_effective_modes_with_all(
    cli: Cli, servers: Servers, isolated: Path
) -> None:
    server = servers.tls_off
    write_project(isolated, server, sslmode="require")
    result = run_check(cli, "--sslmode", "all", "--json", password=server.password)
    assert result.returncode == 6, result
    data = as_json(result)
    assert data["effective_sslmode"] == "require"
    assert next(r for r in data["results"] if r["sslmode"] == "disable")["ok"] is True


def test_exit_status_is_the_named_modes(cli: Cli, servers: Servers, isolated: Path) -> None:
    server = servers.wrong_host
    write_project(isolated, server, sslmode="verify-ca")
    named = run_check(cli, "--sslmode", "verify-full", password=server.password)
    assert named.returncode == 6, named
    assert "verify-full: connection to server" in named.stdout
    assert "hint: the certificate is for DNS:wrong-host.invalid" in named.stdout
    effective = run_check(cli, password=server.password)
    assert effective.returncode == 0, effective


def test_wrong_password_is_auth_exit_7(cli: Cli, servers: Servers, isolated: Path) -> None:
    sentinel = "Sentinel-" + secrets.token_hex(8)
    write_project(isolated, servers.tls_on)
    result = run_check(cli, "--json", password=sentinel, sentinels=[servers.tls_on.password])
    assert result.returncode == 7, result
    r = as_json(result)["results"][0]
    assert (r["ok"], r["stage"]) == (False, "auth")
    assert "password authentication failed" in r["error"]
    assert "pgconnect secret put DB_PASSWORD" in r["hint"]
    plain = run_check(cli, password=sentinel, sentinels=[servers.tls_on.password])
    assert plain.returncode == 7
    assert "password authentication failed" in plain.stdout


def test_unknown_database_is_auth_exit_7(cli: Cli, servers: Servers, isolated: Path) -> None:
    server = servers.tls_on
    write_project(isolated, server, dbname="no_such_db")
    result = run_check(cli, "--json", password=server.password)
    assert result.returncode == 7, result
    r = as_json(result)["results"][0]
    assert (r["stage"], r["ok"]) == ("auth", False)
    assert 'database "no_such_db" does not exist' in r["error"]


def test_disable_against_tls_only_is_auth_7_with_the_mode_to_use(
    cli: Cli, servers: Servers, isolated: Path
) -> None:
    server = servers.tls_only
    write_project(isolated, server)
    result = run_check(cli, "--sslmode", "disable", password=server.password)
    assert result.returncode == 7, result
    assert "no encryption" in result.stdout
    assert "hint: the server only accepts TLS connections: use sslmode=require" in result.stdout


def test_refused_port_is_tcp_exit_5(cli: Cli, isolated: Path, refused_port: int) -> None:
    write_project(isolated, host="127.0.0.1", port=refused_port, sslmode="prefer")
    result = run_check(cli, "--json", password="Sentinel-refused-pw")
    assert result.returncode == 5, result
    data = as_json(result)
    r = data["results"][0]
    assert (r["stage"], r["ok"]) == ("tcp", False)
    assert r["elapsed_ms"] < 1000
    assert data["certificate"] is None
    # The same failure under all six modes is told once, with the modes that share it.
    plain = run_check(cli, "--sslmode", "all", password="Sentinel-refused-pw")
    assert plain.returncode == 5, plain
    modes = ", ".join(params.SSLMODES)
    assert plain.stdout.count("connection to server at") == 1
    assert f"{modes}: connection to server at" in plain.stdout


def test_unresolvable_host_is_dns_exit_5(cli: Cli, isolated: Path) -> None:
    write_project(isolated, host="nonexistent.invalid", sslmode="verify-full")
    result = run_check(cli, "--sslmode", "all", "--json", password="Sentinel-dns-pw")
    assert result.returncode == 5, result
    data = as_json(result)
    assert {r["stage"] for r in data["results"]} == {"dns"}
    assert data["target"]["host"] == "nonexistent.invalid"


@pytest.mark.parametrize("extra", [(), ("--sslmode", "all")], ids=["effective", "all"])
def test_silent_server_exit_5_within_the_timeout(
    cli: Cli, isolated: Path, silent_listener: tuple[str, int], extra: tuple[str, ...]
) -> None:
    host, port = silent_listener
    write_project(isolated, host=host, port=port, sslmode="verify-full")
    start = time.monotonic()
    result = run_check(cli, "--timeout", "3", *extra, password="Sentinel-silent-pw")
    took = time.monotonic() - start
    assert result.returncode == 5, result
    assert took < 4, took
    assert "timed out after 3 s" in result.stdout
    assert "verify-full  FAILED  tls" in result.stdout


def test_missing_secret_warns_and_names_it_in_the_hint(
    cli: Cli, servers: Servers, isolated: Path, keyring_session: KeyringSession
) -> None:
    server = servers.tls_on
    name = "check-missing-" + secrets.token_hex(4)
    write_project(isolated, server, name=name, extra=['secrets = ["DB_PASSWORD"]'])
    result = run_check(
        cli, password=None, env=keyring_session.environ(), sentinels=[server.password]
    )
    assert result.returncode == 7, result
    assert "warning: declared secret DB_PASSWORD is not set" in result.stderr
    assert (
        "hint: declared secret DB_PASSWORD is not set, so it was not sent: "
        "pgconnect secret put DB_PASSWORD" in result.stdout
    )


# --------------------------------------------------------------------------- usage and output


@pytest.mark.parametrize(
    "args",
    [("--sslmode", "sometimes"), ("--timeout", "0"), ("--timeout", "-1"), ("--timeout", "x")],
)
def test_bad_options_are_usage_errors(cli: Cli, isolated: Path, args: tuple[str, ...]) -> None:
    write_project(isolated, host="127.0.0.1", port=1)
    result = run_check(cli, *args, password=None)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr


def test_control_characters_in_values_are_escaped(
    cli: Cli, servers: Servers, isolated: Path
) -> None:
    server = servers.tls_on
    write_project(isolated, server, dbname="evil\\u001b[2Jdb")
    result = run_check(cli, password=server.password)
    assert result.returncode == 7, result
    assert "\x1b" not in result.stdout
    assert "\x1b" not in result.stderr
    assert "evil\\x1b[2Jdb" in result.stdout


def _run_in_terminal(args: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return (status, output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgconnect", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env={**cli_environ(env), "TERM": "xterm-256color"},
        cwd=cwd,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(30), b"".join(chunks).decode("utf-8", "replace")


def test_terminal_gets_a_table_and_cells_are_data(servers: Servers, isolated: Path) -> None:
    server = servers.tls_on
    write_project(isolated, server, dbname="[bold]nodb[/bold]")
    status, output = _run_in_terminal(
        ["check", "--sslmode", "all"], {"DB_PASSWORD": server.password}, isolated
    )
    assert status == 7, output
    assert server.password not in output
    assert "┃" in output or "│" in output  # a rich table, not the plain layout
    assert "verify-full" in output
    assert "[bold]nodb[/bold]" in output  # shown as written, never interpreted as markup


def test_check_help_has_examples(cli: Cli) -> None:
    result = cli("check", "--help")
    assert result.returncode == 0
    assert "Examples:" in result.stdout
    assert "--sslmode" in result.stdout
    assert "--timeout" in result.stdout
