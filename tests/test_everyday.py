"""What a new user meets in the first hour, through the real CLI against real servers and the real
keyring: ``secret put`` saying it replaced a value, one missing-secret warning naming every secret
and its own place, ``%(name)s`` placeholders and ``%%`` read the same with and without ``-p``,
and a fresh project whose base environment says nowhere to connect.

The sandbox side (recovery, the used-by line after ``sandbox start``) is in test_sandbox_recovery.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KeyringSession, Servers, project_for, write_project

SENTINEL = "Sentinel-Everyday-9f3e2d"
OTHER = "Other-Sentinel-77aa31"


def _name() -> str:
    return f"ev-{uuid.uuid4().hex[:10]}"


def _assert_hidden(result: Any, *values: str) -> None:
    for value in values:
        assert value not in result.stdout, result
        assert value not in result.stderr, result


# --------------------------------------------------------------------------- secret put: replaced


def test_secret_put_says_when_it_replaced_a_value(
    cli: Any, isolated: Path, keyring_session: KeyringSession
) -> None:
    name = _name()
    write_project(isolated, f'name = "{name}"\n')
    env = keyring_session.environ()

    first = cli("secret", "put", "DB_PASSWORD", "--env", "staging", input=SENTINEL, env=env)
    assert first.returncode == 0, first
    assert first.stderr.startswith("stored DB_PASSWORD in the keyring"), first
    assert "replaced" not in first.stderr

    again = cli("secret", "put", "DB_PASSWORD", "--env", "staging", input=OTHER, env=env)
    assert again.returncode == 0, again
    assert again.stderr.startswith("replaced DB_PASSWORD in the keyring"), again
    assert f"pgconnect:{name}:staging" in again.stderr
    _assert_hidden(again, SENTINEL, OTHER)
    assert keyring_session.lookup(f"pgconnect:{name}:staging", "DB_PASSWORD") == OTHER

    # The same value again is not a replacement a script needs to hear about.
    same = cli("secret", "put", "DB_PASSWORD", "--env", "staging", input=OTHER, env=env)
    assert same.returncode == 0, same
    assert "replaced" not in same.stderr
    assert "the same value was already there" in same.stderr

    # The base's secret is another one: storing it is not a replacement.
    base = cli("secret", "put", "DB_PASSWORD", input=SENTINEL, env=env)
    assert base.stderr.startswith("stored DB_PASSWORD"), base


def test_secret_bulk_says_which_values_it_replaced(
    cli: Any, isolated: Path, keyring_session: KeyringSession
) -> None:
    write_project(isolated, f'name = "{_name()}"\n')
    env = keyring_session.environ()
    assert cli("secret", "put", "API_TOKEN", input=SENTINEL, env=env).returncode == 0
    result = cli(
        "secret",
        "bulk",
        "-",
        input=json.dumps({"API_TOKEN": OTHER, "NEW_TOKEN": SENTINEL}),
        env=env,
    )
    assert result.returncode == 0, result
    lines = result.stderr.splitlines()
    assert any(line.startswith("replaced API_TOKEN") for line in lines), result
    assert any(line.startswith("set NEW_TOKEN") for line in lines), result
    _assert_hidden(result, SENTINEL, OTHER)


# --------------------------------------------------------------------------- missing secrets


def test_missing_secrets_are_one_warning_naming_each_place(
    cli: Any, isolated: Path, servers: Servers, keyring_session: KeyringSession
) -> None:
    """Base secrets API_TOKEN and OTHER_TOKEN and staging's DB_PASSWORD, none set: under
    -e staging, one warning lists all three, each with the `secret put` of its own place."""
    project_for(
        servers.tls_on,
        isolated,
        name=_name(),
        extra=["[env.staging]", 'secrets = ["DB_PASSWORD"]'],
    )
    path = isolated / "pgconnect.toml"
    path.write_text('secrets = ["API_TOKEN", "OTHER_TOKEN"]\n' + path.read_text())
    env = keyring_session.environ()

    result = cli("exec", "-e", "staging", "--", "true", env=env)
    assert result.returncode == 0, result
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result
    warning = warnings[0]
    assert "API_TOKEN, DB_PASSWORD, OTHER_TOKEN are not set" in warning
    assert "pgconnect secret put API_TOKEN;" in warning  # the base: no --env
    assert "pgconnect secret put DB_PASSWORD --env staging" in warning
    assert warning.endswith("pgconnect secret put OTHER_TOKEN")
    assert "API_TOKEN --env" not in warning

    # Every command that warns says it once, the same way; check's auth hint names the place.
    check = cli("check", "-e", "staging", "--json", env=env)
    assert check.returncode == 7, check
    assert check.stderr.count("warning: declared secret") == 1, check
    hint = json.loads(check.stdout)["results"][0]["hint"]
    assert "pgconnect secret put DB_PASSWORD --env staging" in hint
    # The hint for what `check` needs (connection secrets): only DB_PASSWORD.
    assert "API_TOKEN" not in hint


# --------------------------------------------------------------------------- placeholders


@pytest.fixture
def tls_project(isolated: Path, servers: Servers) -> dict[str, str]:
    project_for(servers.tls_on, isolated, name=_name())
    return {"DB_PASSWORD": servers.tls_on.password}


def test_placeholder_without_any_p_is_the_friendly_error(
    cli: Any, tls_project: dict[str, str]
) -> None:
    none = cli("query", "select 1,\n %(id)s", env=tls_project)
    some = cli("query", "select %(x)s,\n %(id)s", "-p", "x=1", env=tls_project)
    for result in (none, some):
        assert result.returncode == 2, result
        assert "error: %(id)s (line 2) has no value" in result.stderr
        assert "hint: pass it with -p id=VALUE" in result.stderr
        assert "syntax error" not in result.stderr
        assert result.stdout == ""


@pytest.mark.parametrize("with_p", [False, True], ids=["without-p", "with-p"])
def test_percent_rules_are_the_same_with_and_without_p(
    cli: Any, tls_project: dict[str, str], with_p: bool
) -> None:
    """Inside a literal nothing is replaced ('50%%' is 50%%); outside, %% is one % (7 %% 4 is
    the modulo); a lone % is itself; a placeholder in a literal or comment is text."""
    sql = "select '50%%', '50%', 7 %% 4, 7 % 4, '%(id)s' -- %(nothing)s\n"
    args = ["-p", "unused=1"] if with_p else []
    result = cli("query", sql, *args, "--format", "json", env=tls_project)
    assert result.returncode == 0, result
    row = json.loads(result.stdout)[0]
    assert list(row.values()) == ["50%%", "50%", 3, 3, "%(id)s"]


def test_percent_and_placeholder_in_one_statement(cli: Any, tls_project: dict[str, str]) -> None:
    result = cli(
        "query",
        "select %(n)s::int %% 4 as m, '100%%' as lit, %(n)s as n",
        "-p",
        "n=7",
        "--format",
        "json",
        env=tls_project,
    )
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == [{"m": 3, "lit": "100%%", "n": 7}]


# --------------------------------------------------------------------------- libpq's default host


def test_unset_db_host_says_libpq_default_not_db_host_is_a_socket(cli: Any, isolated: Path) -> None:
    """No DB_HOST anywhere and no sandbox: libpq's defaults are legitimate; check says that they
    apply, not that DB_HOST (which nobody set) is a Unix socket."""
    write_project(isolated, f'name = "{_name()}"\n[vars]\nDB_PORT = "1"\n')
    result = cli("check", "--sslmode", "require", "--timeout", "5")
    assert result.returncode == 5, result
    assert "DB_HOST is a Unix socket" not in result.stderr
    assert "warning: DB_HOST is not set, so libpq's default applies: the Unix socket" in (
        result.stderr
    )

    # A socket the user did name is still called DB_HOST.
    write_project(isolated, f'name = "{_name()}"\n[vars]\nDB_HOST = "/tmp"\nDB_PORT = "1"\n')
    named = cli("check", "--timeout", "5")
    assert "warning: DB_HOST is a Unix socket" in named.stderr, named
