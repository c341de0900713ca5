"""Connection strings: parsing DB_URL, building URI / key=value / env / JSON, redaction (docs/connection-strings.md).

``parse`` is a pure-Python port of libpq's own parsers (``conninfo_parse`` and
``conninfo_uri_parse_options`` in ``src/interfaces/libpq/fe-connect.c``), so reading a project's
``DB_URL`` does not load psycopg and libpq (start-up time). ``tests/test_conninfo.py`` proves it
agrees with ``psycopg.conninfo.conninfo_to_dict`` (libpq itself) on libpq's own URI regression
cases, a table of odd cases and random strings.

The builders never load psycopg either: ``to_conninfo`` quotes exactly as
``psycopg.conninfo.make_conninfo`` does (a test compares them on random input), and every builder
masks secret keywords as ``****`` unless asked to reveal them. ``redact`` (from
``pgconnect.safetext``) is the one function that masks passwords in text shown to people; the
parser's own messages never quote a part that may hold one.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from urllib.parse import quote

from pgconnect import keywords
from pgconnect.errors import ConfigError
from pgconnect.params import LIBPQ_KEYWORDS, SECRET_KEYWORDS
from pgconnect.safetext import MASK as MASK  # re-exported: callers import them from here
from pgconnect.safetext import redact as redact

URI_PREFIXES = ("postgresql://", "postgres://")

#: libpq's ``isspace()`` in the C/UTF-8 locales: ASCII white space only.
_SPACE = frozenset(" \t\n\v\f\r")
_HEX = frozenset(b"0123456789abcdefABCDEF")

#: keyword -> libpq environment variable (PQconndefaults' ``envvar``; from the one table).
ENV_VARS: dict[str, str] = keywords.ENV_VARS

# --------------------------------------------------------------------------- parsing


class _Invalid(Exception):
    """A parse error; its message is already redacted."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def parse(dsn: str) -> dict[str, str]:
    """Split a URI or key=value connection string into libpq keywords, exactly as libpq's
    ``PQconninfoParse`` does (no defaults, no environment). Raises ConfigError, redacted."""
    if "\x00" in dsn:
        raise ConfigError("not a valid connection string: it contains a NUL character")
    try:
        if dsn.startswith(URI_PREFIXES):  # libpq: case-sensitive, no leading blanks
            return _parse_uri(dsn)
        return _parse_kv(dsn)
    except _Invalid as exc:
        raise ConfigError(f"not a valid connection string: {exc}", hint=exc.hint) from None


class _Options:
    """The keyword -> value store of one parse; knows whether a secret was stored yet."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.saw_secret = False
        # A URI with an '@' past libpq's user info (a password holding a raw '/'): every part
        # after the scheme may hold a piece of that password.
        self.hide_parts = False

    def store(self, keyword: str, value: str) -> bool:
        # libpq conninfo_storeval: requiressl=1 means sslmode=require, anything else prefer.
        if keyword == "requiressl":
            keyword = "sslmode"
            value = "require" if value.startswith("1") else "prefer"
        if keyword not in LIBPQ_KEYWORDS:
            return False
        self.values[keyword] = value
        if keyword in SECRET_KEYWORDS:
            self.saw_secret = True
        return True

    def token(self, text: str) -> str:
        # libpq echoes the offending word; pgconnect only when it cannot be (part of) a secret.
        # After a password, a stray word may be part of it ("password=a b"); a word holding
        # ':', '@', '/' or a quote may be a URI's user info.
        if self.saw_secret:
            return "(a word after the password)"
        if _PLAIN_WORD.fullmatch(text):
            return f'"{text}"'
        return "(a word that is not a keyword; not shown: it may hold a password)"

    def label(self, text: str, *, secret: bool = False) -> str:
        """How a URI part is named in a message."""
        if secret:
            return "in a secret value"
        if self.hide_parts or self.saw_secret:
            return "in a part of the URI (not shown: it may hold a password)"
        return f'"{redact(text)}"'


#: A word the parser may quote in a message: a keyword, misspelt or percent-encoded.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.%+-]{1,64}")
#: The start of something URI-shaped that libpq does not read as a URI (another scheme, upper
#: case, a leading blank).
_URI_LIKE = re.compile(r"[ \t\n\v\f\r]*([A-Za-z][A-Za-z0-9+.\-]*:/+)")


def _not_a_uri(s: str) -> _Invalid | None:
    """The error for a string shaped like a URI libpq reads as key=value: names its scheme only
    (anything after it may be user info)."""
    m = _URI_LIKE.match(s)
    if m is None:
        return None
    scheme = m.group(1)
    if len(scheme) > 40:
        scheme = scheme[:37] + "..."
    return _Invalid(
        f'it starts "{scheme}", and libpq reads only URIs that start "postgresql://" or '
        '"postgres://" (lower case, nothing before them); anything else is read as '
        "key=value pairs"
    )


def _parse_kv(s: str) -> dict[str, str]:
    opts = _Options()
    i, n = 0, len(s)
    while i < n:
        if s[i] in _SPACE:
            i += 1
            continue
        start = i
        while i < n and s[i] != "=" and s[i] not in _SPACE:
            i += 1
        name = s[start:i]
        while i < n and s[i] in _SPACE:
            i += 1
        if i >= n or s[i] != "=":
            raise _not_a_uri(s) or _Invalid(
                f'missing "=" after {opts.token(name)} in connection info string'
            )
        i += 1
        while i < n and s[i] in _SPACE:
            i += 1
        chars: list[str] = []
        if i < n and s[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise _Invalid("unterminated quoted string in connection info string")
                c = s[i]
                if c == "\\":
                    i += 1
                    if i < n:
                        chars.append(s[i])
                        i += 1
                    continue
                i += 1
                if c == "'":
                    break
                chars.append(c)
        else:
            while i < n:
                c = s[i]
                i += 1
                if c in _SPACE:
                    break
                if c == "\\":
                    if i < n:
                        chars.append(s[i])
                        i += 1
                else:
                    chars.append(c)
        if not opts.store(name, "".join(chars)):
            raise _not_a_uri(s) or _Invalid(
                f"invalid connection option {opts.token(name)}", keywords.provider_hint(name)
            )
    return opts.values


def _decode(text: str, uri: str, shown: str, *, secret: bool = False) -> str:
    """libpq conninfo_uri_decode: %XX byte escapes (no '+' for space), %00 forbidden, then UTF-8.

    libpq 17+: leading and trailing spaces are skipped and a space inside is an error
    ("unexpected spaces found … use percent-encoded spaces (%20) instead"). SHOWN names the part
    in messages (``_Options.label``): never the text of a part that may be secret. For a SECRET
    part the URI is not echoed either: the redaction knows libpq's secret keywords, not every
    name another driver gives a password.
    """
    if secret:
        uri = uri.partition("?")[0] + ("?…" if "?" in uri else "")
    stripped = text.strip(" ")
    if " " in stripped:
        raise _Invalid(
            f"unexpected spaces found {shown}, use percent-encoded spaces (%20) instead, "
            f"in URI: {_shown(uri)}"
        )
    text = stripped
    if "%" not in text:
        return text
    raw = text.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(raw):
        b = raw[i]
        if b != 0x25:  # '%'
            out.append(b)
            i += 1
            continue
        digits = raw[i + 1 : i + 3]
        if len(digits) < 2 or digits[0] not in _HEX or digits[1] not in _HEX:
            raise _Invalid(f"invalid percent-encoded token {shown} in URI: {_shown(uri)}")
        value = int(digits, 16)
        if value == 0:
            raise _Invalid(
                f"forbidden value %00 in percent-encoded value {shown} in URI: {_shown(uri)}"
            )
        out.append(value)
        i += 3
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid(
            f"percent-encoded value {shown} is not UTF-8 text in URI: {_shown(uri)}"
        ) from None


def _shown(uri: str) -> str:
    return f'"{redact(uri)}"'


def _parse_uri(uri: str) -> dict[str, str]:
    opts = _Options()
    n = len(uri)
    p = len("postgresql://") if uri.startswith("postgresql://") else len("postgres://")

    # User info: libpq looks ahead for '@' before the first '/' (even past a '?').
    j = p
    while j < n and uri[j] not in "@/":
        j += 1
    if j < n and uri[j] == "@":
        k = p
        while uri[k] not in ":@":
            k += 1
        user = uri[p:k]
        if user:
            opts.store("user", _decode(user, uri, opts.label(user)))
        if uri[k] == ":":
            password = uri[k + 1 : j]
            if password:
                opts.store("password", _decode(password, uri, opts.label("", secret=True)))
        p = j + 1
    opts.hide_parts = "@" in uri[p:]

    # host[:port] pairs separated by commas; an IPv6 address in brackets.
    hosts: list[str] = []
    ports: list[str] = []
    prev = ""
    while True:
        if p < n and uri[p] == "[":
            p += 1
            start = p
            while p < n and uri[p] != "]":
                p += 1
            if p >= n:
                raise _Invalid(
                    'end of string reached when looking for matching "]" in IPv6 host '
                    f"address in URI: {_shown(uri)}"
                )
            if p == start:
                raise _Invalid(f"IPv6 host address may not be empty in URI: {_shown(uri)}")
            host = uri[start:p]
            p += 1
            if p < n and uri[p] not in ":/?,":
                position = len(uri[:p].encode("utf-8")) + 1
                raise _Invalid(
                    f'unexpected character "{uri[p]}" at position {position} in URI '
                    f'(expected ":" or "/"): {_shown(uri)}'
                )
        else:
            start = p
            while p < n and uri[p] not in ":/?,":
                p += 1
            host = uri[start:p]
        hosts.append(host)
        prev = uri[p] if p < n else ""
        port = ""
        if prev == ":":
            p += 1
            start = p
            while p < n and uri[p] not in "/?,":
                p += 1
            port = uri[start:p]
            prev = uri[p] if p < n else ""
        ports.append(port)
        if prev != ",":
            break
        p += 1
    host_text = ",".join(hosts)
    port_text = ",".join(ports)
    if host_text:
        opts.store("host", _decode(host_text, uri, opts.label(host_text)))
    if port_text:
        opts.store("port", _decode(port_text, uri, opts.label(port_text)))

    if prev == "/":
        p += 1
        start = p
        while p < n and uri[p] != "?":
            p += 1
        dbname = uri[start:p]
        prev = uri[p] if p < n else ""
        # libpq: an empty path sets no dbname (so PGDATABASE still applies).
        if dbname:
            opts.store("dbname", _decode(dbname, uri, opts.label(dbname)))
    if prev == "?":
        _parse_query(uri[p + 1 :], uri, opts)
    return opts.values


def _parse_query(query: str, uri: str, opts: _Options) -> None:
    i, n = 0, len(query)
    while i < n:
        start = i
        equals = -1
        while True:
            if i < n and query[i] == "=":
                if equals >= 0:
                    raise _Invalid(
                        'extra key/value separator "=" in URI query parameter: '
                        f"{opts.token(query[start:equals])}"
                    )
                equals = i
                i += 1
            elif i >= n or query[i] == "&":
                end = i
                if i < n:
                    i += 1
                if equals < 0:
                    raise _Invalid(
                        'missing key/value separator "=" in URI query parameter: '
                        f"{opts.token(query[start:end])}"
                    )
                break
            else:
                i += 1
        raw_keyword = query[start:equals]
        keyword = _decode(raw_keyword, uri, opts.token(raw_keyword))
        value = query[equals + 1 : end]
        # A value is shown only under a keyword libpq knows and that is no secret: an unknown
        # one (PASSWORD, a misspelling) may be a password written the way another driver takes
        # it, and libpq refuses the keyword anyway.
        maybe_secret = keyword in SECRET_KEYWORDS or keyword not in LIBPQ_KEYWORDS
        value = _decode(value, uri, opts.label(value, secret=maybe_secret), secret=maybe_secret)
        # libpq: JDBC's ssl=true means sslmode=require.
        if keyword == "ssl" and value == "true":
            keyword, value = "sslmode", "require"
        if not opts.store(keyword, value):
            raise _Invalid(
                f"invalid URI query parameter: {opts.token(keyword)}",
                keywords.provider_hint(keyword),
            )


def without_provider_parameters(dsn: str) -> tuple[str, list[str]]:
    """DSN without the URI query parameters that providers add and libpq does not take
    (``keywords.PROVIDER_PARAMETERS``: Prisma's ``pgbouncer=true``, ``schema=``, …), and the
    names removed. A key=value string is returned as it is."""
    from urllib.parse import unquote

    if not dsn.startswith(URI_PREFIXES):
        return dsn, []
    p = dsn.index("//") + 2
    j = p
    while j < len(dsn) and dsn[j] not in "@/":
        j += 1
    # libpq: user info ends at the first '@' before the first '/'; a password may hold '?'.
    q = dsn.find("?", j + 1 if j < len(dsn) and dsn[j] == "@" else p)
    if q < 0:
        return dsn, []
    kept: list[str] = []
    removed: list[str] = []
    for item in dsn[q + 1 :].split("&"):
        name = unquote(item.partition("=")[0])
        if name in keywords.PROVIDER_PARAMETERS:
            removed.append(name)
        else:
            kept.append(item)
    if not removed:
        return dsn, []
    return dsn[:q] + ("?" + "&".join(kept) if kept else ""), removed


# --------------------------------------------------------------------------- building


def _shown_value(keyword: str, value: str, reveal: bool) -> str:
    return value if reveal or keyword not in SECRET_KEYWORDS else MASK


def _check_nul(params: Mapping[str, str]) -> None:
    for keyword, value in params.items():
        if "\x00" in value:
            raise ConfigError(f"{keyword}: a value with a NUL character cannot be passed to libpq")


def _enc(text: str) -> str:
    # RFC 3986: every reserved character escaped; never quote_plus ('+' stays '%2B').
    return quote(text, safe="")


def _is_socket(host: str) -> bool:
    # libpq: a host starting with "/" (or "@", Linux's abstract namespace) is a Unix socket.
    return host.startswith(("/", "@"))


def _enc_host(host: str) -> str:
    if ":" in host and not _is_socket(host):
        # an IPv6 address: brackets, its ':' kept (libpq and WHATWG URL parsers)
        return "[" + quote(host, safe=":") + "]"
    return _enc(host)  # a socket directory /var/run/postgresql becomes %2Fvar%2Frun%2Fpostgresql


#: A socket folder made only of these goes in the URI's authority; any other (Cloud SQL's
#: /cloudsql/proj:region:inst) goes in the query string, where every driver reads it.
_PLAIN_SOCKET = re.compile(r"[A-Za-z0-9._~/-]+")

#: Keywords node-postgres turns into a TLS demand (pg-connection-string: any of them sets
#: ``ssl``). libpq never uses TLS on a Unix socket, so a socket-only URI leaves them out.
_TLS_DEMANDS = ("sslmode", "sslcert", "sslkey", "sslrootcert", "sslnegotiation")


def to_uri(params: Mapping[str, str], reveal: bool = False) -> str:
    """A ``postgresql://`` URI of PARAMS (libpq keywords), every component percent-encoded.

    user, password, host(s), port(s) and dbname go where URIs keep them; every other keyword is a
    query parameter. A component that would be empty there (libpq ignores empty ones) goes to the
    query instead, so ``parse(to_uri(p)) == p`` — with one exception kept for readability: libpq
    reads a host list without ports (``postgresql://h1,h2``) back with ``port=","`` (every host on
    the default port 5432, where an unset port would let $PGPORT apply).

    Written for every driver that reads URIs (libpq, node-postgres): a socket folder holding a
    character outside ``A-Za-z0-9._~/-`` (Cloud SQL's ``/cloudsql/proj:region:inst``) goes in the
    query as ``?host=``, and a URI whose hosts are all Unix sockets carries no sslmode, sslcert,
    sslkey, sslrootcert or sslnegotiation: libpq ignores them on a socket, node-postgres would
    demand TLS for any of them.
    """
    _check_nul(params)
    rest = dict(params)
    query: list[tuple[str, str]] = []
    hosts_given = (params.get("host") or "").split(",")
    socket_only = bool(params.get("host")) and not params.get("hostaddr")
    socket_only = socket_only and all(_is_socket(h) for h in hosts_given)
    if socket_only:
        for keyword in _TLS_DEMANDS:
            rest.pop(keyword, None)
    in_query = any(_is_socket(h) and not _PLAIN_SOCKET.fullmatch(h) for h in hosts_given)

    userinfo = ""
    user = rest.pop("user", None)
    password = rest.pop("password", None)
    if user is not None and user != "":
        userinfo = _enc(user)
    elif user is not None:
        query.append(("user", ""))
    if password is not None:
        if not reveal:
            userinfo += ":" + MASK
        elif password != "":
            userinfo += ":" + _enc(password)
        else:
            query.append(("password", ""))
    if userinfo:
        userinfo += "@"

    netloc = ""
    host = rest.pop("host", None)
    port = rest.pop("port", None)
    hosts = host.split(",") if host is not None else []
    ports = port.split(",") if port is not None else []
    if host == "" or (in_query and host is not None):
        query.append(("host", host or ""))
        hosts = []
        if port is not None and port != "":
            query.append(("port", port))
            ports = []
    if port == "":
        query.append(("port", ""))
        ports = []
    if hosts and ports and len(ports) == len(hosts):
        netloc = ",".join(
            _enc_host(h) + (":" + _enc(pt) if pt else "")
            for h, pt in zip(hosts, ports, strict=True)
        )
    else:
        netloc = ",".join(_enc_host(h) for h in hosts)
        if len(ports) == 1 and not hosts:
            netloc += ":" + _enc(ports[0])
        elif ports:
            # One port for several hosts: libpq applies it to each; in the netloc it would
            # belong to the last host only, so it goes to the query.
            query.append(("port", ",".join(ports)))

    path = ""
    dbname = rest.pop("dbname", None)
    if dbname is not None and dbname != "":
        path = "/" + _enc(dbname)
    elif dbname is not None:
        query.append(("dbname", ""))

    query.extend(rest.items())
    text = "postgresql://" + userinfo + netloc + path
    if query:
        text += (
            ("" if path else "/")
            + "?"
            + "&".join(f"{k}={_enc(_shown_value(k, v, reveal))}" for k, v in query).replace(
                _enc(MASK), MASK
            )
        )
    return text


_RE_ESCAPE = re.compile(r"([\\'])")
_RE_SPACE = re.compile(r"\s")


def _param_escape(value: str) -> str:
    # Exactly psycopg.conninfo._param_escape (psycopg 3.1-3.3): backslash-escape \ and ', quote the
    # value when it holds white space, '' for the empty string.
    if not value:
        return "''"
    value = _RE_ESCAPE.sub(r"\\\1", value)
    if _RE_SPACE.search(value):
        value = "'" + value + "'"
    return value


def to_conninfo(params: Mapping[str, str], reveal: bool = False) -> str:
    """A libpq ``key=value`` string, byte for byte what ``psycopg.conninfo.make_conninfo("",
    **params)`` gives (proved by a test), without importing psycopg."""
    _check_nul(params)
    for keyword in params:
        if keyword not in LIBPQ_KEYWORDS:
            raise ConfigError(f"invalid connection option {keyword!r}")
    return " ".join(f"{k}={_param_escape(_shown_value(k, v, reveal))}" for k, v in params.items())


def env_vars(params: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """libpq environment variables for PARAMS, and the keywords libpq has no variable for.
    Secrets are included as they are (callers decide what to leave out)."""
    out: dict[str, str] = {}
    missing: list[str] = []
    for keyword, value in params.items():
        var = ENV_VARS.get(keyword)
        if var is None:
            missing.append(keyword)
        else:
            out[var] = value
    return out, missing


def to_env(params: Mapping[str, str], reveal: bool = False) -> str:
    """``export PGHOST=…`` lines, POSIX-shell quoted (``shlex.quote``), for
    ``eval "$(pgconnect url --format env --reveal)"``. Without REVEAL the password is left out
    (a comment says so): exporting ``****`` would only make logins fail."""
    _check_nul(params)
    lines: list[str] = []
    for keyword, value in params.items():
        var = ENV_VARS.get(keyword)
        if var is None:
            continue
        if keyword in SECRET_KEYWORDS and not reveal:
            lines.append(f"# {var}={MASK} (hidden; --reveal prints it)")
            continue
        lines.append(f"export {var}={shlex.quote(value)}")
    return "\n".join(lines)


def to_json(params: Mapping[str, str], reveal: bool = False) -> str:
    """A JSON object of libpq keyword -> value, secrets masked unless REVEAL."""
    return json.dumps(
        {k: _shown_value(k, v, reveal) for k, v in params.items()}, ensure_ascii=False
    )


FORMATS = {"uri": to_uri, "conninfo": to_conninfo, "env": to_env, "json": to_json}
