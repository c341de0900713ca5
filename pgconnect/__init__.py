"""pgconnect: connect code and scripts to PostgreSQL, with secrets kept out of the repository.

The library (the CLI is one user of it)::

    import pgconnect

    s = pgconnect.settings("staging")      # every parameter with its source; repr masks secrets
    dsn = pgconnect.conninfo("staging")     # libpq key=value string, password included
    with pgconnect.connect("staging") as conn:  # a psycopg.Connection
        conn.execute("select 1")

Failures raise the classes below; ``exc.exit_code`` is the CLI's exit status for the same failure.
Nothing here prints, prompts or exits. Names are imported on first use, so ``import pgconnect``
stays cheap (no psycopg, keyring or tomlkit until a call needs them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pgconnect.api import Settings, connect, connect_async, conninfo, settings
    from pgconnect.errors import (
        CommandError,
        ConfigError,
        ExitCode,
        Interrupted,
        NetworkError,
        PgconnectError,
        QueryError,
        RejectedError,
        SecretStoreError,
        Terminated,
        TLSError,
        UsageError,
    )

__all__ = [
    "CommandError",
    "ConfigError",
    "ExitCode",
    "Interrupted",
    "NetworkError",
    "PgconnectError",
    "QueryError",
    "RejectedError",
    "SecretStoreError",
    "Settings",
    "TLSError",
    "Terminated",
    "UsageError",
    "__version__",
    "connect",
    "connect_async",
    "conninfo",
    "settings",
]
_API = frozenset({"Settings", "connect", "connect_async", "conninfo", "settings"})


def __getattr__(name: str) -> Any:
    # A name that is not ours raises AttributeError, so ``from pgconnect import project`` still
    # imports the submodule.
    if name in _API:
        from pgconnect import api

        return getattr(api, name)
    if name in __all__ and name != "__version__":
        from pgconnect import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'pgconnect' has no attribute {name!r}")
