"""libpq's own files: connection service files and passfiles, read and written as libpq does.

pgconnect's defaults only fill what no source sets, and libpq's own sources count: a connection
service (``service=``/``PGSERVICE``) and a passfile (``passfile=``/``PGPASSFILE``/``~/.pgpass``)
supply values libpq will use. Reading them here lets ``resolve`` leave those values alone and lets
``explain`` say where they come from; writing them lets ``exec`` hand a connection to a child the
way libpq reads it back.

Rules follow ``src/interfaces/libpq/fe-connect.c`` (``parseServiceInfo``, ``parseServiceFile``,
``passwordFromFile``, ``pwdfMatchesString``). Pure Python, nothing printed.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pgconnect import keywords
from pgconnect.errors import CommandError, ConfigError

#: libpq's compiled-in defaults in Debian's build and in psycopg's binary wheel (both read
#: ``/etc/postgresql-common/pg_service.conf`` and use ``/var/run/postgresql`` for sockets);
#: ``PGSYSCONFDIR`` overrides the folder as it does for libpq.
SYSCONFDIR = "/etc/postgresql-common"
DEFAULT_SOCKET_DIR = "/var/run/postgresql"
DEFAULT_PORT = "5432"


def home() -> Path | None:
    """libpq's pqGetHomeDirectory: $HOME when set, else the password database's entry."""
    value = os.environ.get("HOME")
    if value:
        return Path(value)
    try:
        return Path(pwd.getpwuid(os.geteuid()).pw_dir)
    except KeyError:
        return None


def os_user() -> str | None:
    """libpq's default user name: the effective user's login name."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return None


# --------------------------------------------------------------------------- service files


@dataclass(frozen=True)
class Service:
    """One connection service's entry: where libpq found it and what it sets."""

    name: str
    path: Path
    values: dict[str, str]


class _NotHere(Exception):
    """The file has no section for the service."""


def user_service_file(environ: Mapping[str, str]) -> Path | None:
    """$PGSERVICEFILE, else ~/.pg_service.conf (None when neither is set or found)."""
    if environ.get("PGSERVICEFILE") is not None:
        return Path(environ["PGSERVICEFILE"])
    folder = Path(environ["HOME"]) if environ.get("HOME") else home()
    return None if folder is None else folder / ".pg_service.conf"


def system_service_file(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("PGSYSCONFDIR") or SYSCONFDIR) / "pg_service.conf"


def find_service(name: str, environ: Mapping[str, str]) -> Service:
    """The entry libpq uses for service NAME; ConfigError with libpq's reason when it fails.

    libpq looks in the user's file first ($PGSERVICEFILE must exist when set; ~/.pg_service.conf
    only when it exists) and, when the service is not there, in the system file.
    """
    user_file = user_service_file(environ)
    explicit = environ.get("PGSERVICEFILE") is not None
    if user_file is not None and (explicit or user_file.exists()):
        try:
            return Service(name, user_file, _parse(user_file, name))
        except _NotHere:
            pass
    system_file = system_service_file(environ)
    if system_file.exists():
        try:
            return Service(name, system_file, _parse(system_file, name))
        except _NotHere:
            pass
    raise ConfigError(
        f'definition of service "{name}" not found (libpq looked in '
        + " and ".join(str(p) for p in (user_file, system_file) if p is not None)
        + ")",
        hint="add the service to ~/.pg_service.conf (or the file PGSERVICEFILE names), "
        "or unset DB_SERVICE/PGSERVICE",
    )


def _parse(path: Path, name: str) -> dict[str, str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f'service file "{path}" not found') from None
    except OSError as exc:
        raise ConfigError(f'service file "{path}" cannot be read: {exc.strerror}') from None
    text = data.decode("utf-8", "replace")
    found = False
    values: dict[str, str] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(" \t\n\r\f\v")  # libpq: isspace() both ends, nothing else
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            if found:
                break  # end of the wanted section
            # libpq: "[" + name + "]" as a prefix; anything after "]" is ignored.
            found = line[1:].startswith(name) and line[1 + len(name) : 2 + len(name)] == "]"
            continue
        if not found:
            continue
        key, sep, value = line.partition("=")
        if not sep or key not in keywords.NAMES:
            raise ConfigError(f'syntax error in service file "{path}", line {number}')
        if key == "service":
            raise ConfigError(
                f'nested service specifications not supported in service file "{path}", '
                f"line {number}"
            )
        values.setdefault(key, value)  # libpq: the first setting of a keyword wins
    if not found:
        raise _NotHere()
    return values


def service_text(name: str, values: Mapping[str, str]) -> str:
    """A service file section libpq reads back as VALUES (one ``key=value`` per line)."""
    lines = [f"[{name}]"]
    for keyword, value in values.items():
        # libpq strips white space at both ends of a line and reads it line by line.
        if "\n" in value or "\r" in value or value != value.strip(" \t\f\v"):
            raise ConfigError(
                f"{keyword}: a value with a line break or white space at either end cannot be "
                "written to a connection service file"
            )
        lines.append(f"{keyword}={value}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- passfiles


def passfile_path(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """The passfile libpq reads: the passfile keyword, else $PGPASSFILE, else ~/.pgpass."""
    if explicit:
        return Path(explicit)
    if environ.get("PGPASSFILE"):
        return Path(environ["PGPASSFILE"])
    folder = Path(environ["HOME"]) if environ.get("HOME") else home()
    return None if folder is None else folder / ".pgpass"


def passfile_usable(path: Path) -> bool:
    """Would libpq read PATH? A plain file without group or other permissions (libpq warns
    about and skips any other)."""
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and not st.st_mode & 0o077


def _matches(line: str, token: str) -> str | None:
    """libpq's pwdfMatchesString: the rest of LINE after a field equal to TOKEN (or ``*``)."""
    if line.startswith("*:"):
        return line[2:]
    i, j, escaped = 0, 0, False
    while i < len(line):
        c = line[i]
        if c == "\\" and not escaped:
            escaped = True
            i += 1
            continue
        if c == ":" and j == len(token) and not escaped:
            return line[i + 1 :]
        escaped = False
        if j == len(token) or c != token[j]:
            return None
        i += 1
        j += 1
    return None


def _passfile_host(host: str) -> str:
    # libpq: an empty host and the default socket folder both match "localhost".
    if host in ("", DEFAULT_SOCKET_DIR):
        return "localhost"
    return host


def passfile_lookup(path: Path, host: str, port: str, dbname: str, user: str) -> str | None:
    """The password libpq's passwordFromFile takes from PATH for one host, or None."""
    if not passfile_usable(path):
        return None
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    fields = (_passfile_host(host), port or DEFAULT_PORT, dbname, user)
    for raw in text.split("\n"):
        if raw.startswith("#"):
            continue
        line = raw.rstrip("\r\n")
        if not line:
            continue
        rest: str | None = line
        for token in fields:
            rest = _matches(rest, token) if rest is not None else None
        if rest is None:
            continue
        out: list[str] = []
        i = 0
        while i < len(rest) and rest[i] != ":":
            if rest[i] == "\\" and i + 1 < len(rest):
                i += 1
            out.append(rest[i])
            i += 1
        return "".join(out)
    return None


def _escape_field(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace(":", "\\:")
    # A field that is exactly "*" is libpq's wildcard; "\*" is the literal name.
    return "\\*" if escaped == "*" else escaped


@dataclass(frozen=True)
class Target:
    """One host a connection tries, with the port, database and user libpq will use there."""

    host: str
    port: str
    dbname: str
    user: str


def targets(conn: Mapping[str, str], environ: Mapping[str, str]) -> list[Target]:
    """The (host, port, database, user) lines libpq's passfile lookup uses for CONN (explicit
    parameters, libpq's environment variables, then its defaults)."""
    host = conn.get("host") or environ.get("PGHOST") or ""
    hostaddr = conn.get("hostaddr") or environ.get("PGHOSTADDR") or ""
    port = conn.get("port") or environ.get("PGPORT") or ""
    user = conn.get("user") or environ.get("PGUSER") or os_user() or ""
    dbname = conn.get("dbname") or environ.get("PGDATABASE") or user
    addrs = hostaddr.split(",") if hostaddr else []
    names = host.split(",") if host else [""] * max(1, len(addrs))
    ports = port.split(",") if port else [""]
    out: list[Target] = []
    for i, name in enumerate(names):
        p = ports[i] if len(ports) == len(names) else ports[0]
        # libpq: the host is the search key when given, else the hostaddr.
        key = name if name else (addrs[i] if i < len(addrs) else "")
        out.append(Target(key, p or DEFAULT_PORT, dbname, user))
    return out


def passfile_entries(found: Sequence[Target], password: str) -> str:
    """Passfile lines that offer PASSWORD for exactly these targets (libpq's format, escaped)."""
    # libpq reads the file line by line and strips trailing CR/LF (pg_strip_crlf): such
    # passwords cannot be written there.
    if "\n" in password or password.endswith("\r"):
        raise CommandError(
            "the password contains a line break, which a passfile cannot hold; "
            "pgconnect exec cannot hand it over",
            hint="use --url-var DATABASE_URL (it puts the password in the child's environment), "
            "or change the password",
        )
    secret = password.replace("\\", "\\\\").replace(":", "\\:")
    lines: list[str] = []
    for t in found:
        hosts = [t.host or "localhost"]
        if t.host == DEFAULT_SOCKET_DIR:
            hosts.append("localhost")  # libpq matches its default socket folder as localhost
        for h in hosts:
            line = ":".join(_escape_field(f) for f in (h, t.port, t.dbname, t.user))
            if line + "\n" not in lines:
                lines.append(line + "\n")
    return "".join(line[:-1] + ":" + secret + "\n" for line in lines)
