"""The exception tree and the stable exit statuses (README.md, "Exit status").

Logic modules raise these; only the CLI's error boundary (``pgconnect.cli.main``) turns them into a
one-line message on stderr and the exit status below. Messages must never contain a secret value:
anything that may echo one (driver errors, URIs) goes through ``redact`` first.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Stable exit statuses (README.md, "Exit status"). Scripts rely on these numbers."""

    OK = 0
    FAILURE = 1  # the server reported an error for the SQL, or another command failed
    USAGE = 2  # bad option/argument, empty input, a confirmation that cannot be asked
    CONFIG = 3  # no project file, invalid TOML/value, unknown name, unknown env, conflicts
    SECRET_STORE = 4  # no keyring backend, locked, dismissed, timed out, unsafe file store
    NETWORK = 5  # name not resolved, connection refused, timed out
    TLS = 6  # the sslmode's requirement not met
    REJECTED = 7  # authentication failed, no pg_hba entry, role or database does not exist
    CANNOT_EXECUTE = 126  # exec: the command was found but cannot be run (the shell's status)
    NOT_FOUND = 127  # exec: no such command (the shell's status)
    HANGUP = 129  # SIGHUP (128 + 1, as a shell reports a process the signal ended)
    INTERRUPTED = 130  # SIGINT
    QUIT = 131  # SIGQUIT
    TERMINATED = 143  # SIGTERM


class PgconnectError(Exception):
    """Base of every expected failure; carries its exit status and an optional hint."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class CommandError(PgconnectError):
    """A command failed for a reason that is not one of the specific classes below."""


class UsageError(PgconnectError):
    """The command line or its input is wrong (exit 2)."""

    exit_code = ExitCode.USAGE


class ConfigError(PgconnectError):
    """The project file, a value in it, or the choice of environment is wrong (exit 3)."""

    exit_code = ExitCode.CONFIG


class SecretStoreError(PgconnectError):
    """The secret store is missing, locked, refused, timed out or unsafe (exit 4)."""

    exit_code = ExitCode.SECRET_STORE


class NetworkError(PgconnectError):
    """The server could not be reached: DNS, TCP, or a timeout (exit 5)."""

    exit_code = ExitCode.NETWORK


class TLSError(PgconnectError):
    """The sslmode's requirement was not met (exit 6)."""

    exit_code = ExitCode.TLS


class RejectedError(PgconnectError):
    """The server refused the login: password, pg_hba, role or database (exit 7)."""

    exit_code = ExitCode.REJECTED


class QueryError(PgconnectError):
    """The server reported an error for the SQL (exit 1); ``details`` holds extra lines."""

    exit_code = ExitCode.FAILURE

    def __init__(
        self, message: str, *, hint: str | None = None, details: list[str] | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.details = details or []


class CannotExecuteError(PgconnectError):
    """exec: the command exists but cannot be run (exit 126, as in a shell)."""

    exit_code = ExitCode.CANNOT_EXECUTE


class CommandNotFoundError(PgconnectError):
    """exec: there is no such command (exit 127, as in a shell)."""

    exit_code = ExitCode.NOT_FOUND


class Interrupted(PgconnectError):
    """The user interrupted the command (SIGINT, exit 130)."""

    exit_code = ExitCode.INTERRUPTED


class Terminated(PgconnectError):
    """The process was asked to stop (SIGTERM, exit 143)."""

    exit_code = ExitCode.TERMINATED


class HungUp(PgconnectError):
    """The terminal hung up (SIGHUP, exit 129); a running query was cancelled."""

    exit_code = ExitCode.HANGUP


class Quit(PgconnectError):
    """The user quit (SIGQUIT, exit 131); a running query was cancelled."""

    exit_code = ExitCode.QUIT
