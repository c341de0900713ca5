"""Opening a real libpq connection (through psycopg) and classifying why one failed.

``classify()`` turns libpq's error text into the stage that failed (dns, tcp, tls, auth) and the
PgconnectError subclass with the exit status of SPEC §8 and a hint. Every message shown is redacted
first: libpq echoes malformed URIs whole, password included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pgconnect.conninfo import redact
from pgconnect.errors import NetworkError, PgconnectError, RejectedError, TLSError

if TYPE_CHECKING:
    import psycopg

APPLICATION_NAME = "pgconnect"


@dataclass(frozen=True)
class Failure:
    """Why a connection attempt failed: the stage, the error to raise, a one-line message."""

    stage: str  # dns | tcp | tls | auth
    error: PgconnectError


# (pattern, stage, error class, hint) — first match wins. Patterns match libpq 13–18 messages.
_RULES: list[tuple[str, str, type[PgconnectError], str | None]] = [
    (
        r"could not translate host name|Name or service not known|nodename nor servname|"
        r"Temporary failure in name resolution|No address associated with hostname",
        "dns",
        NetworkError,
        "check DB_HOST: the name does not resolve from this machine",
    ),
    (
        r"timeout expired|timed out",
        "tcp",
        NetworkError,
        "the server did not answer in time: check the host, port, firewall or security group, "
        "or raise --timeout",
    ),
    (
        r"Connection refused",
        "tcp",
        NetworkError,
        "nothing listens there: check DB_HOST and DB_PORT, and that the server is running",
    ),
    (
        r"No route to host|Network is unreachable|could not connect to server|"
        r"Connection reset by peer|server closed the connection unexpectedly",
        "tcp",
        NetworkError,
        "the server cannot be reached from here: check the network path and the port",
    ),
    (
        r"server does not support SSL, but SSL was required",
        "tls",
        TLSError,
        "the server does not accept TLS: enable ssl on the server, or use sslmode=prefer/disable "
        "only on a trusted network",
    ),
    (
        r"server certificate for .* does not match host name|does not match host name",
        "tls",
        TLSError,
        "the certificate names another host: connect with a host name it lists, or use "
        "sslmode=verify-ca to skip the host-name check",
    ),
    (
        r"root certificate file .* does not exist|could not read root certificate",
        "tls",
        TLSError,
        "set DB_SSLROOTCERT to the CA certificate that signed the server's certificate "
        "(or sslrootcert=system for public CAs)",
    ),
    (
        r"certificate verify failed|self[- ]signed certificate|unable to get local issuer|"
        r"certificate has expired|SSL error|SSL SYSCALL|tlsv1 alert|sslv3 alert|ssl handshake",
        "tls",
        TLSError,
        "the server's certificate is not signed by DB_SSLROOTCERT's CA: point DB_SSLROOTCERT at "
        "the right CA certificate",
    ),
    (
        r"no pg_hba\.conf entry .* no encryption",
        "auth",
        RejectedError,
        "the server only accepts TLS connections: use sslmode=require or stronger",
    ),
    (
        r"no pg_hba\.conf entry .* SSL encryption|no pg_hba\.conf entry .* GSS encryption",
        "auth",
        RejectedError,
        "the server refuses encrypted connections from here: check pg_hba.conf "
        "(hostnossl), or try sslmode=disable on a trusted network",
    ),
    (
        r"no pg_hba\.conf entry|pg_hba\.conf rejects",
        "auth",
        RejectedError,
        "pg_hba.conf has no rule for this host, user and database: ask the administrator",
    ),
    (
        r"password authentication failed|authentication failed|fe_sendauth: no password supplied|"
        r"password is too long|SCRAM",
        "auth",
        RejectedError,
        "check the password: pgconnect secret put DB_PASSWORD",
    ),
    (
        r"database \".*\" does not exist",
        "auth",
        RejectedError,
        "check DB_NAME: that database does not exist on the server",
    ),
    (
        r"role \".*\" does not exist",
        "auth",
        RejectedError,
        "check DB_USERNAME: that role does not exist on the server",
    ),
    (
        r"too many connections|remaining connection slots",
        "auth",
        RejectedError,
        "the server is out of connection slots: use a pooler (PgBouncer, the provider's pooled "
        "endpoint) or close idle connections",
    ),
]


def first_line(text: str) -> str:
    """libpq messages span lines ('connection to server at … failed: FATAL: …'); keep the gist."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return "connection failed"
    # Prefer the line with the server's or the socket's reason.
    for ln in reversed(lines):
        if "failed:" in ln:
            return ln
    return lines[-1]


def classify(exc: BaseException, secrets: tuple[str, ...] = ()) -> Failure:
    """Classify a libpq/psycopg connection failure; the message is redacted and one line."""
    text = redact(str(exc), *secrets)
    line = first_line(text)
    for pattern, stage, cls, hint in _RULES:
        if re.search(pattern, text, re.IGNORECASE):
            return Failure(stage, cls(line, hint=hint))
    return Failure("tcp", NetworkError(line))


def connect(
    params: Mapping[str, str],
    *,
    timeout: float | None = None,
    autocommit: bool = True,
    **overrides: str,
) -> psycopg.Connection[tuple[object, ...]]:
    """Open a connection with PARAMS (+ OVERRIDES); raise the classified PgconnectError.

    ``prepare_threshold=None``: no server-side prepared statements, so transaction-mode poolers
    (PgBouncer, Supabase 6543, Neon -pooler) work.
    """
    import psycopg

    kwargs = dict(params)
    kwargs.update(overrides)
    kwargs.setdefault("application_name", APPLICATION_NAME)
    if timeout is not None:
        kwargs["connect_timeout"] = str(max(1, round(timeout)))
    secrets = tuple(v for k, v in kwargs.items() if k in ("password", "sslpassword") and v)
    try:
        conninfo = psycopg.conninfo.make_conninfo("", **kwargs)
        return psycopg.connect(conninfo, autocommit=autocommit, prepare_threshold=None)
    except psycopg.OperationalError as exc:
        raise classify(exc, secrets).error from None
    except psycopg.ProgrammingError as exc:  # invalid conninfo (e.g. a bad keyword)
        from pgconnect.errors import ConfigError

        raise ConfigError(first_line(redact(str(exc), *secrets))) from None
