"""Secrets kept elsewhere: a command whose standard output is the value (docs/secret-commands.md).

A project binds a secret to a command in ``[secret_commands]`` (or ``[env.<E>.secret_commands]``):

    [secret_commands]
    DB_PASSWORD = ["op", "read", "op://prod/db/password"]
    API_TOKEN = { command = ["pass", "show", "api"], timeout = 60 }

    [env.prod.secret_commands]
    DB_PASSWORD = { preset = "aws-rds-iam", region = "eu-west-1" }

The command is an argv list, run without a shell, each time the value is needed (never cached on
disk), under a deadline after which its whole process group is killed. A preset builds a cloud CLI's
token command from the resolved connection (host, port, user) when it runs, so no token and no host
is written down twice. Whether a command may run at all is ``approval``'s business; this module only
describes and runs commands. Nothing here prints.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgconnect.errors import ConfigError, Interrupted, SecretStoreError, Terminated
from pgconnect.secret import MASK, Secret

if TYPE_CHECKING:
    from pgconnect.project import Project

DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 3600.0
#: The longest stderr line shown in an error message (a command may write a whole page on one).
MAX_SHOWN = 300
#: After SIGTERM at the deadline, how long the command gets before SIGKILL for its whole group.
GRACE_S = 0.5

#: Presets: a cloud CLI that prints a short-lived token for the resolved connection. A word that is
#: exactly ``{host}``, ``{port}`` or ``{user}`` is filled in when the command runs; nothing else is.
PRESETS: dict[str, tuple[str, ...]] = {
    # https://docs.aws.amazon.com/cli/latest/reference/rds/generate-db-auth-token.html
    "aws-rds-iam": (
        "aws",
        "rds",
        "generate-db-auth-token",
        "--hostname",
        "{host}",
        "--port",
        "{port}",
        "--username",
        "{user}",
    ),
    # https://cloud.google.com/sdk/gcloud/reference/sql/generate-login-token
    "gcp-cloudsql-iam": ("gcloud", "sql", "generate-login-token"),
    # https://learn.microsoft.com/azure/postgresql/flexible-server/how-to-configure-sign-in-azure-ad-authentication
    "azure-entra": (
        "az",
        "account",
        "get-access-token",
        "--resource-type",
        "oss-rdbms",
        "--query",
        "accessToken",
        "-o",
        "tsv",
    ),
}
_PLACEHOLDERS = ("{host}", "{port}", "{user}")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+")
#: An RDS endpoint names its region: <name>.<id>.<region>.rds.amazonaws.com(.cn).
_RDS_HOST = re.compile(r"\.([a-z]{2}(?:-[a-z]+)+-\d+)\.rds\.amazonaws\.com(?:\.cn)?\.?$")
#: Words that mean something to a shell and nothing to the program they are passed to.
_SHELL_WORDS = {"|", "||", "&", "&&", ";", ">", ">>", "<", "<<", "2>", "2>&1", "$(", "`"}


class SecretCommandError(SecretStoreError):
    """A secret's command could not run, failed, timed out, printed nothing, or is not approved
    (exit 4, like every other secret source that cannot give the value)."""


@dataclass(frozen=True)
class CommandSpec:
    """How one secret's value is obtained: ARGV, or a PRESET (with its REGION), and a deadline."""

    argv: tuple[str, ...] = ()
    preset: str | None = None
    region: str | None = None
    timeout: float = DEFAULT_TIMEOUT_S

    @property
    def is_token(self) -> bool:
        """A preset gives a cloud token: it must travel over TLS."""
        return self.preset is not None

    def template(self) -> tuple[str, ...]:
        """The argv as written down (placeholders unfilled): what approval is given for."""
        if self.preset is None:
            return self.argv
        words = PRESETS[self.preset]
        if self.region is not None:
            words = (*words, "--region", self.region)
        return words

    @property
    def program(self) -> str:
        return self.template()[0]

    def shown(self) -> str:
        """The command as a shell would show it (for messages; never holds a secret)."""
        import shlex

        text = " ".join(w if w in _PLACEHOLDERS else shlex.quote(w) for w in self.template())
        return f"{text}  (preset {self.preset})" if self.preset else text

    def build(self, connection: Mapping[str, str | None]) -> list[str]:
        """The argv to run: a preset's placeholders filled from the resolved CONNECTION."""
        if self.preset is None:
            return list(self.argv)
        host = connection.get("host") or ""
        if not host or "," in host or host.startswith("/") or host.startswith("@"):
            raise ConfigError(
                f"the {self.preset} preset needs one TCP host name (DB_HOST), "
                f"not {host or 'none'!r}",
                hint="set it: pgconnect var set DB_HOST <the instance's endpoint>",
            )
        port = connection.get("port") or "5432"
        if "," in port:
            raise ConfigError(f"the {self.preset} preset needs one port, not {port!r}")
        user = connection.get("user") or ""
        if not user:
            raise ConfigError(
                f"the {self.preset} preset needs the database user the token is for (DB_USERNAME)",
                hint="set it: pgconnect var set DB_USERNAME <the IAM database user>",
            )
        values = {"{host}": host, "{port}": port, "{user}": user}
        argv = [values.get(word, word) for word in self.template()]
        if self.preset == "aws-rds-iam" and self.region is None:
            # The endpoint names its region; aws would otherwise need AWS_REGION or a profile.
            m = _RDS_HOST.search(host)
            if m:
                argv += ["--region", m.group(1)]
        return argv

    def to_toml(self) -> Any:
        """The file's form: a plain argv list when that says everything, else an inline table."""
        import tomlkit

        if self.preset is None and self.timeout == DEFAULT_TIMEOUT_S:
            arr = tomlkit.array()
            arr.extend(self.argv)
            return arr
        table = tomlkit.inline_table()
        if self.preset is not None:
            table["preset"] = self.preset
            if self.region is not None:
                table["region"] = self.region
        else:
            words = tomlkit.array()
            words.extend(self.argv)
            table["command"] = words
        if self.timeout != DEFAULT_TIMEOUT_S:
            table["timeout"] = int(self.timeout) if self.timeout.is_integer() else self.timeout
        return table


# --------------------------------------------------------------------------- the file's table


def parse_table(path: Path, value: Any, where: str) -> dict[str, CommandSpec]:
    """Validate a ``[secret_commands]`` table; ConfigError names the file, the table and the key."""
    from pgconnect import params

    if not isinstance(value, dict):
        raise ConfigError(f'{path}: {where} must be a table of NAME = ["program", "arg", …]')
    out: dict[str, CommandSpec] = {}
    for name, raw in value.items():
        try:
            params.check_name(name)
        except params.InvalidName as exc:
            raise ConfigError(f"{path}: {where}: {exc}") from None
        try:
            out[name] = parse_entry(name, raw)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {where} {exc.message}", hint=exc.hint) from None
    return out


def parse_entry(name: str, raw: Any) -> CommandSpec:
    if isinstance(raw, list):
        return CommandSpec(argv=check_argv(name, raw))
    if not isinstance(raw, dict):
        raise ConfigError(
            f'{name}: must be a list of words (["op", "read", "…"]) or a table '
            '({ command = [...], timeout = 30 } or { preset = "aws-rds-iam" })'
        )
    unknown = set(raw) - {"command", "preset", "region", "timeout"}
    if unknown:
        raise ConfigError(
            f"{name}: unknown key {sorted(unknown)[0]!r} (expected command, preset, region, timeout)"
        )
    if ("command" in raw) == ("preset" in raw):
        raise ConfigError(f'{name}: give exactly one of command = [...] or preset = "…"')
    timeout = check_timeout(name, raw.get("timeout", DEFAULT_TIMEOUT_S))
    if "command" in raw:
        if "region" in raw:
            raise ConfigError(f'{name}: region goes with preset = "aws-rds-iam" only')
        return CommandSpec(argv=check_argv(name, raw["command"]), timeout=timeout)
    preset = raw["preset"]
    if preset not in PRESETS:
        raise ConfigError(f"{name}: unknown preset {preset!r} (presets: {', '.join(PRESETS)})")
    region = raw.get("region")
    if region is not None:
        check_region(name, preset, region)
    check_preset_name(name)
    return CommandSpec(preset=preset, region=region, timeout=timeout)


def check_argv(name: str, words: Any) -> tuple[str, ...]:
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ConfigError(f"{name}: the command must be a list of strings")
    if not words or not words[0]:
        raise ConfigError(f"{name}: the command is empty")
    if any("\x00" in w for w in words):
        raise ConfigError(f"{name}: a word of the command contains a NUL byte")
    return tuple(words)


def check_timeout(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}: timeout must be a number of seconds")
    if not 0 < value <= MAX_TIMEOUT_S:
        raise ConfigError(
            f"{name}: timeout must be above 0 and at most {MAX_TIMEOUT_S:g} s, not {value:g}"
        )
    return float(value)


def check_region(name: str, preset: str, region: Any) -> None:
    if preset != "aws-rds-iam":
        raise ConfigError(f"{name}: region goes with the aws-rds-iam preset only")
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise ConfigError(f"{name}: region {region!r} is not an AWS region name (e.g. eu-west-1)")


def check_preset_name(name: str) -> None:
    """A token stands in for the password: only a password secret can be one."""
    from pgconnect import params

    if params.keyword_for(name) != "password":
        raise ConfigError(
            f"{name}: a preset gives a login token, which is the password: bind it to "
            f"{params.PASSWORD_NAME}"
        )


def split_command(text: str) -> tuple[str, ...]:
    """``--command 'op read "op://prod/db/pass word"'`` → argv, with the shell's quoting rules
    (shlex, POSIX mode) and nothing else: no variables, no globs, no pipes. ValueError if it
    cannot be split (an unclosed quote) or is empty."""
    import shlex

    words = tuple(shlex.split(text, comments=False, posix=True))
    if not words or not words[0]:
        raise ValueError("the command is empty")
    if any("\x00" in w for w in words):
        raise ValueError("the command contains a NUL byte")
    return words


def shell_words(argv: Sequence[str]) -> list[str]:
    """The words of ARGV that a shell would have treated as syntax (for a warning)."""
    return [
        w
        for w in argv[1:]
        if w in _SHELL_WORDS or any(c in w for c in (";", "|", "&&", "$(", "`", "$"))
    ]


# --------------------------------------------------------------------------- running


def run(
    argv: Sequence[str],
    *,
    name: str,
    timeout: float,
    terminal: bool,
    cwd: Path | None = None,
    again: str | None = None,
) -> Secret:
    """Run ARGV (no shell) in CWD and return its standard output, one trailing newline removed.

    CWD is the project's folder, so ``./scripts/get-password`` in the file means the same from
    any subfolder.

    TERMINAL: pass the terminal through (stdin and stderr, when they are one) so a password
    manager can ask to be unlocked; the command then becomes the terminal's foreground process
    group while it runs, as a shell would make it. Otherwise stdin is /dev/null (pgconnect's own
    stdin may be SQL for ``query``) and stderr is captured for the error message.
    The command runs in its own process group: at the deadline (or if pgconnect is interrupted)
    the whole group is killed, so nothing it started is left behind.
    """

    tty_in = terminal and _isatty(0)
    tty_err = terminal and _isatty(2)
    foreground = tty_in and _is_foreground(0)
    with _terminated_as_exception():
        return _run(argv, name, timeout, cwd, again, tty_in, tty_err, foreground)


def _run(
    argv: Sequence[str],
    name: str,
    timeout: float,
    cwd: Path | None,
    again: str | None,
    tty_in: bool,
    tty_err: bool,
    foreground: bool,
) -> Secret:
    import shlex
    import subprocess

    from pgconnect.secretinput import strip_one_newline

    program = argv[0]
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=None if tty_in else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None if tty_err else subprocess.PIPE,
            process_group=0,
            close_fds=True,
            cwd=cwd,
        )
    except FileNotFoundError:
        raise SecretCommandError(
            f"the command for {name} cannot run: {program}: command not found",
            hint=f"install {program} or put it on PATH",
        ) from None
    except PermissionError:
        raise SecretCommandError(
            f"the command for {name} cannot run: {program}: permission denied"
        ) from None
    except OSError as exc:
        raise SecretCommandError(
            f"the command for {name} cannot run: {program}: {exc.strerror}"
        ) from None

    timed_out = False
    out: bytes | None
    err: bytes | None
    try:
        if foreground:
            _set_foreground(0, proc.pid)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            out, err = _stop(proc)
    except BaseException:
        # Interrupted (Ctrl-C, or SIGTERM turned into Terminated): take the command down with us.
        _stop(proc)
        raise
    finally:
        if foreground:
            _set_foreground(0, os.getpgrp())

    partial = strip_one_newline((out or b"").decode("utf-8", "replace"))
    last = _last_line(err, [partial])
    if timed_out:
        raise SecretCommandError(
            f"the command for {name} ({program}) did not finish within {timeout:g} s and was "
            f"stopped{_detail(last, tty_err)}",
            hint=f"if it needs longer, give it a longer deadline: {again} --timeout "
            f"{max(timeout * 2, 60):g}"
            if again
            else None,
        )
    code = proc.returncode
    if code == -signal.SIGINT or (foreground and code == 128 + signal.SIGINT):
        raise Interrupted(f"interrupted while the command for {name} ({program}) ran")
    if code != 0:
        status = f"signal {-code}" if code < 0 else f"exit status {code}"
        raise SecretCommandError(
            f"the command for {name} ({program}) failed ({status}){_detail(last, tty_err)}",
            hint=f"run it yourself to see why: {shlex.join(argv)}",
        )
    try:
        value = strip_one_newline((out or b"").decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SecretCommandError(
            f"the command for {name} ({program}) printed something that is not UTF-8 text "
            f"(byte {exc.start})"
        ) from None
    if not value:
        raise SecretCommandError(
            f"the command for {name} ({program}) printed nothing on its standard output"
            f"{_detail(last, tty_err)}",
            hint="the value must be the command's standard output (one trailing newline is "
            "removed)",
        )
    if "\x00" in value:
        raise SecretCommandError(
            f"the command for {name} ({program}) printed a NUL byte, which libpq cannot pass on"
        )
    return Secret(value)


@contextlib.contextmanager
def _terminated_as_exception() -> Iterator[None]:
    """While the command runs, SIGTERM to pgconnect raises Terminated (exit 143) so the command's
    process group is killed on the way out; Python's default would end pgconnect at once and
    leave the command running in its own group. Only the main thread may set handlers."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: object) -> None:
        raise Terminated("terminated while a secret's command ran")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _detail(last: str | None, tty_err: bool) -> str:
    if last:
        return f": {last}"
    return "; its messages are above" if tty_err else " (it wrote nothing on stderr)"


def _last_line(err: bytes | None, also: Sequence[str]) -> str | None:
    """The command's last non-empty stderr line, safe to show: every secret this process has
    held (and whatever the command printed on stdout) masked, URI passwords masked, control
    characters escaped, length capped."""
    if not err:
        return None
    lines = [ln.strip() for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return None
    return redact_line(lines[-1], also)


def redact_line(line: str, also: Sequence[str] = ()) -> str:
    from pgconnect.connstr import redact
    from pgconnect.secret import MIN_MASKED_LENGTH, held_values

    masks = [v for v in also if len(v) >= MIN_MASKED_LENGTH]
    for value in sorted([*held_values(), *masks], key=len, reverse=True):
        line = line.replace(value, MASK)
    line = redact(line)
    line = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in line
    )
    return line if len(line) <= MAX_SHOWN else line[: MAX_SHOWN - 1] + "…"


def _stop(proc: Any) -> tuple[bytes | None, bytes | None]:
    """Kill PROC's whole process group (SIGTERM, then SIGKILL after GRACE_S) and collect what it
    wrote. A descendant that left the group and still holds the pipes does not keep us waiting."""
    import subprocess

    _signal_group(proc.pid, signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        out, err = None, None
    # Always, also when the leader went at SIGTERM: what it started may still be running.
    _signal_group(proc.pid, signal.SIGKILL)
    if out is None:
        try:
            out, err = proc.communicate(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            proc.wait()
    return out, err


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _is_foreground(fd: int) -> bool:
    """Is pgconnect the terminal's foreground process group (not started with ``&``)?"""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False


def _set_foreground(fd: int, pgid: int) -> None:
    """Make PGID the terminal's foreground process group, as a shell does for a job (SIGTTOU
    ignored meanwhile: a background group may not change it otherwise)."""
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, pgid)
    finally:
        signal.signal(signal.SIGTTOU, previous)
    # A read from the terminal before the hand-over stopped it (SIGTTIN): let it go on.
    if pgid != os.getpgrp():
        _signal_group(pgid, signal.SIGCONT)


# --------------------------------------------------------------------------- lazy values


def lazy_value(
    project: Project,
    env: str | None,
    name: str,
    spec: CommandSpec,
    connection: Callable[[], Mapping[str, str | None]] | None,
    *,
    terminal: bool,
) -> CommandSecret:
    """NAME's value from SPEC, fetched when first revealed: refused without running anything
    unless this machine's user approved this command for this project file."""

    def fetch() -> Secret:
        require_approval(project.path, env, name, spec)
        if spec.preset is not None and connection is None:
            raise ConfigError(f"the {spec.preset} preset for {name} needs the resolved connection")
        argv = spec.build(connection() if connection is not None else {})
        return run(
            argv,
            name=name,
            timeout=spec.timeout,
            terminal=terminal,
            cwd=project.folder,
            again=put_line(name, env, spec),
        )

    return CommandSecret(fetch, is_token=spec.is_token)


def put_line(name: str, env: str | None, spec: CommandSpec) -> str:
    """The ``secret put`` that records SPEC again (for hints)."""
    import shlex

    line = f"pgconnect secret put {name}" + (f" --env {env}" if env else "")
    if spec.preset is None:
        return f"{line} --command {quote_once(shlex.join(spec.argv))}"
    line += f" --{spec.preset}"
    return f"{line} --region {spec.region}" if spec.region else line


def quote_once(text: str) -> str:
    """TEXT as one shell word, readably: "sh -c 'sleep 60'" rather than shlex's '"'"' dance."""
    import shlex

    if "'" in text and not any(c in text for c in '"$`\\!'):
        return f'"{text}"'
    return shlex.quote(text)


def where(env: str | None) -> str:
    return "[secret_commands]" if env is None else f"[env.{env}.secret_commands]"


def allow_line(project_file: Path, env: str | None) -> str:
    """The exact ``pgconnect secret allow`` to run for PROJECT_FILE's ENV section: with
    ``--config`` when the file is not the one pgconnect finds from here."""
    import shlex

    from pgconnect import project as projectfile

    line = "pgconnect secret allow" + (f" --env {env}" if env else "")
    try:
        found = projectfile.find(None)
        same = os.path.realpath(found) == os.path.realpath(project_file)
    except (ConfigError, OSError):
        same = False
    return line if same else f"{line} --config {shlex.quote(str(project_file))}"


def require_approval(project_file: Path, env: str | None, name: str, spec: CommandSpec) -> None:
    from pgconnect import approval

    item = approval.subject(project_file, env, name, spec.template())
    state = approval.status(item)
    if state == approval.APPROVED:
        return
    why = {
        approval.CHANGED: "changed (its words, or the script it runs) since it was approved "
        "on this machine",
        approval.MOVED: "was approved for a project file in another place, not for this one",
    }.get(state, "has not been approved on this machine")
    raise SecretCommandError(
        f"the command for {name} in {where(env)} of {project_file} {why}; it was not run "
        f"({spec.shown()})",
        hint=f"read it, then approve it: {allow_line(project_file, env)}",
    )


class CommandSecret(Secret):
    """A secret whose command runs the first time its value is revealed, once per process
    (``explain`` and a masked ``url`` never run it). ``str``/``repr`` are ``****`` as for any
    Secret. ``is_token``: a preset's cloud token (it must travel over TLS)."""

    __slots__ = ("_fetch", "_fetched", "is_token")

    def __init__(self, fetch: Callable[[], Secret], *, is_token: bool = False) -> None:
        # No super().__init__: there is no value until the command runs.
        self._fetch = fetch
        self._fetched = False
        self.is_token = is_token

    def reveal(self) -> str:
        if not self._fetched:
            got = self._fetch()
            Secret.__init__(self, got.reveal())  # sets the value and registers it for masking
            self._fetched = True
        return self._value

    @property
    def fetched(self) -> bool:
        return self._fetched

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        return True  # an empty output is refused, so a value, once fetched, is never empty
