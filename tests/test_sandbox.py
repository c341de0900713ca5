"""``pgconnect sandbox``: a real local TLS server that check and query reach at once (docs/sandbox.md).

The module's tests share one sandbox (started by the first that needs it): verify-full and
encryption through the project's own resolution with psycopg, then the merged ``check``/``query``
commands, and the last test stops it and proves nothing is left. Other tests start their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import stat
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgconnect.cluster import server_user
from tests.conftest import KeyringSession, Result, run_cli

pytestmark = pytest.mark.slow


def _unique(prefix: str = "sbx") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Sandbox:
    """A project folder with a sandbox started through the CLI."""

    folder: Path
    name: str
    env: dict[str, str]
    results: list[Result] = field(default_factory=list)

    def cli(self, *args: str, **kw: Any) -> Result:
        result = run_cli(*args, env={**self.env, **kw.pop("env", {})}, cwd=self.folder, **kw)
        self.results.append(result)
        return result

    @property
    def state_file(self) -> Path:
        return self.folder / ".pgconnect" / "sandbox.json"

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.state_file.read_text())
        return data

    @property
    def service(self) -> str:
        return f"pgconnect:{self.name}:sandbox"


def _postgres_pids_for(data_dir: str) -> list[int]:
    """Live processes whose command line names DATA_DIR (the postmaster: postgres -D DATA_DIR)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if data_dir.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _new_project(folder: Path, keyring: KeyringSession) -> Sandbox:
    folder.mkdir(parents=True, exist_ok=True)
    box = Sandbox(folder=folder, name=_unique(), env=keyring.environ())
    result = box.cli("init", "--name", box.name)
    assert result.returncode == 0, result
    return box


@contextlib.contextmanager
def _stopping(box: Sandbox) -> Iterator[Sandbox]:
    try:
        yield box
    finally:
        if box.state_file.exists():
            run_cli("sandbox", "stop", env=box.env, cwd=box.folder)


@pytest.fixture(scope="module")
def shared(keyring_session: KeyringSession) -> Iterator[Sandbox]:
    """One running sandbox for the connection tests (the last test of the module stops it)."""
    folder = Path(tempfile.mkdtemp(prefix="pgconnect-test-sandbox-"))
    box = _new_project(folder / "shop", keyring_session)
    with _stopping(box):
        result = box.cli("sandbox", "start")
        assert result.returncode == 0, result
        yield box
    shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- the shared sandbox


def test_start_writes_the_sandbox_environment(
    shared: Sandbox, keyring_session: KeyringSession
) -> None:
    text = (shared.folder / "pgconnect.toml").read_text()
    state = shared.state()
    assert "[env.sandbox.vars]" in text
    for line in (
        'DB_HOST = "localhost"',
        f'DB_PORT = "{state["port"]}"',
        'DB_USERNAME = "app"',
        f'DB_NAME = "{shared.name}"',
        'DB_SSLMODE = "verify-full"',
        'DB_SSLROOTCERT = ".pgconnect/sandbox-ca.crt"',
    ):
        assert line in text
    assert 'secrets = ["DB_PASSWORD"]' in text  # declared for [env.sandbox], value elsewhere
    password = keyring_session.lookup(shared.service, "DB_PASSWORD")
    assert password
    assert len(password) >= 24
    assert password not in text
    assert state["env"] == "sandbox"
    assert state["pid"] in _postgres_pids_for(state["data_dir"])
    assert (
        (shared.folder / ".pgconnect" / "sandbox-ca.crt")
        .read_text()
        .startswith("-----BEGIN CERTIFICATE-----")
    )


def test_resolved_connection_is_verify_full_and_encrypted(
    shared: Sandbox, keyring_session: KeyringSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What check and query will use: the project's own resolution (file vars + keyring secret)."""
    from pgconnect import project
    from pgconnect.resolve import resolve
    from pgconnect.store import open_store

    for key, value in keyring_session.environ().items():
        monkeypatch.setenv(key, value)
    proj = project.load(shared.folder / "pgconnect.toml")
    params = resolve(proj, "sandbox", open_store).connect_params()
    assert params["sslmode"] == "verify-full"
    assert params["host"] == "localhost"
    with psycopg.connect(**params, connect_timeout=10) as conn:  # type: ignore[arg-type]
        row = conn.execute(
            "select ssl, version, current_user, current_database() "
            "from pg_stat_ssl where pid = pg_backend_pid()"
        ).fetchone()
    assert row is not None
    ssl, version, user, dbname = row
    assert ssl is True
    assert version.startswith("TLSv1.")
    assert (user, dbname) == ("app", shared.name)


def test_every_sslmode_connects_and_the_app_role_is_not_superuser(
    shared: Sandbox, keyring_session: KeyringSession
) -> None:
    state = shared.state()
    password = keyring_session.lookup(shared.service, "DB_PASSWORD")
    ca = str(shared.folder / ".pgconnect" / "sandbox-ca.crt")
    for mode, encrypted in [
        ("disable", False),
        ("allow", False),
        ("prefer", True),
        ("require", True),
        ("verify-ca", True),
        ("verify-full", True),
    ]:
        for host in ("localhost", "127.0.0.1"):
            with psycopg.connect(
                host=host,
                port=state["port"],
                user="app",
                password=password,
                dbname=shared.name,
                sslmode=mode,
                sslrootcert=ca,
                gssencmode="disable",
                connect_timeout=10,
            ) as conn:
                row = conn.execute(
                    "select ssl, rolsuper from pg_stat_ssl, pg_roles "
                    "where pid = pg_backend_pid() and rolname = current_user"
                ).fetchone()
            assert row == (encrypted, False), (mode, host)


def test_start_again_says_already_running(shared: Sandbox) -> None:
    before = shared.state()
    result = shared.cli("sandbox", "start")
    assert result.returncode == 0, result
    assert "already running" in result.stderr
    assert str(before["port"]) in result.stderr
    assert shared.state() == before


def test_status_running(shared: Sandbox) -> None:
    state = shared.state()
    result = shared.cli("sandbox", "status")
    assert result.returncode == 0, result
    assert "running" in result.stdout
    assert str(state["port"]) in result.stdout
    assert state["data_dir"] in result.stdout
    as_json = shared.cli("sandbox", "status", "--json")
    assert as_json.returncode == 0, as_json
    data = json.loads(as_json.stdout)
    assert data["running"] is True
    assert data["port"] == state["port"]
    assert data["data_dir"] == state["data_dir"]
    assert data["env"] == "sandbox"


def test_cli_check_verify_full_ok_and_encrypted(shared: Sandbox) -> None:
    result = shared.cli("check", "-e", "sandbox", "--sslmode", "verify-full", "--json")
    assert result.returncode == 0, result
    data = json.loads(result.stdout)
    [probe] = data["results"]
    assert probe["sslmode"] == "verify-full"
    assert probe["ok"] is True
    assert probe["stage"] == "ready"
    assert probe["encrypted"] is True
    assert "DNS:localhost" in data["certificate"]["san"]


def test_cli_check_all_modes_exit_0(shared: Sandbox) -> None:
    result = shared.cli("check", "-e", "sandbox", "--sslmode", "all", "--json")
    assert result.returncode == 0, result
    data = json.loads(result.stdout)
    assert data["effective_sslmode"] == "verify-full"
    assert {r["sslmode"]: r["ok"] for r in data["results"]} == {
        m: True for m in ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
    }


def test_cli_query_works(shared: Sandbox) -> None:
    result = shared.cli(
        "query",
        "-e",
        "sandbox",
        "--json",
        "select current_user as who, ssl from pg_stat_ssl where pid = pg_backend_pid()",
    )
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == [{"who": "app", "ssl": True}]


def test_cli_secret_list_shows_the_password_is_set(shared: Sandbox) -> None:
    result = shared.cli("secret", "list", "-e", "sandbox", "--json")
    assert result.returncode == 0, result
    entries = json.loads(result.stdout)
    assert {"name": "DB_PASSWORD", "env": "sandbox", "set": True, "store": "keyring"} in entries


def test_zz_stop_leaves_no_process_and_no_data(
    shared: Sandbox, keyring_session: KeyringSession
) -> None:
    """Runs last: stop the shared sandbox; no server process, port closed, data gone."""
    state = shared.state()
    password = keyring_session.lookup(shared.service, "DB_PASSWORD")
    assert password
    log = Path(state["root"]) / "server.log"
    assert password not in log.read_text(errors="replace")  # the role got a SCRAM verifier
    assert _postgres_pids_for(state["data_dir"])
    assert _port_open(state["port"])

    result = shared.cli("sandbox", "stop")
    assert result.returncode == 0, result
    assert "stopped" in result.stderr
    assert _postgres_pids_for(state["data_dir"]) == []
    assert not _port_open(state["port"])
    assert not Path(state["root"]).exists()
    assert not shared.state_file.exists()
    status = shared.cli("sandbox", "status")
    assert status.returncode == 1
    assert "not running" in status.stdout
    again = shared.cli("sandbox", "stop")
    assert again.returncode == 0, again
    # Secret hygiene over every command this module ran against the sandbox.
    for r in shared.results:
        assert password not in r.stdout, r.argv
        assert password not in r.stderr, r.argv


# --------------------------------------------------------------------------- placement


@pytest.mark.skipif(os.geteuid() != 0, reason="the server user differs from us only as root")
def test_private_project_as_root_puts_the_cluster_in_temp(
    tmp_path: Path, keyring_session: KeyringSession
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    box = _new_project(private / "proj", keyring_session)
    with _stopping(box):
        result = box.cli("sandbox", "start")
        assert result.returncode == 0, result
        state = box.state()
        root = Path(state["root"])
        assert state["in_project"] is False
        assert root.parent == Path(tempfile.gettempdir())
        st = root.stat()
        assert pwd.getpwuid(st.st_uid).pw_name == server_user() == state["server_user"]
        assert stat.S_IMODE(st.st_mode) == 0o700
        assert state["data_dir"] == str(root / "data")
        assert "cannot reach the project folder" in result.stderr
        # The server runs as the unprivileged user.
        [pid] = _postgres_pids_for(state["data_dir"])
        assert pwd.getpwuid(Path(f"/proc/{pid}").stat().st_uid).pw_name == server_user()
        status = box.cli("sandbox", "status", "--json")
        assert json.loads(status.stdout)["data_dir"] == state["data_dir"]

        # A server killed behind pgconnect's back: status says so, start cleans up and restarts.
        os.kill(pid, 9)
        status = box.cli("sandbox", "status")
        assert status.returncode == 1
        assert "not running" in status.stdout
        assert "sandbox stop" in status.stderr
        restarted = box.cli("sandbox", "start")
        assert restarted.returncode == 0, restarted
        assert not root.exists()  # the dead cluster's folder was removed
        new_state = box.state()
        assert _postgres_pids_for(new_state["data_dir"])
        stop = box.cli("sandbox", "stop")
        assert stop.returncode == 0, stop
        assert not Path(new_state["root"]).exists()
        assert _postgres_pids_for(new_state["data_dir"]) == []


def test_reachable_project_keeps_data_under_dot_pgconnect(
    keyring_session: KeyringSession,
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="pgconnect-test-sandbox-"))
    os.chmod(folder, 0o755)  # reachable by the server user when we are root
    try:
        box = _new_project(folder / "app", keyring_session)
        port = _free_port()
        with _stopping(box):
            result = box.cli("sandbox", "start", "--port", str(port))
            assert result.returncode == 0, result
            state = box.state()
            assert state["in_project"] is True
            assert state["port"] == port
            assert state["data_dir"] == str(box.folder / ".pgconnect" / "sandbox" / "data")
            assert f'DB_PORT = "{port}"' in (box.folder / "pgconnect.toml").read_text()
            assert _port_open(port)
            assert box.cli("sandbox", "stop").returncode == 0
            assert not (box.folder / ".pgconnect").exists()  # nothing left, not even the folder
            assert not _port_open(port)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --------------------------------------------------------------------------- failures


def test_port_in_use_fails_before_building_anything(
    tmp_path: Path, keyring_session: KeyringSession
) -> None:
    box = _new_project(tmp_path / "p", keyring_session)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = box.cli("sandbox", "start", "--port", str(port))
    assert result.returncode == 1, result
    assert f"port {port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not box.state_file.exists()
    assert "[env.sandbox" not in (box.folder / "pgconnect.toml").read_text()


SENTINEL = "sentinel-pw-9f3b"


def test_password_in_the_environment_is_warned_about_never_shown(
    tmp_path: Path, keyring_session: KeyringSession
) -> None:
    box = _new_project(tmp_path / "p", keyring_session)
    with socket.socket() as busy:  # an early failure: nothing is built
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = box.cli(
            "sandbox", "start", "--port", str(busy.getsockname()[1]), env={"DB_PASSWORD": SENTINEL}
        )
    assert result.returncode == 1, result
    assert SENTINEL not in result.stdout
    assert SENTINEL not in result.stderr


def _free_low_port() -> int | None:
    start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    for port in range(min(start, 1024) - 1, 900, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return None


@pytest.mark.skipif(
    os.geteuid() != 0 or _free_low_port() is None,
    reason="needs root (server as postgres) and a free privileged port postgres may not bind",
)
def test_server_that_cannot_start_is_cleaned_up(
    tmp_path: Path, keyring_session: KeyringSession
) -> None:
    """postgres may not bind a privileged port: start fails with the server's reason, exit 1,
    and leaves no process, no data, no state and no [env.sandbox] behind."""
    box = _new_project(tmp_path / "p", keyring_session)
    port = _free_low_port()
    assert port is not None
    with _stopping(box):
        result = box.cli("sandbox", "start", "--port", str(port), env={"DB_PASSWORD": SENTINEL})
    assert result.returncode == 1, result
    assert "PostgreSQL did not start" in result.stderr
    assert "Permission denied" in result.stderr
    assert "Traceback" not in result.stderr
    assert SENTINEL not in result.stdout
    assert SENTINEL not in result.stderr
    assert not box.state_file.exists()
    assert not (box.folder / ".pgconnect").exists()
    assert "[env.sandbox" not in (box.folder / "pgconnect.toml").read_text()
    leftovers = [p for p in Path(tempfile.gettempdir()).glob(f"pgconnect-{box.name}-*")]
    assert leftovers == []


def test_started_with_password_in_environment_warns_without_the_value(
    tmp_path: Path, keyring_session: KeyringSession
) -> None:
    box = _new_project(tmp_path / "p", keyring_session)
    with _stopping(box):
        result = box.cli("sandbox", "start", env={"DB_PASSWORD": SENTINEL})
        assert result.returncode == 0, result
        assert "DB_PASSWORD is set in your environment" in result.stderr
        status = box.cli("sandbox", "status", env={"DB_PASSWORD": SENTINEL})
        stop = box.cli("sandbox", "stop", env={"DB_PASSWORD": SENTINEL})
        assert stop.returncode == 0, stop
    password = keyring_session.lookup(box.service, "DB_PASSWORD")
    assert password
    assert password != SENTINEL  # the environment's value is not what the sandbox stored
    for r in (result, status, stop):
        for secret in (SENTINEL, password):
            assert secret not in r.stdout
            assert secret not in r.stderr


def test_no_keyring_fails_before_building_anything(tmp_path: Path, cli: Any) -> None:
    """Without a keyring (no D-Bus session) start fails with exit 4 and never falls back."""
    (tmp_path / "p").mkdir()
    assert cli("init", "--name", _unique(), cwd=tmp_path / "p").returncode == 0
    result = cli("sandbox", "start", cwd=tmp_path / "p")
    assert result.returncode == 4, result
    assert "keyring" in result.stderr
    assert not (tmp_path / "p" / ".pgconnect" / "sandbox.json").exists()
    assert not (tmp_path / "p" / ".pgconnect" / "sandbox").exists()
    assert "[env.sandbox" not in (tmp_path / "p" / "pgconnect.toml").read_text()


def test_status_and_stop_without_a_sandbox(tmp_path: Path, cli: Any) -> None:
    assert cli("init", "--name", _unique()).returncode == 0
    status = cli("sandbox", "status")
    assert status.returncode == 1
    assert status.stdout.strip() == "sandbox: not running"
    as_json = cli("sandbox", "status", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {
        "env": "sandbox",
        "running": False,
        "port": None,
        "data_dir": None,
        "pid": None,
    }
    stop = cli("sandbox", "stop")
    assert stop.returncode == 0
    assert "no sandbox" in stop.stderr


def test_unknown_environment_named_explicitly_is_exit_3(cli: Any) -> None:
    assert cli("init", "--name", _unique()).returncode == 0
    for command in ("status", "stop"):
        result = cli("sandbox", command, "-e", "nope")
        assert result.returncode == 3, result
        assert "no environment 'nope'" in result.stderr


def test_pgconnect_env_does_not_redirect_the_sandbox(cli: Any) -> None:
    """$PGCONNECT_ENV=staging must not make `sandbox status` look at (or write) staging."""
    assert cli("init", "--name", _unique()).returncode == 0
    result = cli("sandbox", "status", env={"PGCONNECT_ENV": "staging"})
    assert result.returncode == 1
    assert result.stdout.strip() == "sandbox: not running"


def test_no_project_file_is_exit_3(cli: Any) -> None:
    result = cli("sandbox", "start")
    assert result.returncode == 3
    assert "pgconnect init" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="a server user is used only as root")
def test_missing_server_user_is_a_clear_error(
    tmp_path: Path, keyring_session: KeyringSession
) -> None:
    box = _new_project(tmp_path / "p", keyring_session)
    result = box.cli(
        "sandbox",
        "start",
        env={"PGCONNECT_SERVER_USER": "no-such-user-x", "DB_PASSWORD": SENTINEL},
    )
    assert result.returncode == 1, result
    assert "'no-such-user-x' does not exist" in result.stderr
    assert "PGCONNECT_SERVER_USER" in result.stderr
    assert SENTINEL not in result.stdout
    assert SENTINEL not in result.stderr
    assert not box.state_file.exists()
    assert not (box.folder / ".pgconnect").exists()
