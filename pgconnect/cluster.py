"""A local PostgreSQL cluster driven with the machine's own server binaries (initdb, pg_ctl).

Used by ``sandbox`` and by the test harness. PostgreSQL refuses to run as root, so when we are root
every server command runs as an unprivileged user (``postgres`` by default) through ``runuser``, and
the cluster's folders are owned by that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pgconnect.errors import CommandError

SERVER_USER_ENV = "PGCONNECT_SERVER_USER"


def find_bindir() -> Path:
    """Server binaries: on PATH, through pg_config --bindir, else the newest /usr/lib/postgresql."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and (Path(out) / "initdb").exists():
            return Path(out)

    def version(path: str) -> tuple[int, ...]:
        m = re.search(r"/postgresql/([0-9.]+)/bin$", path)
        return tuple(int(x) for x in m.group(1).split(".")) if m else (0,)

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)
    for candidate in reversed(found):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise CommandError(
        "no PostgreSQL server binaries (initdb, pg_ctl) found on PATH, via pg_config, "
        "or in /usr/lib/postgresql/*/bin",
        hint="install the server, e.g. apt-get install postgresql",
    )


def server_user() -> str | None:
    """The user the server runs as: None when we are not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    return os.environ.get(SERVER_USER_ENV, "postgres")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def can_reach(user: str, path: Path) -> bool:
    """Can USER traverse to PATH (execute permission on every ancestor)?"""
    entry = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, entry.pw_gid))
    for folder in [path, *path.parents]:
        try:
            st = folder.stat()
        except OSError:
            return False
        if st.st_uid == entry.pw_uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid in groups:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            return False
    return True


def chown_to(user: str | None, *paths: Path) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for p in paths:
        os.chown(p, entry.pw_uid, entry.pw_gid)


def postmaster_alive(pid: int | None) -> bool:
    """Is PID a live PostgreSQL server process (not a pid reused after a crash or reboot)?

    A loose check, for clusters pgconnect made itself; before acting on a pid read from a folder
    someone else may have written, use ``is_postmaster_of``.
    """
    if pid is None or pid <= 0 or pid > PID_MAX:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # A pid left in a stale postmaster.pid may have been reused after a crash or reboot.
    cmdline = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self/cmdline").exists():
        try:
            return b"postgres" in cmdline.read_bytes()
        except OSError:
            return False
    return True


#: Can a process's program, working directory and owner be read (Linux's /proc)?
HAVE_PROC = os.path.isdir("/proc/self")

#: Linux's largest pid (/proc/sys/kernel/pid_max can be at most 2^22).
PID_MAX = 1 << 22


def read_pid(datadir: Path) -> int | None:
    """The first line of DATADIR/postmaster.pid: only from a regular file, no symlink followed
    (O_NOFOLLOW; O_NONBLOCK so a FIFO planted there cannot hang us), at most 4 KiB read."""
    try:
        fd = os.open(datadir / "postmaster.pid", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    first = data.split(b"\n", 1)[0].strip()
    if not first.isdigit() or len(first) > 8:
        return None
    pid = int(first)
    return pid if 0 < pid <= PID_MAX else None


def _proc_facts(pid: int) -> tuple[int, str, str, int] | None:
    """(uid, program name, working directory, parent pid) of PID from /proc, or None."""
    proc = f"/proc/{pid}"
    try:
        uid = os.stat(proc).st_uid
        exe = os.readlink(f"{proc}/exe")
        cwd = os.readlink(f"{proc}/cwd")
        with open(f"{proc}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        ppid = int(fields[1])
    except (OSError, IndexError, ValueError):
        return None
    # After a package upgrade the running binary shows as ".../postgres (deleted)".
    name = Path(exe.removesuffix(" (deleted)")).name
    return uid, name, cwd, ppid


def is_postmaster_of(pid: int | None, datadir: Path, uid: int | None) -> bool:
    """Is PID the postmaster of the cluster in DATADIR, run by UID (None: any)?

    A pid read from a postmaster.pid is data someone may have written. The postmaster changes to
    its data directory at start (postmaster.c: ChangeToDataDir) and stays there, its program is
    ``postgres``, and its parent is not a process of the same cluster (that would be a backend).
    Without /proc (macOS, BSD) nothing can be proven: the loose ``postmaster_alive`` answers, and
    callers must not signal the pid themselves (``HAVE_PROC``) but leave stopping to ``pg_ctl``.
    """
    if pid is None or pid <= 0 or pid > PID_MAX:
        return False
    if not HAVE_PROC:
        return postmaster_alive(pid)
    facts = _proc_facts(pid)
    if facts is None:
        return False
    owner, name, cwd, ppid = facts
    try:
        want = os.path.realpath(datadir)
    except OSError:
        return False
    if name not in ("postgres", "postmaster") or cwd != want:
        return False
    if uid is not None and owner != uid:
        return False
    parent = _proc_facts(ppid) if ppid > 1 else None
    return parent is None or not (parent[1] in ("postgres", "postmaster") and parent[2] == want)


@dataclass
class Cluster:
    """One cluster: data folder, socket folder, port. ``root`` is owned by the server user."""

    root: Path
    port: int
    bindir: Path = field(default_factory=find_bindir)
    user: str | None = field(default_factory=server_user)
    listen: str = "127.0.0.1,::1"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def _run(
        self, argv: Sequence[str], *, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = list(argv)
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd="/"
            )
        except subprocess.TimeoutExpired:
            raise CommandError(
                f"{Path(argv[0]).name} did not finish within {timeout:g} s"
            ) from None
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            tail = detail[-1] if detail else f"exit status {proc.returncode}"
            raise CommandError(f"{Path(argv[0]).name} failed: {tail}")
        return proc

    def initdb(self, superuser_password_file: Path) -> None:
        """Create the data folder with SCRAM authentication for the superuser ``postgres``."""
        self.root.mkdir(parents=True, exist_ok=True)
        chown_to(self.user, self.root)
        os.chmod(self.root, 0o700)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={superuser_password_file}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ]
        )

    def configure(
        self,
        *,
        ssl: bool,
        cert: bytes | None = None,
        key: bytes | None = None,
        ca: bytes | None = None,
        hba: Sequence[str] = (),
        extra: Sequence[str] = (),
    ) -> None:
        """Write TLS files, pg_hba.conf and settings (appended to postgresql.conf)."""
        files: list[Path] = []
        if cert is not None and key is not None:
            for name, data, mode in (("server.crt", cert, 0o644), ("server.key", key, 0o600)):
                path = self.datadir / name
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.chmod(path, mode)
                files.append(path)
        if ca is not None:
            (self.datadir / "root.crt").write_bytes(ca)
            files.append(self.datadir / "root.crt")
        hba_path = self.datadir / "pg_hba.conf"
        hba_path.write_text(
            "# written by pgconnect\n"
            "local all all scram-sha-256\n" + "".join(line + "\n" for line in hba)
        )
        files.append(hba_path)
        settings = [
            f"port = {self.port}",
            f"listen_addresses = '{self.listen}'",
            f"unix_socket_directories = '{self.socket_dir}'",
            f"ssl = {'on' if ssl else 'off'}",
            "password_encryption = 'scram-sha-256'",
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = off",
            "shared_buffers = 16MB",
            "max_connections = 60",
            "log_min_messages = warning",
            "logging_collector = off",
        ]
        if ssl:
            settings += ["ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"]
        settings += list(extra)
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as fh:
            fh.write("\n# pgconnect\n" + "".join(s + "\n" for s in settings))
        files.append(self.datadir / "postgresql.conf")
        chown_to(self.user, *files)

    def _pg_ctl(self, action: str, *options: str, timeout: float = 120) -> None:
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *options, "-w", action],
            timeout=timeout,
        )

    def start(self, *, timeout: int = 60) -> None:
        self._pg_ctl("start", "-l", str(self.logfile), "-t", str(timeout), timeout=timeout + 10)

    def stop(self, *, mode: str = "fast") -> None:
        if not (self.datadir / "postmaster.pid").exists():
            return
        self._pg_ctl("stop", "-m", mode)

    def restart(self, *, mode: str = "fast") -> None:
        self._pg_ctl("restart", "-l", str(self.logfile), "-m", mode)

    def is_running(self) -> bool:
        return postmaster_alive(self.pid())

    def pid(self) -> int | None:
        return read_pid(self.datadir)
