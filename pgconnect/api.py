"""The public API: the project file, environments and secrets the CLI uses, for Python code.

``pgconnect.settings()``, ``pgconnect.conninfo()``, ``pgconnect.connect()`` and
``pgconnect.connect_async()`` are re-exported by the package (``pgconnect/__init__.py``). They
choose the environment and resolve every value exactly as the CLI does — the CLI calls
``choose_environment`` and ``resolve_settings`` below for every command that connects — and
they never print, prompt or exit: every failure is a ``PgconnectError`` subclass whose
``exit_code`` is the status the CLI would exit with.

psycopg is imported only by ``connect``/``connect_async``; the keyring only when a declared secret
is really read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pgconnect import project as projectfile
from pgconnect.resolve import Resolution, resolve

if TYPE_CHECKING:
    import psycopg

    from pgconnect.project import Project
    from pgconnect.store import SecretStore


@dataclass(repr=False)
class Settings(Resolution):
    """The resolved settings of one environment: every connection parameter with its source.

    ``params`` lists the libpq parameters (``keyword``, ``value``, ``source``, ``name`` of the
    variable it came from); ``values`` every project variable; ``missing_secrets`` the declared
    secrets that are not set. ``get(keyword)`` and ``connect_params()`` give values with the
    secrets revealed; ``repr()`` and ``shown()`` mask them as ``****``.
    """

    def sources(self) -> dict[str, str]:
        """keyword → where its value came from (``file:[vars]``, ``secret:…``, ``environment``…)."""
        return {p.keyword: p.source for p in self.params}

    def conninfo(self) -> str:
        """The libpq ``key=value`` string of the explicit parameters, secrets included."""
        from pgconnect.connstr import to_conninfo

        return to_conninfo(self.connect_params(), reveal=True)

    def __repr__(self) -> str:
        shown = ", ".join(f"{p.keyword}={p.shown()!r} ({p.source})" for p in self.params)
        return f"Settings(project={self.project.name!r}, env={self.env!r}, params: {shown})"


def choose_environment(
    config: str | os.PathLike[str] | None = None,
    env: str | None = None,
    *,
    env_may_be_new: bool = False,
) -> tuple[Project, str | None]:
    """The project file and the environment a call (or a command) uses.

    The file: CONFIG, else ``$PGCONNECT_CONFIG``, else the nearest ``pgconnect.toml`` from the
    current folder upwards. The environment: ENV, else ``$PGCONNECT_ENV``, else the base
    (``None``). An environment the file does not have is a ConfigError unless ENV_MAY_BE_NEW
    (commands that create it).
    """
    proj = projectfile.load(projectfile.find(config))
    chosen = projectfile.selected_env(env)
    if chosen is not None:
        projectfile.check_env_name(chosen)
        if not env_may_be_new:
            proj.check_env(chosen)
    return proj, chosen


def resolve_settings(
    proj: Project,
    env: str | None,
    store: SecretStore | Callable[[], SecretStore] | None = None,
    *,
    connection_only: bool = False,
    environ: Mapping[str, str] | None = None,
    terminal: bool = False,
) -> Settings:
    """Resolve PROJ's ENV (already chosen) into Settings. CONNECTION_ONLY reads only the
    variables and secrets that make up the connection (no other secret is fetched). TERMINAL
    lets a secret's command use the terminal (a password manager's unlock prompt): only the CLI
    sets it; the library never prompts."""
    if store is None:
        from pgconnect.store import open_store

        store = open_store
    r = resolve(
        proj, env, store, environ=environ, connection_only=connection_only, terminal=terminal
    )
    from dataclasses import fields

    # Every field of the resolution, so a field added to Resolution is never silently dropped.
    return Settings(**{f.name: getattr(r, f.name) for f in fields(r)})


def settings(
    env: str | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    store: SecretStore | Callable[[], SecretStore] | None = None,
) -> Settings:
    """The resolved settings of ENV (default: ``$PGCONNECT_ENV``, else the base) in the project
    file CONFIG (default: ``$PGCONNECT_CONFIG``, else the nearest ``pgconnect.toml``).

    Values come in the CLI's order: the process environment, the secret store, the environment's
    ``[env.NAME.vars]``, ``[vars]``, libpq's own ``PG*`` variables, defaults. Raises ConfigError
    (exit 3) for the project file or the environment, SecretStoreError (exit 4) for the store.
    """
    proj, chosen = choose_environment(config, env)
    return resolve_settings(proj, chosen, store)


def conninfo(
    env: str | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    store: SecretStore | Callable[[], SecretStore] | None = None,
) -> str:
    """A libpq ``key=value`` connection string for ENV, password included: pass it to libpq,
    psycopg or asyncpg; do not log it."""
    proj, chosen = choose_environment(config, env)
    return resolve_settings(proj, chosen, store, connection_only=True).conninfo()


def _connect_args(
    env: str | None,
    config: str | os.PathLike[str] | None,
    store: SecretStore | Callable[[], SecretStore] | None,
) -> tuple[str, tuple[str, ...]]:
    """The conninfo and the secret values to redact from any error about it."""
    from pgconnect import login

    proj, chosen = choose_environment(config, env)
    params = resolve_settings(proj, chosen, store, connection_only=True).connect_params()
    login.check_conninfo(params)  # a bad keyword is a ConfigError, never a psycopg error
    from pgconnect.connstr import to_conninfo

    secrets = tuple(v for k, v in params.items() if k in ("password", "sslpassword") and v)
    return to_conninfo(params, reveal=True), secrets


def connect(
    env: str | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    store: SecretStore | Callable[[], SecretStore] | None = None,
    **psycopg_kwargs: Any,
) -> psycopg.Connection[Any]:
    """Open a ``psycopg.Connection`` to ENV's database.

    PSYCOPG_KWARGS go to ``psycopg.Connection.connect`` unchanged (``autocommit``,
    ``row_factory``, ``prepare_threshold``, or a libpq parameter such as ``connect_timeout`` that
    overrides the project's). A failed login raises NetworkError (5), TLSError (6) or
    RejectedError (7), with the message redacted, instead of ``psycopg.OperationalError``.
    """
    import psycopg

    from pgconnect import login

    info, secrets = _connect_args(env, config, store)
    try:
        return psycopg.Connection.connect(info, **psycopg_kwargs)
    except psycopg.OperationalError as exc:
        raise login.classify(exc, secrets).error from None


async def connect_async(
    env: str | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    store: SecretStore | Callable[[], SecretStore] | None = None,
    **psycopg_kwargs: Any,
) -> psycopg.AsyncConnection[Any]:
    """``connect`` for asyncio: a ``psycopg.AsyncConnection`` (same arguments, same errors).

    Resolving the settings may read the keyring, which is a blocking call of at most a few
    seconds (every keyring call has a deadline); run it before the event loop is busy, or wrap
    the call in ``asyncio.to_thread`` if that matters.
    """
    import psycopg

    from pgconnect import login

    info, secrets = _connect_args(env, config, store)
    try:
        return await psycopg.AsyncConnection.connect(info, **psycopg_kwargs)
    except psycopg.OperationalError as exc:
        raise login.classify(exc, secrets).error from None
