"""url / exec / psql / init --from-url against real servers, the real keyring, psql and node-postgres.

The role's password is ``p@ss:w/rd %?#'"\\+=&``: every character that breaks hand-made URLs,
key=value strings, shell quoting or .pgpass lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from tests.conftest import (
    REPO,
    KeyringSession,
    Result,
    Server,
    Servers,
    clean_environ,
    cli_environ,
    write_project,
)

ROLE = "pgc_connect_weird"
WEIRD = "p@ss:w/rd %?#'\"\\+=&"
ENCODED = quote(WEIRD, safe="")
SENTINEL = "SENTINEL-9f3b"
NODE_DIR = REPO / "tests" / "node"


@pytest.fixture(scope="module")
def server(servers: Servers) -> Server:
    servers.tls_on.create_role(ROLE, WEIRD)
    return servers.tls_on


def project(
    folder: Path,
    server: Server,
    *,
    name: str = "weird",
    sslmode: str | None = "verify-full",
    host: str = "127.0.0.1",
    secrets: Sequence[str] = (),
    rootcert: bool = True,
    extra: Sequence[str] = (),
) -> Path:
    lines = [
        f'name = "{name}"',
        f"secrets = {json.dumps(list(secrets))}",
        "[vars]",
        f'DB_HOST = "{host}"',
        f'DB_PORT = "{server.port}"',
        f'DB_USERNAME = "{ROLE}"',
        'DB_NAME = "postgres"',
        *([f'DB_SSLROOTCERT = "{server.ca_file}"'] if rootcert else []),
        *([f'DB_SSLMODE = "{sslmode}"'] if sslmode else []),
        *extra,
    ]
    return write_project(folder, "\n".join(lines) + "\n")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def store_secret(keyring: KeyringSession, service: str, name: str, value: str) -> None:
    proc = keyring.secret_tool(
        "store", f"--label={service} {name}", "service", service, "username", name, input=value
    )
    assert proc.returncode == 0, proc.stderr


def no_secret(result: Result, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout, result
        assert secret not in result.stderr, result
        encoded = quote(secret, safe="")
        assert encoded not in result.stdout, result
        assert encoded not in result.stderr, result


def psql(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", *args],
        capture_output=True,
        text=True,
        env={**clean_environ(), **(env or {})},
        timeout=60,
    )


# --------------------------------------------------------------------------- url --reveal logins


@pytest.mark.parametrize("fmt", ["uri", "conninfo"])
def test_revealed_string_logs_in_with_psql(
    server: Server, isolated: Path, fmt: str, cli: Any
) -> None:
    project(isolated, server)
    out = cli("url", "--format", fmt, "--reveal", env={"DB_PASSWORD": WEIRD})
    assert out.returncode == 0, out
    dsn = out.stdout.rstrip("\n")
    assert "\n" not in dsn
    done = psql(
        dsn, "-Atc", "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{ROLE}|t"


def test_revealed_uri_is_well_formed(server: Server, isolated: Path, cli: Any) -> None:
    project(isolated, server)
    out = cli("url", "--reveal", env={"DB_PASSWORD": WEIRD})
    assert out.stdout.strip() == (
        f"postgresql://{ROLE}:{ENCODED}@127.0.0.1:{server.port}/postgres?"
        f"sslmode=verify-full&sslrootcert={quote(str(server.ca_file), safe='')}"
    )


@pytest.mark.parametrize("fmt", ["uri", "conninfo"])
def test_revealed_string_logs_in_with_psycopg(
    server: Server, isolated: Path, fmt: str, cli: Any
) -> None:
    project(isolated, server)
    out = cli("url", "--format", fmt, "--reveal", env={"DB_PASSWORD": WEIRD})
    assert out.returncode == 0, out
    with psycopg.connect(out.stdout.strip(), autocommit=True) as conn:
        assert conn.execute("select current_user").fetchone() == (ROLE,)
        assert conn.pgconn.ssl_in_use


def node_login(url: str) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (scripts/setup.sh installs node-postgres when it is)")
    assert (NODE_DIR / "node_modules" / "pg").is_dir(), "run scripts/setup.sh (npm install)"
    return subprocess.run(
        [node, str(NODE_DIR / "login.js")],
        capture_output=True,
        text=True,
        env={**clean_environ(), "DATABASE_URL": url},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("sslmode", "encrypted"),
    # node-postgres reads require as verify-full: with sslrootcert in the URL it verifies and connects.
    [("verify-full", True), ("require", True), ("disable", False)],
)
def test_revealed_uri_logs_in_with_node_postgres(
    server: Server, isolated: Path, sslmode: str, encrypted: bool, cli: Any
) -> None:
    project(isolated, server, sslmode=sslmode)
    out = cli("url", "--reveal", env={"DB_PASSWORD": WEIRD})
    assert out.returncode == 0, out
    done = node_login(out.stdout.strip())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"user": ROLE, "dbname": "postgres", "ssl": encrypted}


def test_node_postgres_reads_require_as_verify_full(
    server: Server, isolated: Path, cli: Any
) -> None:
    # The difference the README documents: libpq's `require` encrypts without verifying;
    # node-postgres (pg-connection-string 2.x) verifies like verify-full, so without the CA in
    # sslrootcert a private CA's certificate is refused.
    project(isolated, server, sslmode="require", rootcert=False)
    out = cli("url", "--reveal", env={"DB_PASSWORD": WEIRD})
    url = out.stdout.strip()
    assert "sslmode=require" in url
    libpq_login = psql(url, "-Atc", "select current_user")
    assert libpq_login.returncode == 0, libpq_login.stderr
    done = node_login(url)
    assert done.returncode == 1
    assert "certificate" in done.stderr
    assert WEIRD not in done.stderr


def test_eval_env_format_then_psql(server: Server, isolated: Path) -> None:
    project(isolated, server)
    script = 'eval "$(python -m pgconnect url --format env --reveal)" && psql -XAtc "select current_user"'
    env = cli_environ({"DB_PASSWORD": WEIRD})
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ROLE


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize("fmt", ["uri", "conninfo", "env", "json"])
def test_url_without_reveal_never_contains_the_password(
    server: Server, isolated: Path, fmt: str, cli: Any
) -> None:
    project(isolated, server)
    out = cli("url", "--format", fmt, env={"DB_PASSWORD": WEIRD})
    assert out.returncode == 0, out
    assert "****" in out.stdout
    no_secret(out, WEIRD)
    # The same with the password inside a DB_URL (from the environment).
    url = f"postgresql://{ROLE}:{ENCODED}@127.0.0.1:{server.port}/postgres?sslmode=disable"
    out = cli("url", "--format", fmt, env={"DB_URL": url})
    assert out.returncode == 0, out
    assert "****" in out.stdout
    no_secret(out, WEIRD)


def test_url_masked_does_not_open_the_keyring_or_import_heavy_modules(
    server: Server, isolated: Path
) -> None:
    # A declared DB_PASSWORD and no keyring at all (no D-Bus): masked output needs neither.
    project(isolated, server, secrets=["DB_PASSWORD"])
    code = (
        "import sys\n"
        "from pgconnect.cli import main\n"
        "try:\n"
        "    main(['url', '--format', 'json'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'psycopg', 'keyring', 'rich'})\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=cli_environ(),
        cwd=isolated,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert json.loads(lines[0])["password"] == "****"
    assert lines[1] == "HEAVY []"


def test_url_reveal_reads_the_keyring(
    server: Server, isolated: Path, keyring_session: KeyringSession, cli: Any
) -> None:
    name = unique("url")
    project(isolated, server, name=name, secrets=["DB_PASSWORD"])
    store_secret(keyring_session, f"pgconnect:{name}", "DB_PASSWORD", WEIRD)
    out = cli("url", "--reveal", env=keyring_session.environ())
    assert out.returncode == 0, out
    assert f":{ENCODED}@" in out.stdout


def test_default_sslmode_in_url(server: Server, isolated: Path, cli: Any) -> None:
    project(isolated, server, sslmode=None, host="db.example.com")
    out = cli("url", "--format", "json")
    assert json.loads(out.stdout)["sslmode"] == "require"
    project(isolated, server, sslmode=None, host="localhost")
    out = cli("url", "--format", "json")
    assert json.loads(out.stdout)["sslmode"] == "prefer"


def test_db_url_base_with_overrides_in_explain(server: Server, isolated: Path, cli: Any) -> None:
    write_project(
        isolated,
        'name = "t"\n[vars]\n'
        'DB_URL = "postgresql://app@db.example.com:5432/billing?application_name=a"\n'
        'DB_HOST = "127.0.0.1"\n',
    )
    out = cli("explain", "--json")
    assert out.returncode == 0, out
    got = {
        p["keyword"]: (p["value"], p["name"], p["source"]) for p in json.loads(out.stdout)["params"]
    }
    assert got == {
        "host": ("127.0.0.1", "DB_HOST", "file:[vars]"),
        "port": ("5432", "DB_URL", "file:[vars]"),
        "dbname": ("billing", "DB_URL", "file:[vars]"),
        "user": ("app", "DB_URL", "file:[vars]"),
        "sslmode": ("prefer", "DB_SSLMODE", "default"),
        "application_name": ("a", "DB_URL", "file:[vars]"),
    }


# --------------------------------------------------------------------------- malformed DB_URL


@pytest.mark.parametrize(
    "args",
    [
        ("url",),
        ("url", "--reveal"),
        ("url", "--format", "json"),
        ("explain",),
        ("exec", "--", "true"),
        ("psql", "-c", "select 1"),
    ],
)
def test_malformed_db_url_secret_is_exit_3_without_the_password(
    isolated: Path, keyring_session: KeyringSession, args: tuple[str, ...], cli: Any
) -> None:
    name = unique("badurl")
    write_project(isolated, f'name = "{name}"\nsecrets = ["DB_URL"]\n')
    store_secret(
        keyring_session, f"pgconnect:{name}", "DB_URL", f"postgresql://app:{SENTINEL}@[::1/db"
    )
    out = cli(*args, env=keyring_session.environ())
    assert out.returncode == 3, out
    assert "DB_URL (from secret:pgconnect:" in out.stderr
    assert "not a valid connection string" in out.stderr
    assert "postgresql://app:****@[::1/db" in out.stderr
    no_secret(out, SENTINEL)


def test_malformed_db_url_in_environment(isolated: Path, cli: Any) -> None:
    write_project(isolated, 'name = "t"\n')
    for bad in (
        f"postgresql://app:{SENTINEL}%zz@host/db",
        f"host=h password={SENTINEL} oops",
        f"postgresql://app@host/db?password={SENTINEL}&sslmode",
    ):
        out = cli("url", "--reveal", env={"DB_URL": bad})
        assert out.returncode == 3, out
        no_secret(out, SENTINEL)


# --------------------------------------------------------------------------- exec / psql


def test_exec_environment_and_passfile(
    server: Server, isolated: Path, keyring_session: KeyringSession, cli: Any
) -> None:
    name = unique("exec")
    project(isolated, server, name=name, secrets=["DB_PASSWORD"], extra=['APP_MODE = "blue"'])
    store_secret(keyring_session, f"pgconnect:{name}", "DB_PASSWORD", WEIRD)
    script = 'env; echo "MODE=$(stat -c %a "$PGPASSFILE")"; echo "FILE=$PGPASSFILE"; cat "$PGPASSFILE"; exit 7'
    out = cli(
        "exec",
        "--",
        "sh",
        "-c",
        script,
        env={**keyring_session.environ(), "PGPASSWORD": "inherited-pw", "DB_SSLPASSWORD": "x"},
    )
    assert out.returncode == 7, out
    lines = out.stdout.splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("*"))
    assert "PGPASSWORD" not in env
    assert "DB_SSLPASSWORD" not in env
    assert "inherited-pw" not in out.stdout
    assert env["PGHOST"] == "127.0.0.1"
    assert env["PGPORT"] == str(server.port)
    assert env["PGUSER"] == ROLE
    assert env["PGDATABASE"] == "postgres"
    assert env["PGSSLMODE"] == "verify-full"
    assert env["PGSSLROOTCERT"] == str(server.ca_file)
    assert env["APP_MODE"] == "blue"
    assert env["MODE"] == "600"
    passfile = Path(env["FILE"])
    assert env["PGPASSFILE"] == str(passfile)
    # .pgpass format, scoped to this connection's host, port, database and user; ':' and '\'
    # escaped in the password.
    escaped = WEIRD.replace("\\", "\\\\").replace(":", "\\:")
    assert lines[-1] == f"127.0.0.1:{server.port}:postgres:{ROLE}:{escaped}"
    assert not passfile.exists()
    assert WEIRD not in out.stderr


def test_exec_psql_logs_in_through_the_passfile(
    server: Server, isolated: Path, keyring_session: KeyringSession, cli: Any
) -> None:
    name = unique("execpsql")
    project(isolated, server, name=name, secrets=["DB_PASSWORD"])
    store_secret(keyring_session, f"pgconnect:{name}", "DB_PASSWORD", WEIRD)
    out = cli("exec", "--", "psql", "-XAtc", "select current_user", env=keyring_session.environ())
    assert out.returncode == 0, out
    assert out.stdout.strip() == ROLE
    out = cli("psql", "-XAtc", "select current_user", env=keyring_session.environ())
    assert out.returncode == 0, out
    assert out.stdout.strip() == ROLE
    # psql's own -e/--help clash with pgconnect's options: after -- they are psql's.
    out = cli("psql", "--", "-X", "-e", "-Atc", "select 42", env=keyring_session.environ())
    assert out.returncode == 0, out
    assert out.stdout.splitlines() == ["select 42", "42"]


def test_exec_moves_an_inherited_pgpassword_into_the_passfile(
    server: Server, isolated: Path, cli: Any
) -> None:
    project(isolated, server)
    script = 'psql -XAtc "select current_user"; env | grep -c "^PGPASSWORD=" || true'
    out = cli("exec", "--", "sh", "-c", script, env={"PGPASSWORD": WEIRD})
    assert out.returncode == 0, out
    assert out.stdout.splitlines() == [ROLE, "0"]
    no_secret(out, WEIRD)


def test_exec_url_var(server: Server, isolated: Path, cli: Any) -> None:
    project(isolated, server)
    env = {"DB_PASSWORD": WEIRD}
    url = cli("url", "--reveal", env=env).stdout.strip()
    out = cli(
        "exec", "--url-var", "DATABASE_URL", "--", "sh", "-c", 'printf %s "$DATABASE_URL"', env=env
    )
    assert out.returncode == 0, out
    assert out.stdout == url
    bad = cli("exec", "--url-var", "1BAD", "--", "true", env=env)
    assert bad.returncode == 2, bad


def test_exec_status_and_missing_command(server: Server, isolated: Path, cli: Any) -> None:
    project(isolated, server)
    assert cli("exec", "--", "sh", "-c", "exit 42", env={"DB_PASSWORD": WEIRD}).returncode == 42
    out = cli("exec", "--", "no-such-command-pgc", env={"DB_PASSWORD": WEIRD})
    assert out.returncode == 127, out
    assert "no-such-command-pgc: command not found" in out.stderr
    out = cli("exec", env={"DB_PASSWORD": WEIRD})
    assert out.returncode == 2, out


def test_exec_refuses_a_password_a_passfile_cannot_hold(
    server: Server, isolated: Path, cli: Any
) -> None:
    project(isolated, server)
    out = cli("exec", "--", "true", env={"DB_PASSWORD": f"line\n{SENTINEL}"})
    assert out.returncode == 1, out
    assert "line break" in out.stderr
    no_secret(out, SENTINEL)


@contextlib.contextmanager
def running_exec(
    folder: Path, env: dict[str, str], script: str, *, sigwaitinfo: bool = True
) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    """pgconnect exec -- sh -c SCRIPT; SCRIPT must print "$$ $PGPASSFILE" first. Without
    SIGWAITINFO, pgconnect takes the signal-handler path it uses where there is none (macOS)."""
    if sigwaitinfo:
        start = [sys.executable, "-m", "pgconnect"]
    else:
        code = (
            "import sys\n"
            "import pgconnect.handoff\n"
            "pgconnect.handoff.USE_SIGWAITINFO = False\n"
            "from pgconnect.cli import main\n"
            "main(sys.argv[1:])\n"
        )
        start = [sys.executable, "-c", code]
    proc = subprocess.Popen(
        [*start, "exec", "--", "sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=folder,
        env=cli_environ(env),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        assert len(first) == 2, (first, proc.stderr.read() if proc.stderr else "")
        yield proc, int(first[0]), Path(first[1])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.mark.parametrize("sigwaitinfo", [True, False], ids=["sigwaitinfo", "handlers"])
@pytest.mark.parametrize(
    ("target", "sig", "status"),
    [
        ("child", signal.SIGKILL, 128 + 9),
        ("pgconnect", signal.SIGTERM, 143),
        ("pgconnect", signal.SIGINT, 130),
        ("pgconnect", signal.SIGHUP, 129),
    ],
)
def test_passfile_removed_however_the_child_ends(
    server: Server,
    isolated: Path,
    keyring_session: KeyringSession,
    target: str,
    sig: signal.Signals,
    status: int,
    sigwaitinfo: bool,
) -> None:
    name = unique("sig")
    project(isolated, server, name=name, secrets=["DB_PASSWORD"])
    store_secret(keyring_session, f"pgconnect:{name}", "DB_PASSWORD", WEIRD)
    script = 'echo "$$ $PGPASSFILE"; exec sleep 120'
    with running_exec(isolated, keyring_session.environ(), script, sigwaitinfo=sigwaitinfo) as (
        proc,
        child,
        passfile,
    ):
        assert passfile.exists()
        assert passfile.stat().st_mode & 0o777 == 0o600
        # The password is in no process's argv, and not in the child's environment.
        for pid in (proc.pid, child):
            assert WEIRD not in _cmdline(pid)
            assert ENCODED not in _cmdline(pid)
        child_env = Path(f"/proc/{child}/environ").read_bytes()
        assert WEIRD.encode() not in child_env
        assert b"PGPASSWORD=" not in child_env
        os.kill(child if target == "child" else proc.pid, sig)
        assert proc.wait(30) == status
        assert not passfile.exists()


def test_passfile_removed_when_pgconnect_is_killed(
    server: Server, isolated: Path, cli: Any
) -> None:
    project(isolated, server)
    script = 'echo "$$ $PGPASSFILE"; exec sleep 120'
    with running_exec(isolated, {"DB_PASSWORD": WEIRD}, script) as (proc, child, passfile):
        assert passfile.exists()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        # The watchdog (its own session) notices pgconnect's end of the pipe closing.
        deadline = time.monotonic() + 20
        while passfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)  # the orphaned child
        assert not passfile.exists()


def test_terminal_ctrl_c_is_not_forwarded_again(server: Server, isolated: Path) -> None:
    # Ctrl-C on a terminal goes to the whole foreground process group, pgconnect and the child
    # alike; pgconnect must not send the child a second one. To see a second one for certain
    # (standard signals coalesce), the child leaves the group: then any SIGINT it gets came
    # from pgconnect. A SIGINT sent to pgconnect by another process must be forwarded.
    project(isolated, server)
    child = (
        "import os, signal, sys, time\n"
        "os.setpgid(0, 0)\n"
        "def on_int(signum, frame):\n"
        "    print('GOT-INT', flush=True)\n"
        "    os._exit(7)\n"
        "signal.signal(signal.SIGINT, on_int)\n"
        "print(os.getpid(), os.environ['PGPASSFILE'], flush=True)\n"
        "while True:\n"
        "    time.sleep(1)\n"
    )
    argv = [sys.executable, "-m", "pgconnect", "exec", "--", sys.executable, "-c", child]
    env = cli_environ({"DB_PASSWORD": WEIRD})
    pid, master = pty.fork()
    if pid == 0:  # a session of its own, the pty as its controlling terminal
        os.chdir(isolated)
        os.execve(sys.executable, argv, env)  # noqa: S606
    output = b""

    def read_until(marker: bytes, seconds: float) -> bool:
        nonlocal output
        deadline = time.monotonic() + seconds
        while marker not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    output += os.read(master, 4096)
                except OSError:
                    break
        return marker in output

    try:
        assert read_until(b".pgpass", 30), output
        os.write(master, b"\x03")  # the terminal's Ctrl-C: reaches pgconnect only
        assert not read_until(b"GOT-INT", 2), output
        os.kill(pid, signal.SIGINT)  # from another process: forwarded
        assert read_until(b"GOT-INT", 30), output
        _, wait_status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(wait_status) == 7
    finally:
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)


# --------------------------------------------------------------------------- init --from-url


def test_init_from_url_stdin(
    server: Server, isolated: Path, keyring_session: KeyringSession, cli: Any
) -> None:
    name = unique("init")
    url = (
        f"postgresql://{ROLE}:{ENCODED}@127.0.0.1:{server.port}/postgres"
        f"?sslmode=verify-full&sslrootcert={quote(str(server.ca_file), safe='')}"
    )
    out = cli(
        "init", "--name", name, "--from-url", "-", input=url + "\n", env=keyring_session.environ()
    )
    assert out.returncode == 0, out
    no_secret(out, WEIRD)
    assert "shell history" not in out.stderr
    text = (isolated / "pgconnect.toml").read_text()
    for leaked in (WEIRD, ENCODED, "p@ss"):
        assert leaked not in text
    assert 'secrets = ["DB_PASSWORD"]' in text
    assert f'DB_USERNAME = "{ROLE}"' in text
    assert f'DB_PORT = "{server.port}"' in text
    assert keyring_session.lookup(f"pgconnect:{name}", "DB_PASSWORD") == WEIRD
    revealed = cli("url", "--reveal", env=keyring_session.environ())
    assert revealed.stdout.strip() == url
    done = psql(revealed.stdout.strip(), "-Atc", "select current_user")
    assert done.stdout.strip() == ROLE, done.stderr


def test_init_from_url_into_an_environment(
    isolated: Path, keyring_session: KeyringSession, cli: Any
) -> None:
    name = unique("initenv")
    out = cli(
        "init",
        "--name",
        name,
        "--env",
        "staging",
        "--from-url",
        "-",
        input="postgresql://app:pw@staging.example.com/billing",
        env=keyring_session.environ(),
    )
    assert out.returncode == 0, out
    text = (isolated / "pgconnect.toml").read_text()
    assert "[env.staging.vars]" in text
    assert 'DB_HOST = "staging.example.com"' in text
    assert "pw" not in text.replace("pgconnect", "")
    assert keyring_session.lookup(f"pgconnect:{name}:staging", "DB_PASSWORD") == "pw"
    shown = cli("url", "--env", "staging")
    assert (
        shown.stdout.strip() == "postgresql://app:****@staging.example.com/billing?sslmode=require"
    )


def test_init_from_url_argument_warns_about_shell_history(
    isolated: Path, keyring_session: KeyringSession, cli: Any
) -> None:
    name = unique("initarg")
    out = cli(
        "init",
        "--name",
        name,
        "--from-url",
        f"postgresql://app:{SENTINEL}@db.example.com/x",
        env=keyring_session.environ(),
    )
    assert out.returncode == 0, out
    assert "shell history" in out.stderr
    assert SENTINEL not in (isolated / "pgconnect.toml").read_text()
    no_secret(out, SENTINEL)
    no_password = cli("init", "--force", "--name", name, "--from-url", "postgresql://app@h/x")
    assert no_password.returncode == 0, no_password
    assert "shell history" not in no_password.stderr
    assert "secrets = []" in (isolated / "pgconnect.toml").read_text()


def test_init_from_url_failures(isolated: Path, keyring_session: KeyringSession, cli: Any) -> None:
    name = unique("initbad")
    empty = cli("init", "--name", name, "--from-url", "-", input="\n")
    assert empty.returncode == 2, empty
    bad = cli(
        "init",
        "--name",
        name,
        "--from-url",
        "-",
        input=f"postgresql://app:{SENTINEL}@[::1/db",
        env=keyring_session.environ(),
    )
    assert bad.returncode == 3, bad
    no_secret(bad, SENTINEL)
    assert not (isolated / "pgconnect.toml").exists()
    invalid = cli("init", "--name", name, "--from-url", "-", input="postgresql://h/x?sslmode=on")
    assert invalid.returncode == 3, invalid
    write_project(isolated, 'name = "keep"\n')
    exists = cli(
        "init",
        "--name",
        name,
        "--from-url",
        "-",
        input=f"postgresql://app:{SENTINEL}@h/x",
        env=keyring_session.environ(),
    )
    assert exists.returncode == 3, exists
    assert (isolated / "pgconnect.toml").read_text() == 'name = "keep"\n'
    assert keyring_session.lookup(f"pgconnect:{name}", "DB_PASSWORD") is None
