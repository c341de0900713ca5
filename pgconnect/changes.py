"""Changes that touch the secret store and the project file together.

A secret lives in two places: its value in the store (the OS keyring or the file store), its name
in the project file (``secrets = [...]``). ``put`` and ``bulk`` change both as one transaction:
the store is changed inside the project file's locked edit, and when the file cannot be written
(a full disk) the store is put back as it was (``Undo``), so the two never disagree. ``init_from_url``
splits a connection string into variables for a new project file and secrets for the store.

The rules checked before anything changes: a name is either a variable or a secret, never both
(``check_no_var``); a connection value is validated when it is set (``check_value``).

Nothing here prints or prompts: the CLI reads the values and reports what happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pgconnect import params
from pgconnect import project as projectfile
from pgconnect.errors import CommandError, ConfigError, PgconnectError
from pgconnect.project import Project
from pgconnect.secret import Secret, service_name
from pgconnect.store import SecretStore


def check_name(name: str) -> None:
    """ConfigError unless NAME is a valid variable or secret name."""
    try:
        params.check_name(name)
    except params.InvalidName as exc:
        if not params.NAME_RE.fullmatch(name):
            # Not shaped like a name: perhaps the value, typed where the name belongs.
            raise ConfigError(
                "invalid secret name (not shown, in case it is the value): names are upper "
                "case, digits and '_' ([A-Z_][A-Z0-9_]*), not starting with a digit"
            ) from None
        raise ConfigError(str(exc)) from None


def check_value(name: str, value: str) -> None:
    """A connection value is validated when set, as a variable is: a DB_URL secret that does not
    parse, or has sslmode=VERIFY-FULL, is refused now rather than at every use. Messages never
    show a secret part (the parser's are redacted)."""
    try:
        if name == params.URL_NAME:
            params.check_url(value, secret=True)
        elif params.is_connection_name(name):
            params.check_value(name, value, secret=True)
    except params.InvalidValue as exc:
        raise ConfigError(f"{exc}; nothing was stored") from None


def check_no_var(proj: Project, name: str, env: str | None) -> None:
    """A name that is both a variable and a secret is a configuration error: refuse to create
    one. A base secret meets [vars] and every environment's vars."""
    tables: list[tuple[str | None, dict[str, str]]] = [(None, proj.vars)]
    if env is None:
        tables += [(e, proj.envs[e].vars) for e in sorted(proj.envs)]
    elif env in proj.envs:
        tables.append((env, proj.envs[env].vars))
    for var_env, table in tables:
        if name in table:
            where = "[vars]" if var_env is None else f"[env.{var_env}.vars]"
            flag = "" if var_env is None else f" --env {var_env}"
            raise ConfigError(
                f"{name} is a variable in {where} of {proj.path}; a name is either a variable "
                "or a secret",
                hint=f"remove the variable first: pgconnect var unset {name}{flag}",
            )


class Undo:
    """Store changes to take back when the project file cannot record them: the file and the
    store then stay as they were together, rather than a value the file does not declare (or a
    declaration whose value is gone)."""

    def __init__(self, store: SecretStore, service: str) -> None:
        self.store = store
        self.service = service
        self.previous: list[tuple[str, Secret | None]] = []

    def remember(self, name: str) -> None:
        """Call before changing NAME in the store."""
        self.previous.append((name, self.store.get(self.service, name)))

    @contextlib.contextmanager
    def unless_recorded(self) -> Iterator[None]:
        """Around the edit of the project file: if it fails, put the store back."""
        try:
            yield
        except CommandError as exc:
            # The file was not changed (project.edit guarantees it); nor should the store be.
            try:
                for name, value in reversed(self.previous):
                    if value is None:
                        self.store.delete(self.service, name)
                    else:
                        self.store.set(self.service, name, value)
            except PgconnectError:
                names = ", ".join(sorted({n for n, _ in self.previous}))
                exc.hint = (
                    f"the {self.service} store now differs from the file for {names}; "
                    "run the command again once the file can be written"
                )
            else:
                exc.message = exc.message.replace(
                    "the file was not changed", "neither the file nor the secret store was changed"
                )
            raise


@dataclass
class Stored:
    """What ``put`` did: the store's service, the value it replaced (None: there was none), and
    whether the value took over from a command the section had for NAME ([secret_commands])."""

    service: str
    previous: Secret | None
    replaced_command: bool


def put(proj: Project, env: str | None, name: str, value: Secret, store: SecretStore) -> Stored:
    """Store NAME = VALUE for ENV and declare it in the project file.

    The checks come first (name, variable-or-secret, value); the store is changed inside the
    file's edit, so a failed store call leaves the file alone and a failed write puts the store
    back.
    """
    check_name(name)
    check_no_var(proj, name, env)
    check_value(name, value.reveal())
    from pgconnect.store import StoreDeadlineError

    service = service_name(proj.name, env)
    undo = Undo(store, service)
    try:
        with undo.unless_recorded(), projectfile.edit(proj.path) as editor:
            editor.declare_secret(name, env)
            undo.remember(name)
            store.set(service, name, value)
            # The stored value takes over from a command the section had for NAME.
            replaced_command = editor.remove_secret_command(name, env)
    except StoreDeadlineError as exc:
        # A store call that missed its deadline may still be carried out after pgconnect gave
        # up (a stalled keyring daemon resumes and handles the queued call), so NAME is declared
        # all the same: a value the file does not declare is one nobody would see.
        if not undo.previous:
            raise  # the store did not even answer the read before: nothing was asked of it
        with projectfile.edit(proj.path) as editor:
            editor.declare_secret(name, env)
        where = "secrets" if env is None else f"[env.{env}] secrets"
        exc.message += (
            f"; {name} may still be stored when the store answers, so it is declared in "
            f"{where} (pgconnect secret list shows whether it is set)"
        )
        raise
    previous = undo.previous[-1][1] if undo.previous else None
    return Stored(service, previous, replaced_command)


def check_bulk(proj: Project, env: str | None, entries: Mapping[str, str | None]) -> None:
    """Every entry of a bulk change is checked before anything changes."""
    for name, value in entries.items():
        check_name(name)
        if value is not None:
            check_value(name, value)
            check_no_var(proj, name, env)


def bulk(
    proj: Project, env: str | None, entries: Mapping[str, str | None], store: SecretStore
) -> list[tuple[str, str]]:
    """Set (a value) or delete (None) each entry, then record the result in the project file.

    Returns (name, what happened: ``set``, ``replaced`` (another value was there), ``deleted``
    or ``absent``) in order. Declarations
    follow what really happened, also when a store call failed half-way; if the file cannot be
    written, the store is put back as it was.
    """
    from pgconnect.store import StoreDeadlineError

    check_bulk(proj, env, entries)
    service = service_name(proj.name, env)
    done: list[tuple[str, str]] = []  # (name, what happened: set / deleted / absent / maybe set)
    undo = Undo(store, service)
    try:
        for name, value in entries.items():
            undo.remember(name)
            try:
                if value is not None:
                    store.set(service, name, Secret(value))
                    before = undo.previous[-1][1]
                    replaced = before is not None and before.reveal() != value
                    done.append((name, "replaced" if replaced else "set"))
                else:
                    removed = store.delete(service, name)
                    done.append((name, "deleted" if removed else "absent"))
            except StoreDeadlineError as exc:
                # The store may still carry the call out after we give up: a value that may
                # land is declared; a deletion that may happen keeps its declaration for now.
                if value is not None:
                    done.append((name, "maybe set"))
                    exc.message += (
                        f"; {name} may still be stored when the store answers, so it is declared "
                        "(pgconnect secret list shows whether it is set)"
                    )
                else:
                    exc.message += f"; {name} may still be deleted, and stays declared for now"
                raise
    finally:
        if done:
            with undo.unless_recorded(), projectfile.edit(proj.path) as editor:
                for name, what in done:
                    if what in ("set", "replaced", "maybe set"):
                        editor.declare_secret(name, env)
                    else:
                        editor.undeclare_secret(name, env)
                    # A value set here replaces the section's command; null deletes it too.
                    editor.remove_secret_command(name, env)
    return done


@dataclass
class Initialized:
    """What ``init_from_url`` wrote: variables into the file, secrets into the store."""

    path: Path
    project: str
    env: str | None
    variables: dict[str, str]
    secrets: list[str] = field(default_factory=list)
    service: str = ""
    store_kind: str | None = None
    #: provider parameters removed from the string (``pgbouncer``, ``schema``, …)
    removed: list[str] = field(default_factory=list)


def init_from_url(
    target: Path,
    project_name: str,
    dsn: str,
    env: str | None,
    force: bool,
    open_store: Callable[[], SecretStore],
) -> Initialized:
    """A new project file from a connection string: its parts become variables ([vars], or
    [env.ENV.vars]), its password a declared secret in the store (never the file).

    Everything is validated before the store or the file is touched; the store is opened only
    when there is a secret to keep.
    """
    from pgconnect.connstr import without_provider_parameters

    # Provider parameters libpq does not take (Prisma's pgbouncer=true, …) are removed (the CLI
    # notes each); check_url parses the rest as libpq does and checks each part as its own
    # variable, never quoting a part of a string that carries a secret.
    dsn, removed = without_provider_parameters(dsn)
    try:
        parts = params.check_url(dsn, secret=params.url_has_password(dsn))
    except params.InvalidValue as exc:
        raise ConfigError(str(exc).replace(params.URL_NAME, "the connection string", 1)) from None
    plain: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for keyword, value in parts.items():
        name = params.name_for(keyword)
        if keyword in params.SECRET_KEYWORDS:
            secrets[name] = value
            continue
        plain[name] = value
    if secrets.get(params.PASSWORD_NAME) == "":
        del secrets[params.PASSWORD_NAME]  # an empty password is no password
    if env is not None:
        projectfile.check_env_name(env)
    text = projectfile.initial_text(project_name, plain if env is None else None)
    projectfile.parse(target, text.encode("utf-8"))  # the name is valid before anything is stored
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists; nothing was changed", hint="use --force")

    service = service_name(project_name, env)
    result = Initialized(target, project_name, env, plain, list(secrets), service, removed=removed)
    if secrets:
        store = open_store()
        result.store_kind = store.kind
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
    return result
