"""The Typer app: the root command (``--version``, the overview help) and its command groups.

Each module under ``pgconnect/cli`` registers its commands; ``app_for`` builds only the group of
the command being run (start-up speed: benchmarks/README.md, P1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from pgconnect import __version__
from pgconnect.cli import common

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
    "export": "export",
    "keyring": "keyring",
}
MODULES = ("project", "secret", "connect", "export", "check", "query", "sandbox", "keyring")


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


def app_for(args: Sequence[str]) -> typer.Typer:
    """Start-up matters in shell loops (benchmarks/README.md, P1): when the command is known, build only its group.

    Building every command's Click object and importing every command module costs ~15 ms per
    run; help, completion and unknown commands still get the whole app.
    """
    name = next((a for a in args if not a.startswith("-")), None)
    if name in COMMANDS and not any(a in ("-h", "--help") for a in args[:1]):
        return build_app((COMMANDS[name],))
    return build_app()
