"""Variable names and libpq connection keywords: the mapping between them and value validation.

This module is pure: no imports of psycopg, so that reading the project file stays fast. The keyword
list is libpq's (PostgreSQL 18 ``PQconndefaults``); ``tests/test_params.py`` checks it against the
libpq that psycopg links.
"""

from __future__ import annotations

import re

from pgconnect import keywords

NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*")

#: Every connection keyword libpq 13–18 knows: derived from the one table in ``keywords``
#: (these names stay for the modules and tests that read them).
LIBPQ_KEYWORDS: frozenset[str] = keywords.NAMES

SSLMODES: tuple[str, ...] = keywords.SSLMODES

#: Names with a meaning of their own (docs/project-file.md).
URL_NAME = "DB_URL"
PASSWORD_NAME = "DB_PASSWORD"
_ALIASES = {
    "DB_USERNAME": "user",
    "DB_USER": "user",
    "DB_NAME": "dbname",
    "DB_PASSWORD": "password",
}

#: The keyword → the name pgconnect writes for it (the preferred spelling, as in the seed page).
KEYWORD_NAMES = {"user": "DB_USERNAME", "dbname": "DB_NAME", "password": "DB_PASSWORD"}

#: Keywords that hold a file path; relative paths are relative to the project file's folder.
PATH_KEYWORDS: frozenset[str] = keywords.PATHS

#: Keywords whose value is secret wherever it comes from (password, sslpassword,
#: oauth_client_secret, scram_client_key, scram_server_key: see ``keywords.TABLE``).
SECRET_KEYWORDS: frozenset[str] = keywords.SECRET

_INTEGER_KEYWORDS = keywords.of_kind("int")
_BOOLEAN_KEYWORDS = keywords.of_kind("bool")
_ENUM_KEYWORDS: dict[str, tuple[str, ...]] = keywords.choices()


class InvalidName(ValueError):
    """A variable name that is malformed or maps to no libpq keyword."""


class InvalidValue(ValueError):
    """A value libpq would reject for its keyword."""


def check_name(name: str) -> None:
    """Raise InvalidName unless NAME is a valid variable name that pgconnect can use."""
    if not NAME_RE.fullmatch(name):
        raise InvalidName(
            f"invalid variable name {name!r}: names are upper case, digits and '_' "
            "([A-Z_][A-Z0-9_]*), not starting with a digit"
        )
    keyword_for(name)


def keyword_for(name: str) -> str | None:
    """The libpq keyword a variable name maps to; None for DB_URL and plain project variables.

    Raises InvalidName for a ``DB_`` name that maps to no libpq keyword.
    """
    if name == URL_NAME:
        return None
    if name in _ALIASES:
        return _ALIASES[name]
    if not name.startswith("DB_"):
        return None
    keyword = name[3:].lower()
    if keyword not in LIBPQ_KEYWORDS:
        raise InvalidName(
            f"{name} maps to no libpq connection keyword ({keyword!r}); "
            "DB_ names are DB_URL, DB_USERNAME, DB_NAME, DB_PASSWORD or DB_<libpq keyword>, "
            "e.g. DB_HOST, DB_PORT, DB_SSLMODE"
        )
    return keyword


def name_for(keyword: str) -> str:
    """The variable name pgconnect writes for a libpq keyword."""
    return KEYWORD_NAMES.get(keyword, "DB_" + keyword.upper())


def is_connection_name(name: str) -> bool:
    """True for DB_URL and every DB_ name that maps to a libpq keyword."""
    if name == URL_NAME:
        return True
    try:
        return keyword_for(name) is not None
    except InvalidName:
        return False


def check_value(name: str, value: str, *, secret: bool = False) -> None:
    """Raise InvalidValue if libpq would reject VALUE for the keyword NAME maps to.

    SECRET: the value is on its way to (or from) the secret store; messages never quote it."""
    if "\x00" in value:
        raise InvalidValue(f"{name}: value contains a NUL byte")
    keyword = keyword_for(name)
    if keyword is None:
        return
    shown = "the value (not shown: it belongs to a secret)" if secret else _quoted(value)
    if keyword == "port":
        _check_ports(name, value, secret=secret)
    elif keyword in _INTEGER_KEYWORDS:
        # libpq's parse_int_param: an optional sign, ASCII digits, surrounding blanks allowed.
        if not re.fullmatch(r"[ \t\n\r\f\v]*[-+]?[0-9]+[ \t\n\r\f\v]*", value):
            raise InvalidValue(f"{name}: {shown} is not an integer")
    elif keyword in _BOOLEAN_KEYWORDS:
        if value not in ("0", "1"):
            raise InvalidValue(f"{name}: {shown} is not 0 or 1")
    elif keyword in _ENUM_KEYWORDS:
        allowed = _ENUM_KEYWORDS[keyword]
        if value not in allowed:
            raise InvalidValue(
                f"{name}: {shown} is not one of {', '.join(allowed)}"
                + ("" if secret else _did_you_mean(value, allowed))
            )


def _quoted(value: str) -> str:
    """A value as a message quotes it: repr (control characters escaped), a long one cut."""
    if len(value) > 80:
        return repr(value[:60]) + f"… ({len(value)} characters)"
    return repr(value)


def _did_you_mean(value: str, allowed: tuple[str, ...]) -> str:
    import difflib  # only on an error

    folded = {a.lower().replace("_", "-"): a for a in allowed}
    exact = folded.get(value.strip().lower().replace("_", "-"))
    close = [exact] if exact else difflib.get_close_matches(value, allowed, n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _check_ports(name: str, value: str, *, secret: bool = False) -> None:
    # libpq: a comma-separated list, one per host; an empty entry means the default port.
    parts = value.split(",")
    for part in parts:
        if part == "" and len(parts) > 1:
            continue
        # ASCII digits only: str.isdigit() also accepts "²" and "٥٤٣٢", which libpq rejects.
        # At most 5 digits: libpq's strtol would also take "0005432", but Python refuses to
        # convert a string of 4300+ digits (zeros included), and no one writes a port that way.
        if not re.fullmatch(r"[0-9]{1,5}", part) or not 1 <= int(part) <= 65535:
            shown = "a port (not shown: it belongs to a secret)" if secret else _quoted(part)
            raise InvalidValue(f"{name}: {shown} is not a port number (1-65535)")


def check_host_port_lists(host: str | None, port: str | None) -> None:
    """libpq: the port list has one entry, or exactly one per host."""
    if host is None or port is None:
        return
    hosts = host.split(",")
    ports = port.split(",")
    if len(ports) not in (1, len(hosts)):
        raise InvalidValue(
            f"DB_PORT lists {len(ports)} ports for {len(hosts)} hosts; "
            "give one port, or one per host"
        )


def _raw_at_after_userinfo(url: str) -> bool:
    """A URI whose user info libpq ends before an '@' (``postgresql://app:pa/ss@host``): libpq
    reads "app" as the host, "pa" as the port and "ss@host" as the database, so the password
    would be shown, or sent to a server, in pieces."""
    from pgconnect.connstr import URI_PREFIXES

    if not url.startswith(URI_PREFIXES):
        return False
    rest = url.split("://", 1)[1]
    slash = rest.find("/")
    at = rest.find("@")
    if at >= 0 and (slash < 0 or at < slash):
        rest = rest[at + 1 :]  # libpq's user info, then the rest
    return "@" in rest.split("?", 1)[0]


def check_url(url: str, *, secret: bool = False) -> dict[str, str]:
    """Parse a DB_URL as libpq does and check each part as its own variable would be (sslmode,
    port, booleans, host/port lists), so a DB_URL is validated when set and when read like every
    other value (docs/project-file.md). Raises InvalidValue, never echoing a secret part; returns the parts."""
    from pgconnect.connstr import parse  # pure Python; imported late: connstr imports us
    from pgconnect.errors import ConfigError

    try:
        parts = parse(url.strip())
    except ConfigError as exc:  # already redacted
        hint = f" ({exc.hint})" if exc.hint else ""
        raise InvalidValue(f"{URL_NAME} is {exc.message}{hint}") from None
    if _raw_at_after_userinfo(url.strip()):
        raise InvalidValue(
            f"{URL_NAME} has an '@' after its host (not shown: it may hold a password); libpq "
            "ends the user info at the first '/', so a password holding a '/' must spell it "
            "%2F (and an '@' in a database name %40)"
        )
    for keyword, part in parts.items():
        if keyword in SECRET_KEYWORDS:
            continue
        try:
            check_value(name_for(keyword), part, secret=secret)
        except InvalidValue as exc:
            raise InvalidValue(f"{URL_NAME} has an invalid {keyword}: {exc}") from None
    try:
        check_host_port_lists(parts.get("host"), parts.get("port"))
    except InvalidValue as exc:
        raise InvalidValue(f"{URL_NAME}: {exc}") from None
    return parts


def url_has_password(url: str) -> bool:
    """Does a connection string set a password (or another secret keyword) to a non-empty value?

    Parsed exactly as libpq parses it (``conninfo.parse``: URI userinfo, percent-decoded query
    parameter names such as ``?passw%6Frd=``, and ``key=value`` quoting). Every keyword in
    SECRET_KEYWORDS counts, not only ``password``. A malformed string raises ConfigError (redacted).
    """
    return bool(url_secret_keywords(url))


def url_secret_keywords(url: str) -> list[str]:
    """The secret keywords a connection string sets to a non-empty value (see url_has_password)."""
    from pgconnect.connstr import parse  # pure Python; imported late: connstr imports us

    return [k for k, v in parse(url.strip()).items() if k in SECRET_KEYWORDS and v != ""]


def is_loopback_or_socket(host: str | None) -> bool:
    """True when every host is a Unix socket path or a loopback address (default sslmode prefer)."""
    if host is None or host == "":
        return True
    for h in host.split(","):
        h = h.strip()
        if h == "" or h.startswith("/") or h.startswith("@"):
            continue
        if h.lower() in ("localhost", "::1") or h.lower().endswith(".localhost"):
            continue
        if re.fullmatch(r"127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", h):
            continue
        return False
    return True


def default_sslmode(host: str | None) -> str:
    """The default sslmode (docs/sources.md): prefer for sockets and loopback, require for anything else."""
    return "prefer" if is_loopback_or_socket(host) else "require"
