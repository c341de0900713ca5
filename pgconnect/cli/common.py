"""What every command shares: the global options, loading the project, and output helpers.

``--config``, ``--env/-e`` and ``--debug`` are accepted on every command after its name;
they are declared once in ``options`` and recorded in ``STATE`` by their callbacks (``remember``)
so the error boundary knows about ``--debug`` even when a command fails before its body runs.

No Typer here: ``query``'s start-up fast path (benchmarks/README.md, P1) runs commands through this module
without importing it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pgconnect import project as projectfile
from pgconnect.errors import ConfigError, PgconnectError

if TYPE_CHECKING:
    from rich.console import Console

    from pgconnect.api import Settings
    from pgconnect.project import Project
    from pgconnect.resolve import Resolution
    from pgconnect.store import SecretStore


@dataclass
class State:
    debug: bool = False
    config: str | None = None
    env: str | None = None


STATE = State()

#: When this process started running pgconnect (``time.monotonic()``): deadlines that bound a
#: whole command (``check --timeout``) count from here.
STARTED = time.monotonic()


def remember(attr: str) -> Callable[[Any], Any]:
    def callback(value: Any) -> Any:
        if value is not None and value is not False:
            setattr(STATE, attr, value)
        return value

    return callback


def complete_env(incomplete: str) -> list[str]:
    try:
        proj = projectfile.load(projectfile.find(STATE.config))
    except Exception:  # completion must never fail loudly
        return []
    return [e for e in sorted(proj.envs) if e.startswith(incomplete)]


def _completion_project() -> Project | None:
    try:
        return projectfile.load(projectfile.find(STATE.config))
    except (PgconnectError, OSError):  # completion must never fail loudly
        return None


def complete_secret(incomplete: str) -> list[str]:
    """Secret names for shell completion: those declared for --env (and the base), else all."""
    proj = _completion_project()
    if proj is None:
        return []
    env = projectfile.selected_env(STATE.env)
    if env is not None and env in proj.envs:
        names = {n for n, _ in proj.declared_secrets(env)}
    else:
        names = set(proj.secrets)
        for e in proj.envs.values():
            names |= set(e.secrets)
    return sorted(n for n in names if n.startswith(incomplete))


@dataclass
class Context:
    """The loaded project and the selected environment for one command."""

    project: Project
    env: str | None

    def resolve(self, *, connection_only: bool = False) -> Settings:
        """Resolve through the public API, as any program would (with the store's warning)."""
        from pgconnect.api import resolve_settings

        # terminal: a secret's command may ask on the terminal (a password manager's unlock).
        return resolve_settings(
            self.project, self.env, open_store, connection_only=connection_only, terminal=True
        )


def open_store() -> SecretStore:
    """The secret store; using the opt-in plaintext file store says so on stderr (docs/secrets.md)."""
    from pgconnect.filestore import FileStore
    from pgconnect.store import open_store as _open

    store = _open()
    if isinstance(store, FileStore) and not _warned_file_store:
        _warned_file_store.append(True)
        warn(
            f"using the plaintext file store {store.path} (PGCONNECT_SECRET_STORE=file), "
            "not the OS keyring"
        )
    return store


_warned_file_store: list[bool] = []


def load(config: str | None, env: str | None, *, env_may_be_new: bool = False) -> Context:
    """The project file and the environment, chosen the way the library chooses them."""
    from pgconnect.api import choose_environment

    proj, chosen = choose_environment(config, env, env_may_be_new=env_may_be_new)
    return Context(project=proj, env=chosen)


# --------------------------------------------------------------------------- output

_consoles: dict[str, Console] = {}


def _color_system() -> Literal["auto"] | None:
    # NO_COLOR (no-color.org): rich alone drops colours but still sends bold/underline escapes;
    # no colour system at all means plain text on a terminal too.
    return None if no_color() else "auto"


def err_console() -> Console:
    if "err" not in _consoles:
        from rich.console import Console

        _consoles["err"] = Console(
            stderr=True, highlight=False, soft_wrap=True, color_system=_color_system()
        )
    return _consoles["err"]


def out_console() -> Console:
    if "out" not in _consoles:
        from rich.console import Console

        _consoles["out"] = Console(highlight=False, soft_wrap=True, color_system=_color_system())
    return _consoles["out"]


def out(line: str = "") -> None:
    """One line of data on stdout, written as-is (no markup)."""
    sys.stdout.write(line + "\n")


def drop_stdout() -> None:
    """Point fd 1 at /dev/null once the reader has gone away (``| head -1``): what is still
    buffered, and any later write or flush (the interpreter's last one too), goes nowhere instead
    of failing again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except OSError:
        pass


def _undecodable_at(text: str) -> int | None:
    """Where TEXT holds a byte that was not UTF-8 (Python keeps argv and the environment's
    bytes as lone surrogates, "surrogateescape"), or None."""
    for i, ch in enumerate(text):
        if "\udc80" <= ch <= "\udcff":
            return len(text[:i].encode("utf-8", "surrogateescape"))
    return None


#: Environment variables pgconnect or libpq read: their values must be text.
_READ_ENV_PREFIXES = ("DB_", "PG")


def check_text_inputs(args: list[str]) -> None:
    """Refuse bytes that are not UTF-8 in the arguments (exit 2) and in the environment
    variables pgconnect and libpq read (exit 3), before anything uses them: libpq takes UTF-8
    C strings, and a message quoting them could not be written. Never quotes the value."""
    from pgconnect.errors import UsageError

    for number, arg in enumerate(args, start=1):
        at = _undecodable_at(arg)
        if at is not None:
            raise UsageError(f"argument {number} is not UTF-8 text (byte {at})")
    for name, value in os.environ.items():
        if not name.startswith(_READ_ENV_PREFIXES):
            continue
        if _undecodable_at(name) is not None:
            prefix = "DB_" if name.startswith("DB_") else "PG"
            raise ConfigError(f"the name of an environment variable {prefix}… is not UTF-8 text")
        at = _undecodable_at(value)
        if at is not None:
            raise ConfigError(f"environment variable {name} is not UTF-8 text (byte {at})")


def mask_held(text: str) -> str:
    """Mask every secret value this process has held (defence in depth: messages are redacted
    where they are made; this catches a path that forgot)."""
    from pgconnect.secret import MASK, held_values

    for value in held_values():
        text = text.replace(value, MASK)
    return text


def say(line: str) -> None:
    """The one writer of messages (errors, warnings, notes, server notices) on stderr: every
    secret this process held and anything shaped like one masked (``safetext.redact``), terminal
    control characters escaped (``safetext.escape``)."""
    from pgconnect.safetext import shown

    sys.stderr.write(shown(mask_held(line)) + "\n")


def warn(message: str) -> None:
    say(f"warning: {message}")


def note(message: str) -> None:
    say(message)


def _ignore(_message: str) -> None:
    return None


@contextlib.contextmanager
def progress(message: str) -> Iterator[Callable[[str], None]]:
    """Show on stderr that slow work is under way, only when stderr is a terminal.

    Yields a function that names the current step. A rich spinner normally; with NO_COLOR or
    TERM=dumb, plain lines without escape sequences; nothing at all when stderr is not a terminal.
    """
    if not sys.stderr.isatty():
        yield _ignore
        return
    if no_color() or os.environ.get("TERM") == "dumb":
        note(f"{message}...")
        yield _ignore
        return
    from rich.text import Text  # plain text: step names like "[env.x.vars]" are not markup

    with err_console().status(Text(message)) as status:
        yield lambda step: status.update(Text(f"{message}: {step}"))


def stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def no_color() -> bool:
    # no-color.org: set and not empty.
    return bool(os.environ.get("NO_COLOR"))


def refuse_libpq_defaults(resolution: Resolution, *, warn_only: bool = False) -> None:
    """Base environment with nothing to connect to, in a project with a sandbox: stop (or warn)
    with the same command line and ``-e sandbox`` as the hint (pgconnect.fresh)."""
    from pgconnect.fresh import target_problem

    problem = target_problem(resolution, sys.argv[1:])
    if problem is None:
        return
    if not warn_only:
        raise problem
    warn(f"{problem.message}; {problem.hint}")
