"""The project file ``pgconnect.toml``: discovery, validated reading, and safe editing.

Reading uses the stdlib ``tomllib`` (fast; enough for connecting). Editing uses tomlkit so the user's
comments, order, quoting and line endings survive, and writes atomically: a temporary file in the same
folder, fsync, rename, under an exclusive lock on the folder held across read-modify-write. A file that
does not parse is never rewritten.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgconnect import atomic, params
from pgconnect.atomic import remove_stale_temporaries
from pgconnect.atomic import write as atomic_write
from pgconnect.errors import ConfigError

if TYPE_CHECKING:
    import tomlkit.container
    import tomlkit.items

    from pgconnect.secret_command import CommandSpec

FILENAME = "pgconnect.toml"
CONFIG_ENV = "PGCONNECT_CONFIG"
ENV_ENV = "PGCONNECT_ENV"


@dataclass(frozen=True)
class Environment:
    """One ``[env.<name>]`` section: its variables and its declared secrets.

    ``inherit_vars = false`` makes the environment see only its own variables, not ``[vars]``:
    wrangler's environments work that way, and ``init --from-wrangler`` writes it where an
    environment lacks a base variable, so each environment gets exactly what wrangler gives it.
    """

    vars: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    inherit_vars: bool = True
    commands: dict[str, CommandSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class Project:
    """A parsed, validated project file."""

    path: Path
    name: str
    secrets: tuple[str, ...]
    vars: dict[str, str]
    envs: dict[str, Environment]
    #: [secret_commands]: secrets whose value a command prints (pgconnect.secret_command).
    commands: dict[str, CommandSpec] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def command_for(self, name: str, env: str | None) -> CommandSpec | None:
        """NAME's command in the base ([secret_commands]) or in ENV's own table, if it has one."""
        if env is None:
            return self.commands.get(name)
        table = self.envs.get(env)
        return None if table is None else table.commands.get(name)

    def check_env(self, env: str | None) -> None:
        """Raise ConfigError if ENV is named but the file has no such environment."""
        if env is not None and env not in self.envs:
            raise no_env_error(self.path, env, self.envs)

    def base_vars(self, env: str | None) -> dict[str, str]:
        """The ``[vars]`` the selection inherits: none for an environment with inherit_vars = false."""
        if env is not None and env in self.envs and not self.envs[env].inherit_vars:
            return {}
        return self.vars

    def declared_secrets(self, env: str | None) -> list[tuple[str, str | None]]:
        """(name, env) of each secret the selection declares: the env's own, then the base's."""
        out: list[tuple[str, str | None]] = []
        if env is not None and env in self.envs:
            out.extend((n, env) for n in self.envs[env].secrets)
        out.extend((n, None) for n in self.secrets)
        return out


def no_env_error(path: Path, env: str, known: Iterable[str]) -> ConfigError:
    """The error for naming an environment the file does not have (exit 3)."""
    names = ", ".join(sorted(known)) or "none"
    return ConfigError(
        f"{path}: no environment {env!r} (environments: {names})",
        hint=f"create it with: pgconnect var set --env {env} NAME VALUE",
    )


# --------------------------------------------------------------------------- discovery


def find(config: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Path:
    """The project file: --config, else $PGCONNECT_CONFIG, else the nearest pgconnect.toml upwards."""
    explicit = config if config is not None else os.environ.get(CONFIG_ENV) or None
    if explicit is not None:
        path = usable_path(explicit, "--config" if config is not None else CONFIG_ENV)
        if path.is_dir():
            path = path / FILENAME
        if not path.is_file():
            origin = "--config" if config is not None else CONFIG_ENV
            raise ConfigError(
                f"{path}: no such project file (from {origin})",
                hint=f"create it with: pgconnect init --config {path}",
            )
        return path
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / FILENAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {FILENAME} in {here} or any parent folder",
        hint="create one with: pgconnect init",
    )


def usable_path(text: str | os.PathLike[str], origin: str) -> Path:
    """TEXT as a path the system can look at, or ConfigError: a NUL byte, a name longer than
    the file system allows (ENAMETOOLONG) and the like are refused in one line."""
    shown = (
        str(text) if len(str(text)) <= 80 else str(text)[:60] + f"… ({len(str(text))} characters)"
    )
    if "\x00" in str(text):
        raise ConfigError(f"{origin}: the path contains a NUL byte")
    path = Path(text)
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
            raise ConfigError(
                f"{shown}: cannot use this path (from {origin}): {exc.strerror}"
            ) from None
    return path


def selected_env(env: str | None) -> str | None:
    """--env, else $PGCONNECT_ENV, else None (the base)."""
    if env:
        return env
    return os.environ.get(ENV_ENV) or None


# --------------------------------------------------------------------------- reading


def load(path: Path) -> Project:
    """Parse and validate the project file with tomllib."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse(path, data)


def parse(path: Path, data: bytes) -> Project:
    """Parse DATA (the bytes of PATH) and validate it; ConfigError names the file and the key."""
    return _validate(path, _decode(path, data))


def _decode(path: Path, data: bytes) -> dict[str, Any]:
    """TOML syntax only: ConfigError with line:column for a syntax error."""
    if data.startswith(b"\xef\xbb\xbf"):
        # tomllib would say only "Invalid statement" at 1:1.
        raise ConfigError(
            f"{path}:1:1: invalid TOML: the file starts with a byte-order mark (BOM)",
            hint="save it as UTF-8 without a BOM",
        )
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_message(path, str(exc), data)) from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: a few hundred levels of
        # "[[[…" exhaust Python's stack. No pgconnect file nests more than three levels.
        raise ConfigError(
            f"{path}: invalid TOML: arrays or inline tables nested too deeply"
        ) from None


def _syntax_message(path: Path, msg: str, data: bytes = b"") -> str:
    m = re.search(r"\(at line (\d+), column (\d+)\)$", msg)
    if m:
        msg = msg[: m.start()].rstrip()
        return f"{path}:{m.group(1)}:{m.group(2)}: invalid TOML: {msg}"
    m = re.search(r"\(at end of document\)$", msg)
    if m:
        # Still a line and a column (docs/project-file.md): those of the end of the file.
        text = data.decode("utf-8", "replace")
        line = text.count("\n") + 1
        column = len(text) - (text.rfind("\n") + 1) + 1
        return (
            f"{path}:{line}:{column}: invalid TOML at the end of the file: "
            f"{msg[: m.start()].rstrip()}"
        )
    return f"{path}: invalid TOML: {msg}"


def _validate(path: Path, doc: Mapping[str, Any]) -> Project:
    known = {"name", "secrets", "vars", "env", "secret_commands"}
    for key in doc:
        if key not in known:
            raise ConfigError(
                f"{path}: unknown top-level key {key!r} "
                "(expected name, secrets, [vars], [secret_commands], [env.*])"
            )
    name = doc.get("name", path.parent.name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: 'name' must be a non-empty string")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ConfigError(
            f"{path}: name {name!r} may use only letters, digits, '.', '_' and '-' "
            "(it names the project's keyring service)"
        )
    secrets = _secret_list(path, doc.get("secrets", []), "secrets")
    base = _var_table(path, doc.get("vars", {}), "[vars]")
    commands = _command_table(path, doc.get("secret_commands"), "[secret_commands]", secrets)
    envs: dict[str, Environment] = {}
    env_tables = doc.get("env", {})
    if not isinstance(env_tables, dict):
        raise ConfigError(f"{path}: 'env' must be a table of environments ([env.NAME.vars])")
    for env_name, table in env_tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [env.{env_name}] must be a table")
        check_env_name(env_name, path)
        for key in table:
            if key not in ("vars", "secrets", "inherit_vars", "secret_commands"):
                raise ConfigError(
                    f"{path}: unknown key {key!r} in [env.{env_name}] "
                    "(expected vars, secrets, inherit_vars, secret_commands)"
                )
        inherit = table.get("inherit_vars", True)
        if not isinstance(inherit, bool):
            raise ConfigError(f"{path}: [env.{env_name}] inherit_vars must be true or false")
        env_secrets = _secret_list(path, table.get("secrets", []), f"env.{env_name}.secrets")
        envs[env_name] = Environment(
            vars=_var_table(path, table.get("vars", {}), f"[env.{env_name}.vars]"),
            secrets=tuple(env_secrets),
            inherit_vars=inherit,
            commands=_command_table(
                path,
                table.get("secret_commands"),
                f"[env.{env_name}.secret_commands]",
                env_secrets,
                env_name,
            ),
        )
    # [vars] first, so a mismatch there is reported there and not in the first environment.
    _check_host_ports(path, base, "[vars]")
    for env_name, env in envs.items():
        inherited = base if env.inherit_vars else {}
        _check_host_ports(path, {**inherited, **env.vars}, f"[env.{env_name}.vars]")
    return Project(
        path=path, name=name, secrets=tuple(secrets), vars=base, envs=envs, commands=commands
    )


def _command_table(
    path: Path, value: Any, where: str, declared: list[str], env: str | None = None
) -> dict[str, CommandSpec]:
    """A [secret_commands] table; each name must be declared in the same section's secrets (as
    ``secret put --command`` does), so ``secret list`` and every check see it."""
    if value is None:
        return {}
    from pgconnect.secret_command import parse_table

    table = parse_table(path, value, where)
    for name in table:
        if name not in declared:
            section = "secrets" if env is None else f"[env.{env}] secrets"
            raise ConfigError(
                f"{path}: {where} {name} has a command but is not declared in {section}",
                hint=f'add "{name}" to {section}, or remove it from {where}',
            )
    return table


#: The longest environment name: it becomes part of keyring service names, file names and the
#: sandbox's paths (a Unix socket path holds at most 107 bytes); PostgreSQL's identifiers stop
#: at 63 too.
MAX_ENV_NAME = 63


def check_env_name(env: str, path: Path | None = None) -> None:
    where = f"{path}: " if path else ""
    if len(env) > MAX_ENV_NAME:
        raise ConfigError(
            f"{where}an environment name has at most {MAX_ENV_NAME} characters "
            f"(this one has {len(env)}, starting {env[:20]!r})"
        )
    if not re.fullmatch(r"[A-Za-z0-9_-]+", env):
        raise ConfigError(
            f"{where}environment name {env!r} may use only letters, digits, '_' and '-'"
        )


def _secret_list(path: Path, value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: '{where}' must be a list of names")
    for name in value:
        try:
            params.check_name(name)
        except params.InvalidName as exc:
            raise ConfigError(f"{path}: {where}: {exc}") from None
    return list(value)


def _var_table(path: Path, value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f'{path}: {where} must be a table of NAME = "value"')
    out: dict[str, str] = {}
    for name, raw in value.items():
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise ConfigError(f"{path}: {where} {name}: value must be a string")
        text = str(raw)
        try:
            validate_var(name, text)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {where} {exc}", hint=exc.hint) from None
        out[name] = text
    return out


def _check_host_ports(path: Path, merged: Mapping[str, str], where: str) -> None:
    try:
        params.check_host_port_lists(merged.get("DB_HOST"), merged.get("DB_PORT"))
    except params.InvalidValue as exc:
        raise ConfigError(f"{path}: {where} {exc}") from None


def validate_var(name: str, value: str) -> None:
    """Validate a variable for the file: name, value, and no passwords (docs/project-file.md).

    Raises ConfigError (exit 3) with a one-line message naming the key.
    """
    try:
        params.check_name(name)
        params.check_value(name, value)
    except (params.InvalidName, params.InvalidValue) as exc:
        raise ConfigError(str(exc)) from None
    if params.keyword_for(name) in params.SECRET_KEYWORDS:
        raise ConfigError(
            f"{name} is a secret (like a password) and never goes in the project file",
            hint=f"store it in the keyring: pgconnect secret put {name}",
        )
    if name == params.URL_NAME:
        try:
            params.check_url(value)
        except params.InvalidValue as exc:
            raise ConfigError(str(exc)) from None
    secret_parts = params.url_secret_keywords(value) if name == params.URL_NAME else []
    if secret_parts:
        # Name the keyword, never its value.
        raise ConfigError(
            f"DB_URL carries a {' and a '.join(secret_parts)} and cannot go in the project file",
            hint="store the whole URL as a secret (pgconnect secret put DB_URL), or use "
            "pgconnect init --from-url - to split it into variables and a DB_PASSWORD secret",
        )


# --------------------------------------------------------------------------- editing


class Editor:
    """A tomlkit document being edited; ``save()`` writes it back atomically."""

    def __init__(self, path: Path, real: Path, doc: tomlkit.TOMLDocument, crlf: bool) -> None:
        self.path = path  # as the user named it, for messages
        self.real = real  # the file written (a symlink's target)
        self.doc = doc
        self.crlf = crlf
        self.changed = False

    # -- variables

    def _vars_table(self, env: str | None, create: bool) -> tomlkit.items.Table | None:
        if env is None:
            if "vars" not in self.doc:
                if not create:
                    return None
                self.doc.add("vars", _sub_table(self.doc))
            table = self.doc["vars"]
        else:
            envs = self._env_table(env, create)
            if envs is None:
                return None
            if "vars" not in envs:
                if not create:
                    return None
                envs.add("vars", _sub_table(envs))
            table = envs["vars"]
        if not isinstance(table, dict):
            where = "vars" if env is None else f"env.{env}.vars"
            raise ConfigError(f"{self.path}: '{where}' must be a table")
        return table  # type: ignore[return-value]

    def _env_table(self, env: str, create: bool) -> tomlkit.items.Table | None:
        import tomlkit
        from tomlkit.items import InlineTable

        envs = self.doc.get("env")
        if envs is not None and not isinstance(envs, dict):
            raise ConfigError(f"{self.path}: 'env' must be a table of environments")
        if envs is None or env not in envs:
            if not create:
                return None
            if isinstance(envs, InlineTable):
                # env = { … }: the new environment goes inside it, inline (no [header] allowed).
                envs[env] = tomlkit.inline_table()
            else:
                # A new [env.E.vars] goes at the end of the file, where a person would add it, also
                # when the existing environments come before [vars] or are written as dotted keys
                # (tomlkit would otherwise put it mid-file, capturing the keys that follow).
                holder = tomlkit.table(is_super_table=True)
                holder.add(env, tomlkit.table(is_super_table=True))
                self.doc.append("env", holder)
        table = self.doc["env"][env]
        if not isinstance(table, dict):
            raise ConfigError(f"{self.path}: [env.{env}] must be a table")
        return table  # type: ignore[return-value]

    def check_env(self, env: str | None) -> None:
        """Raise ConfigError if ENV is named but the document being edited has no such environment."""
        if env is None or self._env_table(env, create=False) is not None:
            return
        envs = self.doc.get("env")
        raise no_env_error(self.path, env, envs.keys() if isinstance(envs, dict) else ())

    def set_var(self, name: str, value: str, env: str | None) -> None:
        validate_var(name, value)
        if env is not None:
            check_env_name(env, self.path)
        table = self._vars_table(env, create=True)
        assert table is not None
        old = table.get(name)
        if old == value:
            return
        table[name] = _string_like(old, value)
        self.changed = True

    def unset_var(self, name: str, env: str | None) -> bool:
        table = self._vars_table(env, create=False)
        if table is None or name not in table:
            return False
        del table[name]
        self.changed = True
        return True

    def ensure_env(self, env: str) -> None:
        check_env_name(env, self.path)
        if self._env_table(env, create=False) is None:
            self._env_table(env, create=True)
            self.changed = True

    def set_inherit_vars(self, env: str, inherit: bool) -> None:
        """Write ``inherit_vars`` for ENV (only ``false`` is written: true is the default)."""
        table = self._env_table(env, create=True)
        assert table is not None
        if inherit:
            if "inherit_vars" in table:
                del table["inherit_vars"]
                self.changed = True
        elif table.get("inherit_vars") is not False:
            table["inherit_vars"] = False
            self.changed = True

    # -- secret declarations

    def _secret_array(self, env: str | None, create: bool) -> Any:
        import tomlkit

        holder: Any = self.doc if env is None else self._env_table(env, create)
        if holder is None:
            return None
        if "secrets" not in holder:
            if not create:
                return None
            arr = tomlkit.array()
            if env is None:
                _insert_top_level(self.doc, "secrets", arr)
            else:
                holder["secrets"] = arr
        return holder["secrets"]

    def declare_secret(self, name: str, env: str | None) -> None:
        try:
            params.check_name(name)
        except params.InvalidName as exc:
            raise ConfigError(str(exc)) from None
        if env is not None:
            check_env_name(env, self.path)
        arr = self._secret_array(env, create=True)
        if name not in arr:
            arr.append(name)
            self.changed = True

    def undeclare_secret(self, name: str, env: str | None) -> bool:
        arr = self._secret_array(env, create=False)
        if arr is None or name not in arr:
            return False
        idx = list(arr).index(name)
        del arr[idx]
        self.changed = True
        return True

    # -- secret commands

    def _commands_table(self, env: str | None, create: bool) -> Any:
        import tomlkit

        holder: Any = self.doc if env is None else self._env_table(env, create)
        if holder is None:
            return None
        if "secret_commands" not in holder:
            if not create:
                return None
            if env is None:
                # A new top-level table goes at the end, where a person would add it.
                self.doc.append("secret_commands", tomlkit.table())
            else:
                holder.add("secret_commands", _sub_table(holder))
        table = holder["secret_commands"]
        if not isinstance(table, dict):
            where = "secret_commands" if env is None else f"env.{env}.secret_commands"
            raise ConfigError(f"{self.path}: '{where}' must be a table")
        return table

    def command(self, name: str, env: str | None) -> Any:
        """NAME's entry in the section's [secret_commands] as written, or None."""
        table = self._commands_table(env, create=False)
        return None if table is None else table.get(name)

    def set_secret_command(self, name: str, env: str | None, entry: Any) -> None:
        """Write NAME = ENTRY (a tomlkit array or inline table) into the section's table."""
        if env is not None:
            check_env_name(env, self.path)
        table = self._commands_table(env, create=True)
        table[name] = entry
        self.changed = True

    def remove_secret_command(self, name: str, env: str | None) -> bool:
        table = self._commands_table(env, create=False)
        if table is None or name not in table:
            return False
        del table[name]
        self.changed = True
        return True

    # -- writing

    def render(self) -> bytes:
        text = self.doc.as_string()
        if self.crlf:
            # tomlkit keeps the file's own line endings and writes "\n" for the lines it adds.
            text = re.sub(r"(?<!\r)\n", "\r\n", text)
        return text.encode("utf-8")

    def save(self) -> None:
        data = self.render()
        # Validate what we are about to write with the reader every other command uses.
        parse(self.path, data)
        atomic_write(self.real, data)


def _insert_top_level(doc: tomlkit.TOMLDocument, key: str, value: Any) -> None:
    """Insert a top-level key before the first table, after 'name' when present."""
    body = doc.body
    pos = len(body)
    for i, (k, item) in enumerate(body):
        if k is not None and hasattr(item, "value") and isinstance(item.value, dict):
            pos = i
            break
    if pos == len(body):
        doc.add(key, value)
        return
    # tomlkit has no public positional insert for documents; rebuild around the position.
    names = [k.key if k is not None else None for k, _ in body]
    if "name" in names:
        after = names.index("name")
        if after < pos:
            pos = after + 1
    doc._insert_at(pos, key, value)


def _string_like(old: Any, value: str) -> Any:
    """A tomlkit string keeping the old value's quoting style when it can hold the new value."""
    import tomlkit
    from tomlkit.items import String, StringType

    if (
        isinstance(old, String)
        and old.type == StringType.SLL
        and "'" not in value
        # TOML: a literal string holds no control character but tab (it has no escapes).
        and not any((c < " " and c != "\t") or c == "\x7f" for c in value)
    ):
        return tomlkit.string(value, literal=True)
    return tomlkit.string(value)


def _sub_table(parent: Any) -> Any:
    """A new table to add to PARENT: inline inside an inline table (TOML allows no [header] there)."""
    import tomlkit
    from tomlkit.items import InlineTable

    return tomlkit.inline_table() if isinstance(parent, InlineTable) else tomlkit.table()


@contextlib.contextmanager
def edit(path: Path, *, lenient: bool = False) -> Iterator[Editor]:
    """Lock the folder, parse PATH with tomlkit, yield an Editor; save only if it changed.

    The lock is held across read-modify-write so concurrent edits never lose each other's keys.
    A file that fails to parse (by tomllib's standard, then tomlkit's) is never rewritten, and the
    result is validated before it is written. LENIENT lets an edit start from a file that parses
    but holds an invalid value, so ``var set``/``var unset`` can repair that value; since the saved
    result must still be valid, any other edit of such a file changes nothing.
    """
    import tomlkit
    from tomlkit.exceptions import ParseError

    real = Path(os.path.realpath(path))  # a symlinked file is written through to its target
    with atomic.locked(real.parent):
        remove_stale_temporaries(real)
        try:
            data = real.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        if lenient:
            _decode(path, data)  # syntax only; save() validates the result
        else:
            parse(path, data)  # full validation with the same reader connections use
        try:
            doc = tomlkit.parse(data.decode("utf-8"))
        except ParseError as exc:
            raise ConfigError(f"{path}:{exc.line}:{exc.col}: invalid TOML: {exc}") from None
        # CRLF when every line ending is CRLF; a mixed file keeps each existing line as it is.
        crlf = b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
        editor = Editor(path, real, doc, crlf=crlf)
        yield editor
        if editor.changed:
            editor.save()


def create(path: Path, text: str, *, force: bool) -> None:
    """Write a new project file; refuse to overwrite unless FORCE (then atomically)."""
    data = text.encode("utf-8")
    parse(path, data)
    if path.exists() and not force:
        raise ConfigError(
            f"{path} already exists; nothing was changed",
            hint="use --force to replace it",
        )
    real = Path(os.path.realpath(path))
    if not real.parent.is_dir():
        raise ConfigError(f"{path}: the folder {real.parent} does not exist")
    with atomic.locked(real.parent):
        if path.exists() and not force:
            raise ConfigError(f"{path} already exists; nothing was changed")
        remove_stale_temporaries(real)
        atomic_write(real, data)


def initial_text(name: str, variables: Mapping[str, str] | None = None) -> str:
    """The text of a new project file, commented for a first-time user."""
    lines = [
        "# pgconnect project file: connection variables for this project.",
        "# Passwords never go here: `pgconnect secret put DB_PASSWORD` keeps them in the OS keyring.",
        f'name = "{name}"',
        "secrets = []",
        "",
        "[vars]",
    ]
    import json

    for key, value in (variables or {}).items():
        lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    if not variables:
        lines += [
            '# DB_HOST = "db.example.com"',
            '# DB_PORT = "5432"',
            '# DB_USERNAME = "app"',
            '# DB_NAME = "app"',
            '# DB_SSLMODE = "verify-full"',
        ]
    return "\n".join(lines) + "\n"
