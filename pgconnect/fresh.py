"""A project whose base environment says nowhere to connect, beside a sandbox that does.

``pgconnect init && pgconnect sandbox start`` writes the sandbox's variables to
``[env.sandbox.vars]`` (docs/sandbox.md), and the base ``[vars]`` stay empty. A command run without
``-e sandbox`` would then hand libpq nothing, and libpq would use its compiled-in defaults (the
Unix socket in /var/run/postgresql, the operating-system user as role and database): a server the
user never meant. When that is about to happen and the project has a sandbox, the connecting
commands stop with a configuration error whose hint is the same command with ``-e sandbox``.

Without a sandbox nothing changes: libpq's defaults are a legitimate way to connect (a local
server, peer authentication), and ``check`` says that they apply.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from pgconnect.errors import ConfigError
from pgconnect.project import Project
from pgconnect.resolve import Resolution

#: The libpq keywords that say where to connect and as whom; set by any source (the file, a
#: secret, the environment, a PG* variable, DB_URL), the connection is configured.
TARGET_KEYWORDS = frozenset({"host", "hostaddr", "port", "dbname", "user", "service"})
STATE_DIR = ".pgconnect"  # pgconnect.sandbox.STATE_DIR, without importing the sandbox


def sandbox_envs(project: Project) -> list[str]:
    """Environments of PROJECT that have a sandbox: a state file in .pgconnect/, or the
    environment ``sandbox`` in the file."""
    found: list[str] = []
    folder = project.folder / STATE_DIR
    try:
        found = sorted(p.stem for p in folder.glob("*.json") if p.stem in project.envs)
    except OSError:
        found = []
    if not found and "sandbox" in project.envs:
        found = ["sandbox"]
    return found


def unconfigured(resolution: Resolution) -> bool:
    """True when no source sets a host, port, database, user or service."""
    return not any(p.keyword in TARGET_KEYWORDS for p in resolution.params)


def target_problem(resolution: Resolution, argv: Sequence[str]) -> ConfigError | None:
    """The error for going to libpq's defaults in the base environment of a project with a
    sandbox (None when that is not the case). ``check``, ``query`` and ``psql`` raise it;
    ``exec`` only warns with it (its command may not connect at all).

    ARGV is the command line after ``pgconnect`` (the command's name first): the hint repeats it
    with ``-e ENV`` so it can be run as it is.
    """
    if resolution.env is not None or not unconfigured(resolution):
        return None
    envs = sandbox_envs(resolution.project)
    if not envs:
        return None
    env = envs[0]
    words = list(argv)
    again = shlex.join(["pgconnect", *words[:1], "-e", env, *words[1:]])
    if len(again) > 160:
        again = shlex.join(["pgconnect", *words[:1], "-e", env]) + " …"
    return ConfigError(
        f"{resolution.project.path} sets no connection for the base environment (no DB_HOST, "
        "DB_PORT, DB_NAME, DB_USERNAME or DB_URL in [vars], the secrets or the environment), so "
        f"libpq's defaults would apply (its local Unix socket), not the sandbox of [env.{env}]",
        hint=f"run it against the sandbox: {again} (or for this shell: export PGCONNECT_ENV={env})",
    )
