"""The real things the tests run against, started once per session.

- PostgreSQL clusters on free ports, as the ``postgres`` user when the tests run as root:
  ``tls_on`` (accepts TLS and plaintext), ``tls_only`` (``hostnossl … reject``), ``tls_off``, and
  ``wrong_host`` (TLS with a certificate for another host name). A test CA signs the server
  certificates; an unrelated CA is the client-side "wrong CA". SCRAM passwords everywhere.
- A TCP listener that accepts connections and never answers (timeouts).
- A private D-Bus session with an unlocked gnome-keyring (the real Secret Service).
- Every test is isolated from the machine: ``PG*``/``DB_*``/``PGCONNECT_*`` cleared, a temporary HOME.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pgconnect import pki
from pgconnect.cluster import Cluster, chown_to, find_bindir, free_port, server_user

pytest_plugins = ["tests.plugin_check"]

REPO = Path(__file__).resolve().parent.parent
SERVER_SANS = ["localhost", "127.0.0.1", "::1"]
WRONG_HOST_SANS = ["wrong-host.invalid"]

_CLEARED_PREFIXES = ("PG", "DB_", "PGCONNECT_")


def clean_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment minus everything that could change libpq's or pgconnect's mind."""
    env = dict(os.environ if base is None else base)
    for key in list(env):
        if key.startswith(_CLEARED_PREFIXES) or key in ("NO_COLOR", "FORCE_COLOR", "COLUMNS"):
            del env[key]
    return env


# --------------------------------------------------------------------------- PKI


@dataclass(frozen=True)
class PKI:
    folder: Path
    ca: pki.CA
    server: pki.Issued
    wrong_host: pki.Issued

    @property
    def ca_file(self) -> Path:
        return self.folder / "root.crt"

    @property
    def wrong_ca_file(self) -> Path:
        return self.folder / "other-root.crt"


@pytest.fixture(scope="session")
def pki_files() -> Iterator[PKI]:
    folder = Path(tempfile.mkdtemp(prefix="pgconnect-pki-"))
    os.chmod(folder, 0o755)
    ca = pki.CA("pgconnect test CA")
    other = pki.CA("unrelated test CA")
    (folder / "root.crt").write_bytes(ca.cert_pem)
    (folder / "other-root.crt").write_bytes(other.cert_pem)
    result = PKI(
        folder=folder,
        ca=ca,
        server=ca.issue_server("localhost", SERVER_SANS),
        wrong_host=ca.issue_server("wrong-host.invalid", WRONG_HOST_SANS),
    )
    yield result
    shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- clusters


@dataclass
class Server:
    """A running test cluster and how to reach it."""

    name: str
    cluster: Cluster
    password: str
    ca_file: Path
    wrong_ca_file: Path
    tls: bool
    host: str = "127.0.0.1"
    user: str = "postgres"
    dbname: str = "postgres"

    @property
    def port(self) -> int:
        return self.cluster.port

    def params(self, **overrides: Any) -> dict[str, str]:
        """libpq keywords for this server, with the right CA; OVERRIDES win (None removes)."""
        out: dict[str, Any] = {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
            "sslrootcert": str(self.ca_file),
            "sslmode": "prefer",
            "gssencmode": "disable",
            "connect_timeout": "10",
        }
        out.update(overrides)
        return {k: str(v) for k, v in out.items() if v is not None}

    def connect(self, **overrides: Any) -> Any:
        import psycopg

        return psycopg.connect(conninfo="", autocommit=True, **self.params(**overrides))  # type: ignore[arg-type]

    def execute(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            cur = conn.execute(sql, args or None)
            return cur.fetchall() if cur.description else []

    def create_role(self, name: str, password: str, *, superuser: bool = False) -> None:
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} {}").format(
                    sql.Identifier(name),
                    sql.Literal(password),
                    sql.SQL("SUPERUSER" if superuser else "NOSUPERUSER"),
                )
            )


HBA_ANY = [
    "host all all 127.0.0.1/32 scram-sha-256",
    "host all all ::1/128 scram-sha-256",
]
HBA_TLS_ONLY = [
    "hostnossl all all 0.0.0.0/0 reject",
    "hostnossl all all ::/0 reject",
    "hostssl all all 127.0.0.1/32 scram-sha-256",
    "hostssl all all ::1/128 scram-sha-256",
]


@dataclass
class Servers:
    tls_on: Server
    tls_only: Server
    tls_off: Server
    wrong_host: Server
    by_name: dict[str, Server] = field(default_factory=dict)

    def all(self) -> list[Server]:
        return [self.tls_on, self.tls_only, self.tls_off, self.wrong_host]


def _private_root(prefix: str) -> Path:
    """A folder the server user owns and can reach (pytest's tmp folders are 0700 root's)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    chown_to(server_user(), root)
    return root


@pytest.fixture(scope="session")
def servers(pki_files: PKI) -> Iterator[Servers]:
    """The four test clusters: initdb once, copy the template, start all in parallel."""
    base = _private_root("pgconnect-test-clusters-")
    password = "su-" + secrets.token_urlsafe(12)
    bindir = find_bindir()
    user = server_user()
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    chown_to(user, pwfile)
    template = Cluster(root=base / "template", port=0, bindir=bindir, user=user)
    template.initdb(pwfile)

    specs = {
        "tls_on": (True, pki_files.server, HBA_ANY),
        "tls_only": (True, pki_files.server, HBA_TLS_ONLY),
        "tls_off": (False, None, HBA_ANY),
        "wrong_host": (True, pki_files.wrong_host, HBA_ANY),
    }
    made: dict[str, Server] = {}

    def build(name: str) -> Server:
        ssl, issued, hba = specs[name]
        cluster = Cluster(root=base / name, port=free_port(), bindir=bindir, user=user)
        cluster.root.mkdir()
        chown_to(user, cluster.root)
        os.chmod(cluster.root, 0o700)
        cmd = ["cp", "-a", str(template.datadir), str(cluster.datadir)]
        if user is not None:
            cmd = ["runuser", "-u", user, "--", *cmd]
        subprocess.run(cmd, check=True)
        cluster.configure(
            ssl=ssl,
            cert=issued.cert_pem if issued else None,
            key=issued.key_pem if issued else None,
            hba=hba,
        )
        cluster.start()
        return Server(
            name=name,
            cluster=cluster,
            password=password,
            ca_file=pki_files.ca_file,
            wrong_ca_file=pki_files.wrong_ca_file,
            tls=ssl,
        )

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for name, server in zip(specs, pool.map(build, specs), strict=True):
                made[name] = server
        yield Servers(by_name=made, **made)
    finally:
        for server in made.values():
            with contextlib.suppress(Exception):
                server.cluster.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def silent_listener() -> Iterator[tuple[str, int]]:
    """A TCP port that accepts connections (kernel backlog) and never says a word."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield ("127.0.0.1", sock.getsockname()[1])
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    sock.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (skipped where mounting is not permitted)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def refused_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


# --------------------------------------------------------------------------- keyring


@dataclass
class KeyringSession:
    """A private D-Bus session bus with gnome-keyring's Secret Service, unlocked."""

    address: str
    home: Path
    runtime: Path
    dbus_pid: int | None
    daemon: subprocess.Popen[bytes] | None
    password: str

    def environ(self) -> dict[str, str]:
        return {"DBUS_SESSION_BUS_ADDRESS": self.address, "XDG_RUNTIME_DIR": str(self.runtime)}

    def secret_tool(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**clean_environ(), **self.environ(), "HOME": str(self.home)}
        return subprocess.run(
            ["secret-tool", *args], input=input, capture_output=True, text=True, env=env, timeout=10
        )

    def lookup(self, service: str, name: str) -> str | None:
        proc = self.secret_tool("lookup", "service", service, "username", name)
        return proc.stdout if proc.returncode == 0 else None


def start_keyring_session(folder: Path, password: str = "login-keyring-pw") -> KeyringSession:
    home = folder / "home"
    runtime = folder / "run"
    home.mkdir(parents=True)
    runtime.mkdir(mode=0o700)
    env = {**clean_environ(), "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    out = subprocess.run(
        ["dbus-daemon", "--session", "--print-address=1", "--print-pid=1", "--fork"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=20,
    ).stdout.split()
    address, dbus_pid = out[0], int(out[1])
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    daemon = subprocess.Popen(
        ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert daemon.stdin is not None
    daemon.stdin.write(password.encode())
    daemon.stdin.close()
    session = KeyringSession(address, home, runtime, dbus_pid, daemon, password)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait until the Secret Service answers
        probe = session.secret_tool("lookup", "service", "pgconnect-probe", "username", "x")
        if probe.returncode in (0, 1) and "not provided" not in probe.stderr:
            break
        time.sleep(0.1)
    # ... and until --unlock has made the login keyring the default collection: a first store
    # before that makes the keyring library create a collection, which needs a prompt (and on a
    # busy machine fails as "Prompt dismissed").
    alias = ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.secrets",
             "/org/freedesktop/secrets", "org.freedesktop.Secret.Service.ReadAlias",
             "string:default"]  # fmt: skip
    while time.monotonic() < deadline:
        reply = subprocess.run(alias, capture_output=True, text=True, env=env, timeout=10)
        if "/collection/" in reply.stdout:
            break
        time.sleep(0.05)
    # ... and until a store really works (on a loaded machine the first one can still fail).
    while time.monotonic() < deadline:
        probe = session.secret_tool(
            "store", "--label", "probe", "service", "pgconnect-probe", "username", "x", input="x"
        )
        if probe.returncode == 0:
            session.secret_tool("clear", "service", "pgconnect-probe", "username", "x")
            break
        time.sleep(0.1)
    return session


def stop_keyring_session(session: KeyringSession) -> None:
    if session.daemon is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(session.daemon.pid, signal.SIGCONT)
        session.daemon.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            session.daemon.wait(5)
    if session.dbus_pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(session.dbus_pid, signal.SIGTERM)


# The test command (scripts/test) runs pytest inside `dbus-run-session` with an unlocked
# gnome-keyring and says so with PGCONNECT_TEST_DBUS=1; only then is the ambient session used, so
# a developer's desktop login keyring is never touched. Otherwise the session starts its own.
_AMBIENT = (
    os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if os.environ.get("PGCONNECT_TEST_DBUS") == "1"
    else None
)
_AMBIENT_RUNTIME = os.environ.get("XDG_RUNTIME_DIR", "")
_AMBIENT_HOME = os.environ.get("HOME", "")  # secret-tool talks D-Bus only; any HOME will do


@pytest.fixture(scope="session")
def keyring_session() -> Iterator[KeyringSession]:
    """The real Secret Service every keyring test talks to (shared; use unique project names)."""
    if _AMBIENT:
        yield KeyringSession(
            _AMBIENT, Path(_AMBIENT_HOME), Path(_AMBIENT_RUNTIME), None, None, "ambient"
        )
        return
    folder = Path(tempfile.mkdtemp(prefix="pgconnect-keyring-"))
    session = start_keyring_session(folder)
    yield session
    stop_keyring_session(session)
    shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- isolation & CLI


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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The reliability suites' case counts (tests/faultkit.py), cited by the README."""
    module = sys.modules.get("tests.faultkit")
    lines = module.tally_report() if module is not None else []
    if lines:
        terminalreporter.write_sep("-", "reliability: cases tried per class")
        for line in lines:
            terminalreporter.write_line(line)
