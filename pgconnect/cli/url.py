"""``pgconnect url``: print the connection string, every component encoded (docs/connection-strings.md).

``url`` never imports psycopg, and without ``--reveal`` it does not even open the keyring for a
password it would only print as ``****``.
"""

# No ``from __future__ import annotations``: register() declares the command with Typer's
# Annotated options evaluated in its own scope, so loading this module imports no Typer, and
# plain argument lists run without it (OPTIONS, ``cli.FAST``; start-up: benchmarks/README.md, P1).

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from pgconnect import connstr, params
from pgconnect.cli import argv, common, fast_table
from pgconnect.secret import MASK, Secret
from pgconnect.store import SecretStore

if TYPE_CHECKING:
    import typer


class Format(StrEnum):
    uri = "uri"
    conninfo = "conninfo"
    env = "env"
    json = "json"


def register(app: "typer.Typer") -> None:
    import typer

    from pgconnect.cli.options import ConfigOpt, DebugOpt, EnvOpt

    @app.command("url")
    def url(
        fmt: Annotated[
            Format, typer.Option("--format", help="uri, conninfo (key=value), env or json.")
        ] = Format.uri,
        reveal: Annotated[
            bool, typer.Option("--reveal", help="Show the password instead of ****.")
        ] = False,
        config: ConfigOpt = None,
        env: EnvOpt = None,
        debug: DebugOpt = False,
    ) -> None:
        """Print the connection string, every component correctly encoded (password masked).

        Examples:

          pgconnect url

          pgconnect url --format conninfo --env staging

          eval "$(pgconnect url --format env --reveal)" && psql -c 'select 1'

          DATABASE_URL=$(pgconnect url --reveal) node app.js
        """
        run(fmt=fmt, reveal=reveal, config=config, env=env)


#: The options for ``argv.parse``, generated from register()'s declaration (fast_table.py).
OPTIONS = argv.options(fast_table.URL)
POSITIONALS = fast_table.URL_POSITIONALS


class _MaskingStore:
    """The store for output that masks secrets anyway: a password-like secret is not read (no
    keyring round trip, no unlock prompt) and stands as ``****``; any other secret (a DB_URL
    secret holds the host) is read from the real store, opened only then."""

    kind = "masked"

    def __init__(self) -> None:
        self._real: SecretStore | None = None

    def get(self, service: str, name: str) -> Secret | None:
        if params.is_connection_name(name) and params.keyword_for(name) in params.SECRET_KEYWORDS:
            return Secret(MASK)
        if self._real is None:
            self._real = common.open_store()
        return self._real.get(service, name)

    def set(self, service: str, name: str, value: Secret) -> None:  # pragma: no cover - unused
        raise NotImplementedError

    def delete(self, service: str, name: str) -> bool:  # pragma: no cover - unused
        raise NotImplementedError


def run(fmt: Format, reveal: bool, config: str | None, env: str | None) -> None:
    """The command, however its arguments were parsed."""
    ctx = common.load(config, env)
    if reveal:
        resolution = ctx.resolve(connection_only=True)
        warning = resolution.missing_secret_warning()
        if warning:
            common.warn(warning)
    else:
        from pgconnect.api import resolve_settings

        resolution = resolve_settings(ctx.project, ctx.env, _MaskingStore, connection_only=True)
    connect_params = resolution.connect_params(reveal=reveal)
    if fmt is Format.env:
        _, dropped = connstr.env_vars(connect_params)
        if dropped:
            common.warn(
                f"libpq reads no environment variable for {', '.join(dropped)}; "
                "use --format uri or conninfo to keep it"
            )
    common.out(connstr.FORMATS[fmt.value](connect_params, reveal))
