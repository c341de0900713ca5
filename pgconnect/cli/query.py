"""``pgconnect query``: run SQL, print rows as a table for people or JSON/CSV for scripts.

Parse the options, read the SQL, check it (usage errors before any connection), resolve the
connection, and hand the rest to ``pgconnect.query.run`` with a ``render.Writer`` on stdout.
stdout carries data only; notices, row counts and errors go to stderr.
"""

# No ``from __future__ import annotations``: register() declares the command with Typer's
# Annotated options evaluated in its own scope, so loading this module imports no Typer, and
# plain argument lists run without it (OPTIONS, ``cli.FAST``; start-up: benchmarks/README.md, P1).

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Annotated

from pgconnect.cli import argv, common, fast_table
from pgconnect.errors import (
    HungUp,
    Interrupted,
    PgconnectError,
    Quit,
    RejectedError,
    Terminated,
    UsageError,
)
from pgconnect.render import OutputFormat

if TYPE_CHECKING:
    import typer

    from pgconnect.render import Written

CONNECT_TIMEOUT = 10.0  # seconds, unless DB_CONNECT_TIMEOUT says otherwise
DEFAULT_MAX_ROWS = 1000


def register(app: "typer.Typer") -> None:
    import typer

    from pgconnect.cli.options import ConfigOpt, DebugOpt, EnvOpt

    @app.command("query")
    def query(
        sql: Annotated[
            str | None,
            typer.Argument(
                help="The SQL to run; several statements are separated by ';'. Omitted or '-': "
                "read it from stdin.",
                metavar="SQL",
                show_default=False,
            ),
        ] = None,
        file: Annotated[
            str | None,
            typer.Option(
                "--file", "-f", help="Read the SQL from FILE ('-': stdin).", metavar="FILE"
            ),
        ] = None,
        fmt: Annotated[
            OutputFormat | None,
            typer.Option(
                "--format",
                help="Output format (default: table on a terminal, plain otherwise).",
                case_sensitive=False,
                show_default=False,
            ),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
        param: Annotated[
            list[str] | None,
            typer.Option(
                "--param",
                "-p",
                help="Bind %(NAME)s in the SQL to VALUE, server-side (repeatable).",
                metavar="NAME=VALUE",
                show_default=False,
            ),
        ] = None,
        read_only: Annotated[
            bool, typer.Option("--read-only", help="Run in a read-only transaction.")
        ] = False,
        timeout: Annotated[
            float | None,
            typer.Option(
                "--timeout",
                help="Cancel a statement that runs longer than S seconds (statement_timeout).",
                metavar="S",
                show_default=False,
            ),
        ] = None,
        max_rows: Annotated[
            int | None,
            typer.Option(
                "--max-rows",
                help=f"Table format: show at most N rows (default {DEFAULT_MAX_ROWS}; 0: all).",
                metavar="N",
                show_default=False,
            ),
        ] = None,
        config: ConfigOpt = None,
        env: EnvOpt = None,
        debug: DebugOpt = False,
    ) -> None:
        """Run SQL and print the rows: a table for people, plain/CSV/TSV/JSON for scripts.

        Results stream (memory stays flat) in every format but table. Exit 1 when the server
        reports an error, 130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP and 131 on SIGQUIT (the
        query is cancelled on the server).

        Examples:

          pgconnect query "select now()"

          n=$(pgconnect query "select count(*) from users")

          pgconnect query --json "select * from users where id = %(id)s" -p id=42

          pgconnect query -f report.sql --format csv > report.csv

          pgconnect query --read-only --timeout 5 -e staging "select * from pg_stat_activity"
        """
        run(
            sql=sql,
            file=file,
            fmt=fmt,
            json_out=json_out,
            param=param,
            read_only=read_only,
            timeout=timeout,
            max_rows=max_rows,
            config=config,
            env=env,
        )


#: The options for ``argv.parse``, generated from register()'s declaration (fast_table.py).
OPTIONS = argv.options(fast_table.QUERY)
POSITIONALS = fast_table.QUERY_POSITIONALS


class _Signalled(KeyboardInterrupt):
    """SIGTERM, SIGHUP or SIGQUIT, raised where the program is, so psycopg cancels the query on
    the server as for Ctrl-C (a bare exit would leave it running there)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: statement_timeout's largest value (INT_MAX milliseconds), in whole seconds.
MAX_TIMEOUT = 2147483


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Signalled(signum)


#: The signals that cancel the query besides SIGINT, and the error each ends with (128 + N).
_CANCELLING: dict[int, tuple[type[PgconnectError], str]] = {
    signal.SIGTERM: (Terminated, "terminated"),
    signal.SIGHUP: (HungUp, "hung up (SIGHUP); the query was cancelled"),
    signal.SIGQUIT: (Quit, "quit (SIGQUIT); the query was cancelled"),
}


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C, SIGTERM, SIGHUP and SIGQUIT cancel the query (exit 130/143/129/131); a reader
    that went away ends it."""
    previous = {sig: signal.signal(sig, _on_signal) for sig in _CANCELLING}
    try:
        yield
    except _Signalled as exc:
        error, message = _CANCELLING[exc.signum]
        raise error(message) from None
    except KeyboardInterrupt:
        raise Interrupted("interrupted") from None
    except BrokenPipeError:
        # The reader went away (`| head -1`): the query was cancelled on the way out; end
        # quietly, with success, as the reader asked for no more.
        common.drop_stdout()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(
    sql: str | None,
    file: str | None,
    fmt: OutputFormat | None,
    json_out: bool,
    param: list[str] | None,
    read_only: bool,
    timeout: float | None,
    max_rows: int | None,
    config: str | None,
    env: str | None,
) -> None:
    """The command, however its arguments were parsed."""
    with _interruptible():
        chosen = _choose_format(fmt, json_out, max_rows)
        # statement_timeout is an int of milliseconds (at most 2147483647): inf, nan, 0 and
        # negatives are refused here rather than by the server.
        if timeout is not None and not 0 < timeout <= MAX_TIMEOUT:
            raise UsageError(
                f"--timeout must be a number of seconds greater than 0 and at most {MAX_TIMEOUT}"
            )
        if max_rows is not None and max_rows < 0:
            raise UsageError("--max-rows must be 0 (all rows) or more")
        text = _read_sql(sql, file)

        from pgconnect import query as q
        from pgconnect import render

        request = q.Request(
            sql=text,
            bindings=q.parse_bindings(param) if param else None,
            read_only=read_only,
            timeout=timeout,
        )
        plan = q.prepare(request)
        for name in plan.unused_bindings:
            common.warn(f"-p {name} is not used by the SQL (no %({name})s placeholder)")

        ctx = common.load(config, env)
        resolution = ctx.resolve(connection_only=True)
        common.refuse_libpq_defaults(resolution)
        warning = resolution.missing_secret_warning()
        if warning:
            common.warn(warning)
        params = resolution.connect_params()

        limit = DEFAULT_MAX_ROWS if max_rows is None else max_rows
        style = render.TableStyle(
            width=_terminal_width() if chosen is OutputFormat.table else 80,
            color=_color(),
            max_rows=limit or None,
        )
        out = sys.stdout.buffer
        writer = render.Writer(chosen, out, statements=len(plan.statements), table=style)
        events = _Events(chosen, limit)
        try:
            q.run(
                params,
                request,
                plan,
                writer,
                events,
                connect_timeout=None if "connect_timeout" in params else CONNECT_TIMEOUT,
            )
        except RejectedError as exc:
            if resolution.missing_secrets and resolution.missing_secret_warning():
                exc.hint = resolution.missing_secret_warning()
            elif "password authentication failed" in exc.message:
                from pgconnect import sandbox

                exc.hint = sandbox.password_hint(ctx.project, ctx.env) or exc.hint
            raise


def _choose_format(fmt: OutputFormat | None, json_out: bool, max_rows: int | None) -> OutputFormat:
    if json_out:
        if fmt is not None and fmt is not OutputFormat.json:
            raise UsageError(f"--json and --format {fmt.value} contradict each other")
        fmt = OutputFormat.json
    if fmt is None:
        fmt = OutputFormat.table if common.stdout_is_tty() else OutputFormat.plain
    if max_rows is not None and fmt is not OutputFormat.table:
        raise UsageError(
            f"--max-rows only applies to --format table (this is {fmt.value})",
            hint="limit the rows in the SQL instead: … LIMIT 100",
        )
    return fmt


def _read_sql(sql: str | None, file: str | None) -> str:
    if sql is not None and file is not None:
        raise UsageError("give the SQL either as an argument or with -f FILE, not both")
    if sql is not None and sql != "-":
        return sql
    if file is not None and file != "-":
        try:
            with open(file, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
        return _decode(data, file)
    if common.stdin_is_tty():
        common.note("reading SQL from the terminal; end it with Ctrl-D")
    return _decode(sys.stdin.buffer.read(), "stdin")


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where} is not UTF-8 text (byte {exc.start})") from None


def _terminal_width() -> int:
    import shutil  # tables only: ~1.5 ms of start-up the other formats need not pay

    return shutil.get_terminal_size((80, 24)).columns


def _color() -> bool:
    if not common.stdout_is_tty() or common.no_color():
        return False
    return os.environ.get("TERM") != "dumb"


class _Events:
    """What the query reports along the way, on stderr (stdout is flushed first, so a terminal
    shows both in order)."""

    def __init__(self, fmt: OutputFormat, max_rows: int) -> None:
        self.fmt = fmt
        self.max_rows = max_rows

    def _say(self, line: str) -> None:
        try:
            sys.stdout.flush()
            sys.stdout.buffer.flush()
        except ValueError:
            pass
        common.say(line)
        sys.stderr.flush()

    def notice(self, severity: str, message: str) -> None:
        self._say(f"{severity}:  {message}")

    def result(self, status: str | None, written: "Written | None") -> None:
        if self.fmt is not OutputFormat.table:
            return
        if written is None:
            if status:
                self._say(status)
            return
        self._say(f"({written.rows} row{'' if written.rows == 1 else 's'})")
        more = written.rows - written.shown
        if more > 0:
            self._say(
                f"{more} more row{'' if more == 1 else 's'} not shown (--max-rows "
                f"{self.max_rows}; --format csv or json prints them all)"
            )
