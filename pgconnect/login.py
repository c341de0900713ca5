"""Opening a real libpq connection (through psycopg) and classifying why one failed.

``classify()`` turns libpq's error text into the stage that failed (dns, tcp, tls, auth) and the
PgconnectError subclass with its exit status (docs/diagnosis.md) and a hint. Every message shown is redacted
first: libpq echoes malformed URIs whole, password included.

``login()`` drives libpq's own non-blocking connection state machine (``PQconnectStart`` /
``PQconnectPoll``, through ``psycopg.pq``) under a deadline the caller chooses, and reports the
stage libpq is in as it goes — so a timeout can say where the time ran out. libpq's own
``connect_timeout`` is whole seconds, per host and per attempt (``allow``/``prefer`` may try
twice), and PQconnectPoll ignores it: the deadline here is the only clock.
"""

from __future__ import annotations

import re
import select
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pgconnect import diagnosis, keywords
from pgconnect.connstr import redact
from pgconnect.errors import (
    ConfigError,
    NetworkError,
    PgconnectError,
    QueryError,
    TLSError,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg import pq

APPLICATION_NAME = "pgconnect"

#: Handed to libpq as sslpassword when none is configured, so OpenSSL never prompts.
NO_SSLPASSWORD = "pgconnect-no-sslpassword-configured"

#: The stages of a connection, in order (docs/check.md).
STAGES: tuple[str, ...] = ("dns", "tcp", "tls", "auth", "query", "ready")


@dataclass(frozen=True)
class Failure:
    """Why a connection attempt failed: the stage, the error to raise, a one-line message."""

    stage: str  # dns | tcp | tls | auth | query
    error: PgconnectError


class ConnectFailed(Exception):
    """A login attempt did not succeed; ``failure`` says at which stage and why (classified)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error.message)
        self.failure = failure


_ATTEMPT = re.compile(r"^connection to server (at|on socket) ")


def _attempts(text: str) -> list[str]:
    """libpq's message, one entry per attempt ('connection to server … failed: …' + detail)."""
    out: list[str] = []
    for raw in text.strip().splitlines():
        line = raw.strip()
        if not line:
            continue
        if out and not _ATTEMPT.match(line):
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


def _reason(attempt: str) -> str:
    head = attempt.splitlines()[0]
    return head.split(" failed: ", 1)[1] if " failed: " in head else head


def first_line(text: str) -> str:
    """libpq messages span lines ('connection to server at … failed: FATAL: …'); keep the gist."""
    attempts = _attempts(text)
    if not attempts:
        return "connection failed"
    return attempts[-1].splitlines()[0]


def classify(
    exc: BaseException | str,
    secrets: tuple[str, ...] = (),
    *,
    reached: str | None = None,
    params: Mapping[str, str] | None = None,
) -> Failure:
    """Classify a libpq/psycopg connection failure; the message is redacted and one line.

    The rules are ``diagnosis.RULES`` (one per family of libpq messages). REACHED is the stage
    libpq was in when it failed (from ``login()``), used where the message alone does not say (a
    dropped connection). PARAMS (the connection's keywords, optional) sharpen the few hints that
    depend on them (sslnegotiation=direct). When libpq tried more than once (several hosts or
    addresses, or allow/prefer's second attempt), the line that decided the classification comes
    first and the other attempts' reasons follow in parentheses.
    """
    text = redact(str(exc), *secrets)
    attempts = _attempts(text) or ["connection failed"]
    for rule in diagnosis.RULES:
        rx = re.compile(rule.pattern, re.IGNORECASE)
        matched = next((a for a in attempts if rx.search(a)), None)
        if matched is None:
            continue
        line = matched.splitlines()[0]
        others = [
            _reason(a) for a in attempts if a is not matched and _reason(a) != _reason(matched)
        ]
        if others:
            line += " (other attempt: " + "; ".join(dict.fromkeys(others)) + ")"
        hint = rule.hint
        # libpq adds 'password retrieved from file "…"' when the rejected password came from a
        # passfile (fe-connect.c): the fix is in that file, not in the keyring.
        passfile = re.search(r'password retrieved from file "([^"]*)"', matched)
        if passfile and rule.hint == diagnosis.RULES_PASSWORD_HINT:
            hint = f"the password came from {passfile.group(1)}: fix or remove its line there"
        stage = rule.stage
        direct = (params or {}).get("sslnegotiation") == "direct"
        if stage is None:  # a dropped connection: where libpq was decides what it means
            stage = reached or "tcp"
            if stage in ("tls", "tcp") and rule.dropped and direct:
                return Failure("tls", TLSError(line, hint=diagnosis.DIRECT_TO_OLD_SERVER))
            if stage == "tls" and rule.dropped:
                # dropped during the handshake: the TLS requirement was not met
                return Failure(stage, TLSError(line, hint=diagnosis.DROPPED_IN_TLS))
        return Failure(stage, rule.error(line, hint=hint))
    return Failure(reached or "tcp", NetworkError(attempts[-1].splitlines()[0]))


def _conninfo(
    params: Mapping[str, str], overrides: Mapping[str, str]
) -> tuple[str, tuple[str, ...]]:
    import psycopg

    kwargs = dict(params)
    kwargs.update(overrides)
    kwargs.setdefault("application_name", APPLICATION_NAME)
    if not kwargs.get("sslpassword") and not kwargs.get("service"):
        # libpq installs its passphrase callback only for a non-empty sslpassword; without one,
        # OpenSSL asks "Enter PEM pass phrase:" on the terminal for an encrypted key (twice per
        # attempt). A dummy makes an encrypted key fail with "bad decrypt" instead, which
        # diagnosis classifies (exit 3). Not with a service: its own sslpassword must win.
        kwargs["sslpassword"] = NO_SSLPASSWORD
    secrets = tuple(
        v for k, v in kwargs.items() if k in keywords.SECRET and v and v != NO_SSLPASSWORD
    )
    try:
        return psycopg.conninfo.make_conninfo("", **kwargs), secrets
    except psycopg.ProgrammingError as exc:  # invalid conninfo (e.g. a bad keyword)
        raise ConfigError(first_line(redact(str(exc), *secrets))) from None


def check_conninfo(params: Mapping[str, str]) -> None:
    """Raise ConfigError if libpq would refuse PARAMS as a connection string (bad keyword)."""
    _conninfo(params, {})


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

    if timeout is not None:
        overrides = {**overrides, "connect_timeout": str(max(1, round(timeout)))}
    conninfo, secrets = _conninfo(params, overrides)
    try:
        return psycopg.connect(conninfo, autocommit=autocommit, prepare_threshold=None)
    except psycopg.OperationalError as exc:
        raise classify(exc, secrets, params={**params, **overrides}).error from None


# --------------------------------------------------------------------------- login under a deadline


@dataclass
class StageClock:
    """Which stage a libpq attempt is in, and how long it spent in each (milliseconds).

    libpq's states map to stages: STARTED is the TCP connect; SSL_STARTUP (SSLRequest and the
    handshake) is tls; AWAITING_RESPONSE and later (startup packet, authentication, the
    server's parameters) are auth. MADE ("connected, sending") is tls when the mode starts with
    an SSLRequest and auth otherwise or once TLS is up. allow/prefer may go round twice.
    """

    sslmode: str
    stage: str = "tcp"
    on_stage: Callable[[str], None] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: libpq's view of the target once the attempt started: host, port, user, dbname.
    endpoint: dict[str, str] = field(default_factory=dict)
    _mark: float = field(default_factory=time.monotonic)

    def enter(self, stage: str) -> None:
        now = time.monotonic()
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + (now - self._mark) * 1000
        self._mark = now
        if stage != self.stage:
            self.stage = stage
            if self.on_stage is not None:
                self.on_stage(stage)

    def observe(self, status: int) -> None:
        from psycopg.pq import ConnStatus as S

        if status in (S.STARTED, S.NEEDED):
            self.enter("tcp")
        elif status in (S.SSL_STARTUP, S.GSS_STARTUP):
            self.enter("tls")
        elif status == S.MADE:
            tls_first = self.sslmode not in ("disable", "allow")
            self.enter("tls" if tls_first and self.stage == "tcp" else "auth")
        elif status in (
            S.AWAITING_RESPONSE,
            S.AUTH_OK,
            S.SETENV,
            S.CONSUME,
            S.CHECK_WRITABLE,
            S.CHECK_TARGET,
            S.CHECK_STANDBY,
        ):
            self.enter("auth")
        elif status == S.OK:
            self.enter(self.stage)  # close the running stage's time

    def finish(self) -> None:
        self.enter(self.stage)


_WAITING_FOR = {
    "dns": "resolving the host name",
    "tcp": "establishing the TCP connection",
    "tls": "waiting for the server's answer to TLS (SSLRequest and handshake)",
    "auth": "waiting for the server to complete the login",
    "query": "waiting for the answer to SELECT 1",
}

_TIMEOUT_HINTS = {
    "dns": "the DNS server does not answer: check the machine's resolver, or raise --timeout",
    "tcp": "packets are dropped on the way (firewall, security group, wrong host or port): check "
    "DB_HOST and DB_PORT and the network path, or raise --timeout",
    "tls": "the port accepts connections but nothing answers like PostgreSQL: check that DB_PORT "
    "is the server's (or its pooler's), or raise --timeout",
    "auth": "the port accepts connections but nothing answers like PostgreSQL: check that DB_PORT "
    "is the server's (or its pooler's), or raise --timeout",
    "query": "the server logged in but did not answer SELECT 1: it may be overloaded or blocked, "
    "or a pooler has no free server connection; raise --timeout to wait longer",
}


def timed_out(stage: str, timeout: float, where: str | None = None) -> Failure:
    """The Failure for a deadline that ran out during STAGE (any timeout is a network failure)."""
    prefix = f"connection to server {where} " if where else ""
    message = f"{prefix}timed out after {timeout:g} s {_WAITING_FOR.get(stage, 'connecting')}"
    return Failure(stage, NetworkError(message, hint=_TIMEOUT_HINTS.get(stage)))


def _where(pgconn: pq.abc.PGconn) -> str | None:
    import psycopg

    try:
        host = pgconn.host.decode(errors="replace")
        port = pgconn.port.decode(errors="replace")
    except psycopg.OperationalError:  # the connection is already closed
        return None
    if host.startswith("/") or host.startswith("@"):
        return f'on socket "{host}" port {port}'
    return f'at "{host}", port {port}'


def wait_socket(fileno: int, *, write: bool, deadline: float) -> bool:
    """Wait until FILENO is readable (or writable); False when the deadline passes first."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    try:
        r, w, _ = select.select([] if write else [fileno], [fileno] if write else [], [], remaining)
    except InterruptedError:
        return True  # poll again; the caller re-checks the deadline
    return bool(r or w)


def login(
    params: Mapping[str, str],
    *,
    deadline: float,
    timeout: float,
    clock: StageClock | None = None,
    **overrides: str,
) -> pq.abc.PGconn:
    """Log in with PARAMS (+ OVERRIDES) through libpq's non-blocking API before DEADLINE.

    Returns the connected ``PGconn``; raises ConnectFailed with libpq's own verdict, classified,
    or a timeout at the stage libpq was in. TIMEOUT is only for the message. CLOCK (optional)
    records the stages as they pass.
    """
    from psycopg import pq

    conninfo, secrets = _conninfo(params, overrides)
    merged = {**params, **overrides}
    clock = clock or StageClock(overrides.get("sslmode") or params.get("sslmode") or "prefer")
    pgconn = pq.PGconn.connect_start(conninfo.encode())
    try:
        clock.endpoint = _endpoint(pgconn)
        # libpq's docs: just after PQconnectStart, behave as if PQconnectPoll had returned
        # PGRES_POLLING_WRITING — wait until the socket is writable (the TCP connect is done)
        # before the first poll; polling earlier makes libpq take a pending connect for made.
        polled: int = pq.PollingStatus.WRITING
        while True:
            clock.observe(pgconn.status)
            if pgconn.status == pq.ConnStatus.BAD:
                raise ConnectFailed(
                    classify(_error(pgconn), secrets, reached=clock.stage, params=merged)
                )
            write = polled == pq.PollingStatus.WRITING
            if not wait_socket(pgconn.socket, write=write, deadline=deadline):
                raise ConnectFailed(timed_out(clock.stage, timeout, _where(pgconn)))
            polled = pgconn.connect_poll()
            clock.observe(pgconn.status)
            if polled == pq.PollingStatus.OK:
                clock.finish()
                return pgconn
            if polled == pq.PollingStatus.FAILED:
                raise ConnectFailed(
                    classify(_error(pgconn), secrets, reached=clock.stage, params=merged)
                )
    except BaseException:
        clock.finish()
        pgconn.finish()
        raise


def _endpoint(pgconn: pq.abc.PGconn) -> dict[str, str]:
    import psycopg

    out: dict[str, str] = {}
    for key, getter in (("host", "host"), ("port", "port"), ("user", "user"), ("dbname", "db")):
        try:
            out[key] = getattr(pgconn, getter).decode("utf-8", "replace")
        except psycopg.OperationalError:  # a PGconn that failed at once has no options
            continue
    return out


def _error(pgconn: pq.abc.PGconn) -> str:
    return pgconn.error_message.decode("utf-8", "replace")


def query(
    pgconn: pq.abc.PGconn, sql: str, *, deadline: float, timeout: float
) -> list[tuple[str | None, ...]]:
    """Run SQL (simple protocol, text results) on a connected PGCONN before DEADLINE.

    Raises QueryError with the server's message for an SQL error, ConnectFailed (stage query)
    for a lost connection or the deadline.
    """
    import psycopg
    from psycopg import pq

    def lost() -> ConnectFailed:
        text = _error(pgconn).strip() or "the connection to the server was lost"
        return ConnectFailed(classify(text, reached="query"))

    pgconn.nonblocking = 1
    try:
        pgconn.send_query(sql.encode())
        while pgconn.flush() == 1:
            if not wait_socket(pgconn.socket, write=True, deadline=deadline):
                raise ConnectFailed(timed_out("query", timeout, _where(pgconn)))
        rows: list[tuple[str | None, ...]] = []
        error: str | None = None
        while True:
            while pgconn.is_busy():
                if not wait_socket(pgconn.socket, write=False, deadline=deadline):
                    raise ConnectFailed(timed_out("query", timeout, _where(pgconn)))
                pgconn.consume_input()
            res = pgconn.get_result()
            if res is None:
                break
            if res.status == pq.ExecStatus.TUPLES_OK:
                rows = [
                    tuple(
                        None if (v := res.get_value(r, c)) is None else bytes(v).decode()
                        for c in range(res.nfields)
                    )
                    for r in range(res.ntuples)
                ]
            elif res.status in (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.NONFATAL_ERROR):
                msg = res.error_message.decode("utf-8", "replace").strip()
                if error is None:
                    error = msg.splitlines()[0] if msg else "the server reported an error"
        if pgconn.status == pq.ConnStatus.BAD:
            raise lost()
        if error is not None:
            raise QueryError(error)
        return rows
    except psycopg.OperationalError:
        raise lost() from None
