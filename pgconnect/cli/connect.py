"""Commands that hand the connection to other tools: ``exec``, ``psql`` (and ``url``, registered
from its own module); and the work of ``init --from-url`` (docs/connection-strings.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pgconnect import connstr, params
from pgconnect.cli import common, url
from pgconnect.cli.options import ConfigOpt, DebugOpt, EnvOpt
from pgconnect.errors import CannotExecuteError, CommandNotFoundError, ConfigError, UsageError

if TYPE_CHECKING:
    from pgconnect.resolve import Resolution


def register(app: typer.Typer) -> None:
    url.register(app)  # first: the order of the overview help
    app.command("exec", context_settings={"allow_interspersed_args": False})(exec_command)
    app.command(
        "psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
    )(psql)


# --------------------------------------------------------------------------- exec / psql


def exec_command(
    command: Annotated[
        list[str],
        typer.Argument(help="The command and its arguments (after --).", metavar="CMD"),
    ],
    url_var: Annotated[
        str | None,
        typer.Option(
            "--url-var",
            help="Also export the full URL, password included, in this variable "
            "(e.g. DATABASE_URL) for tools that want one.",
            metavar="NAME",
        ),
    ] = None,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run CMD with libpq's PG* variables set and the password in a temporary 0600 passfile.

    The password is never put in PGPASSWORD or argv; the passfile (named by PGPASSFILE) is
    removed when CMD ends, however it ends. Signals are passed on; the exit status is CMD's.

    Examples:

      pgconnect exec -- pg_dump -Fc -f backup.dump

      pgconnect exec --env staging -- ./migrate.sh

      pgconnect exec --url-var DATABASE_URL -- npm run migrate
    """
    ctx = common.load(config, env)
    resolution = ctx.resolve()
    common.refuse_libpq_defaults(resolution, warn_only=True)
    _hand_over(resolution, command, url_var)


def psql(
    context: typer.Context,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run psql connected to the project's database (pgconnect exec -- psql ARGS...).

    psql's own options pass through; put them after -- when they clash with pgconnect's
    (-e/--env, -h/--help).

    Examples:

      pgconnect psql

      pgconnect psql -Atc 'select count(*) from users'

      pgconnect psql --env staging -- -e -f migration.sql
    """
    ctx = common.load(config, env)
    resolution = ctx.resolve()
    common.refuse_libpq_defaults(resolution)
    _hand_over(resolution, ["psql", *context.args], None)


def _hand_over(resolution: Resolution, argv: list[str], url_var: str | None) -> None:
    from pgconnect import handoff, libpqfiles

    if not argv or not argv[0]:
        raise UsageError("no command given", hint="pgconnect exec -- CMD [ARGS]...")
    if any("\x00" in arg for arg in argv):  # only a program calling main() can pass one
        raise UsageError("an argument of the command contains a NUL byte")
    warning = resolution.missing_secret_warning()
    if warning:
        common.warn(warning)
    connect_params = resolution.connect_params()
    # Includes a password that only an inherited PGPASSWORD supplies: the child does not get that
    # variable, so it gets the passfile instead. One the user's own passfile or service gives is
    # left to them: the child's libpq reads those itself.
    found = resolution.param("password")
    password = None
    if found is not None and not found.source.startswith(("libpq-passfile:", "libpq-service:")):
        password = found.reveal()
    plain = {name: value.reveal() for name, value in resolution.plain_vars().items()}
    url_pair = (url_var, connstr.to_uri(connect_params, reveal=True)) if url_var else None
    prepared = handoff.child_environ(os.environ, connect_params, plain, url_var=url_pair)
    effective = {p.keyword: p.reveal() for p in resolution.params}
    if password is not None:
        # Scoped to this connection (libpq's own lookup keys), then the user's own passfile.
        theirs = libpqfiles.passfile_path(effective.get("passfile"), os.environ)
        prepared.passfile_text = handoff.passfile_text(
            password, libpqfiles.targets(effective, {}), theirs
        )
    service = effective.get("service")
    user_service = libpqfiles.find_service(service, os.environ) if service else None
    handoff.use_service_file(prepared, connect_params, user_service, os.environ)
    if prepared.dropped:
        common.warn(
            f"libpq reads no environment variable for {', '.join(prepared.dropped)}; "
            f"{argv[0]} will not get {'it' if len(prepared.dropped) == 1 else 'them'}"
            + ("" if url_var else " (--url-var passes a full URL)")
        )
    _check_child_libpq(argv, connect_params, prepared.environ)
    if prepared.kept_node_ca is not None:
        common.warn(
            f"NODE_EXTRA_CA_CERTS names {prepared.kept_node_ca}, which cannot be read; kept it, "
            "so node tools will not trust the connection's root CA "
            f"({connect_params.get('sslrootcert')})"
        )
    try:
        status = handoff.run(argv, prepared, password)
    except FileNotFoundError:
        raise CommandNotFoundError(f"{argv[0]}: command not found") from None
    except PermissionError:
        raise CannotExecuteError(f"{argv[0]}: permission denied") from None
    except OSError as exc:  # a name too long, too many links…: the shell's "cannot execute"
        raise CannotExecuteError(f"{argv[0][:80]}: cannot run it ({exc.strerror})") from None
    raise typer.Exit(status)  # CMD's status; 130 (Ctrl-C) is reported like any interruption


def _check_child_libpq(
    argv: list[str], connect_params: dict[str, str], environ: dict[str, str]
) -> None:
    """A requirement the child's libpq would silently ignore is never handed over as if it held:
    psql's version is known (exit 3); any other child's is not (one warning per parameter)."""
    from pgconnect import handoff

    if argv[0] == "psql":
        version = handoff.psql_version(environ)
        if version is None:
            return  # not found: run() reports it
        missing = handoff.unsupported(connect_params, version)
        if missing:
            name, needed = missing[0]
            raise ConfigError(
                f"psql {version} does not support {name} (it needs psql {needed} or later): "
                f"its libpq would ignore the requirement",
                hint=f"install psql {needed} or later, or remove {name} from the project",
            )
        return
    for name, needed in handoff.unsupported(connect_params, handoff.OLDEST_LIBPQ):
        common.warn(
            f"{name} needs libpq {needed} or later: if {argv[0]} uses an older libpq, it "
            "ignores the requirement"
        )


# --------------------------------------------------------------------------- init --from-url


def read_url(source: str) -> str:
    """The connection string: SOURCE itself, or stdin for '-' (hidden prompt on a terminal)."""
    if source != "-":
        if params.url_has_password(source):
            common.warn(
                "the connection string on the command line carries a password: it is now in "
                "your shell history; next time use --from-url - and paste or pipe it"
            )
        text = source
    elif common.stdin_is_tty():
        import getpass

        text = getpass.getpass("Connection string (input hidden): ")
    else:
        try:
            text = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"stdin is not UTF-8 text (byte {exc.start})") from None
    text = text.strip()
    if not text:
        raise UsageError("the connection string is empty")
    return text


def init_from_url(
    target: Path, project_name: str, source: str, env: str | None, force: bool
) -> None:
    """``init --from-url``: the CLI's side (reading the URL, reporting); the work is
    ``changes.init_from_url``."""
    from pgconnect import changes

    done = changes.init_from_url(
        target, project_name, read_url(source), env, force, common.open_store
    )
    if done.store_kind == "file":
        common.warn("using the plaintext file store (PGCONNECT_SECRET_STORE=file)")
    where = "[vars]" if env is None else f"[env.{env}.vars]"
    common.note(
        f"wrote {target} (project {project_name!r}): {', '.join(done.variables) or 'no variables'} "
        f"in {where}"
    )
    for name in done.secrets:
        common.note(f"stored {name} in the {done.store_kind} store (service {done.service})")
    from pgconnect.keywords import PROVIDER_PARAMETERS

    for name in done.removed:
        common.note(
            f"note: removed ?{name}= from the connection string: libpq does not take it "
            f"({PROVIDER_PARAMETERS[name]})"
        )
