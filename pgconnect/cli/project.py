"""Commands for the project file: ``init``, ``var set|get|list|unset`` and ``explain``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from pgconnect import params
from pgconnect import project as projectfile
from pgconnect.cli import common
from pgconnect.cli.options import ConfigOpt, DebugOpt, EnvOpt, JsonOpt
from pgconnect.errors import ConfigError, UsageError

var_app = typer.Typer(
    help="""Project variables in pgconnect.toml ([vars] and [env.NAME.vars]).

    Examples:

      pgconnect var set DB_HOST db.example.com

      pgconnect var list --env staging
    """,
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _complete_var(incomplete: str) -> list[str]:
    try:
        proj = projectfile.load(projectfile.find(common.STATE.config))
    except Exception:  # completion must never fail loudly
        return []
    names = set(proj.vars)
    for env in proj.envs.values():
        names |= set(env.vars)
    return sorted(n for n in names if n.startswith(incomplete))


VarName = Annotated[
    str, typer.Argument(help="Variable name, e.g. DB_HOST.", autocompletion=_complete_var)
]


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(var_app, name="var")
    app.command("explain")(explain)


def init(
    name: Annotated[
        str | None, typer.Option("--name", help="Project name (default: the folder's name).")
    ] = None,
    from_url: Annotated[
        str | None,
        typer.Option(
            "--from-url",
            help="Split a connection string into variables; its password goes to the secret "
            "store. '-' reads it from stdin (keeps it out of shell history).",
            metavar="URL|-",
        ),
    ] = None,
    from_wrangler: Annotated[
        bool,
        typer.Option(
            "--from-wrangler",
            help="Import vars, environments and secret names from wrangler.toml / wrangler.json"
            " / wrangler.jsonc (FILE, or the first found in the current folder).",
        ),
    ] = False,
    wrangler_file: Annotated[
        str | None,
        typer.Argument(help="The wrangler configuration for --from-wrangler.", metavar="[FILE]"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Create pgconnect.toml in the current folder (or at --config).

    Examples:

      pgconnect init

      pgconnect init --name billing

      printf '%s' "$DATABASE_URL" | pgconnect init --from-url -

      pgconnect init --from-wrangler wrangler.jsonc
    """
    target = (
        projectfile.usable_path(config, "--config") if config else Path.cwd() / projectfile.FILENAME
    )
    if target.is_dir():
        target = target / projectfile.FILENAME
    if wrangler_file is not None and not from_wrangler:
        raise UsageError(
            f"unexpected argument {wrangler_file!r}",
            hint=f"to import it: pgconnect init --from-wrangler {wrangler_file}",
        )
    if from_wrangler:
        if from_url is not None or env is not None:
            raise UsageError(
                "--from-wrangler imports every environment of the file; "
                "it takes neither --from-url nor --env"
            )
        _init_from_wrangler(target, name, wrangler_file, force)
        return
    project_name = name or _default_name(target.parent)
    if from_url is not None:
        from pgconnect.cli import connect

        connect.init_from_url(target, project_name, from_url, projectfile.selected_env(env), force)
        return
    projectfile.create(target, projectfile.initial_text(project_name), force=force)
    common.note(f"wrote {target} (project {project_name!r})")


def _init_from_wrangler(target: Path, name: str | None, file: str | None, force: bool) -> None:
    from pgconnect import export, wrangler

    source = Path(file) if file else wrangler.find(Path.cwd())
    doc = wrangler.read(source)
    envs = doc.get("env") if isinstance(doc.get("env"), dict) else {}
    local = export.local_secret_names(source.parent, envs or {})
    plan = wrangler.plan(source, doc, local)
    project_name = name or plan.name or _default_name(target.parent)
    text = wrangler.project_text(plan, project_name)
    projectfile.create(target, text, force=force)
    for item in plan.skipped:
        common.warn(f"not imported: {item}")
    common.note(f"wrote {target} (project {project_name!r}) from {source}:")
    common.note(f"  [vars]  {', '.join(plan.vars) or 'none'}")
    for env_name, env in plan.envs.items():
        inherit = (
            "" if env.inherit_vars else " (inherit_vars = false: wrangler does not inherit vars)"
        )
        common.note(f"  [env.{env_name}.vars]  {', '.join(env.vars) or 'none'}{inherit}")
    declared = [*plan.secrets] + [
        f"{s} (env {e})" for e, env in plan.envs.items() for s in env.secrets
    ]
    if declared:
        common.note(f"  secrets declared: {', '.join(declared)}")
        common.note("  set each with: pgconnect secret put NAME [--env E]")


def _default_name(folder: Path) -> str:
    import re

    raw = folder.resolve().name or "project"
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-")
    return cleaned or "project"


@var_app.command("set")
def var_set(
    name: VarName,
    value: Annotated[str, typer.Argument(help="The value (never a password).")],
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Set a variable in [vars], or in [env.NAME.vars] with --env (creating the environment).

    Examples:

      pgconnect var set DB_HOST db.example.com

      pgconnect var set --env staging DB_HOST staging.db.example.com
    """
    path = projectfile.find(config)
    chosen = projectfile.selected_env(env)
    _check_name(name)
    # lenient: a file holding an invalid value can be repaired by setting that value.
    with projectfile.edit(path, lenient=True) as editor:
        editor.set_var(name, value, chosen)
    where = "[vars]" if chosen is None else f"[env.{chosen}.vars]"
    common.note(f"set {name} in {where} of {path}")


def _check_name(name: str) -> None:
    try:
        params.check_name(name)
    except params.InvalidName as exc:
        raise ConfigError(str(exc)) from None


@var_app.command("get")
def var_get(
    name: VarName,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Print a variable's effective value (exit 3 if it is not set).

    Examples:

      pgconnect var get DB_HOST

      host=$(pgconnect var get --env staging DB_HOST)
    """
    ctx = common.load(config, env)
    _check_name(name)
    if name in {n for n, _ in ctx.project.declared_secrets(ctx.env)}:
        raise ConfigError(
            f"{name} is a secret, not a variable; its value is never printed",
            hint="see it with: pgconnect secret list",
        )
    from pgconnect.resolve import resolve_values

    values, _ = resolve_values(ctx.project, ctx.env, os.environ, None, names={name})
    if name not in values:
        where = "" if ctx.env is None else f" (environment {ctx.env})"
        raise ConfigError(f"{name} is not set{where}")
    if values[name].is_secret:
        # e.g. DB_PASSWORD from the environment: a secret is never printed (docs/secret-hygiene.md).
        raise ConfigError(f"{name} is a secret ({values[name].source}); its value is never printed")
    common.out(values[name].reveal())


@var_app.command("list")
def var_list(
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """List the effective variables of the selected environment, with where each comes from.

    Examples:

      pgconnect var list

      pgconnect var list --env staging --json
    """
    ctx = common.load(config, env)
    from pgconnect.resolve import resolve_values

    env_vars = ctx.project.envs[ctx.env].vars if ctx.env else {}
    names = set(ctx.project.base_vars(ctx.env)) | set(env_vars)
    values, _ = resolve_values(ctx.project, ctx.env, os.environ, None, names=names)
    if json_out:
        common.out(json.dumps({n: v.shown() for n, v in values.items()}, ensure_ascii=False))
        return
    if not values:
        common.note("no variables set; add one with: pgconnect var set DB_HOST db.example.com")
        return
    from pgconnect.safetext import escape  # a listing for people: no raw control characters

    shown = {n: escape(v.shown()) for n, v in values.items()}
    width = max(len(n) for n in values)
    value_width = max(len(s) for s in shown.values())
    for n, v in values.items():
        # Columns aligned like explain's; the source is last so a long value cannot hide it.
        common.out(escape(f"{n.ljust(width)}  {shown[n].ljust(value_width)}  ({v.source})"))


@var_app.command("unset")
def var_unset(
    name: VarName,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Remove a variable from [vars], or from [env.NAME.vars] with --env.

    Examples:

      pgconnect var unset DB_OPTIONS

      pgconnect var unset --env staging DB_HOST
    """
    path = projectfile.find(config)
    chosen = projectfile.selected_env(env)
    where = "[vars]" if chosen is None else f"[env.{chosen}.vars]"
    # lenient: removing an invalid variable (DB_FOO) is how a user repairs the file.
    with projectfile.edit(path, lenient=True) as editor:
        editor.check_env(chosen)
        removed = editor.unset_var(name, chosen)
    if not removed:
        raise ConfigError(f"{name} is not set in {where} of {path}")
    common.note(f"removed {name} from {where}")


def explain(
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show every effective connection parameter, its value (secrets masked) and its source.

    Examples:

      pgconnect explain

      DB_PASSWORD=x pgconnect explain --env staging --json
    """
    from pgconnect.headless import ReadOnlyStore, Unread
    from pgconnect.resolve import resolve

    ctx = common.load(config, env)
    # explain shows secrets masked, so it needs no value but DB_URL's (its parts are shown): a
    # store that cannot be reached makes the secret's value "?" and one warning, not exit 4.
    store = ReadOnlyStore(common.open_store, needed=frozenset({"DB_URL"}))
    resolution = resolve(ctx.project, ctx.env, store, connection_only=True)
    if store.error is not None:
        common.warn(
            f"{store.error.message}; secrets from it are shown as ?"
            + (f"\nhint: {store.error.hint}" if store.error.hint else "")
        )
    warning = resolution.missing_secret_warning()
    if warning:
        common.warn(warning)
    rows = [
        {
            "keyword": p.keyword,
            "name": p.name,
            "value": "?" if isinstance(p.value, Unread) else p.shown(),
            "source": p.source + (" (not read)" if isinstance(p.value, Unread) else ""),
        }
        for p in resolution.params
    ]
    if json_out:
        common.out(json.dumps({"env": ctx.env, "params": rows}, ensure_ascii=False))
        return
    from pgconnect.safetext import escape  # a listing for people: no raw control characters

    for r in rows:
        r["value"] = escape(r["value"]) if r["value"] is not None else None
    kw = max(len(r["keyword"] or "") for r in rows)
    val = max(len(r["value"] or "") for r in rows)
    for r in rows:
        common.out(
            escape(
                f"{(r['keyword'] or '').ljust(kw)}  {(r['value'] or '').ljust(val)}  {r['source']}"
            )
        )
