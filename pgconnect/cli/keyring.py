"""``pgconnect keyring run|shell``: an unlocked Secret Service where there is no desktop.

The library side is ``pgconnect.headless``; here the password of a persistent keyring is asked
for, and the command or shell is run under the keyring session with its signals passed on.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pgconnect.cli import common
from pgconnect.cli.options import DebugOpt
from pgconnect.errors import UsageError

keyring_app = typer.Typer(
    help="""An unlocked keyring (Secret Service) for machines without a desktop: servers,
    containers, SSH sessions, CI.

    Examples:

      pgconnect keyring shell

      pgconnect keyring run -- pgconnect secret list

      pgconnect keyring shell --persistent
    """,
    no_args_is_help=True,
    rich_markup_mode=None,
)

PersistentOpt = Annotated[
    bool,
    typer.Option(
        "--persistent",
        help="Keep the keyring in pgconnect's data folder ($XDG_DATA_HOME/pgconnect/keyring), "
        "unlocked with your password (asked on the terminal, or $PGCONNECT_KEYRING_PASSWORD), "
        "instead of a throwaway one that is gone when the command ends.",
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(keyring_app, name="keyring")


@keyring_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def run(
    context: typer.Context,
    persistent: PersistentOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run CMD with its own D-Bus session and an unlocked gnome-keyring; stop both when it ends.

    Throwaway by default: a new keyring in a private temporary folder, unlocked with a random
    password, removed when CMD ends (for CI and containers: put the secrets in at the start).
    --persistent keeps it in $XDG_DATA_HOME/pgconnect/keyring (for a server or an SSH login).
    The exit status is CMD's; signals are passed on.

    Examples:

      pgconnect keyring run -- pgconnect secret list

      pgconnect keyring run -- sh -c 'printf %s "$DB_PASSWORD" | pgconnect secret put DB_PASSWORD && pgconnect check'

      pgconnect keyring run --persistent -- pgconnect query "select 1"
    """
    argv = list(context.args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise UsageError(
            "no command given",
            hint="pgconnect keyring run -- CMD [ARGS]..., or pgconnect keyring shell",
        )
    _run(argv, persistent=persistent)


@keyring_app.command("shell")
def shell(
    persistent: PersistentOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Start your shell ($SHELL) with its own D-Bus session and an unlocked gnome-keyring.

    Every pgconnect command in that shell uses the keyring; exit the shell to stop it (a
    throwaway keyring is then removed with its secrets). $PGCONNECT_KEYRING says which kind
    runs (throwaway or persistent).

    Examples:

      pgconnect keyring shell

      pgconnect keyring shell --persistent
    """
    _run([os.environ.get("SHELL") or "/bin/sh"], persistent=persistent, interactive=True)


def _password(persistent: bool) -> str:
    """The keyring's password: random for a throwaway one; for a persistent one from
    $PGCONNECT_KEYRING_PASSWORD, else asked on the terminal (twice when it is created)."""
    import secrets

    from pgconnect import headless

    if not persistent:
        return secrets.token_urlsafe(24)
    given = os.environ.get(headless.PASSWORD_ENV)
    if given:
        return given
    folder = headless.persistent_folder()
    if not common.stdin_is_tty():
        raise UsageError(
            f"the persistent keyring in {folder} needs its password, and stdin is not a terminal",
            hint=f"give it in the environment: {headless.PASSWORD_ENV}=… pgconnect keyring run "
            "--persistent -- CMD",
        )
    import getpass

    creating = not headless.persistent_exists(folder)
    try:
        if creating:
            first = getpass.getpass(f"New password for the keyring in {folder}: ")
            if not first:
                raise UsageError("empty password refused; no keyring was created")
            if getpass.getpass("Repeat it: ") != first:
                raise UsageError("the two passwords differ; no keyring was created")
            return first
        return getpass.getpass(f"Password of the keyring in {folder}: ")
    except EOFError:
        raise UsageError("no password entered") from None


def _run(argv: list[str], *, persistent: bool, interactive: bool = False) -> None:
    from pgconnect import handoff, headless
    from pgconnect.secret import Secret

    password = Secret(_password(persistent))
    with headless.keyring_session(password, persistent=persistent) as extra:
        environ = {k: v for k, v in os.environ.items() if k != headless.PASSWORD_ENV}
        environ.update(extra)
        kind = extra[headless.SESSION_ENV]
        if interactive:
            where = (
                f"kept in {headless.persistent_folder()}"
                if persistent
                else "removed with its secrets when the shell ends"
            )
            common.note(f"keyring shell: an unlocked {kind} keyring ({where}); exit to stop it")
        try:
            status = handoff.run(argv, handoff.Handoff(environ=environ))
        except (FileNotFoundError, PermissionError) as exc:
            raise UsageError(f"cannot run {argv[0]}: {exc.strerror}") from None
    if status:
        raise typer.Exit(status)
