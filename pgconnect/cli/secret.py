"""Commands for secrets: ``secret put|list|delete|bulk`` (docs/secrets.md).

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

from pgconnect import changes, secret_command
from pgconnect import project as projectfile
from pgconnect.cli import common
from pgconnect.cli.options import ConfigOpt, DebugOpt, EnvOpt, JsonOpt
from pgconnect.errors import CommandError, ConfigError, UsageError
from pgconnect.secret import Secret, service_name
from pgconnect.store import SecretStore

secret_app = typer.Typer(
    help="""Secrets in the OS keyring, or from a command; the project file declares their names.

    Examples:

      pgconnect secret put DB_PASSWORD

      pgconnect secret put DB_PASSWORD --command 'op read op://prod/db/password'

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


def _complete_command_secret(incomplete: str) -> list[str]:
    """For ``secret allow``: the names that have a command (for --env and the base, else all)."""
    proj = common._completion_project()
    if proj is None:
        return []
    env = projectfile.selected_env(common.STATE.env)
    if env is not None and env in proj.envs:
        names = set(proj.commands) | set(proj.envs[env].commands)
    else:
        names = set(proj.commands)
        for e in proj.envs.values():
            names |= set(e.commands)
    return sorted(n for n in names if n.startswith(incomplete))


def register(app: typer.Typer) -> None:
    app.add_typer(secret_app, name="secret")


# --------------------------------------------------------------------------- helpers


def _where(env: str | None) -> str:
    return "secrets" if env is None else f"[env.{env}] secrets"


def _label(store: SecretStore) -> str:
    return "file store" if store.kind == "file" else store.kind


def _read_value(name: str) -> Secret:
    """The value: hidden prompt asked twice on a terminal, else all of stdin minus one newline."""
    from pgconnect.secretinput import strip_one_newline

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
    command: Annotated[
        str | None,
        typer.Option(
            "--command",
            help="Take the value from this command's output each time it is needed (split with "
            "shell quoting rules, never run through a shell).",
            metavar="COMMAND",
        ),
    ] = None,
    aws_rds_iam: Annotated[
        bool,
        typer.Option("--aws-rds-iam", help="The password is an AWS RDS IAM token (aws CLI)."),
    ] = False,
    region: Annotated[
        str | None,
        typer.Option("--region", help="AWS region for --aws-rds-iam.", metavar="REGION"),
    ] = None,
    gcp_cloudsql_iam: Annotated[
        bool,
        typer.Option(
            "--gcp-cloudsql-iam", help="The password is a Cloud SQL IAM login token (gcloud)."
        ),
    ] = False,
    azure_entra: Annotated[
        bool,
        typer.Option("--azure-entra", help="The password is a Microsoft Entra token (az CLI)."),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="Seconds the command may take before it is stopped (default 30).",
            metavar="S",
        ),
    ] = None,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Store a secret in the keyring (or bind it to a command) and declare its NAME.

    On a terminal the value is asked twice, hidden. Otherwise it is read from stdin, and exactly
    one trailing newline (\\n or \\r\\n) is removed. The value is never accepted as an argument.
    --env stores it for that environment (creating the environment in the file if needed).

    --command records a command in [secret_commands] of the project file instead: it runs (no
    shell) each time the value is needed and its output, minus one trailing newline, is the
    value. --aws-rds-iam, --gcp-cloudsql-iam and --azure-entra record a cloud CLI that prints a
    short-lived token for the resolved host, port and user (TLS required). A command added here
    is approved on this machine at once; one that came with the repository needs
    pgconnect secret allow.

    Examples:

      pgconnect secret put DB_PASSWORD

      printf '%s' "$PASSWORD" | pgconnect secret put DB_PASSWORD --env staging

      pgconnect secret put DB_URL < url.txt

      pgconnect secret put DB_PASSWORD --command 'op read op://prod/db/password'

      pgconnect secret put DB_PASSWORD --env prod --aws-rds-iam --region eu-west-1
    """
    spec = _command_spec(
        name, command, aws_rds_iam, region, gcp_cloudsql_iam, azure_entra, timeout, ctx_.args
    )
    if spec is not None:
        _put_command(name, spec, config, env)
        return
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
    stored = changes.put(ctx.project, ctx.env, name, value, store)
    service, replaced_command = stored.service, stored.replaced_command
    if stored.previous is None:
        verb = "stored"
    elif stored.previous == value:
        verb = "stored (the same value was already there)"
    else:
        # Said every time, so a script that overwrote the wrong environment's value can tell.
        verb = "replaced"
    common.note(
        f"{verb} {name} in the {_label(store)} (service {service}) and declared it in "
        f"{_where(ctx.env)} of {ctx.project.path}"
    )
    if replaced_command:
        common.note(f"replaced {name}'s command in {secret_command.where(ctx.env)}")


def _command_spec(
    name: str,
    command: str | None,
    aws: bool,
    region: str | None,
    gcp: bool,
    azure: bool,
    timeout: float | None,
    extra: list[str],
) -> secret_command.CommandSpec | None:
    """What --command / a preset flag asks for (None: a value to store), checked as the file's
    reader would check it."""
    chosen = [
        flag
        for flag, on in (
            ("--command", command is not None),
            ("--aws-rds-iam", aws),
            ("--gcp-cloudsql-iam", gcp),
            ("--azure-entra", azure),
        )
        if on
    ]
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} cannot be combined; give one")
    if not chosen:
        if region is not None:
            raise UsageError("--region goes with --aws-rds-iam")
        if timeout is not None:
            raise UsageError("--timeout goes with --command or a preset (--aws-rds-iam, …)")
        return None
    if extra:
        # `--command op read x` without quotes: the rest arrived as extra words.
        raise UsageError(
            f"unexpected word(s) after the command: {' '.join(extra)}",
            hint="quote the whole command: --command 'op read op://vault/item/password'",
        )
    if region is not None and not aws:
        raise UsageError("--region goes with --aws-rds-iam")
    try:
        wait = secret_command.check_timeout(
            "--timeout", secret_command.DEFAULT_TIMEOUT_S if timeout is None else timeout
        )
        if command is not None:
            try:
                argv = secret_command.split_command(command)
            except ValueError as exc:
                raise UsageError(f"--command: {exc}; nothing was changed") from None
            return secret_command.CommandSpec(argv=argv, timeout=wait)
        preset = "aws-rds-iam" if aws else "gcp-cloudsql-iam" if gcp else "azure-entra"
        secret_command.check_preset_name(name)
        if region is not None:
            secret_command.check_region("--region", preset, region)
        return secret_command.CommandSpec(preset=preset, region=region, timeout=wait)
    except ConfigError as exc:
        raise UsageError(f"{exc.message}; nothing was changed", hint=exc.hint) from None


def _put_command(
    name: str, spec: secret_command.CommandSpec, config: str | None, env: str | None
) -> None:
    """Record NAME's command in the project file, declare NAME, approve it on this machine."""
    from pgconnect import approval

    ctx = common.load(config, env, env_may_be_new=True)
    changes.check_name(name)
    changes.check_no_var(ctx.project, name, ctx.env)
    odd = secret_command.shell_words(spec.argv)
    if odd:
        common.warn(
            f"the command runs without a shell: {', '.join(repr(w) for w in odd)} will reach "
            f"{spec.program} as plain argument(s); for a pipeline, make it explicit: "
            "--command 'sh -c \"…\"'"
        )
    with projectfile.edit(ctx.project.path) as editor:
        previous = editor.command(name, ctx.env)
        editor.declare_secret(name, ctx.env)
        editor.set_secret_command(name, ctx.env, spec.to_toml())
    # Added by this machine's user: approved at once (a repository's command needs `allow`).
    approval.approve([approval.subject(ctx.project.path, ctx.env, name, spec.template())])
    verb = "replaced the command for" if previous is not None else "bound"
    common.note(
        f"{verb} {name} in {secret_command.where(ctx.env)} of {ctx.project.path}: "
        f"{spec.shown()}; approved on this machine"
    )
    if spec.is_token:
        common.note(
            "the token is made for the resolved host, port and user each time; it needs TLS "
            "(sslmode require or stronger)"
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
    from pgconnect import approval
    from pgconnect.headless import ReadOnlyStore, Unread

    ctx = common.load(config, env)
    declared = ctx.project.declared_secrets(ctx.env)
    # Whether a secret is set needs no value: a store that cannot be reached (no D-Bus session,
    # locked) is reported per secret ("set": null) with one warning, not exit 4. The store is
    # opened only for a secret it holds (not for one bound to a command).
    store = ReadOnlyStore(common.open_store)
    rows: list[dict[str, object]] = []
    shown: dict[int, str] = {}  # row index -> where, for the text form
    for name, decl_env in declared:
        spec = ctx.project.command_for(name, decl_env)
        if spec is not None:
            item = approval.subject(ctx.project.path, decl_env, name, spec.template())
            ok = approval.is_approved(item)
            shown[len(rows)] = f"command:{secret_command.where(decl_env)} {spec.shown()}" + (
                "" if ok else f"  (run: {secret_command.allow_line(ctx.project.path, decl_env)})"
            )
            rows.append(
                {
                    "name": name,
                    "env": decl_env,
                    "set": True,
                    "store": "command",
                    "approved": ok,
                    "command": list(spec.template()),
                    "preset": spec.preset,
                }
            )
            continue
        service = service_name(ctx.project.name, decl_env)
        got = store.get(service, name)
        is_set = None if isinstance(got, Unread) else got is not None
        shown[len(rows)] = f"{store.kind}:{service}"
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
    states = [
        ("approved" if r["approved"] else "not approved")
        if r["store"] == "command"
        else ("set" if r["set"] else "unknown" if r["set"] is None else "not set")
        for r in rows
    ]
    state_width = max(len(st) for st in states)
    for i, r in enumerate(rows):
        common.out(f"{str(r['name']).ljust(width)}  {states[i].ljust(state_width)}  {shown[i]}")


@secret_app.command("allow")
def allow(
    name: Annotated[
        str | None,
        typer.Argument(
            help="Approve only this secret's command.",
            autocompletion=_complete_command_secret,
            metavar="[NAME]",
        ),
    ] = None,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Approve, on this machine, the secret commands the project file holds.

    A command in pgconnect.toml came with the repository: it runs only once you approved it.
    This shows each command of the selected environment (and of the base) and records its
    approval (a hash of the file's real path, the environment, the name and the command) in
    your data folder, outside the repository. Moving the project or changing the command asks
    again.

    Examples:

      pgconnect secret allow

      pgconnect secret allow --env prod DB_PASSWORD
    """
    from pgconnect import approval

    ctx = common.load(config, env)
    found = [
        (decl_name, decl_env, spec)
        for decl_name, decl_env in ctx.project.declared_secrets(ctx.env)
        if (spec := ctx.project.command_for(decl_name, decl_env)) is not None
        and (name is None or decl_name == name)
    ]
    if name is not None and not found:
        raise ConfigError(
            f"{name} has no command in {secret_command.where(ctx.env)}"
            + ("" if ctx.env is None else " or [secret_commands]")
            + f" of {ctx.project.path}"
        )
    if not found:
        common.note(f"no secret commands in {ctx.project.path}; nothing to approve")
        return
    items = []
    for decl_name, decl_env, spec in found:
        item = approval.subject(ctx.project.path, decl_env, decl_name, spec.template())
        was = approval.status(item)
        items.append(item)
        state = {
            approval.APPROVED: " (already approved)",
            approval.CHANGED: " (changed since approved)",
            approval.MOVED: " (approved elsewhere, not for this file)",
        }.get(was, "")
        common.note(f"{decl_name} ({secret_command.where(decl_env)}){state}: {spec.shown()}")
    approval.approve(items)
    count = f"{len(items)} command" + ("s" if len(items) != 1 else "")
    common.note(f"approved {count} of {ctx.project.path} on this machine")


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
    if ctx.project.command_for(name, ctx.env) is not None:
        # Nothing of it is in the store: the command and the declaration go, the keyring is not
        # opened.
        if not yes and not typer.confirm(
            f"Delete {name}'s command from {secret_command.where(ctx.env)} and its declaration?",
            default=False,
            err=True,
        ):
            raise CommandError("nothing was deleted")
        with projectfile.edit(ctx.project.path) as editor:
            editor.remove_secret_command(name, ctx.env)
            editor.undeclare_secret(name, ctx.env)
        common.note(
            f"deleted {name} (its command in {secret_command.where(ctx.env)} and declaration)"
        )
        return
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
    from pgconnect.secretinput import BulkInputError, parse_bulk

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
