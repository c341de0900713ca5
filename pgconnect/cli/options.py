"""The options every command declares the same way, as Typer ``Annotated`` types.

Their callbacks live in ``common`` (Typer-free), which records them in ``common.STATE``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pgconnect.cli import common

ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        help="Project file to use (default: $PGCONNECT_CONFIG, else the nearest pgconnect.toml).",
        callback=common.remember("config"),
        metavar="PATH",
    ),
]
EnvOpt = Annotated[
    str | None,
    typer.Option(
        "--env",
        "-e",
        help="Environment ([env.NAME] in the project file; default: $PGCONNECT_ENV, else the base).",
        callback=common.remember("env"),
        autocompletion=common.complete_env,
        metavar="NAME",
    ),
]
DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug",
        help="Show a traceback (never with local variables) for unexpected errors.",
        callback=common.remember("debug"),
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
