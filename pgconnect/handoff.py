"""Handing the connection to another program: ``pgconnect exec`` and ``pgconnect psql`` (docs/connection-strings.md).

The child gets libpq's ``PG*`` variables and the project's plain variables in its environment, and
the password in a temporary 0600 passfile named by ``PGPASSFILE`` — never in ``PGPASSWORD`` (any
process of the same user can read ``/proc/<pid>/environ``, and tools log environments) and never in
argv (``/proc/<pid>/cmdline`` is world-readable).

The passfile is removed when the child ends, however it ends: pgconnect waits for the child with
every forwarded signal blocked (``sigwaitinfo``), so SIGINT/SIGTERM/SIGHUP to pgconnect are passed
on and pgconnect still outlives the child to clean up; if pgconnect itself is killed (SIGKILL, the
OOM killer), a tiny watchdog shell in its own session notices the closed pipe and removes the file.
The watchdog is started first, for a name chosen in advance, and only then is the file created
under that name: there is no moment at which the file exists and nothing would remove it.

Nothing here prints; the CLI reports.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pgconnect import keywords, libpqfiles, params
from pgconnect.connstr import ENV_VARS, env_vars
from pgconnect.errors import CommandError, UsageError

#: Signals pgconnect passes on to the child (when another process sent them to pgconnect).
FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
#: Linux si_code of a signal the kernel generated, e.g. the terminal's Ctrl-C to the foreground
#: process group: the child, in that group too, has already received it.
SI_KERNEL = 0x80

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NODE_EXTRA_CA_CERTS = "NODE_EXTRA_CA_CERTS"


@dataclass
class Handoff:
    """What the child gets: its environment and the passfile (None when there is no password)."""

    environ: dict[str, str]
    passfile: Path | None = None
    #: keywords libpq reads from no environment variable: the child cannot see them.
    dropped: list[str] = field(default_factory=list)
    #: the passfile's content (``passfile_text``); None: one line for any connection.
    passfile_text: str | None = None
    #: a connection service the child is to use from a temporary service file: its name, the
    #: values of its section, and the user's own service file to follow it.
    service: str | None = None
    service_values: dict[str, str] = field(default_factory=dict)
    service_tail: str = ""
    servicefile: Path | None = None
    #: NODE_EXTRA_CA_CERTS the user had set and pgconnect kept instead of the connection's CA.
    kept_node_ca: str | None = None


def passfile_line(password: str) -> str:
    """A .pgpass line matching any host, port, database and user (``*``), the password with ``\\``
    and ``:`` backslash-escaped (libpq passwordFromFile's de-escaping)."""
    # libpq reads the file line by line and strips trailing CR/LF (pg_strip_crlf): such passwords
    # cannot be written there.
    if "\n" in password or password.endswith("\r"):
        raise CommandError(
            "the password contains a line break, which a passfile cannot hold; "
            "pgconnect exec cannot hand it over",
            hint="use --url-var DATABASE_URL (it puts the password in the child's environment), "
            "or change the password",
        )
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:*:*:{escaped}\n"


def passfile_text(
    password: str, targets: Sequence[libpqfiles.Target], user_passfile: Path | None
) -> str:
    """The child's passfile: lines that offer PASSWORD only for the connection it belongs to
    (its host(s), port(s), database and user), then the user's own passfile when libpq would
    read it, so a child that connects elsewhere gets what it would have got without pgconnect
    (libpq takes the first matching line)."""
    text = libpqfiles.passfile_entries(targets, password)
    if user_passfile is not None and libpqfiles.passfile_usable(user_passfile):
        with contextlib.suppress(OSError):
            theirs = user_passfile.read_bytes().decode("utf-8", "surrogateescape")
            text += theirs if theirs.endswith("\n") or not theirs else theirs + "\n"
    return text


def user_service_file_text(environ: Mapping[str, str]) -> str:
    """The user's own service file (to follow pgconnect's section), or ""."""
    path = libpqfiles.user_service_file(environ)
    if path is None:
        return ""
    try:
        return "\n" + path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return ""


def _private_dir() -> str | None:
    """$XDG_RUNTIME_DIR when it is ours and private (a tmpfs on systemd machines), else the temp
    folder."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        with contextlib.suppress(OSError):
            st = os.stat(runtime)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
                return runtime
    return None


def passfile_name(directory: str | None = None, suffix: str = ".pgpass") -> Path:
    """A name for the temporary passfile (or service file: SUFFIX) that nobody can guess (128
    random bits)."""
    import secrets

    folder = directory or _private_dir() or tempfile.gettempdir()
    return Path(folder) / f"pgconnect-{secrets.token_hex(16)}{suffix}"


def write_passfile(path: Path, password: str, *, text: str | None = None) -> None:
    """Create the passfile at PATH (holding TEXT when given, else one line for PASSWORD):
    O_EXCL | O_NOFOLLOW (nothing anyone prepared there is written through), mode 0600, written
    in full before anyone is told its name."""
    data = (passfile_line(password) if text is None else text).encode("utf-8", "surrogateescape")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


def child_environ(
    base: Mapping[str, str],
    connect_params: Mapping[str, str],
    plain_vars: Mapping[str, str],
    *,
    url_var: tuple[str, str] | None = None,
) -> Handoff:
    """The child's environment: BASE without any password variable, the project's plain
    variables, libpq's PG* variables for CONNECT_PARAMS (the password excluded), and URL_VAR."""
    env = dict(base)
    # Never pass a password on by environment: an inherited PGPASSWORD, or the DB_PASSWORD /
    # DB_URL pgconnect itself may have been given (CI injects secrets that way).
    env.pop("PGPASSWORD", None)
    for name in list(env):
        if name == params.URL_NAME or (
            params.is_connection_name(name) and params.keyword_for(name) in params.SECRET_KEYWORDS
        ):
            del env[name]
    env.update(plain_vars)
    variables, dropped = env_vars(
        {k: v for k, v in connect_params.items() if k not in params.SECRET_KEYWORDS}
    )
    env.update(variables)
    dropped += [k for k in connect_params if k in params.SECRET_KEYWORDS and k != "password"]
    if url_var is not None:
        name, url = url_var
        if not ENV_NAME.fullmatch(name):
            raise UsageError(f"--url-var {name!r} is not an environment variable name")
        env[name] = url
    kept = _node_extra_ca(env, connect_params.get("sslrootcert"))
    return Handoff(environ=env, dropped=sorted(set(dropped) - {"password"}), kept_node_ca=kept)


def _node_extra_ca(env: dict[str, str], sslrootcert: str | None) -> str | None:
    """Make node tools (node-postgres, ``wrangler dev``'s workerd) trust the connection's root CA
    as libpq does, through NODE_EXTRA_CA_CERTS.

    Node reads one file. When the user already names another one (many images set it to the
    system bundle), the child gets a bundle of both — their trust is kept, never replaced. The
    bundle holds only public certificates; it lives in the user's cache folder, named by its
    content, so there is nothing to clean up. Returns the user's file when it could not be read
    (then it is left as it was).
    """
    if not sslrootcert or sslrootcert == "system":
        return None  # "system" is libpq's word for the OS's CAs, which node trusts already
    ca = os.path.abspath(sslrootcert)
    current = env.get(NODE_EXTRA_CA_CERTS)
    if not current or os.path.abspath(current) == ca:
        env[NODE_EXTRA_CA_CERTS] = ca
        return None
    try:
        bundle = _ca_bundle(Path(current).read_bytes(), Path(ca).read_bytes())
    except OSError:
        return current
    env[NODE_EXTRA_CA_CERTS] = str(bundle)
    return None


def _ca_bundle(*parts: bytes) -> Path:
    import hashlib

    data = b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pgconnect"
    path = cache / f"node-ca-{hashlib.sha256(data).hexdigest()[:32]}.pem"
    if not path.is_file() or path.read_bytes() != data:
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=".node-ca-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return path


def use_service_file(
    handoff: Handoff,
    connect_params: Mapping[str, str],
    user_service: libpqfiles.Service | None,
    base: Mapping[str, str],
) -> None:
    """Hand the connection over through a temporary connection service file as well, when the
    environment cannot carry it all: keywords libpq reads from no variable (``sslpassword`` and
    the other secrets but the password, keepalives, …), or a service of the user's (libpq puts a
    service's values above the PG* variables, so pgconnect's own values must be in the section
    to keep winning over it, as they do in pgconnect's connections)."""
    if not handoff.dropped and user_service is None:
        return
    values = {k: v for k, v in connect_params.items() if k not in ("password", "service")}
    if user_service is not None:
        for keyword, value in user_service.values.items():
            if keyword == "password" and "password" in connect_params:
                continue  # pgconnect's password (in the passfile) wins, as in its connections
            values.setdefault(keyword, value)
    handoff.service = user_service.name if user_service is not None else "pgconnect"
    handoff.service_values = values
    handoff.service_tail = user_service_file_text(base)
    libpqfiles.service_text(handoff.service, values)  # refuse an unwritable value before starting
    handoff.dropped = []


#: The oldest libpq still supported (PostgreSQL's five-year policy): ``exec`` warns about any
#: requirement an older-than-needed libpq in the child would silently ignore.
OLDEST_LIBPQ = 14


def unsupported(connect_params: Mapping[str, str], version: int) -> list[tuple[str, int]]:
    """The handed-over parameters a libpq of major VERSION does not know: (name, version needed),
    named as ``require_auth`` or ``sslrootcert=system``."""
    out: list[tuple[str, int]] = []
    for keyword, value in connect_params.items():
        needed = keywords.needs(keyword, value)
        if needed is not None and needed > version:
            out.append((keywords.described(keyword, value), needed))
    return out


def psql_version(environ: Mapping[str, str]) -> int | None:
    """psql's major version (``psql --version``, run as the child would be), or None."""
    try:
        proc = subprocess.run(
            ["psql", "--version"],
            capture_output=True,
            text=True,
            env=dict(environ),
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", proc.stdout)
    return int(found.group(1)) if found else None


#: Linux has sigwaitinfo (it tells a terminal's signal from a process's); macOS has not.
USE_SIGWAITINFO = hasattr(signal, "sigwaitinfo")


def _start_watchdog(*paths: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A shell in its own session (so the terminal's signals miss it) that removes PATHS once
    pgconnect's end of a pipe closes — however pgconnect ends. Returns it and the write end."""
    read_end, write_end = os.pipe()  # both close-on-exec (PEP 446)
    try:
        watchdog = subprocess.Popen(
            [
                "/bin/sh",
                "-c",
                'read -r _; rm -f -- "$@"',
                "pgconnect-passfile-watchdog",
                *(str(p) for p in paths),
            ],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": os.defpath},
            start_new_session=True,
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return watchdog, write_end


def _create(
    path: Path, password: str, text: str | None, watchdog: tuple[subprocess.Popen[bytes], int]
) -> None:
    try:
        write_passfile(path, password, text=text)
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            # Not ours (a 2^-128 chance, or someone prepared it): the watchdog must not remove
            # it, so it is killed rather than let go.
            watchdog[0].kill()
        raise CommandError(
            f"cannot create the temporary passfile in {path.parent}: {exc.strerror}"
        ) from None


@contextlib.contextmanager
def _passfile(handoff: Handoff, password: str | None) -> Iterator[None]:
    """The passfile and its watchdog for the duration of the block; PGPASSFILE points at it.

    The watchdog starts before the file exists (for the name chosen in advance): a SIGKILL at
    any moment after the file is created still has something to remove it.
    """
    watchdog: tuple[subprocess.Popen[bytes], int] | None = None
    paths: list[Path] = []
    created: list[Path] = []
    try:
        if password is not None:
            if handoff.passfile_text is None:
                passfile_line(password)  # refuse an impossible password before starting anything
            paths.append(passfile_name())
        if handoff.service is not None:
            paths.append(passfile_name(suffix=".pg_service.conf"))
        if not paths:
            yield
            return
        watchdog = _start_watchdog(*paths)  # before any file exists
        for path in paths:
            if path.suffix == ".pgpass":
                assert password is not None
                _create(path, password, handoff.passfile_text, watchdog)
                handoff.passfile = path
                handoff.environ[ENV_VARS["passfile"]] = str(path)
            else:
                assert handoff.service is not None
                values = dict(handoff.service_values)
                if handoff.passfile is not None:
                    # A passfile the user's service names would beat PGPASSFILE (libpq reads
                    # the service before the environment): the section names pgconnect's.
                    values["passfile"] = str(handoff.passfile)
                text = libpqfiles.service_text(handoff.service, values) + handoff.service_tail
                _create(path, "", text, watchdog)
                handoff.servicefile = path
                handoff.environ["PGSERVICEFILE"] = str(path)
                handoff.environ[ENV_VARS["service"]] = handoff.service
            created.append(path)
        yield
    finally:
        for path in created:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if watchdog is not None:
            process, write_end = watchdog
            os.close(write_end)
            process.wait()


def _spawn(argv: list[str], environ: Mapping[str, str], mask: Iterable[int]) -> int:
    return os.posix_spawnp(
        argv[0],
        argv,
        environ,
        setsigmask=mask,
        # Python ignores SIGPIPE and SIGXFSZ; the child should not inherit that.
        setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
    )


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def run(argv: list[str], handoff: Handoff, password: str | None = None) -> int:
    """Run ARGV with the handoff's environment and, when there is a PASSWORD, a passfile named by
    PGPASSFILE; forward signals; return the child's exit status (128+N when signal N ended it).

    Raises FileNotFoundError / PermissionError when ARGV[0] cannot be run.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if USE_SIGWAITINFO:
        return _run_sigwait(argv, handoff, password)
    return _run_handlers(argv, handoff, password)


def _run_sigwait(argv: list[str], handoff: Handoff, password: str | None) -> int:
    # The passfile is written after the forwarded signals are blocked and removed before they are
    # unblocked, so no signal to pgconnect can leave it behind.
    waitset = {signal.SIGCHLD, *FORWARDED}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, waitset)
    try:
        with _passfile(handoff, password):
            pid = _spawn(argv, handoff.environ, old_mask)
            status = _wait(pid, waitset)
        # Signals that came after the child ended have nobody to go to: drop them rather than let
        # them kill pgconnect once unblocked.
        while signal.sigtimedwait(set(FORWARDED), 0) is not None:
            pass
        return status
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _wait(pid: int, waitset: set[signal.Signals]) -> int:
    while True:
        # Not sigwaitinfo alone: a process-directed SIGCHLD goes to any thread that does not block
        # it, and another thread of this process (a keyring call's deadline, a library's worker)
        # would take and discard it, leaving this wait forever. So the child is also polled.
        info = signal.sigtimedwait(waitset, 0.25)
        if info is None or info.si_signo == signal.SIGCHLD:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return _exit_code(status)
            continue
        if info.si_code == SI_KERNEL:
            continue  # from the terminal: the child, in our process group, got it too
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, info.si_signo)


def _terminal_foreground() -> bool:
    """Are we in the terminal's foreground process group (so its Ctrl-C reached the child too)?"""
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            return os.tcgetpgrp(fd) == os.getpgrp()
    return False


def _run_handlers(argv: list[str], handoff: Handoff, password: str | None) -> int:
    # Without sigwaitinfo a handler cannot tell who sent a signal: SIGINT and SIGQUIT are taken to
    # be the terminal's (and not sent again) while pgconnect is in the terminal's foreground.
    child: list[int] = []
    early: list[int] = []

    def forward(signum: int, frame: object) -> None:
        if signum in (signal.SIGINT, signal.SIGQUIT) and _terminal_foreground():
            return
        if not child:
            early.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(child[0], signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        with _passfile(handoff, password):
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
            child.append(_spawn(argv, handoff.environ, mask))
            for signum in early:
                os.kill(child[0], signum)
            _, status = os.waitpid(child[0], 0)  # retried after each handler (PEP 475)
            return _exit_code(status)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
