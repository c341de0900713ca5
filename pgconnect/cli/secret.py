"""Commands for secrets: ``secret put|list|delete|bulk`` (SPEC §3).

Values live in the secret store (the OS keyring, or the opt-in file store); the project file only
declares their names (``secrets = [...]`` for the base, ``[env.E] secrets = [...]`` for an
environment). A value is never taken from the command line, and never printed.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from pgconnect import params
from pgconnect import project as projectfile
from pgconnect.cli import common
from pgconnect.cli.options import ConfigOpt, DebugOpt, EnvOpt, JsonOpt
from pgconnect.errors import CommandError, ConfigError, PgconnectError, UsageError
from pgconnect.project import Project
from pgconnect.secrets import Secret, SecretStore, service_name

secret_app = typer.Typer(
    help="""Secrets in the OS keyring; the project file declares their names, never values.

    Examples:

      pgconnect secret put DB_PASSWORD

      pgconnect secret list --env staging --json
    """,
    no_args_is_help=True,
    rich_markup_mode=None,
)


SecretName = Annotated[
    str,
    typer.Argument(
        help="Secret name, e.g. DB_PASSWORD or DB_URL.",
        autocompletion=common.complete_secret,
        metavar="NAME",
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(secret_app, name="secret")


# --------------------------------------------------------------------------- helpers


def _check_name(name: str) -> None:
    try:
        params.check_name(name)
    except params.InvalidName as exc:
        raise ConfigError(str(exc)) from None


def _check_value(name: str, value: str) -> None:
    """A connection value is validated when set, as a variable is (SPEC §1): a DB_URL secret
    that does not parse, or has sslmode=VERIFY-FULL, is refused now rather than at every use.
    Messages never show a secret part (the parser's are redacted)."""
    try:
        if name == params.URL_NAME:
            params.check_url(value)
        elif params.is_connection_name(name):
            params.check_value(name, value)
    except params.InvalidValue as exc:
        raise ConfigError(f"{exc}; nothing was stored") from None


def _check_no_var(proj: Project, name: str, env: str | None) -> None:
    """A name that is both a variable and a secret is a configuration error (SPEC §2): refuse
    to create one. A base secret meets [vars] and every environment's vars."""
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


def _where(env: str | None) -> str:
    return "secrets" if env is None else f"[env.{env}] secrets"


def _label(store: SecretStore) -> str:
    return "file store" if store.kind == "file" else store.kind


def _read_value(name: str) -> Secret:
    """The value: hidden prompt asked twice on a terminal, else all of stdin minus one newline."""
    from pgconnect.secrets import strip_one_newline

    if common.stdin_is_tty():
        import getpass

        try:
            first = getpass.getpass(f"Value for {name} (input hidden): ")
            if not first:
                raise UsageError("empty value refused; nothing was stored")
            second = getpass.getpass(f"Repeat the value for {name}: ")
        except EOFError:
            raise UsageError("no value entered; nothing was stored") from None
        if first != second:
            raise UsageError("the two values differ; nothing was stored")
        return Secret(first)
    try:
        text = sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"stdin is not UTF-8 text (byte {exc.start}); nothing was stored"
        ) from None
    value = strip_one_newline(text)
    if not value:
        raise UsageError(
            "empty value on stdin; nothing was stored",
            hint=f"pipe the value in: printf '%s' \"$VALUE\" | pgconnect secret put {name}",
        )
    if "\x00" in value:
        # libpq takes C strings: it would silently send only what comes before the NUL.
        raise UsageError(
            "the value on stdin contains a NUL byte, which libpq cannot pass on; nothing was stored"
        )
    return Secret(value)


# --------------------------------------------------------------------------- commands


@secret_app.command(
    "put", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def put(
    ctx_: typer.Context,
    name: SecretName,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Store a secret in the keyring and declare its NAME in the project file.

    On a terminal the value is asked twice, hidden. Otherwise it is read from stdin, and exactly
    one trailing newline (\\n or \\r\\n) is removed. The value is never accepted as an argument.
    --env stores it for that environment (creating the environment in the file if needed).

    Examples:

      pgconnect secret put DB_PASSWORD

      printf '%s' "$PASSWORD" | pgconnect secret put DB_PASSWORD --env staging

      pgconnect secret put DB_URL < url.txt
    """
    if ctx_.args:
        # Not Click's "unexpected extra argument (…)": that would echo the value back.
        raise UsageError(
            "secret put takes no value on the command line (it would stay in your shell "
            "history and in the process list); nothing was stored",
            hint=f"answer the prompt, or pipe it: printf '%s' \"$VALUE\" | pgconnect secret put {name}",
        )
    ctx = common.load(config, env, env_may_be_new=True)
    _check_name(name)
    _check_no_var(ctx.project, name, ctx.env)
    value = _read_value(name)
    _check_value(name, value.reveal())
    store = common.open_store()
    service = service_name(ctx.project.name, ctx.env)
    previous = _put(ctx.project, ctx.env, store, service, name, value)
    if previous is None:
        verb = "stored"
    elif previous == value:
        verb = "stored (the same value was already there)"
    else:
        # Said every time, so a script that overwrote the wrong environment's value can tell.
        verb = "replaced"
    common.note(
        f"{verb} {name} in the {_label(store)} (service {service}) and declared it in "
        f"{_where(ctx.env)} of {ctx.project.path}"
    )


@secret_app.command("list")
def list_(
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """List the declared secrets (the environment's, then the base's) and whether each is set.

    Values are never shown. "store" is where pgconnect looked: keyring, or file.

    Examples:

      pgconnect secret list

      pgconnect secret list --env staging --json
    """
    from pgconnect.headless import ReadOnlyStore, Unread

    ctx = common.load(config, env)
    declared = ctx.project.declared_secrets(ctx.env)
    # Whether a secret is set needs no value: a store that cannot be reached (no D-Bus session,
    # locked) is reported per secret ("set": null) with one warning, not exit 4.
    store = ReadOnlyStore(common.open_store)
    rows: list[dict[str, object]] = []
    for name, decl_env in declared:
        service = service_name(ctx.project.name, decl_env)
        got = store.get(service, name)
        is_set = None if isinstance(got, Unread) else got is not None
        rows.append({"name": name, "env": decl_env, "set": is_set, "store": store.kind})
    if store.error is not None:
        common.warn(
            f"{store.error.message}; whether each secret is set is unknown"
            + (f"\nhint: {store.error.hint}" if store.error.hint else "")
        )
    if json_out:
        common.out(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        common.note("no secrets declared; add one with: pgconnect secret put DB_PASSWORD")
        return
    width = max(len(str(r["name"])) for r in rows)
    for r in rows:
        decl_env = r["env"] if isinstance(r["env"], str) else None
        state = "set" if r["set"] else "unknown" if r["set"] is None else "not set"
        service = service_name(ctx.project.name, decl_env)
        common.out(f"{str(r['name']).ljust(width)}  {state.ljust(7)}  {r['store']}:{service}")


@secret_app.command("delete")
def delete(
    name: SecretName,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Delete a secret's value from the store and its declaration from the project file.

    Asks for confirmation on a terminal; without a terminal it refuses (exit 2) unless --yes.

    Examples:

      pgconnect secret delete DB_PASSWORD

      pgconnect secret delete DB_PASSWORD --env staging --yes
    """
    ctx = common.load(config, env)
    _check_name(name)
    own = ctx.project.envs[ctx.env].secrets if ctx.env is not None else ctx.project.secrets
    declared = name in own
    service = service_name(ctx.project.name, ctx.env)
    if not yes and not common.stdin_is_tty():
        raise UsageError(
            f"refusing to delete {name} without confirmation: stdin is not a terminal",
            hint=f"pass --yes: pgconnect secret delete {name} --yes"
            + (f" --env {ctx.env}" if ctx.env else ""),
        )
    store = common.open_store()
    if not declared and store.get(service, name) is None:
        raise ConfigError(f"{name} is not a secret in {_where(ctx.env)} of {ctx.project.path}")
    if not yes and not typer.confirm(
        f"Delete {name} from the {_label(store)} (service {service}) and from {_where(ctx.env)}?",
        default=False,
        err=True,
    ):
        raise CommandError("nothing was deleted")
    with projectfile.edit(ctx.project.path) as editor:
        editor.undeclare_secret(name, ctx.env)
        removed = store.delete(service, name)
    what = (
        "value and declaration" if removed and declared else "value" if removed else "declaration"
    )
    common.note(f"deleted {name} ({what}; service {service})")


@secret_app.command("bulk")
def bulk(
    source: Annotated[
        str | None,
        typer.Argument(
            help="A JSON object or dotenv file; '-' or nothing reads stdin.", metavar="[FILE|-]"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Set (and delete) many secrets from a JSON object or a dotenv file.

    JSON: {"DB_PASSWORD": "…", "OLD_TOKEN": null} — null deletes the value and the declaration.
    dotenv: NAME=value lines (export, # comments and quotes allowed). Everything is checked
    before anything changes; --dry-run prints the plan on stdout and touches nothing.

    Examples:

      pgconnect secret bulk secrets.json

      pgconnect secret bulk --env staging - < .env.staging

      pgconnect secret bulk secrets.json --dry-run
    """
    from pgconnect.secrets import BulkInputError, parse_bulk

    ctx = common.load(config, env, env_may_be_new=True)
    text = _read_bulk(source)
    try:
        entries = parse_bulk(text)
    except BulkInputError as exc:
        raise UsageError(f"{_source_label(source)}: {exc}; nothing was changed") from None
    if not entries:
        raise UsageError(f"{_source_label(source)}: no secrets in the input; nothing was changed")
    for name, value in entries.items():
        _check_name(name)
        if value is not None:
            _check_value(name, value)
            _check_no_var(ctx.project, name, ctx.env)
    service = service_name(ctx.project.name, ctx.env)
    width = max(len(n) for n in entries)
    if dry_run:
        for name, value in entries.items():
            verb = "would set   " if value is not None else "would delete"
            common.out(f"{verb}  {name.ljust(width)}  ({service})")
        return
    store = common.open_store()
    env_table = ctx.project.envs.get(ctx.env) if ctx.env is not None else None
    own = set(ctx.project.secrets if ctx.env is None else env_table.secrets if env_table else ())
    from pgconnect.secrets import StoreDeadlineError

    done: list[tuple[str, str]] = []  # (name, what happened: set / deleted / absent / unknown)
    undo = _Undo(store, service)
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
        # Declarations follow what really happened, also when a store call failed half-way; if
        # the file cannot be written (a full disk), the store is put back as it was.
        if done:
            with undo.unless_recorded(), projectfile.edit(ctx.project.path) as editor:
                for name, what in done:
                    if what in ("set", "replaced", "maybe set"):
                        editor.declare_secret(name, ctx.env)
                    else:
                        editor.undeclare_secret(name, ctx.env)
    for name, what in done:
        if what != "absent":
            common.note(f"{what} {name} ({service})")
        elif name in own:
            common.note(f"removed the declaration of {name} (it had no value in {service})")
        else:
            common.note(f"{name} was neither set nor declared ({service}); nothing to delete")


def _put(
    proj: Project, env: str | None, store: SecretStore, service: str, name: str, value: Secret
) -> Secret | None:
    """Store VALUE and declare NAME: every value in the store is declared, whatever happens.
    Returns the value that was stored before (None: there was none).

    The store is changed inside the edit of the project file: if the store fails, the
    declaration is not written either; if the file cannot be written (a full disk), the store
    is put back as it was. A store call that missed its deadline may still be carried out after
    pgconnect gave up (a stalled keyring daemon resumes and handles the queued call), so then
    NAME is declared all the same: a value the file does not declare is one nobody would see.
    """
    from pgconnect.secrets import StoreDeadlineError

    undo = _Undo(store, service)
    try:
        with undo.unless_recorded(), projectfile.edit(proj.path) as editor:
            editor.declare_secret(name, env)
            undo.remember(name)
            store.set(service, name, value)
    except StoreDeadlineError as exc:
        if not undo.previous:
            raise  # the store did not even answer the read before: nothing was asked of it
        with projectfile.edit(proj.path) as editor:
            editor.declare_secret(name, env)
        exc.message += (
            f"; {name} may still be stored when the store answers, so it is declared in "
            f"{_where(env)} (pgconnect secret list shows whether it is set)"
        )
        raise
    return undo.previous[-1][1] if undo.previous else None  # the value it replaced, if any


class _Undo:
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


def _source_label(source: str | None) -> str:
    return "stdin" if source in (None, "-") else str(source)


def _read_bulk(source: str | None) -> str:
    if source is None or source == "-":
        if source is None and common.stdin_is_tty():
            raise UsageError(
                "give a FILE, or pipe the input in (stdin is a terminal)",
                hint="pgconnect secret bulk secrets.json, or pgconnect secret bulk - < .env",
            )
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{_source_label(source)} is not UTF-8 text (byte {exc.start})") from None
