"""A throwaway local PostgreSQL with TLS on, to try everything against (docs/sandbox.md).

``start`` builds a fresh cluster from the machine's server binaries: a new CA and a server certificate
for localhost/127.0.0.1/::1, SCRAM passwords, ``hostssl`` and ``host`` rules for loopback only, a role
``app`` with a random password and a database named after the project. It writes the environment's
variables into the project file, stores the password as that environment's ``DB_PASSWORD`` secret, and
records where the cluster lives in ``.pgconnect/<env>.json`` beside the project file. ``stop`` shuts the
server down (``pg_ctl -m fast``), makes sure no process is left, and removes the data: the sandbox is
throwaway, and the next ``start`` makes a new one (new CA, new password).

Nothing here prints: progress goes through a callback, results come back as values.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pgconnect import atomic
from pgconnect import project as projectfile
from pgconnect.cluster import (
    HAVE_PROC,
    Cluster,
    can_reach,
    chown_to,
    find_bindir,
    free_port,
    is_postmaster_of,
    read_pid,
    server_user,
)
from pgconnect.connstr import redact
from pgconnect.errors import CommandError
from pgconnect.project import Project
from pgconnect.secret import Secret, service_name
from pgconnect.store import SecretStore

DEFAULT_ENV = "sandbox"
STATE_DIR = ".pgconnect"
ROLE = "app"
HOST = "localhost"
SANS = ["localhost", "127.0.0.1", "::1"]
PASSWORD_NAME = "DB_PASSWORD"
# Loopback only: both rules so that every sslmode connects (``disable`` included); the effective
# mode written to the project file is verify-full.
HBA = [
    "hostssl all all 127.0.0.1/32 scram-sha-256",
    "hostssl all all ::1/128 scram-sha-256",
    "host all all 127.0.0.1/32 scram-sha-256",
    "host all all ::1/128 scram-sha-256",
]

# ``start --client-cert``: TLS only, and every login needs a client certificate whose CN is the
# role (clientcert=verify-full) on top of the password. The sandbox's own superuser session (to
# create the role) keeps a password-only rule: it never leaves loopback and its password lives only
# in the sandbox's own folder.
HBA_CLIENT_CERT = [
    "hostssl all postgres 127.0.0.1/32 scram-sha-256",
    "hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-full",
    "hostssl all all ::1/128 scram-sha-256 clientcert=verify-full",
]

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


@dataclass(frozen=True)
class State:
    """Where one environment's sandbox runs; saved as ``.pgconnect/<env>.json``."""

    env: str
    project: str
    host: str
    port: int
    root: str  # the cluster's folder (owned by the server user); the data is in root/data
    data_dir: str
    pid: int | None  # shown by status only: the pid acted on is read from postmaster.pid
    server_user: str | None
    bindir: str  # where start found the binaries; never used to run anything (see _cluster)
    ca_file: str
    in_project: bool  # False when the cluster lives under the system temp folder
    database: str
    user: str
    started_at: str

    def cluster(self) -> Cluster:
        """The cluster, driven with the machine's own server binaries: never a folder the state
        file names (a cloned repository could name any program there)."""
        return Cluster(
            root=Path(self.root), port=self.port, bindir=find_bindir(), user=self.server_user
        )

    @property
    def datadir(self) -> Path:
        return Path(self.data_dir)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Status:
    env: str
    state: State | None
    running: bool

    @property
    def stale(self) -> bool:
        """A state file whose server is gone (crashed, killed, machine rebooted)."""
        return self.state is not None and not self.running


@dataclass(frozen=True)
class Started:
    state: State
    already_running: bool
    server_version: str | None
    service: str
    vars: dict[str, str]
    ignored_by_git: bool | None  # None when the folder has no .gitignore
    password_in_environment: bool
    #: A running sandbox whose password had to be set anew: why ("missing" from the store, or
    #: "wrong": the stored one does not log in). None when nothing was recovered.
    recovered: str | None = None


@dataclass(frozen=True)
class Stopped:
    state: State | None
    was_running: bool
    removed: list[str]


# --------------------------------------------------------------------------- where things live


def state_dir(project: Project) -> Path:
    return project.folder / STATE_DIR


def state_path(project: Project, env: str) -> Path:
    return state_dir(project) / f"{env}.json"


def ca_path(project: Project, env: str) -> Path:
    return state_dir(project) / f"{env}-ca.crt"


def client_cert_paths(ca_file: Path, env: str) -> tuple[Path, Path]:
    """The client certificate and key ``start --client-cert`` issues, beside the CA."""
    return ca_file.with_name(f"{env}-client.crt"), ca_file.with_name(f"{env}-client.key")


def load_state(project: Project, env: str) -> State | None:
    """The environment's sandbox state, validated (see ``pgconnect.sandbox_state``): a file that
    does not hold is refused with exit 3 and never acted on."""
    from pgconnect import sandbox_state

    if not sandbox_state.check_state_dir(state_dir(project)):
        return None
    path = state_path(project, env)
    data = sandbox_state.read_state_file(path)
    if data is None:
        return None
    sandbox_state.validate(
        data,
        path=path,
        env=env,
        cluster_roots=_own_paths(project, env),
        ca_files=_own_paths(project, f"{env}-ca.crt"),
        temp_dirs=_temp_candidates(),
        fields=list(State.__dataclass_fields__),
        server_user=server_user(),
        host=HOST,
        role=ROLE,
    )
    return State(**data)


def _own_paths(project: Project, name: str) -> list[Path]:
    """.pgconnect/NAME beside the project file: as written by start (the folder as found), and
    through the project folder's real path (the same project reached another way)."""
    found = [state_dir(project) / name]
    real = Path(os.path.realpath(project.folder)) / STATE_DIR / name
    if real not in found:
        found.append(real)
    return found


def _save_state(project: Project, state: State) -> None:
    data = (json.dumps(state.to_json(), indent=2) + "\n").encode()
    atomic.write(state_path(project, state.env), data, mode=0o644)


def _server_uid(state: State) -> int:
    return pwd.getpwnam(state.server_user).pw_uid if state.server_user else os.geteuid()


def _is_postmaster(state: State, pid: int | None) -> bool:
    try:
        uid = _server_uid(state)
    except KeyError:
        return False
    return is_postmaster_of(pid, state.datadir, uid)


def _postmaster(state: State) -> int | None:
    """The pid of the state's postmaster when it runs, proven through /proc, else None."""
    pid = read_pid(state.datadir)
    return pid if _is_postmaster(state, pid) else None


def _running(state: State) -> bool:
    return _postmaster(state) is not None


def status(project: Project, env: str) -> Status:
    state = load_state(project, env)
    return Status(env=env, state=state, running=state is not None and _running(state))


# --------------------------------------------------------------------------- start


def port_is_free(port: int) -> bool:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.bind((host, port))
        except OSError as exc:
            if family == socket.AF_INET6 and exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                continue  # no IPv6 on this machine
            return False
    return True


def _temp_candidates() -> list[str]:
    """Where a cluster the server user cannot keep in the project goes (first reachable)."""
    return [tempfile.gettempdir(), "/var/tmp", "/tmp"]


def _shared_tmp(user: str | None) -> str:
    """A temp folder USER can reach: $TMPDIR may be private to us (libpam-tmpdir makes it
    /tmp/user/0, mode 0700), and the server user must traverse to its cluster."""
    candidates = _temp_candidates()
    if user is None:
        return candidates[0]
    for candidate in candidates:
        if os.path.isdir(candidate) and can_reach(user, Path(candidate)):
            return candidate
    raise CommandError(
        f"the server user {user!r} can reach neither the project folder nor a temp folder "
        f"({', '.join(candidates)})",
        hint="put the project in a folder that user can traverse",
    )


def start(
    project: Project,
    env: str,
    store: SecretStore,
    *,
    port: int | None = None,
    progress: Progress = _quiet,
    environ: dict[str, str] | None = None,
    client_cert: bool = False,
) -> Started:
    """Start the environment's sandbox (or report the one already running).

    CLIENT_CERT: the server also demands a client certificate (hostssl … clientcert=verify-full,
    the sandbox CA in ssl_ca_file); one is issued for the role and DB_SSLCERT/DB_SSLKEY point at it.
    """
    environ = dict(os.environ) if environ is None else environ
    service = service_name(project.name, env)
    current = status(project, env)
    if current.state is not None and current.running:
        progress("checking the sandbox's password")
        recovered = recover_password(project, current.state, store, service)
        return Started(
            state=current.state,
            already_running=True,
            server_version=None,
            service=service,
            vars=_vars_for(current.state),
            ignored_by_git=_ignored_by_git(project),
            password_in_environment=PASSWORD_NAME in environ,
            recovered=recovered,
        )
    if current.state is not None:
        _remove(current.state, project)  # stale: the server is gone; clear what it left

    if port is not None and not port_is_free(port):
        raise CommandError(
            f"port {port} is already in use on this machine",
            hint="pick another with --port, or leave --port out to use a free one",
        )
    # Fail before building anything if the secret store cannot be used (no keyring, locked…).
    progress("checking the secret store")
    store.get(service, PASSWORD_NAME)

    bindir = find_bindir()
    user = server_user()
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise CommandError(
                f"PostgreSQL does not run as root, and the server user {user!r} does not exist",
                hint="create it (useradd --system postgres), or name another user with "
                "PGCONNECT_SERVER_USER",
            ) from None
    folder = state_dir(project)
    from pgconnect import sandbox_state

    if not sandbox_state.check_state_dir(folder):  # a symlinked .pgconnect is refused here
        try:
            folder.mkdir(mode=0o755)
        except OSError as exc:
            raise CommandError(f"cannot create {folder}: {exc.strerror}") from None
    in_project = user is None or can_reach(user, folder)
    if in_project:
        root = folder / env
        _clear_leftover(root)
        root.mkdir()
    else:
        # The server user cannot traverse to the project (e.g. under a 0700 home): keep the
        # cluster in a private folder of the system temp directory that it owns.
        root = Path(
            tempfile.mkdtemp(prefix=f"pgconnect-{project.name}-{env}-", dir=_shared_tmp(user))
        )
    chown_to(user, root)
    os.chmod(root, 0o700)
    chosen_port = port or free_port()
    cluster = Cluster(root=root, port=chosen_port, bindir=bindir, user=user)
    ca_file = ca_path(project, env)
    sandbox_state.unlink_entry(ca_file)  # whatever a repository put there (a symlink…) goes
    state = State(
        env=env,
        project=project.name,
        host=HOST,
        port=chosen_port,
        root=str(root),
        data_dir=str(cluster.datadir),
        pid=None,
        server_user=user,
        bindir=str(bindir),
        ca_file=str(ca_file),
        in_project=in_project,
        database=project.name,
        user=ROLE,
        started_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    )
    password = secrets.token_urlsafe(24)
    try:
        _save_state(project, state)  # first, so that `stop` can clean up whatever happens next
        superuser_pw = secrets.token_urlsafe(24)
        progress("creating the cluster (initdb)")
        _initdb(cluster, superuser_pw)
        progress("issuing a CA and a server certificate")
        from pgconnect import pki

        ca = pki.CA(f"pgconnect sandbox CA ({project.name}:{env})")
        issued = ca.issue_server(HOST, SANS)
        sandbox_state.create_file(ca_file, ca.cert_pem, 0o644)
        cert_file, key_file = client_cert_paths(ca_file, env)
        for stale in (cert_file, key_file):
            sandbox_state.unlink_entry(stale)  # a symlink planted there goes, not its target
        if client_cert:
            progress(f"issuing a client certificate for {ROLE}")
            client = ca.issue_client(ROLE)
            sandbox_state.create_file(cert_file, client.cert_pem, 0o644)
            sandbox_state.create_file(key_file, client.key_pem, 0o600)
        cluster.configure(
            ssl=True,
            cert=issued.cert_pem,
            key=issued.key_pem,
            ca=ca.cert_pem if client_cert else None,
            hba=HBA_CLIENT_CERT if client_cert else HBA,
            # TCP only: a Unix socket path under a deep project folder can exceed the 107-byte
            # limit, and the sandbox is about TCP + TLS anyway.
            extra=[
                "unix_socket_directories = ''",
                "log_connections = off",
                *(["ssl_ca_file = 'root.crt'"] if client_cert else []),
            ],
        )
        progress(f"starting PostgreSQL on port {chosen_port}")
        _start(cluster)
        state = State(**{**state.to_json(), "pid": read_pid(cluster.datadir)})
        _save_state(project, state)
        progress(f"creating role {ROLE} and database {project.name}")
        version = _create_role_and_db(state, superuser_pw, password)
        progress(f"writing [env.{env}.vars] and the {PASSWORD_NAME} secret")
        store.set(service, PASSWORD_NAME, Secret(password))
        variables = _vars_for(state)
        with projectfile.edit(project.path) as editor:
            editor.ensure_env(env)
            for name, value in variables.items():
                editor.set_var(name, value, env)
            if not client_cert:
                _forget_client_cert(project, env, editor)
            editor.declare_secret(PASSWORD_NAME, env)
    except BaseException:
        with contextlib.suppress(CommandError, OSError):
            _remove(state, project)
        raise
    return Started(
        state=state,
        already_running=False,
        server_version=version,
        service=service,
        vars=variables,
        ignored_by_git=_ignored_by_git(project),
        password_in_environment=PASSWORD_NAME in environ,
    )


def _vars_for(state: State) -> dict[str, str]:
    out = {
        "DB_HOST": state.host,
        "DB_PORT": str(state.port),
        "DB_USERNAME": state.user,
        "DB_NAME": state.database,
        "DB_SSLMODE": "verify-full",
        # Relative to the project file's folder (as every relative path in it is), so the project can move.
        "DB_SSLROOTCERT": f"{STATE_DIR}/{Path(state.ca_file).name}",
    }
    cert_file, key_file = client_cert_paths(Path(state.ca_file), state.env)
    # Only a regular file the sandbox wrote: .pgconnect/ is untrusted input, never followed.
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.lstat(cert_file).st_mode):
            out["DB_SSLCERT"] = f"{STATE_DIR}/{cert_file.name}"
            out["DB_SSLKEY"] = f"{STATE_DIR}/{key_file.name}"
    return out


def _forget_client_cert(project: Project, env: str, editor: Any) -> None:
    """A start without --client-cert after one with it: drop the variables that pointed at the
    old client certificate (only those the sandbox wrote; a user's own stay)."""
    import tomllib

    try:
        data = tomllib.loads(project.path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return
    current = data.get("env", {}).get(env, {}).get("vars", {})
    for name, suffix in (("DB_SSLCERT", "client.crt"), ("DB_SSLKEY", "client.key")):
        if current.get(name) == f"{STATE_DIR}/{env}-{suffix}":
            editor.unset_var(name, env)


def _clear_leftover(root: Path) -> None:
    """Remove a cluster folder left without a state file, unless a server still runs in it."""
    from pgconnect import sandbox_state

    if not sandbox_state.check_leftover(root):
        return
    datadir = root / "data"
    pid = read_pid(datadir)
    if is_postmaster_of(pid, datadir, None):
        raise CommandError(
            f"a PostgreSQL server (pid {pid}) runs in {root} but pgconnect has no record of it",
            hint=f"stop it first: pg_ctl -D {datadir} stop",
        )
    shutil.rmtree(root)


def _initdb(cluster: Cluster, superuser_pw: str) -> None:
    pwfile = superuser_password_file(cluster.root)
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(superuser_pw + "\n")
    chown_to(cluster.user, pwfile)
    try:
        cluster.initdb(pwfile)
    except BaseException:
        pwfile.unlink(missing_ok=True)
        raise
    # Kept (0600, in the cluster's own 0700 folder, owned by the server user): the sandbox's way
    # back in as superuser when its app password is lost (recover_password).


def _start(cluster: Cluster) -> None:
    try:
        cluster.start(timeout=60)
    except CommandError as exc:
        # The cluster (and its log) is removed on failure: carry the log's reasons in the message.
        reasons = _log_reasons(cluster.logfile)
        raise CommandError(
            f"PostgreSQL did not start: {'; '.join(reasons) or exc.message}",
            hint="nothing was kept; with --port, try another port (or leave --port out)",
        ) from None


_LOG_PREFIX = re.compile(r"^\S+ \S+ \S+ \[\d+\] ")  # "2026-01-01 10:00:00.000 UTC [123] "


def _log_reasons(path: Path) -> list[str]:
    """The server log's error lines, without timestamps, first the most specific, at most three."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    picked: list[str] = []
    for raw in lines:
        line = _LOG_PREFIX.sub("", raw).strip()
        if line.startswith(("FATAL:", "PANIC:", "ERROR:")) or (
            line.startswith("LOG:") and "could not" in line
        ):
            text = re.sub(r"^LOG:\s+", "", line)
            if text not in picked:
                picked.append(text)
    return picked[:3]


def _create_role_and_db(state: State, superuser_pw: str, password: str) -> str:
    """Create the app's role (SCRAM verifier computed here) and its database; return the version."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=state.port,
            user="postgres",
            password=superuser_pw,
            dbname="postgres",
            sslmode="verify-full",
            sslrootcert=state.ca_file,
            gssencmode="disable",
            connect_timeout=10,
            autocommit=True,
        ) as conn:
            # Send a SCRAM verifier, never the password itself: nothing the server could log
            # (statement logging, errors) ever holds it.
            verifier = conn.pgconn.encrypt_password(
                password.encode(), state.user.encode(), b"scram-sha-256"
            ).decode()
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(state.user), sql.Literal(verifier)
                )
            )
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (state.database,)
            ).fetchone()
            if exists:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        sql.Identifier(state.database), sql.Identifier(state.user)
                    )
                )
            else:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(state.database), sql.Identifier(state.user)
                    )
                )
            version = conn.info.parameter_status("server_version") or ""
            return version.split()[0] if version else ""
    except psycopg.Error as exc:
        message = redact(str(exc), superuser_pw, password).strip().splitlines()
        raise CommandError(
            f"setting up the sandbox database failed: {message[0] if message else exc}"
        ) from None


def _ignored_by_git(project: Project) -> bool | None:
    gitignore = project.folder / ".gitignore"
    try:
        # A repository's file: O_NONBLOCK and a regular-file check, so a FIFO cannot hang start.
        fd = os.open(gitignore, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        lines = os.read(fd, 1 << 20).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    finally:
        os.close(fd)
    patterns = {ln.strip() for ln in lines}
    return bool(patterns & {".pgconnect", ".pgconnect/", "/.pgconnect", "/.pgconnect/"})


# --------------------------------------------------------------------------- recovery
#
# The sandbox owns its cluster, so a lost or overwritten app password is never a dead end: the
# superuser's password lives in the cluster's folder (mode 0600 inside a 0700 folder owned by the
# server user: only that user, and root, can read it), and `sandbox start` on a running sandbox
# uses it to give the app role a new password, then stores that one.

SUPERUSER = "postgres"
SUPERUSER_FILE = "superuser.pw"


def superuser_password_file(root: Path) -> Path:
    return root / SUPERUSER_FILE


def password_works(state: State, password: Secret) -> bool:
    """Does PASSWORD log the app role in? False only for a login the server rejected; a server
    that cannot be reached is an error (nothing to recover then)."""
    import psycopg

    conninfo = _sandbox_conninfo(state, state.user, password.reveal())
    # A sandbox started with --client-cert demands the app role's certificate too.
    cert, key = client_cert_paths(Path(state.ca_file), state.env)
    if cert.is_file() and key.is_file():
        conninfo.update(sslcert=str(cert), sslkey=str(key))
    try:
        with psycopg.connect(**conninfo):
            return True
    except psycopg.OperationalError as exc:
        text = redact(str(exc), password.reveal())
        if exc.sqlstate == "28P01" or "password authentication failed" in text:
            return False
        first = text.strip().splitlines()
        raise CommandError(
            f"the sandbox on port {state.port} runs but does not accept a login: "
            f"{first[0] if first else type(exc).__name__}",
            hint="restart it: pgconnect sandbox stop"
            + ("" if state.env == DEFAULT_ENV else f" -e {state.env}")
            + " && pgconnect sandbox start"
            + ("" if state.env == DEFAULT_ENV else f" -e {state.env}"),
        ) from None


def recover_password(
    project: Project, state: State, store: SecretStore, service: str
) -> str | None:
    """Give a running sandbox's app role a new password when the stored one is missing or
    wrong; return why ("missing", "wrong"), or None when the stored one works."""
    stored = store.get(service, PASSWORD_NAME)
    if stored is not None and password_works(state, stored):
        _declare_password(project, state.env)
        return None
    reason = "missing" if stored is None else "wrong"
    superuser_pw = _read_superuser_password(state)
    password = secrets.token_urlsafe(24)
    _set_role_password(state, superuser_pw, password)
    store.set(service, PASSWORD_NAME, Secret(password))
    _declare_password(project, state.env)
    return reason


def _read_superuser_password(state: State) -> str:
    path = superuser_password_file(Path(state.root))
    flag = "" if state.env == DEFAULT_ENV else f" -e {state.env}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise CommandError(
            f"the sandbox's password is not in the secret store, and its superuser password "
            f"file {path} cannot be read ({exc.strerror}): the sandbox was started by an older "
            "pgconnect, or that file was removed",
            hint=f"start it afresh (its data is throwaway): pgconnect sandbox stop{flag} && "
            f"pgconnect sandbox start{flag}",
        ) from None
    with os.fdopen(fd, encoding="utf-8") as fh:
        st = os.fstat(fh.fileno())
        # Like libpq's passfile rule: a file others could read, or that another user put
        # there, is no secret of the sandbox's; refuse it.
        try:
            owner_ok = st.st_uid == _server_uid(state)
        except KeyError:
            owner_ok = False
        if st.st_mode & 0o077 or not owner_ok:
            raise CommandError(
                f"{path} is not the sandbox's own (mode {st.st_mode & 0o777:04o}, uid "
                f"{st.st_uid}); not used",
                hint=f"pgconnect sandbox stop{flag} && pgconnect sandbox start{flag}",
            )
        value = fh.read().strip()
    Secret(value)  # held: masked in any message
    return value


def _sandbox_conninfo(state: State, user: str, password: str) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": state.port,
        "user": user,
        "password": password,
        "dbname": "postgres",
        "sslmode": "verify-full",
        "sslrootcert": state.ca_file,
        "gssencmode": "disable",
        "connect_timeout": 10,
        "autocommit": True,
    }


def _set_role_password(state: State, superuser_pw: str, password: str) -> None:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(**_sandbox_conninfo(state, SUPERUSER, superuser_pw)) as conn:
            # A SCRAM verifier, never the password itself (as when the role was created).
            verifier = conn.pgconn.encrypt_password(
                password.encode(), state.user.encode(), b"scram-sha-256"
            ).decode()
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(state.user), sql.Literal(verifier)
                )
            )
    except psycopg.Error as exc:
        message = redact(str(exc), superuser_pw, password).strip().splitlines()
        raise CommandError(
            "setting a new password for the sandbox's role failed: "
            f"{message[0] if message else type(exc).__name__}"
        ) from None


def _declare_password(project: Project, env: str) -> None:
    """A `secret delete` may have removed the declaration too: put it back."""
    current = projectfile.load(project.path)
    if env in current.envs and PASSWORD_NAME in current.envs[env].secrets:
        return
    with projectfile.edit(project.path) as editor:
        editor.ensure_env(env)
        editor.declare_secret(PASSWORD_NAME, env)


def password_hint(project: Project, env: str | None) -> str | None:
    """For a login the sandbox of ENV rejected: the command that sets its password anew."""
    if env is None or not state_path(project, env).exists():
        return None
    flag = "" if env == DEFAULT_ENV else f" -e {env}"
    return (
        "this is the sandbox's own role: pgconnect sandbox start"
        f"{flag} gives it a new password and stores it (no need to know the old one)"
    )


# --------------------------------------------------------------------------- stop


def stop(project: Project, env: str) -> Stopped:
    """Stop the environment's sandbox, wait until no server process is left, remove its data."""
    state = load_state(project, env)
    if state is None:
        return Stopped(state=None, was_running=False, removed=[])
    was_running = _running(state)
    removed = _remove(state, project)
    return Stopped(state=state, was_running=was_running, removed=removed)


def _remove(state: State, project: Project) -> list[str]:
    """Stop the server (fast, then immediate, then SIGKILL) and delete the cluster and its CA.

    STATE has been validated (load_state): its paths are the project's own .pgconnect/ or the
    private temp folder start made, and a pid is signalled only once /proc shows it is this
    cluster's postmaster.
    """
    pid = _postmaster(state)
    if pid is not None:
        cluster = state.cluster()
        try:
            cluster.stop(mode="fast")
        except CommandError:
            with contextlib.suppress(CommandError):
                cluster.stop(mode="immediate")
        _wait_gone(state, pid, 20)
        if HAVE_PROC and _is_postmaster(state, pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            _wait_gone(state, pid, 5)
        if _is_postmaster(state, pid):
            raise CommandError(
                f"the sandbox server (pid {pid}) did not stop",
                hint=f"stop it by hand: pg_ctl -D {cluster.datadir} -m immediate stop",
            )
    removed: list[str] = []
    root = Path(state.root)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.lstat(root).st_mode):  # validated: a folder, never a symlink
            shutil.rmtree(root)
            removed.append(str(root))
    for path in (
        Path(state.ca_file),
        *client_cert_paths(Path(state.ca_file), state.env),
        state_path(project, state.env),
    ):
        # lexists/unlink: a symlink is removed itself, never what it points at.
        if os.path.lexists(path):
            path.unlink()
            removed.append(str(path))
    with contextlib.suppress(OSError):
        state_dir(project).rmdir()  # only when empty
    return removed


def _wait_gone(state: State, pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while _is_postmaster(state, pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def check_env(project: Project, env: str, *, explicit: bool) -> None:
    """status/stop: an environment named with --env must be in the file or have a sandbox
    (naming an unknown environment is exit 3); the default ``sandbox`` may simply not exist yet."""
    projectfile.check_env_name(env)
    if explicit and env not in project.envs and not state_path(project, env).exists():
        project.check_env(env)
