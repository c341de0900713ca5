"""The sandbox recovers its own password, and a fresh project's used-by line finds it.

One real sandbox for the module, started through the CLI with the session's keyring. Its password
is then lost the ways users lose it — a second, throwaway keyring (a new SSH session, a
container), a ``secret put`` over it, a ``secret delete`` — and each time ``sandbox start`` gives
the role a new password as the cluster's superuser, stores it and says so; ``check`` then passes.
No password, old or new, appears in any output.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    KeyringSession,
    Result,
    run_cli,
    start_keyring_session,
    stop_keyring_session,
)

pytestmark = pytest.mark.slow

SENTINEL = "Sentinel-Recovery-4b1c9e"


@dataclass
class Box:
    folder: Path
    name: str
    env: dict[str, str]
    results: list[Result] = field(default_factory=list)

    def cli(self, *args: str, env: dict[str, str] | None = None, **kw: Any) -> Result:
        result = run_cli(*args, env={**self.env, **(env or {})}, cwd=self.folder, **kw)
        self.results.append(result)
        return result

    @property
    def service(self) -> str:
        return f"pgconnect:{self.name}:sandbox"


@pytest.fixture(scope="module")
def box(keyring_session: KeyringSession) -> Iterator[Box]:
    """A fresh project (`pgconnect init`, nothing else) with a running sandbox."""
    folder = Path(tempfile.mkdtemp(prefix="pgconnect-test-recovery-")) / "shop"
    folder.mkdir()
    made = Box(folder, f"rc-{uuid.uuid4().hex[:8]}", keyring_session.environ())
    try:
        assert made.cli("init", "--name", made.name).returncode == 0
        started = made.cli("sandbox", "start")
        assert started.returncode == 0, started
        yield made
    finally:
        run_cli("sandbox", "stop", env=made.env, cwd=folder)
        shutil.rmtree(folder.parent, ignore_errors=True)


@pytest.fixture
def second_keyring(tmp_path: Path) -> Iterator[KeyringSession]:
    """Another D-Bus session with a new, empty gnome-keyring: what a new SSH login sees."""
    session = start_keyring_session(tmp_path / "second-keyring", password="second-login-pw")
    try:
        yield session
    finally:
        stop_keyring_session(session)


def _passwords(box: Box, *sessions: KeyringSession) -> list[str]:
    found = [s.lookup(box.service, "DB_PASSWORD") for s in sessions]
    return [p for p in found if p]


def _no_secret_in_outputs(box: Box, secrets: list[str]) -> None:
    for result in box.results:
        for value in secrets:
            assert value not in result.stdout, result
            assert value not in result.stderr, result


def _superuser_file(box: Box) -> Path:
    import json

    state = json.loads((box.folder / ".pgconnect" / "sandbox.json").read_text())
    return Path(state["root"]) / "superuser.pw"


def test_superuser_password_is_kept_private_to_the_server_user(box: Box) -> None:
    path = _superuser_file(box)
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    owner = pwd.getpwuid(st.st_uid).pw_name
    expected = os.environ.get("PGCONNECT_SERVER_USER", "postgres") if os.geteuid() == 0 else None
    assert owner == (expected or pwd.getpwuid(os.getuid()).pw_name)


def test_start_with_a_working_password_changes_nothing(
    box: Box, keyring_session: KeyringSession
) -> None:
    before = keyring_session.lookup(box.service, "DB_PASSWORD")
    again = box.cli("sandbox", "start")
    assert again.returncode == 0, again
    assert "already running" in again.stderr
    assert "recovered" not in again.stderr
    assert keyring_session.lookup(box.service, "DB_PASSWORD") == before


def test_new_keyring_recovers_the_password(
    box: Box, keyring_session: KeyringSession, second_keyring: KeyringSession
) -> None:
    """A throwaway keyring that never saw the sandbox: check fails naming `sandbox start`, which
    sets a new password; the first keyring's old password then no longer logs in, and start
    there recovers again."""
    other = second_keyring.environ()
    lost = box.cli("check", "-e", "sandbox", env=other)
    assert lost.returncode == 7, lost
    assert "pgconnect sandbox start" in lost.stdout + lost.stderr
    assert "secret put DB_PASSWORD" not in lost.stdout + lost.stderr

    recovered = box.cli("sandbox", "start", env=other)
    assert recovered.returncode == 0, recovered
    assert "recovered the sandbox's password" in recovered.stderr
    assert "was not in the keyring" in recovered.stderr
    new = second_keyring.lookup(box.service, "DB_PASSWORD")
    assert new
    ok = box.cli("check", "-e", "sandbox", "--sslmode", "all", env=other)
    assert ok.returncode == 0, ok

    # Back in the first keyring: its password is the old one, which the role no longer has.
    stale = box.cli("query", "-e", "sandbox", "select 1")
    assert stale.returncode == 7, stale
    assert "hint: this is the sandbox's own role: pgconnect sandbox start" in stale.stderr
    back = box.cli("sandbox", "start")
    assert back.returncode == 0, back
    assert "did not log in" in back.stderr
    assert box.cli("query", "-e", "sandbox", "select 1").stdout == "1\n"
    _no_secret_in_outputs(box, _passwords(box, keyring_session, second_keyring))


def test_secret_put_over_it_is_said_and_recovered(
    box: Box, keyring_session: KeyringSession
) -> None:
    put = box.cli("secret", "put", "DB_PASSWORD", "-e", "sandbox", input=SENTINEL)
    assert put.returncode == 0, put
    assert put.stderr.startswith("replaced DB_PASSWORD"), put
    assert box.cli("check", "-e", "sandbox").returncode == 7

    start = box.cli("sandbox", "start")
    assert start.returncode == 0, start
    assert "recovered the sandbox's password" in start.stderr
    assert keyring_session.lookup(box.service, "DB_PASSWORD") != SENTINEL
    assert box.cli("check", "-e", "sandbox").returncode == 0
    _no_secret_in_outputs(box, [SENTINEL, *_passwords(box, keyring_session)])


def test_secret_delete_is_recovered_with_its_declaration(
    box: Box, keyring_session: KeyringSession
) -> None:
    gone = box.cli("secret", "delete", "DB_PASSWORD", "-e", "sandbox", "--yes")
    assert gone.returncode == 0, gone
    assert 'secrets = ["DB_PASSWORD"]' not in (box.folder / "pgconnect.toml").read_text()
    start = box.cli("sandbox", "start")
    assert start.returncode == 0, start
    assert "was not in the keyring" in start.stderr
    assert 'secrets = ["DB_PASSWORD"]' in (box.folder / "pgconnect.toml").read_text()
    assert box.cli("query", "-e", "sandbox", "select current_user").stdout == "app\n"


def test_missing_secret_warning_names_sandbox_start(
    box: Box, second_keyring: KeyringSession
) -> None:
    result = box.cli("query", "-e", "sandbox", "select 1", env=second_keyring.environ())
    assert result.returncode == 7, result
    assert "set with: pgconnect sandbox start" in result.stderr


def test_without_the_superuser_file_start_says_how_to_start_afresh(
    box: Box, second_keyring: KeyringSession
) -> None:
    """A sandbox started by an older pgconnect kept no superuser password: the error names the
    stop-and-start that makes a new one (exit 1), and nothing is half-changed."""
    path = _superuser_file(box)
    saved = path.read_bytes()
    st = path.stat()
    path.unlink()
    try:
        result = box.cli("sandbox", "start", env=second_keyring.environ())
        assert result.returncode == 1, result
        assert "superuser password file" in result.stderr
        assert "hint: start it afresh (its data is throwaway): pgconnect sandbox stop && " in (
            result.stderr
        )
        assert second_keyring.lookup(box.service, "DB_PASSWORD") is None
    finally:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(saved)
        with contextlib.suppress(PermissionError):
            os.chown(path, st.st_uid, st.st_gid)


# --------------------------------------------------------------------------- the used-by line


def test_used_by_line_in_a_fresh_project_names_e_sandbox(box: Box) -> None:
    """`pgconnect init && pgconnect sandbox start && pgconnect check --sslmode require`: the base
    environment says nowhere to connect, so instead of libpq's default socket as root, exit 3
    with the same command and -e sandbox as the hint — which then works."""
    check = box.cli("check", "--sslmode", "require")
    assert check.returncode == 3, check
    assert "/var/run/postgresql" not in check.stdout
    assert "DB_HOST is a Unix socket" not in check.stderr
    hint = next(line for line in check.stderr.splitlines() if line.startswith("hint:"))
    assert "pgconnect check -e sandbox --sslmode require" in hint
    again = box.cli("check", "-e", "sandbox", "--sslmode", "require")
    assert again.returncode == 0, again

    query = box.cli("query", "select 1")
    assert query.returncode == 3, query
    assert "pgconnect query -e sandbox 'select 1'" in query.stderr
    psql = box.cli("psql", "-c", "select 1")
    assert psql.returncode == 3, psql
    assert "pgconnect psql -e sandbox -c 'select 1'" in psql.stderr
    # exec's command may not connect at all: a warning, and the command runs.
    exec_ = box.cli("exec", "--", "true")
    assert exec_.returncode == 0, exec_
    assert "warning:" in exec_.stderr
    assert "pgconnect exec -e sandbox -- true" in exec_.stderr
    # PGCONNECT_ENV, as the hint says, makes the plain line work.
    chosen = box.cli("check", "--sslmode", "require", env={"PGCONNECT_ENV": "sandbox"})
    assert chosen.returncode == 0, chosen


def test_a_configured_base_is_left_alone(box: Box) -> None:
    """A host from anywhere (here libpq's own PGHOST) is a configured base: no refusal."""
    result = box.cli(
        "check", "--timeout", "5", env={"PGHOST": "127.0.0.1", "PGPORT": "1", "PGUSER": "x"}
    )
    assert result.returncode == 5, result
    assert "sets no connection" not in result.stderr


def test_client_cert_sandbox_recovers_across_throwaway_keyrings(tmp_path: Path) -> None:
    """`sandbox start --client-cert`: every app login needs the certificate; the password check
    and the recovery still work when each shell has a new throwaway keyring (keyring run)."""
    folder = tmp_path / "mtls"
    folder.mkdir()
    env = {"PATH": os.environ["PATH"]}

    def run(*args: str) -> Result:
        return run_cli(*args, env=env, cwd=folder, timeout=120)

    assert run("init", "--name", f"mt-{uuid.uuid4().hex[:8]}").returncode == 0
    pgc = f"{sys.executable} -m pgconnect"
    try:
        first = run("keyring", "run", "--", "sh", "-c",
                    f"{pgc} sandbox start --client-cert && {pgc} check -e sandbox")  # fmt: skip
        assert first.returncode == 0, first
        second = run("keyring", "run", "--", "sh", "-c",
                     f"{pgc} sandbox start --client-cert && {pgc} check -e sandbox && "
                     f"{pgc} sandbox start --client-cert")  # fmt: skip
        assert second.returncode == 0, second
        assert second.stderr.count("recovered the sandbox's password") == 1, second
    finally:
        run("keyring", "run", "--", sys.executable, "-m", "pgconnect", "sandbox", "stop")
