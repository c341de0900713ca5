"""The one table of libpq's connection keywords: every module that validates, masks, refuses or
builds a connection string reads it (``params``, ``conninfo``, ``resolve``, ``handoff``, ``query``).

Each row says what libpq says about the keyword (``PQconndefaults`` in libpq 18, and the libpq
documentation's "Parameter Key Words"): its environment variable, whether its value is a secret,
whether it names a file, what kind of value it takes, and the first libpq version that knows it
(an older libpq rejects it in a connection string and silently ignores its environment variable).
``tests/test_keywords.py`` checks the table against the libpq that psycopg links.

Pure Python: imported on every command's start-up path.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keyword:
    """One libpq connection keyword."""

    name: str
    #: libpq's environment variable for it (PQconndefaults' ``envvar``), or None.
    envvar: str | None = None
    #: a secret wherever it appears: refused in the project file, masked, redacted.
    secret: bool = False
    #: a file or folder path (relative ones are relative to the project file's folder).
    path: bool = False
    #: "text", "int", "bool" (libpq's 0/1), "enum" (one of CHOICES), "ports" (a list of ports).
    kind: str = "text"
    choices: tuple[str, ...] = ()
    #: the first libpq (and psql) major version that knows the keyword; None for "always".
    since: int | None = None


SSLMODES: tuple[str, ...] = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_PROTOCOL_VERSIONS = ("3.0", "3.2", "latest")

#: libpq 13–18. ``dispchar "*"`` in PQconndefaults marks password, sslpassword and
#: oauth_client_secret; the SCRAM keys (libpq 18, ``dispchar "D"``) are derived from the password
#: and let anyone who holds them log in as the role, so they are as secret.
TABLE: tuple[Keyword, ...] = (
    Keyword("host", "PGHOST"),
    Keyword("hostaddr", "PGHOSTADDR"),
    Keyword("port", "PGPORT", kind="ports"),
    Keyword("dbname", "PGDATABASE"),
    Keyword("user", "PGUSER"),
    Keyword("password", "PGPASSWORD", secret=True),
    Keyword("passfile", "PGPASSFILE", path=True),
    Keyword(
        "require_auth", "PGREQUIREAUTH", since=16
    ),  # a list of methods, each optionally negated with "!"
    Keyword(
        "channel_binding",
        "PGCHANNELBINDING",
        kind="enum",
        choices=("disable", "prefer", "require"),
        since=13,
    ),
    Keyword("connect_timeout", "PGCONNECT_TIMEOUT", kind="int"),
    Keyword("client_encoding", "PGCLIENTENCODING"),
    Keyword("options", "PGOPTIONS"),
    Keyword("application_name", "PGAPPNAME"),
    Keyword("fallback_application_name"),
    Keyword("keepalives", kind="bool"),
    Keyword("keepalives_idle", kind="int"),
    Keyword("keepalives_interval", kind="int"),
    Keyword("keepalives_count", kind="int"),
    Keyword("tcp_user_timeout", kind="int", since=12),
    Keyword(
        "replication",
        kind="enum",
        choices=("true", "false", "on", "off", "yes", "no", "1", "0", "database"),
    ),
    Keyword(
        "gssencmode",
        "PGGSSENCMODE",
        kind="enum",
        choices=("disable", "prefer", "require"),
        since=12,
    ),
    Keyword("sslmode", "PGSSLMODE", kind="enum", choices=SSLMODES),
    Keyword(
        "sslnegotiation",
        "PGSSLNEGOTIATION",
        kind="enum",
        choices=("postgres", "direct"),
        since=17,
    ),
    Keyword("sslcompression", "PGSSLCOMPRESSION", kind="bool"),
    Keyword("sslcert", "PGSSLCERT", path=True),
    Keyword("sslkey", "PGSSLKEY", path=True),
    Keyword("sslkeylogfile", path=True, since=18),
    Keyword("sslpassword", secret=True),
    Keyword(
        "sslcertmode",
        "PGSSLCERTMODE",
        kind="enum",
        choices=("disable", "allow", "require"),
        since=16,
    ),
    Keyword("sslrootcert", "PGSSLROOTCERT", path=True),
    Keyword("sslcrl", "PGSSLCRL", path=True),
    Keyword("sslcrldir", "PGSSLCRLDIR", path=True, since=14),
    Keyword("sslsni", "PGSSLSNI", kind="bool", since=14),
    Keyword("requirepeer", "PGREQUIREPEER"),
    Keyword(
        "ssl_min_protocol_version",
        "PGSSLMINPROTOCOLVERSION",
        kind="enum",
        choices=_TLS_VERSIONS,
        since=13,
    ),
    Keyword(
        "ssl_max_protocol_version",
        "PGSSLMAXPROTOCOLVERSION",
        kind="enum",
        choices=_TLS_VERSIONS,
        since=13,
    ),
    Keyword("min_protocol_version", "PGMINPROTOCOLVERSION", since=18),
    Keyword("max_protocol_version", "PGMAXPROTOCOLVERSION", since=18),
    Keyword("krbsrvname", "PGKRBSRVNAME"),
    Keyword("gsslib", "PGGSSLIB"),
    Keyword("gssdelegation", "PGGSSDELEGATION", kind="bool", since=16),
    Keyword("service", "PGSERVICE"),
    Keyword(
        "target_session_attrs",
        "PGTARGETSESSIONATTRS",
        kind="enum",
        choices=("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    ),
    Keyword(
        "load_balance_hosts",
        "PGLOADBALANCEHOSTS",
        kind="enum",
        choices=("disable", "random"),
        since=16,
    ),
    Keyword("scram_client_key", secret=True, since=18),
    Keyword("scram_server_key", secret=True, since=18),
    Keyword("oauth_issuer", since=18),
    Keyword("oauth_client_id", since=18),
    Keyword("oauth_client_secret", secret=True, since=18),
    Keyword("oauth_scope", since=18),
)

BY_NAME: dict[str, Keyword] = {k.name: k for k in TABLE}

NAMES: frozenset[str] = frozenset(BY_NAME)
SECRET: frozenset[str] = frozenset(k.name for k in TABLE if k.secret)
PATHS: frozenset[str] = frozenset(k.name for k in TABLE if k.path)
#: keyword -> libpq environment variable.
ENV_VARS: dict[str, str] = {k.name: k.envvar for k in TABLE if k.envvar is not None}
#: libpq environment variable -> keyword.
BY_ENV_VAR: dict[str, str] = {v: k for k, v in ENV_VARS.items()}


def of_kind(kind: str) -> frozenset[str]:
    """The keywords whose values are of KIND."""
    return frozenset(k.name for k in TABLE if k.kind == kind)


def choices() -> dict[str, tuple[str, ...]]:
    """Keyword -> the values libpq accepts, for the enumerated keywords."""
    return {k.name: k.choices for k in TABLE if k.kind == "enum"}


#: Values that need a newer libpq than their keyword does: (keyword, value) -> major version.
#: libpq 16 reads ``sslrootcert=system`` as "the system's trusted roots"; an older one looks for
#: a file named ``system``. target_session_attrs beyond any/read-write came in libpq 14.
VALUE_SINCE: dict[tuple[str, str], int] = {
    ("sslrootcert", "system"): 16,
    ("target_session_attrs", "read-only"): 14,
    ("target_session_attrs", "primary"): 14,
    ("target_session_attrs", "standby"): 14,
    ("target_session_attrs", "prefer-standby"): 14,
}


#: Values that ask for what an older libpq does anyway: a libpq that ignores them loses nothing.
SAME_AS_BEFORE: frozenset[tuple[str, str]] = frozenset(
    {
        ("sslnegotiation", "postgres"),
        ("sslcertmode", "allow"),
        ("load_balance_hosts", "disable"),
        ("gssdelegation", "0"),
    }
)


def needs(keyword: str, value: str) -> int | None:
    """The libpq major version KEYWORD=VALUE needs, or None when every supported one has it
    (or an older libpq that ignores it does the same thing anyway)."""
    if (keyword, value) in SAME_AS_BEFORE:
        return None
    row = BY_NAME.get(keyword)
    since = row.since if row is not None else None
    by_value = VALUE_SINCE.get((keyword, value))
    if by_value is not None and (since is None or by_value > since):
        return by_value
    return since


def described(keyword: str, value: str) -> str:
    """How a requirement is named in messages: ``require_auth`` or ``sslrootcert=system``."""
    return f"{keyword}={value}" if (keyword, value) in VALUE_SINCE else keyword


#: Connection-string parameters that drivers and providers put in URLs and libpq does not take:
#: name -> what it means where it comes from, and what to do instead with libpq.
PROVIDER_PARAMETERS: dict[str, str] = {
    "pgbouncer": "Prisma's flag for PgBouncer in transaction mode (Supabase's pooler URLs carry "
    "it); it turns off Prisma's prepared statements, and pgconnect never uses them anyway",
    "schema": "Prisma's default schema; with libpq set options=-csearch_path=NAME "
    "(DB_OPTIONS) instead",
    "connection_limit": "Prisma's connection-pool size; a single libpq connection has none",
    "pool_timeout": "Prisma's wait for a pooled connection; libpq has no pool",
    "socket_timeout": "Prisma's per-query socket timeout; use statement_timeout "
    "(pgconnect query --timeout) or DB_TCP_USER_TIMEOUT instead",
    "statement_cache_size": "Prisma's prepared-statement cache size; pgconnect prepares none",
    "sslaccept": "Prisma's certificate check switch; with libpq choose sslmode "
    "(verify-full checks the certificate, require does not)",
    "sslidentity": "Prisma's PKCS#12 client identity; libpq takes sslcert and sslkey PEM files",
    "currentSchema": "JDBC's search path; with libpq set options=-csearch_path=NAME instead",
    "prepareThreshold": "JDBC's prepared-statement threshold; pgconnect prepares none",
}


def provider_hint(name: str) -> str | None:
    """The hint for a connection-string parameter libpq does not take, when pgconnect knows it."""
    meaning = PROVIDER_PARAMETERS.get(name)
    if meaning is None:
        return None
    return (
        f"{name} is {meaning}. libpq does not take it: remove ?{name}=… from the connection "
        "string (pgconnect init --from-url removes it for you)"
    )
