"""``pgconnect export``: the resolved connection as a file a local toolchain reads.

``dev-vars`` is wrangler's ``.dev.vars`` (``.dev.vars.<E>`` for an environment, which ``wrangler
dev --env E`` reads instead of ``.dev.vars``); ``dotenv`` is ``.env`` (``.env.<E>``). They hold the
two ways the Workers page connects — a ``DB_URL`` and the parts (``DB_HOST``, ``DB_PORT``,
``DB_USERNAME``, ``DB_NAME``, ``DB_PASSWORD`` and the other ``DB_*`` that are set) — and the
project's plain variables, secrets included: that is what these files are for. So the file is
written 0600, atomically, never over a file pgconnect did not write (unless forced), and never
where git would commit it.

Values are quoted so that the dotenv reader wrangler bundles gives back exactly the value: for
``.dev.vars`` that is dotenv's ``parse`` (no expansion); for ``.env`` wrangler also runs
dotenv-expand, so every ``$`` is written ``\\$``. A value no quoting can carry is refused.

Nothing here prints.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pgconnect import params
from pgconnect.errors import ConfigError

if TYPE_CHECKING:
    from pgconnect.resolve import Resolution

FORMATS = ("dev-vars", "dotenv")
FILENAMES = {"dev-vars": ".dev.vars", "dotenv": ".env"}

#: The first line of every file pgconnect writes: how it recognises its own file (which it may
#: replace) from one a person wrote (which it leaves alone unless --force).
MARKER = "# Written by pgconnect export"

#: Keywords whose value is a file on this machine (a Worker cannot read the host's files; the
#: CA reaches node tools through ``exec``'s NODE_EXTRA_CA_CERTS) or that only libpq reads.
LOCAL_ONLY = frozenset(
    {
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslcrl",
        "sslcrldir",
        "sslpassword",
        "passfile",
        "service",
        "requirepeer",
    }
)

#: The parts in the order the Workers page lists them.
PARTS = ("host", "port", "user", "dbname", "password")

HYPERDRIVE_PREFIX = "CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_"
_BINDING = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Export:
    """The file's entries (name → value, in order) and what was left out, with why."""

    entries: list[tuple[str, str]]
    left_out: list[str] = field(default_factory=list)


def default_path(folder: Path, fmt: str, env: str | None) -> Path:
    name = FILENAMES[fmt]
    return folder / (name if env is None else f"{name}.{env}")


def build(resolution: Resolution, hyperdrive: str | None = None) -> Export:
    """The entries for RESOLUTION: DB_URL, the parts, the other DB_* set, the plain variables."""
    from pgconnect.conninfo import to_uri

    if hyperdrive is not None and not _BINDING.fullmatch(hyperdrive):
        raise ConfigError(
            f"--hyperdrive {hyperdrive!r} is not a binding name (letters, digits, '_')"
        )
    values: dict[str, str] = {}
    left_out: list[str] = []
    defaults: set[str] = set()
    for p in resolution.params:
        value = p.reveal()
        if value is None:
            continue
        if p.keyword in LOCAL_ONLY:
            left_out.append(f"{p.name or p.keyword} ({p.keyword} is read by libpq on this machine)")
            continue
        values[p.keyword] = value
        if p.source == "default":
            defaults.add(p.keyword)
    entries: list[tuple[str, str]] = []
    url = to_uri(values, reveal=True) if values else None
    if url is not None:
        entries.append((params.URL_NAME, url))
    for keyword in PARTS:
        if keyword in values:
            entries.append((params.name_for(keyword), values[keyword]))
    for keyword in sorted(set(values) - set(PARTS) - defaults):
        entries.append((params.name_for(keyword), values[keyword]))
    for name, var in sorted(resolution.plain_vars().items()):
        entries.append((name, var.reveal()))
    if hyperdrive is not None and url is not None:
        entries.append((HYPERDRIVE_PREFIX + hyperdrive, url))
    return Export(entries=entries, left_out=left_out)


def quote(name: str, value: str, fmt: str) -> str:
    """VALUE written so that wrangler's dotenv reader returns exactly VALUE.

    dotenv (16.x) turns every CR into LF before parsing, takes a quoted value verbatim except that
    double quotes expand ``\\n``/``\\r``, and reads a backslash before the closing quote as an
    escaped quote. Single quotes carry everything else, double quotes a value with a ``'``,
    backticks one with both. For ``.env``, dotenv-expand then replaces ``$NAME``/``${NAME}`` and
    turns ``\\$`` into ``$``: escaping each ``$`` keeps it literal.
    """
    if fmt == "dotenv":
        value = value.replace("$", "\\$")
    bad = "\r" in value or "\x00" in value or value.endswith("\\")
    if not bad:
        if "'" not in value:
            return f"'{value}'"
        if '"' not in value and "\\n" not in value and "\\r" not in value:
            return f'"{value}"'
        if "`" not in value:
            return f"`{value}`"
    raise ConfigError(
        f"{name}: its value cannot be written in a {FILENAMES[fmt]} file so that wrangler reads "
        "it back unchanged (a carriage return, a NUL, a trailing backslash, or all three quote "
        "characters)",
        hint=f"change {name}, or pass it to the tool another way (pgconnect exec)",
    )


def render(export: Export, fmt: str, command: str) -> str:
    lines = [
        f"{MARKER} ({command}).",
        "# It holds the password: keep it out of git. Run the same command again to refresh it.",
    ]
    lines += [f"{name}={quote(name, value, fmt)}" for name, value in export.entries]
    return "\n".join(lines) + "\n"


def check_target(path: Path, *, force: bool) -> None:
    """Refuse (exit 3) to replace a file pgconnect did not write, or to write where git would
    commit the file; FORCE allows both."""
    if force:
        return
    if os.path.lexists(path) and (path.is_symlink() or not path.is_file() or not _ours(path)):
        raise ConfigError(
            f"{path} exists and was not written by pgconnect; nothing was changed",
            hint="move it away, or replace it with --force",
        )
    if git_would_commit(path):
        folder = path.parent
        raise ConfigError(
            f"{path} holds secrets and git would commit it (it is not in .gitignore)",
            hint=f"ignore it: echo '{_ignore_pattern(path)}' >> {folder / '.gitignore'}"
            " (or write it anyway with --force)",
        )


def _ignore_pattern(path: Path) -> str:
    if path.name.startswith(".dev.vars"):
        return ".dev.vars*"  # what `wrangler` itself adds to .gitignore
    if path.name.startswith(".env"):
        return ".env*"
    return path.name


def _ours(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(MARKER)) == MARKER.encode()
    except OSError:
        return False


def git_would_commit(path: Path) -> bool:
    """True when PATH is inside a git work tree and not ignored there (or already tracked).

    git runs with hooks and fsmonitor off: a repository's own configuration never makes this
    check run a program. Without git (or outside a work tree) nothing would commit the file.
    """
    git = shutil.which("git")
    if git is None:
        return False
    folder = path.parent
    base = [
        git,
        "-c",
        "core.fsmonitor=false",
        "-c",
        "core.hooksPath=/dev/null",
        "-C",
        str(folder),
    ]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        inside = subprocess.run(
            [*base, "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            text=True,
            timeout=10,
            env=environ,
            check=False,
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return False
        ignored = subprocess.run(
            [*base, "check-ignore", "-q", "--", path.name],
            capture_output=True,
            timeout=10,
            env=environ,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return ignored.returncode != 0


def write(path: Path, text: str) -> None:
    """Write TEXT to PATH atomically, 0600 (whatever mode an older file had)."""
    from pgconnect.project import atomic_write

    real = path.parent.resolve() / path.name  # a symlink at PATH is replaced, never followed
    atomic_write(real, text.encode("utf-8"), private=True)


def read_names(path: Path) -> set[str]:
    """The names a dotenv file defines (never its values): dotenv's own line rule."""
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return set()
    return {m.group(1) for m in _LINE.finditer(text.replace("\r\n", "\n").replace("\r", "\n"))}


# dotenv 16.3's LINE expression (lib/main.js), as wrangler bundles it.
_LINE = re.compile(
    r"""(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:\#.*)?(?:$|$)""",
    re.MULTILINE,
)


def local_secret_names(folder: Path, envs: Mapping[str, object]) -> dict[str | None, set[str]]:
    """Names in ``.dev.vars`` and each ``.dev.vars.<E>`` in FOLDER (for ``init --from-wrangler``)."""
    out: dict[str | None, set[str]] = {None: read_names(folder / ".dev.vars")}
    for env in envs:
        path = folder / f".dev.vars.{env}"
        if path.is_file():
            out[env] = read_names(path)
    return out
