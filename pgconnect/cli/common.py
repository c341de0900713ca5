"""What every command shares: the global options, loading the project, and output helpers.

``--config``, ``--env/-e`` and ``--debug`` are accepted on every command after its name (SPEC §8);
they are declared once here as Annotated types and recorded in ``STATE`` by their callbacks so the
error boundary knows about ``--debug`` even when a command fails before its body runs.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pgconnect import project as projectfile
from pgconnect.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from pgconnect.project import Project
    from pgconnect.resolve import Resolution
    from pgconnect.secrets import SecretStore


@dataclass
class State:
    debug: bool = False
    config: str | None = None
    env: str | None = None


STATE = State()

#: When this process started running pgconnect (``time.monotonic()``): deadlines that bound a
#: whole command (``check --timeout``) count from here.
STARTED = time.monotonic()


def _remember(attr: str) -> Callable[[Any], Any]:
    def callback(value: Any) -> Any:
        if value is not None and value is not False:
            setattr(STATE, attr, value)
        return value

    return callback


def _complete_env(incomplete: str) -> list[str]:
    try:
        proj = projectfile.load(projectfile.find(STATE.config))
    except Exception:  # completion must never fail loudly
        return []
    return [e for e in sorted(proj.envs) if e.startswith(incomplete)]


ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        help="Project file to use (default: $PGCONNECT_CONFIG, else the nearest pgconnect.toml).",
        callback=_remember("config"),
        metavar="PATH",
    ),
]
EnvOpt = Annotated[
    str | None,
    typer.Option(
        "--env",
        "-e",
        help="Environment ([env.NAME] in the project file; default: $PGCONNECT_ENV, else the base).",
        callback=_remember("env"),
        autocompletion=_complete_env,
        metavar="NAME",
    ),
]
DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug",
        help="Show a traceback (never with local variables) for unexpected errors.",
        callback=_remember("debug"),
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@dataclass
class Context:
    """The loaded project and the selected environment for one command."""

    project: Project
    env: str | None

    def resolve(self, *, connection_only: bool = False) -> Resolution:
        from pgconnect.resolve import resolve

        return resolve(self.project, self.env, open_store, connection_only=connection_only)


def open_store() -> SecretStore:
    from pgconnect.secrets import open_store as _open

    return _open()


def find_project(config: str | None) -> Path:
    return projectfile.find(config)


def load(config: str | None, env: str | None, *, env_may_be_new: bool = False) -> Context:
    """Find and parse the project file; check the selected environment exists (SPEC §2)."""
    path = projectfile.find(config)
    proj = projectfile.load(path)
    chosen = projectfile.selected_env(env)
    if chosen is not None:
        projectfile.check_env_name(chosen)
        if not env_may_be_new:
            proj.check_env(chosen)
    return Context(project=proj, env=chosen)


# --------------------------------------------------------------------------- output

_consoles: dict[str, Console] = {}


def err_console() -> Console:
    if "err" not in _consoles:
        from rich.console import Console

        _consoles["err"] = Console(stderr=True, highlight=False, soft_wrap=True)
    return _consoles["err"]


def out_console() -> Console:
    if "out" not in _consoles:
        from rich.console import Console

        _consoles["out"] = Console(highlight=False, soft_wrap=True)
    return _consoles["out"]


def out(line: str = "") -> None:
    """One line of data on stdout, written as-is (no markup)."""
    sys.stdout.write(line + "\n")


def warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def note(message: str) -> None:
    sys.stderr.write(message + "\n")


def stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def no_color() -> bool:
    return "NO_COLOR" in os.environ


def require_env_exists(ctx: Context) -> None:
    if ctx.env is not None and ctx.env not in ctx.project.envs:
        raise ConfigError(f"no environment {ctx.env!r} in {ctx.project.path}")
