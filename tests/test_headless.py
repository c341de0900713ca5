"""A keyring without a desktop: ``pgconnect keyring run|shell``, and what needs no keyring at all.

Every test here starts from no D-Bus session (the ``isolated`` fixture removes it), as on a
server, in a container or over SSH. ``keyring run`` and ``keyring shell`` then start their own
D-Bus session and gnome-keyring — real daemons, checked gone afterwards — and pgconnect's secrets
go through them to real servers. Terminal cases (the shell, the password prompt) run on a
pseudo-terminal. ``scripts/with-keyring.sh`` (what the test command uses) is checked too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Servers, cli_environ, project_for, write_project
from tests.ptyio import Pty

SENTINEL = "Sentinel-Headless-c0ffee42"
KEYRING_PW = "Keyring-Pw-Sentinel-5e5e5e"

pytestmark = pytest.mark.skipif(
    shutil.which("gnome-keyring-daemon") is None or shutil.which("dbus-daemon") is None,
    reason="gnome-keyring-daemon or dbus-daemon is not installed",
)


def _name() -> str:
    return f"hl-{uuid.uuid4().hex[:10]}"


def _bus_holders(address: str) -> list[int]:
    """Live processes whose environment names the bus ADDRESS (our daemons, if any are left)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if address.encode() in environ:
            found.append(int(entry.name))
    return found


def _gone(address: str, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _bus_holders(address):
            return True
        time.sleep(0.1)
    return False


def _run_folders() -> set[str]:
    import tempfile

    found: set[str] = set()
    for base in {tempfile.gettempdir(), "/tmp"}:
        found |= {str(p) for p in Path(base).glob("pgconnect-keyring-run-*")}
    return found


# --------------------------------------------------------------------------- keyring run


def test_keyring_run_is_a_throwaway_keyring_for_one_command(
    cli: Any, isolated: Path, servers: Servers
) -> None:
    """CI: put the password in from the environment, check against a real server, all in one
    `keyring run`; the exit status is the command's; afterwards the daemons and folders are
    gone, and the next run's keyring is empty."""
    name = _name()
    project_for(servers.tls_on, isolated, name=name)
    before = _run_folders()
    script = (
        'printf %s "$PW" | pgconnect secret put DB_PASSWORD && pgconnect check >/dev/null && '
        'echo "bus=$DBUS_SESSION_BUS_ADDRESS kind=$PGCONNECT_KEYRING" && '
        "pgconnect secret list --json && exit 7"
    )
    shim = isolated / "bin"
    shim.mkdir()
    (shim / "pgconnect").write_text(f'#!/bin/sh\nexec {sys.executable} -m pgconnect "$@"\n')
    (shim / "pgconnect").chmod(0o755)
    env = {"PW": servers.tls_on.password, "PATH": f"{shim}:{os.environ['PATH']}"}
    result = cli("keyring", "run", "--", "sh", "-c", script, env=env)
    assert result.returncode == 7, result
    address = re.search(r"bus=(\S+) kind=throwaway", result.stdout)
    assert address, result
    assert json.loads(result.stdout.splitlines()[-1])[0]["set"] is True
    assert _gone(address.group(1)), "a daemon of the keyring session is still running"
    assert _run_folders() <= before

    again = cli(
        "keyring", "run", "--", sys.executable, "-m", "pgconnect", "secret", "list", "--json"
    )
    assert again.returncode == 0, again
    assert json.loads(again.stdout)[0]["set"] is False  # throwaway: nothing was kept


def test_keyring_run_persistent_keeps_secrets_and_checks_the_password(
    cli: Any, isolated: Path
) -> None:
    write_project(isolated, f'name = "{_name()}"\n')
    env = {"PGCONNECT_KEYRING_PASSWORD": KEYRING_PW}
    put = cli(
        "keyring", "run", "--persistent", "--",
        sys.executable, "-m", "pgconnect", "secret", "put", "API_TOKEN",
        input=SENTINEL, env=env,
    )  # fmt: skip
    assert put.returncode == 0, put
    folder = Path(os.environ["XDG_DATA_HOME"]) / "pgconnect" / "keyring"
    assert (folder / "keyrings" / "login.keyring").is_file()
    assert oct(folder.stat().st_mode & 0o777) == "0o700"

    # The child does not see the keyring's password.
    listed = cli(
        "keyring", "run", "--persistent", "--",
        "sh", "-c", f"env | grep -c {KEYRING_PW} ; {sys.executable} -m pgconnect secret list",
        env=env,
    )  # fmt: skip
    assert listed.returncode == 0, listed
    assert listed.stdout.splitlines()[0] == "0"
    assert re.search(r"API_TOKEN\s+set\s", listed.stdout), listed

    wrong = cli(
        "keyring", "run", "--persistent", "--", "true",
        env={"PGCONNECT_KEYRING_PASSWORD": "not-the-password"},
    )  # fmt: skip
    assert wrong.returncode == 4, wrong
    assert "did not unlock" in wrong.stderr
    for result in (put, listed, wrong):
        assert SENTINEL not in result.output
        assert KEYRING_PW not in result.output

    # Without a terminal and without the variable there is nobody to ask: exit 2, never a hang.
    blind = cli("keyring", "run", "--persistent", "--", "true")
    assert blind.returncode == 2, blind
    assert "PGCONNECT_KEYRING_PASSWORD=" in blind.stderr


def test_keyring_run_passes_signals_on_and_cleans_up(isolated: Path) -> None:
    write_project(isolated, f'name = "{_name()}"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgconnect", "keyring", "run", "--",
         "sh", "-c", 'echo "$DBUS_SESSION_BUS_ADDRESS"; exec sleep 60'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_environ(), cwd=isolated,
    )  # fmt: skip
    assert proc.stdout is not None
    address = proc.stdout.readline().decode().strip()
    assert address.startswith("unix:")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 143
    assert _gone(address)


def test_keyring_run_without_the_daemons_is_exit_4_with_the_install_command(
    cli: Any, isolated: Path, tmp_path: Path
) -> None:
    write_project(isolated, f'name = "{_name()}"\n')
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = cli("keyring", "run", "--", "true", env={"PATH": str(empty)})
    assert result.returncode == 4, result
    assert "needs dbus-daemon and gnome-keyring-daemon" in result.stderr
    assert "hint: install it: sudo apt-get install dbus-daemon gnome-keyring" in result.stderr


def test_keyring_run_under_a_long_tmpdir(cli: Any, isolated: Path, tmp_path: Path) -> None:
    """gnome-keyring's control socket lives in the run's folder; a $TMPDIR too long for a Unix
    socket path (107 bytes) must not make the daemon give up."""
    write_project(isolated, f'name = "{_name()}"\n')
    deep = tmp_path / ("long-" * 12) / ("tmpdir-" * 6)
    deep.mkdir(parents=True)
    result = cli(
        "keyring", "run", "--", sys.executable, "-m", "pgconnect", "secret", "list",
        env={"TMPDIR": str(deep)},
    )  # fmt: skip
    assert result.returncode == 0, result
    assert list(deep.iterdir()) == []


def test_keyring_run_needs_a_command(cli: Any) -> None:
    result = cli("keyring", "run")
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: no command given")


# --------------------------------------------------------------------------- keyring shell


def test_keyring_shell_on_a_terminal(isolated: Path, servers: Servers) -> None:
    """The interactive recipe: `pgconnect keyring shell`, then pgconnect as usual; `exit`
    ends the shell, the keyring and its daemons."""
    project_for(servers.tls_on, isolated, name=_name())
    env = {**cli_environ(), "SHELL": "/bin/sh", "PS1": "$ ", "TERM": "dumb"}
    pgc = f"{sys.executable} -m pgconnect"
    with Pty([sys.executable, "-m", "pgconnect", "keyring", "shell"], env=env, cwd=isolated) as t:
        t.expect("keyring shell: an unlocked throwaway keyring")
        t.expect("$ ")
        t.send(f"{pgc} secret put DB_PASSWORD\n")
        t.expect("Value for DB_PASSWORD (input hidden): ")
        t.send(servers.tls_on.password + "\n")
        t.expect("Repeat the value for DB_PASSWORD: ")
        t.send(servers.tls_on.password + "\n")
        t.expect("stored DB_PASSWORD in the keyring")
        t.send(f'{pgc} query "select 40 + 2"; echo "bus=$DBUS_SESSION_BUS_ADDRESS"\n')
        t.expect("42")
        address = t.expect_re(r"bus=(unix:\S+)").group(1)
        t.send("exit 3\n")
        status = t.wait()
    assert status == 3
    assert servers.tls_on.password not in t.output
    assert _gone(address)


def test_keyring_shell_persistent_asks_for_the_password_on_the_terminal(isolated: Path) -> None:
    write_project(isolated, f'name = "{_name()}"\n')
    env = {**cli_environ(), "SHELL": "/bin/sh", "PS1": "$ ", "TERM": "dumb"}
    argv = [sys.executable, "-m", "pgconnect", "keyring", "shell", "--persistent"]
    pgc = f"{sys.executable} -m pgconnect"
    with Pty(argv, env=env, cwd=isolated) as t:  # first time: create, asked twice
        t.expect("New password for the keyring in ")
        t.send(KEYRING_PW + "\n")
        t.expect("Repeat it: ")
        t.send(KEYRING_PW + "\n")
        t.expect("$ ")
        t.send(f"printf %s {SENTINEL} | {pgc} secret put API_TOKEN; exit\n")
        assert t.wait() == 0
    with Pty(argv, env=env, cwd=isolated) as t:  # next time: unlock, asked once
        t.expect("Password of the keyring in ")
        t.send(KEYRING_PW + "\n")
        t.expect("$ ")
        t.send(f"{pgc} secret list; exit\n")
        t.expect_re(r"API_TOKEN\s+set\s")
        assert t.wait() == 0
        assert KEYRING_PW not in t.output.replace("Password of the keyring", "")


# --------------------------------------------------------------------------- no keyring at all


def test_secret_list_and_explain_work_without_dbus(cli: Any, isolated: Path) -> None:
    """No D-Bus: they need no secret value, so they report the store as unreachable (exit 0),
    with one warning whose hint is the command that starts a keyring."""
    write_project(
        isolated,
        f'name = "{_name()}"\nsecrets = ["DB_PASSWORD"]\n[vars]\nDB_HOST = "db.example.com"\n',
    )
    assert "DBUS_SESSION_BUS_ADDRESS" not in cli_environ()
    listed = cli("secret", "list")
    assert listed.returncode == 0, listed
    assert re.search(r"DB_PASSWORD\s+unknown\s+keyring:pgconnect:", listed.stdout), listed
    assert "no OS keyring is available" in listed.stderr
    assert "\nhint: pgconnect keyring shell" in listed.stderr

    as_json = cli("secret", "list", "--json")
    assert as_json.returncode == 0, as_json
    assert json.loads(as_json.stdout) == [
        {"name": "DB_PASSWORD", "env": None, "set": None, "store": "keyring"}
    ]

    explain = cli("explain", "--json")
    assert explain.returncode == 0, explain
    rows = {p["keyword"]: p for p in json.loads(explain.stdout)["params"]}
    assert rows["password"]["value"] == "?"
    assert rows["password"]["source"].endswith("(not read)")
    assert rows["host"]["value"] == "db.example.com"
    assert explain.stderr.count("warning:") == 1, explain

    # A value from the environment needs no store at all.
    given = cli("explain", env={"DB_PASSWORD": SENTINEL})
    assert given.returncode == 0, given
    assert "warning" not in given.stderr
    assert SENTINEL not in given.output


def test_explain_that_needs_a_db_url_secret_is_still_exit_4(cli: Any, isolated: Path) -> None:
    """DB_URL's parts are shown, so its value is needed: without a store that is exit 4."""
    write_project(isolated, f'name = "{_name()}"\nsecrets = ["DB_URL"]\n')
    result = cli("explain")
    assert result.returncode == 4, result
    assert "hint: pgconnect keyring shell" in result.stderr


def test_commands_that_need_a_value_say_the_command_to_run(cli: Any, isolated: Path) -> None:
    write_project(isolated, f'name = "{_name()}"\n')
    result = cli("secret", "put", "DB_PASSWORD", input=SENTINEL)
    assert result.returncode == 4, result
    hint = next(line for line in result.stderr.splitlines() if line.startswith("hint:"))
    assert hint.startswith("hint: pgconnect keyring shell ")
    assert "pgconnect keyring run -- pgconnect" in hint
    assert SENTINEL not in result.output


# --------------------------------------------------------------------------- with-keyring.sh


def test_with_keyring_script_leaves_nothing_and_exports_nothing_of_its_own(
    tmp_path: Path,
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in cli_environ().items() if k not in ("XDG_RUNTIME_DIR",)}
    env["TMPDIR"] = str(tmp)
    probe = (
        "env | grep -c '^PGCONNECT_TEST' ; "
        "printf v | secret-tool store --label x service pgconnect-probe username u && "
        "secret-tool lookup service pgconnect-probe username u; echo; exit 9"
    )
    for _ in range(2):
        proc = subprocess.run(
            ["dbus-run-session", "--", "bash", str(REPO / "scripts" / "with-keyring.sh"),
             "bash", "-c", probe],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 9, proc.stderr
        assert proc.stdout.splitlines()[:2] == ["0", "v"], proc.stdout
    assert list(tmp.iterdir()) == []
