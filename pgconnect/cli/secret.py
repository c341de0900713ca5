"""Commands for secrets: ``secret put|list|delete|bulk`` (SPEC §3).

Values live in the secret store (the OS keyring, or the opt-in file store); the project file only
declares their names (``secrets = [...]`` for the base, ``[env.E] secrets = [...]`` for an
environment). A value is never taken from the command line, and never printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from pgconnect import changes
from pgconnect import project as projectfile
from pgconnect.cli import common
from pgconnect.cli.options import ConfigOpt, DebugOpt, EnvOpt, JsonOpt
from pgconnect.errors import CommandError, ConfigError, UsageError
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
        # Neither argument is quoted: either may be the value (secret put VALUE NAME).
        raise UsageError(
            "secret put takes no value on the command line (it would stay in your shell "
            "history and in the process list); nothing was stored",
            hint="answer the prompt, or pipe it: printf '%s' \"$VALUE\" | pgconnect secret put NAME",
        )
    ctx = common.load(config, env, env_may_be_new=True)
    # The name is checked before the value is asked for; the value before the store is opened.
    changes.check_name(name)
    changes.check_no_var(ctx.project, name, ctx.env)
    value = _read_value(name)
    changes.check_value(name, value.reveal())
    store = common.open_store()
    service = changes.put(ctx.project, ctx.env, name, value, store)
    common.note(
        f"stored {name} in the {_label(store)} (service {service}) and declared it in "
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
    ctx = common.load(config, env)
    declared = ctx.project.declared_secrets(ctx.env)
    store: SecretStore | None = common.open_store() if declared else None
    rows: list[dict[str, object]] = []
    for name, decl_env in declared:
        assert store is not None
        service = service_name(ctx.project.name, decl_env)
        is_set = store.get(service, name) is not None
        rows.append({"name": name, "env": decl_env, "set": is_set, "store": store.kind})
    if json_out:
        common.out(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        common.note("no secrets declared; add one with: pgconnect secret put DB_PASSWORD")
        return
    width = max(len(str(r["name"])) for r in rows)
    for r in rows:
        decl_env = r["env"] if isinstance(r["env"], str) else None
        state = "set" if r["set"] else "not set"
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
    changes.check_name(name)
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
    changes.check_bulk(ctx.project, ctx.env, entries)
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
    done = changes.bulk(ctx.project, ctx.env, entries, store)
    for name, what in done:
        if what != "absent":
            common.note(f"{what} {name} ({service})")
        elif name in own:
            common.note(f"removed the declaration of {name} (it had no value in {service})")
        else:
            common.note(f"{name} was neither set nor declared ({service}); nothing to delete")


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
        except ValueError:  # a NUL in the path (only a program calling main() can pass one)
            raise UsageError("the file name contains a NUL byte") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{_source_label(source)} is not UTF-8 text (byte {exc.start})") from None
