"""The public API (``pgconnect.settings/conninfo/connect/connect_async``) against the real test
servers and the real Secret Service: the same project file, environments and secrets as the CLI,
nothing printed, the documented exception classes, and the password nowhere but where it is asked
for."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pgconnect
from tests.conftest import REPO, KeyringSession, Servers, cli_environ, project_for

SENTINEL = "Sentinel-api-" + secrets.token_hex(4)


def _unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture
def keyring_env(keyring_session: KeyringSession, monkeypatch: pytest.MonkeyPatch) -> KeyringSession:
    """This process talks to the test keyring (the isolation fixture removed any other)."""
    for key, value in keyring_session.environ().items():
        monkeypatch.setenv(key, value)
    return keyring_session


def _put_secret(cwd: Path, name: str, value: str, keyring: KeyringSession, *args: str) -> None:
    """Store a secret the way a user would: ``pgconnect secret put`` with the value on stdin."""
    proc = subprocess.run(
        [sys.executable, "-m", "pgconnect", "secret", "put", name, *args],
        input=value.encode(),
        capture_output=True,
        cwd=cwd,
        env=cli_environ(keyring.environ()),
        timeout=60,
    )
    assert proc.returncode == 0, proc


@pytest.fixture
def tls_project(servers: Servers, isolated: Path, keyring_env: KeyringSession) -> Path:
    """A project pointing at the TLS server (verify-full), its password in the keyring, and a
    ``wrongpw`` environment whose password is wrong."""
    server = servers.tls_on
    path = project_for(server, isolated, name=_unique("api"))
    _put_secret(isolated, "DB_PASSWORD", server.password, keyring_env)
    _put_secret(isolated, "DB_PASSWORD", SENTINEL, keyring_env, "--env", "wrongpw")
    return path


def test_settings_sources_and_masked_repr(
    tls_project: Path, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    server = servers.tls_on
    s = pgconnect.settings()
    assert isinstance(s, pgconnect.Settings)
    assert s.env is None
    assert s.get("host") == server.host
    assert s.get("port") == str(server.port)
    assert s.get("password") == server.password  # revealed only when asked for
    sources = s.sources()
    assert sources["host"] == "file:[vars]"
    assert sources["password"].startswith("secret:pgconnect:")
    text = repr(s) + str(s)
    assert server.password not in text
    assert "****" in text
    assert "password='****'" in repr(s)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_environment_choice_is_the_clis(
    tls_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """env=, else $PGCONNECT_ENV, else the base; config=, else $PGCONNECT_CONFIG, else the
    nearest pgconnect.toml (here from a sub-folder)."""
    assert pgconnect.settings("wrongpw").get("password") == SENTINEL
    monkeypatch.setenv("PGCONNECT_ENV", "wrongpw")
    assert pgconnect.settings().env == "wrongpw"
    assert pgconnect.settings("wrongpw").sources()["password"].endswith(":wrongpw")
    monkeypatch.delenv("PGCONNECT_ENV")
    sub = tls_project.parent / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert pgconnect.settings().project.path == tls_project
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert pgconnect.settings(config=tls_project).project.path == tls_project
    monkeypatch.setenv("PGCONNECT_CONFIG", str(tls_project))
    assert pgconnect.settings().project.path == tls_project


def test_conninfo_is_accepted_by_libpq(tls_project: Path, servers: Servers) -> None:
    from psycopg.conninfo import conninfo_to_dict

    server = servers.tls_on
    info = pgconnect.conninfo()
    parsed = conninfo_to_dict(info)  # libpq's own parser (PQconninfoParse)
    assert parsed == {
        "host": server.host,
        "port": str(server.port),
        "dbname": server.dbname,
        "user": server.user,
        "password": server.password,
        "sslmode": "verify-full",
        "sslrootcert": str(server.ca_file),
    }


def test_connect_runs_a_query(
    tls_project: Path, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    with pgconnect.connect(autocommit=True) as conn:
        row = conn.execute("select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()")
        assert row.fetchone() == (servers.tls_on.user, True)
        assert servers.tls_on.password not in conn.info.dsn  # psycopg's dsn hides it too
    assert capsys.readouterr() == ("", "")


def test_connect_async_runs_a_query(
    tls_project: Path, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    async def main() -> Any:
        conn = await pgconnect.connect_async()
        async with conn:
            cur = await conn.execute("select 40 + 2")
            return await cur.fetchone()

    assert asyncio.run(main()) == (42,)
    assert capsys.readouterr() == ("", "")


def test_psycopg_kwargs_pass_through(tls_project: Path) -> None:
    from psycopg.rows import dict_row

    with pgconnect.connect(row_factory=dict_row, connect_timeout=5) as conn:
        assert conn.execute("select 1 as one").fetchone() == {"one": 1}
        # A libpq parameter among the kwargs reaches libpq, over the project's settings.
        assert conn.info.get_parameters()["connect_timeout"] == "5"


# --------------------------------------------------------------------------- errors


def _raises(
    cls: type[pgconnect.PgconnectError], code: int, call: Any, capsys: pytest.CaptureFixture[str]
) -> pgconnect.PgconnectError:
    with pytest.raises(cls) as info:
        call()
    assert int(info.value.exit_code) == code
    assert SENTINEL not in str(info.value)
    assert SENTINEL not in repr(info.value)
    assert SENTINEL not in (info.value.hint or "")
    assert capsys.readouterr() == ("", "")
    return info.value


def test_rejected_password(tls_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _raises(pgconnect.RejectedError, 7, lambda: pgconnect.connect("wrongpw"), capsys)
    assert "password authentication failed" in err.message
    err = _raises(
        pgconnect.RejectedError,
        7,
        lambda: asyncio.run(pgconnect.connect_async("wrongpw")),
        capsys,
    )


def test_network_and_tls_failures(
    servers: Servers,
    isolated: Path,
    refused_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DB_PASSWORD", SENTINEL)  # from the environment: no keyring needed
    project_for(servers.tls_on, isolated, extra=[f'[env.refused.vars]\nDB_PORT = "{refused_port}"'])
    _raises(pgconnect.NetworkError, 5, lambda: pgconnect.connect("refused"), capsys)
    project_for(servers.tls_off, isolated)  # no TLS on the server, verify-full asked
    _raises(pgconnect.TLSError, 6, lambda: pgconnect.connect(), capsys)


def test_configuration_and_store_failures(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _raises(pgconnect.ConfigError, 3, lambda: pgconnect.settings(), capsys)  # no project file
    (isolated / "pgconnect.toml").write_text(
        'name = "api-errors"\nsecrets = ["DB_PASSWORD"]\n[vars]\nDB_HOST = "localhost"\n'
    )
    _raises(pgconnect.ConfigError, 3, lambda: pgconnect.conninfo("nosuch"), capsys)
    # No D-Bus session here (the isolation fixture): the keyring cannot be reached.
    _raises(pgconnect.SecretStoreError, 4, lambda: pgconnect.conninfo(), capsys)
    (isolated / "pgconnect.toml").write_text('name = "x"\n[vars]\nDB_PORT = "http"\n')
    _raises(pgconnect.ConfigError, 3, lambda: pgconnect.connect(), capsys)


def test_exit_codes_are_exported() -> None:
    assert [int(c) for c in pgconnect.ExitCode] == [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        126,
        127,
        129,
        130,
        131,
        143,
    ]
    for name, code in [
        ("UsageError", 2),
        ("ConfigError", 3),
        ("SecretStoreError", 4),
        ("NetworkError", 5),
        ("TLSError", 6),
        ("RejectedError", 7),
        ("QueryError", 1),
        ("Interrupted", 130),
        ("Terminated", 143),
    ]:
        cls = getattr(pgconnect, name)
        assert issubclass(cls, pgconnect.PgconnectError)
        assert int(cls.exit_code) == code


# --------------------------------------------------------------------------- typing, start-up


def test_import_is_cheap() -> None:
    """``import pgconnect`` and resolving a name of the API load no heavy module."""
    code = (
        "import sys, pgconnect\n"
        "pgconnect.settings; pgconnect.ConfigError\n"
        "heavy = [m for m in ('psycopg', 'keyring', 'tomlkit', 'rich', 'typer') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_environ(), check=True
    )
    assert out.stdout.strip() == "[]", out


def test_a_typed_user_script_passes_mypy_strict(tmp_path: Path) -> None:
    """tests/api_user.py is what a user writes; the package's annotations (py.typed) let
    ``mypy --strict`` check it, and a wrong use is caught."""
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed next to this Python")
    script = REPO / "tests" / "api_user.py"
    env = cli_environ({"MYPY_CACHE_DIR": str(tmp_path / "cache")})
    ok = subprocess.run(
        [mypy, "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "import pgconnect\n\n\ndef port() -> int:\n    return pgconnect.conninfo('x')\n"
    )
    bad = subprocess.run(
        [mypy, "--strict", "--no-incremental", str(wrong)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert bad.returncode == 1, bad.stdout
    assert "Incompatible return value" in bad.stdout, bad.stdout
