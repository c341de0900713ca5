"""Reading a Cloudflare Workers project's wrangler configuration for ``init --from-wrangler``.

wrangler keeps a Worker's plain variables in ``vars`` (top level) and ``env.<E>.vars``, and the
names of its secrets in ``secrets.required``; the values of secrets live in Cloudflare and, for
``wrangler dev``, in ``.dev.vars``. pgconnect has the same model with one difference that matters:
wrangler's ``vars`` and ``secrets`` are not inherited by its environments (an environment without
``vars`` has none), pgconnect's environments inherit ``[vars]``. ``plan()`` makes the import exact:
an environment that lacks a base variable gets ``inherit_vars = false``, so every environment's
effective variables are exactly what wrangler gives it.

The three file forms are read as wrangler reads them: ``wrangler.json``, ``wrangler.jsonc`` (JSON
with comments and trailing commas) and ``wrangler.toml``, found in that order. Nothing here prints.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgconnect import params
from pgconnect.errors import ConfigError

#: wrangler's own search order for a configuration file in a folder.
FILENAMES = ("wrangler.json", "wrangler.jsonc", "wrangler.toml")

#: Names the seed's two ways of connecting use for the secret (a URL, or the password).
PASSWORD_NAME = params.PASSWORD_NAME
URL_NAME = params.URL_NAME


@dataclass
class EnvImport:
    """One wrangler environment as it goes into ``[env.<E>]``."""

    vars: dict[str, str]
    inherit_vars: bool
    secrets: list[str] = field(default_factory=list)


@dataclass
class ImportPlan:
    """What ``init --from-wrangler`` writes: the base, each environment, and what it left out."""

    source: Path
    name: str | None
    vars: dict[str, str]
    secrets: list[str]
    envs: dict[str, EnvImport]
    #: one line per variable that was not imported, with why (shown as notes by the CLI)
    skipped: list[str] = field(default_factory=list)


def find(folder: Path) -> Path:
    """The wrangler configuration in FOLDER, in wrangler's order; ConfigError when there is none."""
    for name in FILENAMES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no wrangler configuration ({', '.join(FILENAMES)}) in {folder}",
        hint="name it: pgconnect init --from-wrangler path/to/wrangler.toml",
    )


def read(path: Path) -> dict[str, Any]:
    """The configuration as a dict; ConfigError (exit 3) for anything that does not parse."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        if path.suffix == ".toml":
            doc: Any = tomllib.loads(text)
        else:
            doc = json.loads(strip_jsonc(text) if path.suffix == ".jsonc" else text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}",
            hint="wrangler.json takes no comments; name the file wrangler.jsonc for those"
            if path.suffix == ".json"
            else None,
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the configuration must be an object (a table)")
    return doc


def strip_jsonc(text: str) -> str:
    """JSON with comments (``//``, ``/* */``) and trailing commas → JSON, as wrangler's jsonc
    reader takes it. Strings are copied untouched (a ``//`` in a URL is not a comment); line
    breaks inside comments are kept so JSON errors still point at the right line."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            end = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
        else:
            out.append(c)
            i += 1
    # A comma followed only by blanks before a closing bracket (comments are gone by now; the
    # strings are skipped by matching them first).
    return re.sub(
        r'("(?:[^"\\]|\\.)*")|,(\s*[}\]])', lambda m: m.group(1) or m.group(2), "".join(out)
    )


def plan(
    path: Path, doc: Mapping[str, Any], local: Mapping[str | None, set[str]] | None = None
) -> ImportPlan:
    """The import of DOC (read from PATH): values checked like every pgconnect variable.

    LOCAL holds the names in ``.dev.vars`` (key None) and ``.dev.vars.<E>`` beside the file.
    """
    local = local or {}
    skipped: list[str] = []
    base = _vars(path, doc.get("vars"), "vars", skipped)
    base_secrets = _required(path, doc.get("secrets"), "secrets")
    _check_disjoint(path, "the top level", base, base_secrets)
    _add_connection_secret(base, base_secrets, [], local.get(None, set()))
    envs: dict[str, EnvImport] = {}
    env_tables = doc.get("env") or {}
    if not isinstance(env_tables, dict):
        raise ConfigError(f"{path}: 'env' must be an object of environments")
    for env_name, table in env_tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: env.{env_name} must be an object")
        wanted = _vars(path, table.get("vars"), f"env.{env_name}.vars", skipped)
        inherit = set(base) <= set(wanted)
        # Inheriting gives the same values when the environment repeats every base variable:
        # then only what differs is written, and [vars] stays the one place for the rest.
        written = {k: v for k, v in wanted.items() if base.get(k) != v} if inherit else dict(wanted)
        secrets = _required(path, table.get("secrets"), f"env.{env_name}.secrets")
        envs[env_name] = EnvImport(vars=written, inherit_vars=inherit, secrets=secrets)
        # pgconnect's environments inherit the base's secret declarations (their values may
        # differ per environment): a name the base declares secret cannot be a variable here.
        _check_disjoint(path, f"env.{env_name}", wanted, secrets + base_secrets)
        _add_connection_secret(
            wanted, secrets, base_secrets, local.get(env_name, local.get(None, set()))
        )

    name = doc.get("name")
    return ImportPlan(
        source=path,
        name=name if isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9._-]+", name) else None,
        vars=base,
        secrets=base_secrets,
        envs=envs,
        skipped=skipped,
    )


def effective_vars(project_vars: Mapping[str, str], env: EnvImport | None) -> dict[str, str]:
    """What pgconnect resolves from the file for an environment (to compare with wrangler)."""
    if env is None:
        return dict(project_vars)
    return {**(project_vars if env.inherit_vars else {}), **env.vars}


def _check_disjoint(
    path: Path, where: str, variables: Mapping[str, str], secrets: list[str]
) -> None:
    both = sorted(set(variables) & set(secrets))
    if both:
        raise ConfigError(
            f"{path}: {where} has {', '.join(both)} both in vars and in secrets.required",
            hint="a name is either a variable or a secret; remove it from one of them",
        )


def _vars(path: Path, table: Any, where: str, skipped: list[str]) -> dict[str, str]:
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: '{where}' must be an object of NAME: value")
    from pgconnect.project import validate_var

    out: dict[str, str] = {}
    for name, raw in table.items():
        value = _text(raw)
        if value is None:
            # A Worker gets objects and arrays as JSON; a pgconnect variable is text.
            skipped.append(f"{where}.{name}: a {type(raw).__name__} value, not text")
            continue
        try:
            params.check_name(name)
        except params.InvalidName as exc:
            skipped.append(f"{where}.{name}: {exc}")
            continue
        # A password in vars is refused here as everywhere (exit 3): the import writes nothing.
        try:
            validate_var(name, value)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {where}.{exc.message}", hint=exc.hint) from None
        out[name] = value
    return out


def _text(raw: Any) -> str | None:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int | float):
        return json.dumps(raw)  # as the Worker sees it: 5432, 1.5
    return None


def _required(path: Path, table: Any, where: str) -> list[str]:
    if table is None:
        return []
    required = table.get("required", []) if isinstance(table, dict) else None
    if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
        raise ConfigError(f"{path}: {where}.required must be a list of names")
    out: list[str] = []
    for name in required:
        try:
            params.check_name(name)
        except params.InvalidName as exc:
            raise ConfigError(f"{path}: {where}.required: {exc}") from None
        out.append(name)
    return out


def _add_connection_secret(
    variables: Mapping[str, str], secrets: list[str], inherited: list[str], local: set[str]
) -> None:
    """Declare the secrets the seed's two ways of connecting use, when the file does not:
    DB_PASSWORD beside explicit parameters (DB_HOST, …), and DB_PASSWORD or DB_URL when the
    local ``.dev.vars`` file has one (its names only are read, never its values)."""
    declared = set(secrets) | set(inherited)
    wanted = [n for n in (URL_NAME, PASSWORD_NAME) if n in local]
    if (
        not wanted
        and URL_NAME not in variables
        and any(params.is_connection_name(n) for n in variables)
    ):
        wanted = [PASSWORD_NAME]
    for name in wanted:
        if name not in declared and name not in variables:
            secrets.append(name)


def project_text(import_plan: ImportPlan, name: str) -> str:
    """The pgconnect.toml text for IMPORT_PLAN, validated by the reader every command uses."""
    import tomlkit

    from pgconnect import project as projectfile

    text = projectfile.initial_text(name, import_plan.vars)
    path = import_plan.source.parent / projectfile.FILENAME
    editor = projectfile.Editor(path, path, tomlkit.parse(text), crlf=False)
    for secret in import_plan.secrets:
        editor.declare_secret(secret, None)
    for env_name, env in import_plan.envs.items():
        editor.ensure_env(env_name)
        if not env.inherit_vars:
            editor.set_inherit_vars(env_name, False)
        for var, value in env.vars.items():
            editor.set_var(var, value, env_name)
        for secret in env.secrets:
            editor.declare_secret(secret, env_name)
    data = editor.render()
    projectfile.parse(path, data)
    return data.decode("utf-8")
