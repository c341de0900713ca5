"""``pgconnect export``: write wrangler's ``.dev.vars`` (or a ``.env``) from the resolved connection."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from pgconnect.cli import common
from pgconnect.cli.options import ConfigOpt, DebugOpt, EnvOpt


class Format(StrEnum):
    dev_vars = "dev-vars"
    dotenv = "dotenv"


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(
    fmt: Annotated[
        Format,
        typer.Option(
            "--format",
            help="dev-vars: wrangler's .dev.vars (.dev.vars.ENV with --env); dotenv: .env.",
        ),
    ],
    hyperdrive: Annotated[
        str | None,
        typer.Option(
            "--hyperdrive",
            help="Also write the URL as CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_BINDING, "
            "for a Hyperdrive binding in wrangler dev.",
            metavar="BINDING",
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="The file to write (default: beside pgconnect.toml); '-' prints to stdout.",
            metavar="FILE",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Write even where git would commit the file, or over a file pgconnect did not "
            "write.",
        ),
    ] = False,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write the resolved connection, password included, for a local toolchain (wrangler dev).

    The file holds DB_URL, the parts (DB_HOST, DB_PORT, DB_USERNAME, DB_NAME, DB_PASSWORD and the
    other DB_* that are set) and the project's plain variables. It is written 0600, and refused
    where git would commit it (not in .gitignore) unless --force. Certificate files stay out: a
    Worker cannot read them; `pgconnect exec` gives node tools the CA in NODE_EXTRA_CA_CERTS.

    Examples:

      pgconnect export --format dev-vars

      pgconnect export --format dev-vars -e sandbox && pgconnect exec -e sandbox -- npx wrangler dev --env sandbox

      pgconnect export --format dotenv --out - | less
    """
    from pgconnect import export as exporting

    ctx = common.load(config, env)
    resolution = ctx.resolve()
    warning = resolution.missing_secret_warning()
    if warning:
        common.warn(warning)
    built = exporting.build(resolution, hyperdrive)
    shown = ["pgconnect export", "--format", fmt.value]
    if ctx.env is not None:
        shown += ["--env", ctx.env]
    if hyperdrive is not None:
        shown += ["--hyperdrive", hyperdrive]
    text = exporting.render(built, fmt.value, " ".join(shown))
    for item in built.left_out:
        common.note(f"left out {item}")
    if out == "-":
        sys.stdout.write(text)
        return
    path = Path(out) if out else exporting.default_path(ctx.project.folder, fmt.value, ctx.env)
    exporting.check_target(path, force=force)
    exporting.write(path, text)
    names = ", ".join(name for name, _ in built.entries)
    common.note(f"wrote {path} (0600): {names}")
