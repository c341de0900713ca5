"""Handing the connection to another program: ``pgconnect exec`` and ``pgconnect psql`` (SPEC §4).

The child gets libpq's ``PG*`` variables and the project's plain variables in its environment, and
the password in a temporary 0600 passfile named by ``PGPASSFILE`` — never in ``PGPASSWORD`` (any
process of the same user can read ``/proc/<pid>/environ``, and tools log environments) and never in
argv (``/proc/<pid>/cmdline`` is world-readable).

The passfile is removed when the child ends, however it ends: pgconnect waits for the child with
every forwarded signal blocked (``sigwaitinfo``), so SIGINT/SIGTERM/SIGHUP to pgconnect are passed
on and pgconnect still outlives the child to clean up; if pgconnect itself is killed (SIGKILL, the
OOM killer), a tiny watchdog shell in its own session notices the closed pipe and removes the file.

Nothing here prints; the CLI reports.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pgconnect import params
from pgconnect.conninfo import ENV_VARS, env_vars
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


@dataclass
class Handoff:
    """What the child gets: its environment and the passfile (None when there is no password)."""

    environ: dict[str, str]
    passfile: Path | None = None
    #: keywords libpq reads from no environment variable: the child cannot see them.
    dropped: list[str] = field(default_factory=list)


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


def write_passfile(password: str, directory: str | None = None) -> Path:
    """Create the temporary passfile: mkstemp (O_EXCL, mode 0600), written before anyone is told
    its name."""
    line = passfile_line(password)
    fd, name = tempfile.mkstemp(
        prefix="pgconnect-", suffix=".pgpass", dir=directory or _private_dir()
    )
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, line.encode("utf-8"))
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)
    return Path(name)


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
    return Handoff(environ=env, dropped=sorted(set(dropped) - {"password"}))


def _start_watchdog(path: Path) -> tuple[int, int]:
    """A shell in its own session that removes PATH once pgconnect's end of a pipe closes —
    however pgconnect ends. Returns (its pid, the write end we keep)."""
    read_end, write_end = os.pipe()  # both close-on-exec (PEP 446)
    try:
        pid = os.posix_spawn(
            "/bin/sh",
            ["/bin/sh", "-c", 'read -r _; rm -f -- "$1"', "pgconnect-passfile-watchdog", str(path)],
            {"PATH": os.defpath},
            file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0)],
            setsid=True,
            setsigdef=(signal.SIGPIPE,),
        )
    finally:
        os.close(read_end)
    return pid, write_end


def run(argv: list[str], handoff: Handoff, password: str | None = None) -> int:
    """Run ARGV with the handoff's environment and, when there is a PASSWORD, a passfile named by
    PGPASSFILE; forward signals; return the child's exit status (128+N when signal N ended it).

    The passfile is written after the forwarded signals are blocked and removed before they are
    unblocked, so no signal to pgconnect can leave it behind. Raises FileNotFoundError /
    PermissionError when ARGV[0] cannot be run.
    """
    waitset = {signal.SIGCHLD, *FORWARDED}
    sys.stdout.flush()
    sys.stderr.flush()
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, waitset)
    watchdog: tuple[int, int] | None = None
    try:
        if password is not None:
            handoff.passfile = write_passfile(password)
            handoff.environ[ENV_VARS["passfile"]] = str(handoff.passfile)
            watchdog = _start_watchdog(handoff.passfile)
        pid = os.posix_spawnp(
            argv[0],
            argv,
            handoff.environ,
            setsigmask=old_mask,
            # Python ignores SIGPIPE and SIGXFSZ; the child should not inherit that.
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
        status = _wait(pid, waitset)
        # Signals that came after the child ended have nobody to go to: drop them rather than let
        # them kill pgconnect once unblocked.
        while signal.sigtimedwait(set(FORWARDED), 0) is not None:
            pass
        return status
    finally:
        if handoff.passfile is not None:
            with contextlib.suppress(FileNotFoundError):
                handoff.passfile.unlink()
        if watchdog is not None:
            wpid, write_end = watchdog
            os.close(write_end)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(wpid, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _wait(pid: int, waitset: set[signal.Signals]) -> int:
    while True:
        info = signal.sigwaitinfo(waitset)
        if info.si_signo == signal.SIGCHLD:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                code = os.waitstatus_to_exitcode(status)
                return 128 - code if code < 0 else code
            continue
        if info.si_code == SI_KERNEL:
            continue  # from the terminal: the child, in our process group, got it too
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, info.si_signo)
