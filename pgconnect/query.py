"""Running SQL: statements in order, results streamed to a ``render.Writer``, cancelled on the way out.

How each statement runs (the fast paths let the server do the formatting, so Python only moves
bytes and memory stays flat whatever the row count):

- a plain query (SELECT, VALUES, TABLE, WITH … SELECT) without parameters:
  csv/tsv/plain → ``COPY (<query>) TO STDOUT WITH (<format>)``; json/jsonl → described with
  ``SELECT * FROM (<query>) r LIMIT 0`` (planned, not run), then ``COPY (SELECT "1", to_json("2"),
  … FROM (<query>) r("1", "2", …)) TO STDOUT`` with keys and quotes put in by
  ``pgconnect.jsoncopy`` (cheaper for the server than row_to_json);
- a plain query with ``-p`` parameters (COPY cannot bind them), or for a table: a cursor
  (``DECLARE … NO SCROLL CURSOR`` + ``FETCH FORWARD n``) inside a transaction — a transaction keeps
  a transaction-mode pooler on one server connection, so no session state is needed. Each FETCH
  starts with a comment holding the statement, so pg_stat_activity shows the SQL being read;
- anything else (INSERT … RETURNING, SHOW, EXPLAIN, DDL, a user's ``COPY … TO STDOUT``): as written.

If the server refuses the wrapping itself (say ``COPY (SELECT … INTO …)``), the statement is run as
written instead; analysis errors happen before anything executes, so nothing runs twice.

Connections are made with ``pgconnect.login.connect`` (``prepare_threshold=None``: no
server-side prepared statements, so PgBouncer in transaction mode works). ``--read-only`` and
``--timeout`` run every statement in one transaction started with ``BEGIN READ ONLY`` and
``set_config('statement_timeout', …, true)`` (transaction-local: a session ``SET`` would leak to
other clients of a transaction-mode pooler).

Interruptions: SIGINT/SIGTERM arrive as KeyboardInterrupt (the CLI maps SIGTERM to a subclass),
psycopg sends a cancel request for the running query, and ``run`` cancels again on its way out if
the connection is still busy, then closes it. A closed stdout (BrokenPipeError from the writer)
takes the same way out. Nothing here prints: errors are raised as ``QueryError`` with the server's
message, SQLSTATE, detail, hint and a caret under the error position.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pgconnect import copyout, keywords, render, sqltext
from pgconnect.connstr import redact
from pgconnect.errors import NetworkError, PgconnectError, QueryError, UsageError
from pgconnect.sqltext import Statement

if TYPE_CHECKING:
    import psycopg

FETCH_SIZE = 2000  # rows per FETCH from a cursor
APPLICATION_NAME = "pgconnect query"
CURSOR = "pgconnect_rows"
SAVEPOINT = "pgconnect_try"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Request:
    """What to run and how."""

    sql: str
    bindings: Mapping[str, str] | None = None  # None: no -p given (placeholders still need one)
    read_only: bool = False
    timeout: float | None = None  # seconds → statement_timeout

    @property
    def in_transaction(self) -> bool:
        return self.read_only or self.timeout is not None


@dataclass
class Plan:
    """The statements to run, checked before any connection is made."""

    statements: list[Statement]
    unused_bindings: list[str] = field(default_factory=list)


class Events(Protocol):
    """What ``run`` reports while it works (the CLI prints these on stderr)."""

    def notice(self, severity: str, message: str) -> None: ...

    def result(self, status: str | None, written: render.Written | None) -> None: ...


# --------------------------------------------------------------------------- before connecting


def parse_bindings(items: Sequence[str]) -> dict[str, str]:
    """``-p NAME=VALUE`` options → {NAME: VALUE}; a malformed or repeated one is a usage error."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(
                f"-p {item!r}: expected NAME=VALUE", hint="e.g. -p id=42 for %(id)s in the SQL"
            )
        if not _NAME.match(name):
            raise UsageError(f"-p {name!r}: a parameter name is letters, digits and _")
        if name in out:
            raise UsageError(f"-p {name} is given twice")
        out[name] = value
    return out


def prepare(request: Request) -> Plan:
    """Split and check the SQL: empty input, a NUL byte, psql meta-commands, parameters without
    a value, COPY FROM STDIN, and transaction control inside --read-only/--timeout are usage
    errors."""
    nul = request.sql.find("\x00")
    if nul >= 0:
        # libpq sends SQL as a C string: everything after the NUL would be dropped silently, and
        # "delete from t\0 where id = 5" would delete every row.
        line, _, column = sqltext.locate(request.sql, nul)
        raise UsageError(
            f"the SQL contains a NUL byte (line {line}, column {column + 1}); PostgreSQL would "
            "not see what follows it, so nothing was run"
        )
    statements = sqltext.split(request.sql)
    if not statements:
        raise UsageError(
            "no SQL to run (the input is empty or only comments)",
            hint='give it as an argument, with -f FILE, or on stdin: pgconnect query "select 1"',
        )
    for stmt in statements:
        meta = sqltext.meta_command(stmt)
        if meta is not None:
            line, _, _ = sqltext.locate(stmt.sql, stmt.meta or 0)
            raise UsageError(
                f"{meta} (line {line}) is a psql meta-command, not SQL; pgconnect query runs SQL only",
                hint="run it with psql: pgconnect psql -c '\\dt', or query the catalog "
                "(e.g. select * from information_schema.tables)",
            )
        if stmt.copy_direction() == "in":
            raise UsageError(
                "COPY … FROM STDIN is not supported by pgconnect query",
                hint="use psql's \\copy (pgconnect psql -c '\\copy …'), or COPY FROM a server file",
            )
        if request.in_transaction and stmt.controls_transaction():
            raise UsageError(
                f"{stmt.verb.upper()} cannot be used with --read-only or --timeout: pgconnect "
                "runs every statement in one transaction of its own",
                hint="drop the transaction statements, or leave out --read-only/--timeout",
            )
    # With or without -p: a placeholder never reaches the server as text (sqltext's rule).
    ph = sqltext.unbound(statements, request.bindings)
    if ph is not None:
        line, _, _ = sqltext.locate(request.sql, ph.start)
        raise UsageError(
            f"%({ph.name})s (line {line}) has no value",
            hint=f"pass it with -p {ph.name}=VALUE (or write %% for a literal %)",
        )
    used = sqltext.used_names(statements)
    unused = [] if request.bindings is None else sorted(set(request.bindings) - used)
    return Plan(statements, unused)


# --------------------------------------------------------------------------- what is sent


@dataclass
class Sent:
    """A statement as sent, and how to map a server error position back to the user's text."""

    stmt: Statement
    body: str  # the statement with %(name)s → $n and %% → % (when -p is given)
    args: list[str] | None
    anchors: list[tuple[int, int]]  # (offset in body, offset in the whole SQL)
    prefix: str = ""
    suffix: str = ""

    @property
    def text(self) -> str:
        return self.prefix + self.body + self.suffix

    def wrapped(self, prefix: str, suffix: str) -> Sent:
        return Sent(self.stmt, self.body, self.args, self.anchors, prefix, suffix)

    def source_offset(self, position: int) -> int | None:
        """The server's 1-based character position → offset in the whole SQL (None if the
        position falls in pgconnect's wrapping)."""
        off = position - 1 - len(self.prefix)
        if off < 0 or off > len(self.body):
            return None
        best = self.anchors[0]
        for anchor in self.anchors:
            if anchor[0] <= off:
                best = anchor
            else:
                break
        return min(best[1] + (off - best[0]), self.stmt.end)


def convert(stmt: Statement, bindings: Mapping[str, str] | None) -> Sent:
    """The statement's text with psycopg-style placeholders turned into $n (values bound by the
    server, never pasted into the SQL) and %% into %."""
    sql = stmt.sql
    if not (stmt.placeholders or stmt.percents):
        return Sent(stmt, stmt.text, None, [(0, stmt.start)])
    bindings = bindings or {}  # prepare() made sure every placeholder has a value
    edits: list[tuple[int, int, str | None]] = [
        (p.start, p.end, p.name) for p in stmt.placeholders
    ] + [(q, q + 2, None) for q in stmt.percents]
    edits.sort()
    numbers: dict[str, int] = {}
    args: list[str] = []
    pieces: list[str] = []
    anchors = [(0, stmt.start)]
    pos = stmt.start
    length = 0
    for start, end, name in edits:
        pieces.append(sql[pos:start])
        length += start - pos
        if name is None:
            rep = "%"
        else:
            if name not in numbers:
                args.append(bindings[name])
                numbers[name] = len(args)
            rep = f"${numbers[name]}"
        anchors.append((length, start))
        pieces.append(rep)
        length += len(rep)
        anchors.append((length, end))
        pos = end
    pieces.append(sql[pos : stmt.end])
    return Sent(stmt, "".join(pieces), args or None, anchors)


# --------------------------------------------------------------------------- errors


#: SQLSTATEs that say the session is gone rather than that the SQL failed: admin_shutdown
#: (57P01: a fast or smart restart, or pg_terminate_backend), crash_shutdown, cannot_connect_now;
#: and class 08, connection exception.
_SESSION_GONE = ("57P01", "57P02", "57P03")


def connection_lost(exc: Exception) -> bool:
    """Did EXC end the connection (server restart, terminated backend, network) rather than
    report an error in the SQL? A statement timeout or a cancel (57014) is the latter."""
    import psycopg

    sqlstate = getattr(getattr(exc, "diag", None), "sqlstate", None) or getattr(
        exc, "sqlstate", None
    )
    if sqlstate:
        return sqlstate in _SESSION_GONE or sqlstate.startswith("08")
    # libpq's own "server closed the connection unexpectedly", "SSL SYSCALL error: EOF", …
    return isinstance(exc, psycopg.OperationalError)


def query_error(
    exc: Exception, sent: Sent | None, secrets: Sequence[str] = ()
) -> QueryError | NetworkError:
    """A psycopg error → QueryError: message, caret line, DETAIL, CONTEXT, SQLSTATE, hint; or,
    when the connection itself was lost mid-query, NetworkError (exit 5: a script may retry)."""
    diag = getattr(exc, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(exc)).strip()
    if connection_lost(exc):
        sqlstate = getattr(diag, "sqlstate", None) or getattr(exc, "sqlstate", None)
        first = message.splitlines()[0] if message else type(exc).__name__
        return NetworkError(
            redact(
                f"the connection to the server was lost during the query: {first}"
                + (f" (SQLSTATE {sqlstate})" if sqlstate else ""),
                *secrets,
            ),
            hint="the server restarted or ended this session (pg_terminate_backend, failover, "
            "network); the statement that was running may not have completed",
        )
    details: list[str] = []
    position = getattr(diag, "statement_position", None)
    if position and sent is not None:
        try:
            offset = sent.source_offset(int(position))
        except ValueError:
            offset = None
        if offset is not None:
            details += caret_lines(sent.stmt.sql, offset)
    detail = getattr(diag, "message_detail", None)
    if detail:
        details += [f"DETAIL: {ln}" for ln in detail.splitlines()]
    context = getattr(diag, "context", None)
    if context:
        details += [f"CONTEXT: {ln}" for ln in context.splitlines()]
    sqlstate = getattr(diag, "sqlstate", None) or getattr(exc, "sqlstate", None)
    if sqlstate:
        details.append(f"SQLSTATE: {sqlstate}")
    hint = getattr(diag, "message_hint", None)
    if sqlstate == "57014" and "statement timeout" in message and not hint:
        hint = "the statement ran longer than --timeout allows"
    return QueryError(
        redact(message, *secrets),
        hint=redact(hint, *secrets) if hint else None,
        details=[redact(d, *secrets) for d in details],
    )


def caret_lines(sql: str, offset: int, width: int = 100) -> list[str]:
    """psql's ``LINE n: …`` and a caret under the error position (long lines are windowed)."""
    line_no, line, col = sqltext.locate(sql, offset)
    line = line.replace("\t", " ")
    start = 0
    if len(line) > width:
        start = max(0, min(col - width // 2, len(line) - width))
        end = start + width
        shown = ("..." if start else "") + line[start:end] + ("..." if end < len(line) else "")
        col = col - start + (3 if start else 0)
    else:
        shown = line
    label = f"LINE {line_no}: "
    return [label + shown, " " * (len(label) + col) + "^"]


def fetch_statement(sql: str, limit: int = 800) -> str:
    """The FETCH that reads a cursor, led by a comment holding the user's SQL: pg_stat_activity
    (and the server log) show what is running, not only ``FETCH FORWARD … FROM pgconnect_rows``.

    PostgreSQL's block comments nest, so ``/*`` and ``*/`` inside the SQL are pulled apart; a
    long statement is shortened so that the FETCH itself survives ``track_activity_query_size``
    (1024 bytes by default)."""
    text = sql.strip().replace("/*", "/ *").replace("*/", "* /")
    if len(text) > limit:
        text = text[:limit] + " …"
    return f"/* pgconnect query: {text} */ FETCH FORWARD {FETCH_SIZE} FROM {CURSOR}"


def _wrapping_failed(exc: Exception, sent: Sent) -> bool:
    """Did the server refuse pgconnect's wrapping rather than the user's SQL?"""
    diag = getattr(exc, "diag", None)
    sqlstate = getattr(diag, "sqlstate", None) or ""
    if sqlstate == "0A000":  # feature_not_supported: COPY (SELECT INTO), DML in WITH…
        return True
    if not sqlstate.startswith("42"):
        return False
    position = getattr(diag, "statement_position", None)
    if not position:
        return True
    try:
        return sent.source_offset(int(position)) is None
    except ValueError:
        return True


# --------------------------------------------------------------------------- running


def run(
    params: Mapping[str, str],
    request: Request,
    plan: Plan,
    writer: render.Writer,
    events: Events,
    *,
    connect_timeout: float | None = None,
) -> None:
    """Connect, run every statement of PLAN, write results with WRITER; raise QueryError."""
    from pgconnect.login import connect

    # Output is always UTF-8: COPY's bytes go out as the server encodes them, so the session's
    # client encoding is fixed rather than taken from DB_CLIENT_ENCODING or PGCLIENTENCODING.
    overrides = {"client_encoding": "UTF8"}
    if not params.get("application_name"):
        # What a DBA sees in pg_stat_activity next to the statement (DB_APPLICATION_NAME wins).
        overrides["application_name"] = APPLICATION_NAME
    secrets = tuple(v for k, v in params.items() if k in keywords.SECRET and v)
    conn = connect(params, timeout=connect_timeout, autocommit=True, **overrides)
    try:

        def on_notice(diag: psycopg.errors.Diagnostic) -> None:
            events.notice(diag.severity or "NOTICE", redact(diag.message_primary or "", *secrets))

        conn.add_notice_handler(on_notice)
        runner = _Runner(conn, request, writer, events, secrets)
        runner.run(plan.statements)
        writer.finish()
    finally:
        close(conn)


def close(conn: psycopg.Connection[Any]) -> None:
    """Cancel whatever still runs on CONN (an interruption, a closed stdout), then close it."""
    import psycopg
    from psycopg import pq

    try:
        if not conn.closed and conn.pgconn.transaction_status == pq.TransactionStatus.ACTIVE:
            conn.cancel_safe(timeout=5)
    except psycopg.Error:
        pass
    finally:
        conn.close()


class _Runner:
    def __init__(
        self,
        conn: psycopg.Connection[Any],
        request: Request,
        writer: render.Writer,
        events: Events,
        secrets: tuple[str, ...],
    ) -> None:
        self.conn = conn
        self.request = request
        self.writer = writer
        self.events = events
        self.secrets = secrets
        self._text_loaders = False

    # ----------------------------------------------------------------- helpers

    def _error(self, exc: Exception, sent: Sent | None) -> PgconnectError:
        return query_error(exc, sent, self.secrets)

    def _cursor(self) -> psycopg.RawCursor[Any]:
        """A cursor for $n parameters whose values all load as PostgreSQL's text form."""
        import psycopg
        from psycopg.types.string import StrDumperUnknown, TextLoader

        if not self._text_loaders:
            from psycopg.postgres import types

            adapters = self.conn.adapters
            for info in types:
                adapters.register_loader(info.oid, TextLoader)
                if info.array_oid:
                    adapters.register_loader(info.array_oid, TextLoader)
            # Values of -p are untyped literals: the server infers their type, as in psql.
            adapters.register_dumper(str, StrDumperUnknown)
            self._text_loaders = True
        return psycopg.RawCursor(self.conn)

    def _idle(self) -> bool:
        from psycopg import pq

        return self.conn.pgconn.transaction_status == pq.TransactionStatus.IDLE

    def _iso_dates(self) -> bool:
        return (self.conn.info.parameter_status("DateStyle") or "ISO").startswith("ISO")

    # ----------------------------------------------------------------- the script

    def run(self, statements: Sequence[Statement]) -> None:
        import psycopg

        request = self.request
        # bytea prints as PostgreSQL's \x hex text whatever the role's or database's
        # bytea_output (escape would otherwise reach every format, COPY's included). In a
        # transaction the setting is local to it; otherwise it is the session's.
        hex_bytea = "SELECT set_config('bytea_output', 'hex', {})"
        if request.in_transaction:
            parts = ["BEGIN READ ONLY" if request.read_only else "BEGIN", hex_bytea.format("true")]
            if request.timeout is not None:
                ms = max(1, math.ceil(request.timeout * 1000))
                parts.append(f"SELECT set_config('statement_timeout', '{ms}', true)")
            else:
                # A query takes the transaction's snapshot: after it, SET TRANSACTION READ WRITE
                # is refused ("must be set before any query"), so the SQL cannot undo READ ONLY.
                parts.append("SELECT 1")
            try:
                self.conn.execute("; ".join(parts))
            except psycopg.Error as exc:
                raise self._error(exc, None) from None
        else:
            try:
                self.conn.execute(hex_bytea.format("false"))
            except psycopg.Error as exc:
                raise self._error(exc, None) from None
        for stmt in statements:
            self._statement(stmt)
        if request.in_transaction:
            try:
                self.conn.execute("COMMIT")
            except psycopg.Error as exc:
                raise self._error(exc, None) from None

    def _statement(self, stmt: Statement) -> None:
        sent = convert(stmt, self.request.bindings)
        if stmt.copy_direction() == "out":
            self._user_copy(sent)
            return
        modifying = stmt.modifies_and_returns()
        if (modifying or stmt.is_query()) and self._wrapped(sent, modifying=modifying):
            return
        self._as_written(sent)

    # ----------------------------------------------------------------- the ways to run one

    def _wrapped(self, sent: Sent, *, modifying: bool = False) -> bool:
        """Run a query the fast way for the format; False if the server refused the wrapping
        (then it is run as written).

        MODIFYING: rows of INSERT/UPDATE/DELETE … RETURNING (or a WITH holding one). COPY takes
        those where a subquery or a cursor cannot, so for json they become a CTE of the COPY's
        query, and with -p (COPY cannot bind) they are run as written.
        """
        spec = self.writer.spec
        if spec.copy_options and sent.args is None:
            return self._copy(
                sent.wrapped("COPY (\n", f"\n) TO STDOUT WITH ({spec.copy_options})"), json=False
            )
        if modifying:
            if not spec.server_json or sent.args is not None:
                return False
            return self._copy(
                sent.wrapped(
                    'COPY (WITH "pgconnect row" AS (\n',
                    '\n) SELECT row_to_json("pgconnect row".*) FROM "pgconnect row") TO STDOUT',
                ),
                json=True,
            )
        json_prefix = 'SELECT row_to_json("pgconnect row".*) FROM (\n'
        json_suffix = '\n) AS "pgconnect row"'
        if spec.server_json and sent.args is None:
            described = self._describe(sent)
            if described is None:
                return False
            if described:
                return self._json_copy(sent, described)
            return self._copy(
                sent.wrapped("COPY (" + json_prefix, json_suffix + ") TO STDOUT"), json=True
            )
        if spec.server_json:
            return self._cursor_rows(sent.wrapped(json_prefix, json_suffix), json=True)
        return self._cursor_rows(sent, json=False)

    @contextlib.contextmanager
    def _attempt(self, sent: Sent, *, savepoint: bool) -> Iterator[list[bool]]:
        """Around the start of a wrapped statement: with SAVEPOINT (inside a transaction) a
        refused wrapping can be undone; yields [refused]."""
        import psycopg

        if savepoint:
            try:
                self.conn.execute(f"SAVEPOINT {SAVEPOINT}")
            except psycopg.Error as exc:
                raise self._error(exc, None) from None
        refused = [False]
        try:
            yield refused
        except psycopg.Error as exc:
            if not _wrapping_failed(exc, sent):
                raise self._error(exc, sent) from None
            refused[0] = True
            if savepoint:
                try:
                    self.conn.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
                except psycopg.Error as exc2:
                    raise self._error(exc2, None) from None

    def _copy(self, sent: Sent, *, json: bool) -> bool:
        """COPY (…) TO STDOUT: the server writes the format (or the JSON), Python moves bytes."""
        import psycopg

        cur = self.conn.cursor()
        with contextlib.ExitStack() as stack:
            with self._attempt(sent, savepoint=not self._idle()) as refused:
                copy = stack.enter_context(cur.copy(sent.text))
            if refused[0]:
                return False
            try:
                chunks = copyout.rows(copy, self.conn)
                result: render.Result = (
                    render.JsonRows(chunks, copy_escaped=True) if json else render.CopyRows(chunks)
                )
                written = self.writer.write(result)
            except psycopg.Error as exc:
                raise self._error(exc, sent) from None
        self.events.result(f"SELECT {written.rows}", written)
        return True

    def _describe(self, sent: Sent) -> list[tuple[str, int]] | None:
        """The columns (name, type OID) of a query, from ``SELECT * FROM (…) LIMIT 0``: planned,
        not run (a Limit of 0 never asks its subplan for a row). None if the server refused the
        wrapping (the statement is then run as written)."""
        import psycopg

        probe = sent.wrapped("SELECT * FROM (\n", '\n) AS "pgconnect row" LIMIT 0')
        cur = self.conn.cursor()
        with self._attempt(probe, savepoint=not self._idle()) as refused:
            cur.execute(probe.text)
        if refused[0]:
            return None
        try:
            return [(c.name, c.type_code) for c in cur.description or []]
        finally:
            with contextlib.suppress(psycopg.Error):
                cur.close()

    def _json_copy(self, sent: Sent, columns: list[tuple[str, int]]) -> bool:
        """JSON rows from COPY's text format, keys and quotes put in by pgconnect (see
        ``pgconnect.jsoncopy``: cheaper for the server than row_to_json)."""
        import psycopg

        from pgconnect import jsoncopy

        names = [n for n, _ in columns]
        oids = [o for _, o in columns]
        iso = self._iso_dates()
        aliases = ", ".join(f'"{i}"' for i in range(1, len(columns) + 1))
        wrapped = sent.wrapped(
            f"COPY (SELECT {jsoncopy.select_list(oids, iso)} FROM (\n",  # noqa: S608 - our names
            f'\n) AS "pgconnect row"({aliases})) TO STDOUT',
        )
        cur = self.conn.cursor()
        with contextlib.ExitStack() as stack:
            with self._attempt(wrapped, savepoint=not self._idle()) as refused:
                copy = stack.enter_context(cur.copy(wrapped.text))
            if refused[0]:
                return False
            try:
                written = self.writer.write(
                    render.JsonLines(
                        jsoncopy.json_lines(
                            copyout.batches(copy, self.conn, jsoncopy.BATCH), names, oids, iso
                        )
                    )
                )
            except psycopg.Error as exc:
                raise self._error(exc, wrapped) from None
        self.events.result(f"SELECT {written.rows}", written)
        return True

    def _cursor_rows(self, sent: Sent, *, json: bool) -> bool:
        """DECLARE a cursor and FETCH it in batches, inside a transaction (ours if none is open)."""
        import psycopg

        cur = self._cursor()
        own = self._idle()
        declared = sent.wrapped(
            f"DECLARE {CURSOR} NO SCROLL CURSOR FOR\n" + sent.prefix, sent.suffix
        )
        try:
            if own:
                self.conn.execute("BEGIN")
            with self._attempt(declared, savepoint=not own) as refused:
                cur.execute(declared.text, declared.args)
            if refused[0]:
                if own:
                    self.conn.execute("ROLLBACK")
                return False
            fetch = fetch_statement(sent.body)
            cur.execute(fetch)
            columns = [render.Column(c.name, c.type_code) for c in cur.description or []]
            first = cur.fetchall()

            def rows() -> Iterator[Sequence[str | None]]:
                batch = first
                while True:
                    yield from batch
                    if len(batch) < FETCH_SIZE:
                        return
                    cur.execute(fetch)
                    batch = cur.fetchall()

            result: render.Result
            if json:
                result = render.JsonRows(
                    ("null" if r[0] is None else r[0] for r in rows()), copy_escaped=False
                )
            else:
                result = render.TextRows(columns, rows(), iso_dates=self._iso_dates())
            written = self.writer.write(result)
            self.conn.execute("COMMIT" if own else f"CLOSE {CURSOR}")
        except psycopg.Error as exc:
            raise self._error(exc, declared) from None
        self.events.result(f"SELECT {written.rows}", written)
        return True

    def _user_copy(self, sent: Sent) -> None:
        """The user's own COPY … TO STDOUT: its bytes go out as they are."""
        import psycopg

        cur = self.conn.cursor()
        try:
            with cur.copy(sent.text) as copy:
                written = self.writer.write(render.Passthrough(copyout.rows(copy, self.conn)))
        except psycopg.Error as exc:
            raise self._error(exc, sent) from None
        self.events.result(f"COPY {written.rows}", None)

    def _as_written(self, sent: Sent) -> None:
        """Any other statement: executed as written; rows (if any) rendered from text."""
        import psycopg

        cur = self._cursor()
        try:
            cur.execute(sent.text, sent.args)
            if cur.description is None:
                self.events.result(cur.statusmessage, None)
                return
            columns = [render.Column(c.name, c.type_code) for c in cur.description]
            written = self.writer.write(
                render.TextRows(columns, iter(cur), iso_dates=self._iso_dates())
            )
        except psycopg.Error as exc:
            raise self._error(exc, sent) from None
        self.events.result(cur.statusmessage, written)
