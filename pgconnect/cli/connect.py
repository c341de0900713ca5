"""Commands that hand the connection to other tools: ``exec``, ``psql`` (and ``url``, registered
from its own module); and the work of ``init --from-url`` (SPEC §4).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pgconnect import conninfo, params
from pgconnect import project as projectfile
from pgconnect.cli import common, url
from pgconnect.cli.options import ConfigOpt, DebugOpt, EnvOpt
from pgconnect.errors import ConfigError, UsageError
from pgconnect.secrets import Secret, SecretStore

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
    from pgconnect import handoff

    if not argv:
        raise UsageError("no command given", hint="pgconnect exec -- CMD [ARGS]...")
    warning = resolution.missing_secret_warning()
    if warning:
        common.warn(warning)
    connect_params = resolution.connect_params()
    # Includes a password that only an inherited PGPASSWORD supplies: the child does not get that
    # variable, so it gets the passfile instead.
    password = resolution.get("password")
    if password is not None:
        handoff.passfile_line(password)  # refuse an unrepresentable password before starting
    plain = {name: value.reveal() for name, value in resolution.plain_vars().items()}
    url_pair = (url_var, conninfo.to_uri(connect_params, reveal=True)) if url_var else None
    prepared = handoff.child_environ(os.environ, connect_params, plain, url_var=url_pair)
    if prepared.dropped:
        common.warn(
            f"libpq reads no environment variable for {', '.join(prepared.dropped)}; "
            f"{argv[0]} will not get {'it' if len(prepared.dropped) == 1 else 'them'}"
            + ("" if url_var else " (--url-var passes a full URL)")
        )
    if prepared.kept_node_ca is not None:
        common.warn(
            f"NODE_EXTRA_CA_CERTS names {prepared.kept_node_ca}, which cannot be read; kept it, "
            "so node tools will not trust the connection's root CA "
            f"({connect_params.get('sslrootcert')})"
        )
    try:
        status = handoff.run(argv, prepared, password)
    except FileNotFoundError:
        common.note(f"error: {argv[0]}: command not found")
        raise typer.Exit(127) from None
    except PermissionError:
        common.note(f"error: {argv[0]}: permission denied")
        raise typer.Exit(126) from None
    raise typer.Exit(status)


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
        text = sys.stdin.read()
    text = text.strip()
    if not text:
        raise UsageError("the connection string is empty")
    return text


def init_from_url(
    target: Path, project_name: str, source: str, env: str | None, force: bool
) -> None:
    """``init --from-url``: variables into the new file, secrets into the store (never the file)."""
    dsn = read_url(source)
    parts = conninfo.parse(dsn)
    plain: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for keyword, value in parts.items():
        name = params.name_for(keyword)
        if keyword in params.SECRET_KEYWORDS:
            secrets[name] = value
            continue
        try:
            params.check_value(name, value)
        except params.InvalidValue as exc:
            raise ConfigError(f"the connection string has an invalid {keyword}: {exc}") from None
        plain[name] = value
    if secrets.get(params.PASSWORD_NAME) == "":
        del secrets[params.PASSWORD_NAME]  # an empty password is no password
    if env is not None:
        projectfile.check_env_name(env)
    text = projectfile.initial_text(project_name, plain if env is None else None)
    projectfile.parse(target, text.encode("utf-8"))  # the name is valid before anything is stored
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists; nothing was changed", hint="use --force")

    from pgconnect.secrets import service_name

    service = service_name(project_name, env)
    store: SecretStore | None = None
    if secrets:
        store = common.open_store()
        if store.kind == "file":
            common.warn("using the plaintext file store (PGCONNECT_SECRET_STORE=file)")
        for name, value in secrets.items():
            store.set(service, name, Secret(value))
    projectfile.create(target, text, force=force)
    if env is not None or secrets:
        with projectfile.edit(target) as editor:
            if env is not None:
                editor.ensure_env(env)
                for name, value in plain.items():
                    editor.set_var(name, value, env)
            for name in secrets:
                editor.declare_secret(name, env)
    where = "[vars]" if env is None else f"[env.{env}.vars]"
    common.note(
        f"wrote {target} (project {project_name!r}): {', '.join(plain) or 'no variables'} "
        f"in {where}"
    )
    if store is not None:
        for name in secrets:
            common.note(f"stored {name} in the {store.kind} store (service {service})")
