"""The command-line layer: the Typer app, its command groups, and the one error boundary.

Only this package prints or exits. ``main()`` runs the app and turns every ``PgconnectError`` into a
one-line message (and a hint) on stderr with the exit status of SPEC §8. An unexpected exception
prints a short message; its traceback only with ``--debug``, never with local variables.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TextIO, cast

import typer

from pgconnect import __version__
from pgconnect.cli import common
from pgconnect.errors import ExitCode, PgconnectError

if TYPE_CHECKING:
    import threading


def _drop_stdout() -> None:
    """Point fd 1 at /dev/null: what is still buffered, and any later write or flush, goes
    nowhere instead of failing again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class _Stdout:
    """sys.stdout while a command runs: once the reader has gone away (``| head -1``), output
    goes nowhere instead of raising BrokenPipeError, so the command ends with the exit status it
    chose (a failed check piped into head is still exit 7). Without this, Click turns the EPIPE
    into a silent exit 1, whatever the command had found.

    ``buffer`` is the real one: ``query`` streams through it, and stops and cancels on EPIPE.
    """

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        try:
            return self._inner.write(text)
        except BrokenPipeError:
            _drop_stdout()
            return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._inner.flush()
        except BrokenPipeError:
            _drop_stdout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


#: Each top-level command → the module under pgconnect/cli that registers it.
COMMANDS = {
    "init": "project",
    "var": "project",
    "explain": "project",
    "secret": "secret",
    "url": "connect",
    "exec": "connect",
    "psql": "connect",
    "check": "check",
    "query": "query",
    "sandbox": "sandbox",
}
MODULES = ("project", "secret", "connect", "check", "query", "sandbox")


def _version(value: bool) -> None:
    if not value:
        return
    import psycopg

    libpq = psycopg.pq.version()
    libpq_text = f"{libpq // 10000}.{libpq % 10000}" if libpq >= 100000 else str(libpq)
    common.out(f"pgconnect {__version__}")
    common.out(f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__})")
    common.out(f"libpq {libpq_text}")
    raise typer.Exit(0)


def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Show pgconnect, psycopg and libpq versions.",
            is_eager=True,
            callback=_version,
        ),
    ] = False,
) -> None:
    """Connect code and scripts to PostgreSQL: project variables in pgconnect.toml, passwords
    in the OS keyring, verified TLS, and queries as tables, JSON or CSV.

    Examples:

      pgconnect init && pgconnect var set DB_HOST db.example.com

      pgconnect secret put DB_PASSWORD

      pgconnect check --sslmode all

      pgconnect query "select now()" --json
    """


def build_app(modules: Sequence[str] = MODULES) -> typer.Typer:
    """The Typer app with the command groups of MODULES (all of them by default)."""
    # The root's help is _root's docstring (with its examples): Typer(help=...) would replace it.
    application = typer.Typer(
        name="pgconnect",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        pretty_exceptions_show_locals=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    application.callback()(_root)
    for name in modules:
        # __import__ rather than importlib.import_module: the latter bypasses -X importtime,
        # which the start-up tests read.
        __import__(f"pgconnect.cli.{name}", fromlist=["register"]).register(application)
    return application


_full_app: list[typer.Typer] = []


def __getattr__(name: str) -> typer.Typer:
    """``pgconnect.cli.app``: the whole app, built on first use (tests, completion generation)."""
    if name != "app":
        raise AttributeError(name)
    if not _full_app:
        _full_app.append(build_app())
    return _full_app[0]


def _app_for(args: Sequence[str]) -> typer.Typer:
    """Start-up matters in shell loops (issue #8): when the command is known, build only its group.

    Building every command's Click object and importing every command module costs ~15 ms per
    run; help, completion and unknown commands still get the whole app.
    """
    name = next((a for a in args if not a.startswith("-")), None)
    if name in COMMANDS and not any(a in ("-h", "--help") for a in args[:1]):
        return build_app((COMMANDS[name],))
    return build_app()


def _mask(text: str) -> str:
    """Mask every secret value this process has held (defence in depth: messages are redacted
    where they are made; this catches a path that forgot)."""
    from pgconnect.secrets import MASK, held_values

    for value in held_values():
        text = text.replace(value, MASK)
    return text


def _traceback(exc: BaseException) -> str:
    """The traceback for --debug: never local variables (format_exception shows none), and
    redacted like every other output, chained driver errors included."""
    import traceback  # only on --debug: importing it costs ~4 ms per start

    from pgconnect.conninfo import redact

    return redact(_mask("".join(traceback.format_exception(exc))))


def _print_error(exc: PgconnectError) -> None:
    err = sys.stderr
    err.write(_mask(f"error: {exc.message}\n"))
    for line in getattr(exc, "details", []) or []:
        err.write(_mask(f"{line}\n"))
    if exc.hint:
        err.write(_mask(f"hint: {exc.hint}\n"))


def _unexpected(exc: BaseException, where: str = "") -> None:
    sys.stderr.write(
        f"error: unexpected {type(exc).__name__}{where}; this is a bug in pgconnect "
        "(run again with --debug for the traceback)\n"
    )
    if common.STATE.debug:
        sys.stderr.write(_traceback(exc))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    """An exception that ends a worker thread: the same short line as in the main thread, not
    Python's default traceback (SPEC §8: a traceback only with --debug)."""
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    _unexpected(args.exc_value, f" in thread {name}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pgconnect`` console script and ``python -m pgconnect``."""
    from pgconnect.completion import COMPLETE_VAR

    args = sys.argv[1:] if argv is None else list(argv)
    if os.environ.get(COMPLETE_VAR):
        # A <Tab> from the scripts in completions/ (SPEC §10): Typer answers and exits.
        from pgconnect.completion import install_classes

        install_classes()
        application = build_app()
    else:
        application = _app_for(args)
    import threading  # already imported by Typer: no start-up cost

    threading.excepthook = _thread_excepthook
    if not isinstance(sys.stdout, _Stdout):
        sys.stdout = cast(TextIO, _Stdout(sys.stdout))
    command = typer.main.get_command(application)
    try:
        command.main(args=argv, prog_name="pgconnect", standalone_mode=True)
    except PgconnectError as exc:
        _print_error(exc)
        if common.STATE.debug:
            sys.stderr.write(_traceback(exc))
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(int(ExitCode.INTERRUPTED))
    except BrokenPipeError:
        # stdout closed under a writer that does not go through _Stdout: end quietly.
        _drop_stdout()
        sys.exit(0)
    except Exception as exc:
        _unexpected(exc)
        sys.exit(int(ExitCode.FAILURE))
