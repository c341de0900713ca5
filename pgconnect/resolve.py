"""Where each value comes from (docs/sources.md): environment, secrets, the file, libpq's env, defaults.

``resolve()`` turns a project, a selected environment, the process environment and a secret store
into ``Resolution``: every variable with its source, and the libpq connection parameters built from
them. Nothing here prints; secret values stay wrapped in ``Secret`` until a caller reveals them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pgconnect import keywords, params
from pgconnect.errors import ConfigError
from pgconnect.project import Project
from pgconnect.secret import MASK, Secret, service_name
from pgconnect.store import SecretStore

ENVIRONMENT = "environment"
DEFAULT = "default"

#: libpq's environment variables (https://www.postgresql.org/docs/current/libpq-envars.html):
#: PGxxx -> keyword, from the one table in keywords.
LIBPQ_ENV: dict[str, str] = keywords.BY_ENV_VAR

_ORDER = ["host", "hostaddr", "port", "dbname", "user", "password", "sslmode", "sslrootcert"]


class _MaybeSecret:
    """A value that may be a Secret: ``shown()`` masks it, ``reveal()`` gives it."""

    value: str | Secret

    @property
    def is_secret(self) -> bool:
        return isinstance(self.value, Secret)

    def shown(self) -> str:
        return MASK if isinstance(self.value, Secret) else self.value

    def reveal(self) -> str:
        return self.value.reveal() if isinstance(self.value, Secret) else self.value


@dataclass(frozen=True)
class Value(_MaybeSecret):
    """One variable's effective value and where it came from."""

    name: str
    value: str | Secret
    source: str


@dataclass(frozen=True)
class Param(_MaybeSecret):
    """One libpq connection parameter. ``explicit`` is False for libpq-env values (libpq reads
    them itself; pgconnect only reports them)."""

    keyword: str
    name: str | None
    value: str | Secret
    source: str
    explicit: bool = True


@dataclass
class Resolution:
    """The effective configuration of one environment."""

    project: Project
    env: str | None
    values: dict[str, Value]
    params: list[Param] = field(default_factory=list)
    missing_secrets: list[str] = field(default_factory=list)
    #: For each missing secret, the environment whose ``secrets`` declare it (None: the base):
    #: that is where ``secret put`` must store it.
    missing_declared_in: dict[str, str | None] = field(default_factory=dict)

    def param(self, keyword: str) -> Param | None:
        for p in self.params:
            if p.keyword == keyword:
                return p
        return None

    def get(self, keyword: str) -> str | None:
        p = self.param(keyword)
        return None if p is None else p.reveal()

    def connect_params(self, *, reveal: bool = True) -> dict[str, str]:
        """The explicit keyword → value mapping to hand to libpq (secrets revealed). With REVEAL
        False secrets stay ``****``, and a command behind one does not run."""
        return {
            p.keyword: p.reveal() if reveal or not p.is_secret else MASK
            for p in self.params
            if p.explicit
        }

    def plain_vars(self) -> dict[str, Value]:
        """Project variables that are not connection names (exported by ``exec``)."""
        return {n: v for n, v in self.values.items() if not params.is_connection_name(n)}

    @property
    def host(self) -> str | None:
        return self.get("host")

    def missing_secret_commands(self) -> str:
        """The ``secret put`` line(s) that set every missing secret where it is declared; for a
        sandbox's own DB_PASSWORD (nobody ever saw it), ``sandbox start``, which sets a new one."""
        lines: list[str] = []
        for name in self.missing_secrets:
            env = self.missing_declared_in.get(name, self.env)
            if name == "DB_PASSWORD" and env is not None and self._has_sandbox(env):
                lines.append("pgconnect sandbox start" + ("" if env == "sandbox" else f" -e {env}"))
            else:
                lines.append(put_commands([(name, env)]))
        return "; ".join(lines)

    def _has_sandbox(self, env: str) -> bool:
        # pgconnect.sandbox.state_path, without importing the sandbox on every connection.
        return (self.project.folder / ".pgconnect" / f"{env}.json").is_file()

    def missing_secret_warning(self) -> str | None:
        """One warning naming every declared secret that is not set, and where to put each."""
        if not self.missing_secrets:
            return None
        if len(self.missing_secrets) == 1:
            what = f"declared secret {self.missing_secrets[0]} is not set"
        else:
            what = f"declared secrets {', '.join(self.missing_secrets)} are not set"
        return f"{what} in the secret store; set with: {self.missing_secret_commands()}"


def put_commands(missing: list[tuple[str, str | None]]) -> str:
    """``pgconnect secret put NAME [--env E]`` for each (name, declaring environment), joined
    with ``; `` so the line can be pasted into a shell (each asks for its value)."""
    return "; ".join(
        f"pgconnect secret put {name}" + (f" --env {env}" if env else "") for name, env in missing
    )


def file_source(env: str | None) -> str:
    return "file:[vars]" if env is None else f"file:[env.{env}.vars]"


def resolve_values(
    project: Project,
    env: str | None,
    environ: Mapping[str, str],
    store: SecretStore | Callable[[], SecretStore] | None,
    *,
    names: set[str] | None = None,
    terminal: bool = False,
    connection: Callable[[], Mapping[str, str | None]] | None = None,
) -> tuple[dict[str, Value], list[str]]:
    """Every variable's effective value (in the order of docs/sources.md) and the declared-but-unset secrets.

    STORE may be a factory so the keyring is only opened when a secret is actually needed (a value
    from the environment never touches it). NAMES limits the work to those variables.
    A secret bound to a command ([secret_commands]) becomes a value whose command runs when it is
    first revealed: TERMINAL lets it use the terminal (the CLI; a library never prompts), and
    CONNECTION gives a preset the resolved host, port and user.
    """
    project.check_env(env)
    env_vars = project.envs[env].vars if env is not None else {}
    base_vars = project.base_vars(env)
    declared = project.declared_secrets(env)
    declared_names = {n for n, _ in declared}

    for n in declared_names:
        where = [t for t, table in ((file_source(None), base_vars),) if n in table]
        if n in env_vars:
            where.append(file_source(env))
        if where:
            raise ConfigError(
                f"{project.path}: {n} is both a secret and a variable in {', '.join(where)}",
                hint=f"remove one: pgconnect var unset {n}, or pgconnect secret delete {n}",
            )

    candidates = set(base_vars) | set(env_vars) | declared_names
    candidates |= {k for k in environ if params.is_connection_name(k)}
    if names is not None:
        candidates &= names

    opened: list[SecretStore] = []

    def the_store() -> SecretStore:
        if not opened:
            if store is None:
                raise ConfigError("no secret store was given")  # programming error guard
            opened.append(store() if callable(store) else store)
        return opened[0]

    out: dict[str, Value] = {}
    missing: list[str] = []
    for name in sorted(candidates):
        value: Value | None = None
        if name in environ:
            raw = environ[name]
            if any("\udc80" <= ch <= "\udcff" for ch in raw):  # bytes that are not UTF-8
                raise ConfigError(f"environment variable {name} is not UTF-8 text")
            try:
                params.check_value(name, raw)
            except params.InvalidValue as exc:
                raise ConfigError(f"environment variable {exc}") from None
            # A DB_URL that carries a password is a secret as a whole: `var list`/`var get`
            # must not print it (docs/secret-hygiene.md), as they would a plain environment variable.
            secret_like = (
                name in declared_names
                or params.keyword_for(name) in params.SECRET_KEYWORDS
                or (name == params.URL_NAME and _url_has_password(raw))
            )
            value = Value(name, Secret(raw) if secret_like else raw, ENVIRONMENT)
        elif name in declared_names:
            for decl_name, decl_env in declared:
                if decl_name != name:
                    continue
                spec = project.command_for(name, decl_env)
                if spec is not None:
                    from pgconnect.secret_command import lazy_value

                    value = Value(
                        name,
                        lazy_value(project, decl_env, name, spec, connection, terminal=terminal),
                        f"command:{spec.program}",
                    )
                    break
                service = service_name(project.name, decl_env)
                got = the_store().get(service, name)
                if got is not None and "\x00" in got.reveal():
                    # Stored before pgconnect refused it (or by another tool): libpq would cut the
                    # value at the NUL and log in with the rest.
                    raise ConfigError(
                        f"{name} in secret:{service} contains a NUL byte, which libpq cannot "
                        "pass on",
                        hint=f"store it again: pgconnect secret put {name}"
                        + (f" --env {decl_env}" if decl_env else ""),
                    )
                if got is not None:
                    value = Value(name, got, f"secret:{service}")
                    break
            if value is None and name not in env_vars and name not in base_vars:
                missing.append(name)
        if value is None and name in env_vars:
            value = Value(name, env_vars[name], file_source(env))
        if value is None and name in base_vars:
            value = Value(name, base_vars[name], file_source(None))
        if value is not None:
            out[name] = value
    return out, missing


def _url_has_password(url: str) -> bool:
    try:
        return params.url_has_password(url)
    except ConfigError as exc:  # the message is already redacted
        raise ConfigError(
            f"DB_URL (from {ENVIRONMENT}) is {exc.message}", hint=exc.hint or _URL_HINT
        ) from None


_URL_HINT = (
    "check the URL's brackets and percent-encoding; pgconnect url shows a correctly encoded one"
)


def resolve(
    project: Project,
    env: str | None,
    store: SecretStore | Callable[[], SecretStore] | None,
    *,
    environ: Mapping[str, str] | None = None,
    connection_only: bool = False,
    terminal: bool = False,
) -> Resolution:
    """Resolve every variable, then build the connection parameters from them.

    TERMINAL: a secret's command may use the terminal (to ask for a password manager's unlock);
    only the CLI sets it.
    """
    environ = os.environ if environ is None else environ
    names = None
    if connection_only:
        env_vars = project.envs[env].vars if env is not None and env in project.envs else {}
        every = (
            set(project.base_vars(env))
            | set(env_vars)
            | {n for n, _ in project.declared_secrets(env)}
            | set(environ)
        )
        names = {n for n in every if params.is_connection_name(n)}
    made: list[Resolution] = []

    def connection() -> dict[str, str | None]:
        return {k: made[0].get(k) for k in ("host", "port", "user")}

    values, missing = resolve_values(
        project, env, environ, store, names=names, terminal=terminal, connection=connection
    )
    declared = project.declared_secrets(env)
    resolution = Resolution(
        project=project,
        env=env,
        values=values,
        missing_secrets=missing,
        # The most specific declaration: the environment's own before the base's.
        missing_declared_in={n: next(e for d, e in declared if d == n) for n in missing},
    )
    resolution.params = build_params(values, project.folder, environ)
    made.append(resolution)
    _require_tls_for_token(resolution)
    return resolution


#: sslmodes under which libpq never sends anything unencrypted (libpq's sslmode table).
TLS_MODES = ("require", "verify-ca", "verify-full")


def token_secret(resolution: Resolution) -> Param | None:
    """The password parameter when a preset gives it (a cloud token), else None."""
    p = resolution.param("password")
    if p is not None and getattr(p.value, "is_token", False):
        return p
    return None


def _require_tls_for_token(resolution: Resolution) -> None:
    """A cloud token is a bearer credential for minutes: it must not cross the network in clear
    (libpq sends a cleartext password as it is; under prefer/allow a server without TLS gets it)."""
    token = token_secret(resolution)
    if token is None:
        return
    mode = resolution.param("sslmode")
    if mode is None or mode.reveal() in TLS_MODES:
        return
    where = f" --env {resolution.env}" if resolution.env else ""
    raise ConfigError(
        f"{token.name} is a token from {token.source} and needs TLS, but the effective sslmode "
        f"is {mode.reveal()} ({mode.source})",
        hint=f"require TLS: pgconnect var set DB_SSLMODE verify-full{where} (or require)",
    )


def build_params(
    values: Mapping[str, Value], folder: Path, environ: Mapping[str, str]
) -> list[Param]:
    """libpq parameters: DB_URL as the base, explicit DB_* over its parts, then defaults."""
    out: dict[str, Param] = {}
    url = values.get(params.URL_NAME)
    if url is not None:
        # params.check_url: libpq's parse, then each part checked as its own variable is; its
        # messages never quote a part that may be a password (nor any part of a stored DB_URL).
        try:
            parts = params.check_url(url.reveal(), secret=isinstance(url.value, Secret))
        except params.InvalidValue as exc:
            message = str(exc).replace(params.URL_NAME, f"DB_URL (from {url.source})", 1)
            raise ConfigError(message, hint=_URL_HINT) from None
        for url_keyword, part in parts.items():
            shown: str | Secret = Secret(part) if url_keyword in params.SECRET_KEYWORDS else part
            out[url_keyword] = Param(url_keyword, url.name, shown, url.source)

    users = [n for n in ("DB_USERNAME", "DB_USER") if n in values]
    if len(users) == 2 and values["DB_USERNAME"].reveal() != values["DB_USER"].reveal():
        raise ConfigError(
            "DB_USERNAME and DB_USER are both set, to different users; keep one "
            f"(DB_USERNAME from {values['DB_USERNAME'].source}, "
            f"DB_USER from {values['DB_USER'].source})"
        )
    for name, value in values.items():
        kw = params.keyword_for(name)
        if kw is None or (name == "DB_USER" and "DB_USERNAME" in values):
            continue
        keyword: str = kw
        raw: str | Secret = value.value
        if (
            keyword in params.PATH_KEYWORDS
            and value.source.startswith("file:")
            and isinstance(raw, str)
        ):
            raw = _relative_to(raw, folder)
        if keyword in params.SECRET_KEYWORDS and isinstance(raw, str):
            raw = Secret(raw)
        out[keyword] = Param(keyword, name, raw, value.source)

    host = out["host"].reveal() if "host" in out else None
    port = out["port"].reveal() if "port" in out else None
    try:
        params.check_host_port_lists(host, port)
    except params.InvalidValue as exc:
        raise ConfigError(str(exc)) from None

    _libpq_sources(out, environ)

    def order(p: Param) -> tuple[int, str]:
        return (_ORDER.index(p.keyword) if p.keyword in _ORDER else len(_ORDER), p.keyword)

    return sorted(out.values(), key=order)


def _libpq_sources(out: dict[str, Param], environ: Mapping[str, str]) -> None:
    """Fill what no pgconnect source set from libpq's own sources, in libpq's order
    (fe-connect.c conninfo_add_defaults): the connection service, then the PG* variables; then
    the passfile's password; only then pgconnect's defaults. libpq reads the first three itself:
    they are reported (``explicit=False``), never passed, so nothing pgconnect passes can
    override them."""
    from pgconnect import libpqfiles

    def put(keyword: str, value: str, source: str) -> None:
        shown: str | Secret = Secret(value) if keyword in params.SECRET_KEYWORDS else value
        out[keyword] = Param(keyword, None, shown, source, explicit=False)

    service = out["service"].reveal() if "service" in out else environ.get("PGSERVICE")
    if service:
        entry = libpqfiles.find_service(service, environ)
        for keyword, value in entry.values.items():
            if keyword not in out:
                put(keyword, value, f"libpq-service:{service}")

    for var, keyword in LIBPQ_ENV.items():
        if keyword not in out and environ.get(var):
            put(keyword, environ[var], f"libpq-env:{var}")

    if "password" not in out:
        passfile = out["passfile"].reveal() if "passfile" in out else None
        path = libpqfiles.passfile_path(passfile, {} if passfile else environ)
        keys = ("host", "hostaddr", "port", "dbname", "user")
        conn = {k: p.reveal() for k, p in out.items() if k in keys}
        first = libpqfiles.targets(conn, {})[0]  # libpq looks up each host; explain shows one
        if path is not None:
            found = libpqfiles.passfile_lookup(
                path, first.host, first.port, first.dbname, first.user
            )
            if found is not None:
                put("password", found, f"libpq-passfile:{path}")

    rootcert = out["sslrootcert"].reveal() if "sslrootcert" in out else None
    if "sslmode" not in out:
        if rootcert == "system":
            # libpq 16+: sslrootcert=system with no sslmode means verify-full.
            out["sslmode"] = Param("sslmode", "DB_SSLMODE", "verify-full", DEFAULT)
        else:
            effective_host = out["host"].reveal() if "host" in out else None
            out["sslmode"] = Param(
                "sslmode", "DB_SSLMODE", params.default_sslmode(effective_host), DEFAULT
            )
    elif rootcert == "system" and out["sslmode"].reveal() != "verify-full":
        mode = out["sslmode"]
        raise ConfigError(
            f"sslmode={mode.reveal()} (from {mode.source}) cannot be used with "
            f"sslrootcert=system (from {out['sslrootcert'].source}): libpq 16 and later refuse "
            "any sslmode but verify-full with the system's trusted roots",
            hint="set DB_SSLMODE=verify-full, or leave it unset (libpq then uses verify-full)",
        )


def _relative_to(path: str, folder: Path) -> str:
    # Special libpq values that are not paths.
    if path in ("system",) or path.startswith("~") or os.path.isabs(path):
        return os.path.expanduser(path) if path.startswith("~") else path
    return str(folder / path)
