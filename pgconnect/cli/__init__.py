"""The command-line layer: the Typer app, its command groups, and the one error boundary.

Only this package prints or exits. ``main()`` runs the app and turns every ``PgconnectError`` into a
one-line message (and a hint) on stderr with the exit status of SPEC §8. An unexpected exception
prints a short message; its traceback only with ``--debug``, never with local variables.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from pgconnect import __version__
from pgconnect.cli import common
from pgconnect.errors import ExitCode, PgconnectError

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


def _print_error(exc: PgconnectError) -> None:
    err = sys.stderr
    err.write(f"error: {exc.message}\n")
    for line in getattr(exc, "details", []) or []:
        err.write(f"{line}\n")
    if exc.hint:
        err.write(f"hint: {exc.hint}\n")


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
    command = typer.main.get_command(application)
    try:
        command.main(args=argv, prog_name="pgconnect", standalone_mode=True)
    except PgconnectError as exc:
        _print_error(exc)
        if common.STATE.debug:
            import traceback  # only on --debug: importing it costs ~4 ms per start

            traceback.print_exc()
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(int(ExitCode.INTERRUPTED))
    except BrokenPipeError:
        # stdout closed early (e.g. `| head -1`): end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except Exception as exc:
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__}; this is a bug in pgconnect "
            "(run again with --debug for the traceback)\n"
        )
        if common.STATE.debug:
            # format_exception never includes local variables.
            import traceback

            sys.stderr.write("".join(traceback.format_exception(exc)))
        sys.exit(int(ExitCode.FAILURE))
