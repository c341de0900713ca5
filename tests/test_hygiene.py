"""Secret hygiene (docs/secret-hygiene.md), command by command, error path by error path.

Every registered command is run through its error paths — wrong host, refused port, a server that
never answers, wrong password, a malformed DB_URL that carries the password (as a secret and in
the environment), a failed query, no keyring at all — with and without ``--debug``. The password
is SENTINEL, a value unique to the session; the role's password was set from a SCRAM verifier, so
the server never received it either. After each run, SENTINEL must not be in:

- stdout or stderr;
- the argv of pgconnect or of any process that ran meanwhile (``/proc/*/cmdline`` sampled every
  few milliseconds: ``exec -- sleep``, ``query "select pg_sleep(…)"`` and a ``check`` against a
  silent server keep processes alive long enough to be seen);
- the project file, or any file under the project folder, HOME, the temporary folder or the
  keyring's runtime folder that group or others may read;
- the test cluster's server log.

Unexpected errors end with one short line and no traceback unless ``--debug``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import cli_tree
from tests.conftest import KeyringSession, Server, Servers, cli_environ, write_project
from tests.faultkit import (
    SENTINEL,
    Watched,
    error_lines,
    has_traceback,
    leaks,
    run_watched,
    scram_verifier,
    tally,
)

BAD_URL = f"postgresql://app:{SENTINEL}@[::1/db"  # the example: an unclosed IPv6 bracket
GOOD_URL = f"postgresql://app:{SENTINEL}@db.example.com/app"
BAD_KV = f"host=db.example.com password='{SENTINEL}"  # an unterminated quote

# --------------------------------------------------------------------------- the role and projects


@dataclass(frozen=True)
class Role:
    server: Server
    name: str


@pytest.fixture(scope="module")
def role(servers: Servers) -> Iterator[Role]:
    """A login role whose password is SENTINEL, set from its SCRAM verifier (the plaintext never
    reaches the server)."""
    from psycopg import sql

    server = servers.tls_on
    name = "hygiene_" + SENTINEL[-8:].lower()
    with server.connect() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(scram_verifier(SENTINEL))
            )
        )
    yield Role(server, name)
    with server.connect() as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@dataclass
class Setup:
    """How the project of one case is set up."""

    #: where the password comes from: "env" (DB_PASSWORD=…), "secret" (the keyring), "command"
    #: (an approved [secret_commands] script that prints it; "command-fail" prints it and
    #: fails, "command-unapproved" is never approved), or None
    source: str | None = "env"
    host: str | None = None  # None: the role's server
    port: int | str | None = None
    user: str | None = None  # None: the role
    dbus: bool = True  # False: no D-Bus session (no keyring reachable)
    env_url: str | None = None  # DB_URL in the environment
    secret_url: str | None = None  # DB_URL stored as a secret
    extra: Sequence[str] = ()  # more lines for [vars]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    id: str
    command: tuple[str, ...]  # the command's path, for the coverage test
    args: tuple[str, ...]  # after the command's path
    expect: int
    setup: Setup = field(default_factory=Setup)
    input: str | None = None
    #: the value is in stdout by design (url --reveal) or the user put it in argv themselves
    stdout_may_hold: bool = False
    argv_may_hold: bool = False
    #: a child program, not pgconnect, reports the failure (psql, exec's CMD)
    child_reports: bool = False
    timeout: float = 60


def case(
    id: str,
    command: str,
    args: Sequence[str] = (),
    expect: int = 0,
    **kw: Any,
) -> Any:
    path = tuple(command.split())
    return pytest.param(Case(id, path, tuple(args), expect, **kw), id=id)


E = Setup  # brevity in the table below
SILENT_TIMEOUT = "2"

CASES = [
    # ---------------------------------------------------------------- the project file
    case("init", "init", ["--name", "fresh", "--force"]),
    case("init-exists", "init", [], expect=3),
    case("var-set-plain", "var set", ["APP_MODE", "x"]),
    case("var-set-password-refused", "var set", ["DB_PASSWORD", SENTINEL], 3, argv_may_hold=True),
    case("var-set-url-refused", "var set", ["DB_URL", BAD_URL], 3, argv_may_hold=True),
    case("var-get-url-env", "var get", ["DB_URL"], 3, setup=E(env_url=BAD_URL)),
    case("var-get-missing", "var get", ["NOPE"], 3),
    case("var-list-url-env", "var list", [], 3, setup=E(env_url=BAD_URL)),
    case("var-list-json-url-env", "var list", ["--json"], setup=E(env_url=GOOD_URL)),
    case("var-unset-missing", "var unset", ["NOPE"], 3),
    case("explain", "explain", ["--json"]),
    case("explain-secret", "explain", [], setup=E(source="secret")),
    case("explain-bad-url-env", "explain", [], 3, setup=E(source=None, env_url=BAD_URL)),
    case("explain-bad-kv-env", "explain", [], 3, setup=E(source=None, env_url=BAD_KV)),
    case("explain-bad-url-secret", "explain", [], 3, setup=E(source=None, secret_url=BAD_URL)),
    # explain and secret list need no value: without D-Bus they warn and show it unknown.
    case("explain-no-dbus", "explain", [], 0, setup=E(source="secret", dbus=False)),
    # ---------------------------------------------------------------- secrets
    case("secret-put", "secret put", ["DB_PASSWORD"], setup=E(source=None), input=SENTINEL),
    case(
        "secret-put-no-dbus",
        "secret put",
        ["DB_PASSWORD"],
        4,
        setup=E(source=None, dbus=False),
        input=SENTINEL,
    ),
    case("secret-put-bad-name", "secret put", ["db_pw"], 3, input=SENTINEL),
    case("secret-list", "secret list", ["--json"], setup=E(source="secret")),
    case("secret-list-no-dbus", "secret list", [], 0, setup=E(source="secret", dbus=False)),
    case("secret-delete", "secret delete", ["DB_PASSWORD", "--yes"], setup=E(source="secret")),
    case(
        "secret-delete-no-dbus",
        "secret delete",
        ["DB_PASSWORD", "--yes"],
        4,
        setup=E(source="secret", dbus=False),
    ),
    case(
        "secret-bulk-json",
        "secret bulk",
        ["-"],
        setup=E(source=None),
        input=json.dumps({"DB_PASSWORD": SENTINEL, "DB_URL": GOOD_URL}),
    ),
    case(
        "secret-bulk-malformed-url",
        "secret bulk",
        ["-"],
        3,
        setup=E(source=None),
        input=json.dumps({"DB_PASSWORD": SENTINEL, "DB_URL": BAD_URL}),
    ),
    case(
        "secret-put-malformed-url", "secret put", ["DB_URL"], 3, setup=E(source=None), input=BAD_URL
    ),
    case(
        "secret-bulk-bad-json",
        "secret bulk",
        ["-"],
        2,
        setup=E(source=None),
        input='{"DB_PASSWORD": "' + SENTINEL + '", "X": ' + SENTINEL + "}",
    ),
    case(
        "secret-bulk-bad-dotenv",
        "secret bulk",
        ["-"],
        2,
        setup=E(source=None),
        input=f'DB_PASSWORD={SENTINEL}\nDB_URL="{BAD_URL}\n{SENTINEL}\n',
    ),
    case(
        "secret-bulk-dry-run",
        "secret bulk",
        ["-", "--dry-run"],
        setup=E(source=None),
        input=f"DB_PASSWORD={SENTINEL}\n",
    ),
    case(
        "secret-bulk-no-dbus",
        "secret bulk",
        ["-"],
        4,
        setup=E(source=None, dbus=False),
        input=json.dumps({"DB_PASSWORD": SENTINEL}),
    ),
    # ---------------------------------------------------------------- check
    case("check", "check", ["--json"]),
    case("check-secret", "check", [], setup=E(source="secret")),
    case("check-all-modes", "check", ["--sslmode", "all"]),
    case("check-wrong-password", "check", [], 7, setup=E(user="postgres")),
    case(
        "check-wrong-password-all",
        "check",
        ["--sslmode", "all", "--json"],
        7,
        setup=E(user="postgres"),
    ),
    case("check-wrong-host", "check", [], 5, setup=E(host="nonexistent.invalid")),
    case("check-refused", "check", [], 5, setup=E(port="refused")),
    case("check-silent", "check", ["--timeout", SILENT_TIMEOUT], 5, setup=E(host="silent")),
    case("check-bad-url-env", "check", [], 3, setup=E(source=None, env_url=BAD_URL)),
    case("check-bad-url-secret", "check", ["--json"], 3, setup=E(source=None, secret_url=BAD_URL)),
    case("check-no-dbus", "check", [], 4, setup=E(source="secret", dbus=False)),
    # ---------------------------------------------------------------- sandbox (its failure paths)
    case("sandbox-start-no-dbus", "sandbox start", [], 4, setup=E(dbus=False)),
    case("sandbox-status", "sandbox status", [], 1, child_reports=True),
    case("sandbox-stop", "sandbox stop", []),
    # ---------------------------------------------------------------- url / exec / psql
    case("url", "url", []),
    case("url-conninfo-secret", "url", ["--format", "conninfo"], setup=E(source="secret")),
    case("url-env-format", "url", ["--format", "env"]),
    case("url-json", "url", ["--format", "json"]),
    case("url-reveal", "url", ["--reveal"], stdout_may_hold=True),
    case("url-bad-url-env", "url", [], 3, setup=E(source=None, env_url=BAD_URL)),
    case("url-bad-url-secret", "url", ["--reveal"], 3, setup=E(source=None, secret_url=BAD_URL)),
    case("url-reveal-no-dbus", "url", ["--reveal"], 4, setup=E(source="secret", dbus=False)),
    case("exec-sleep", "exec", ["--", "sleep", "1"], setup=E(source="secret")),
    case("exec-url-var", "exec", ["--url-var", "DATABASE_URL", "--", "sleep", "1"]),
    case("exec-status", "exec", ["--", "sh", "-c", "exit 3"], 3, child_reports=True),
    case("exec-not-found", "exec", ["--", "/nonexistent/cmd"], 127, child_reports=True),
    case("exec-bad-url-env", "exec", ["--", "true"], 3, setup=E(source=None, env_url=BAD_URL)),
    case("exec-no-dbus", "exec", ["--", "true"], 4, setup=E(source="secret", dbus=False)),
    case("psql", "psql", ["-Atc", "select pg_sleep(1), current_user"]),
    case("psql-failed-query", "psql", ["-Atc", "select 1/0"], 1, child_reports=True),
    case(
        "psql-wrong-password",
        "psql",
        ["-Atc", "select 1"],
        2,
        setup=E(user="postgres"),
        child_reports=True,
    ),
    case(
        "psql-refused", "psql", ["-Atc", "select 1"], 2, setup=E(port="refused"), child_reports=True
    ),
    case("psql-bad-url-secret", "psql", [], 3, setup=E(source=None, secret_url=BAD_URL)),
    case(
        "init-from-url",
        "init",
        ["--from-url", "-", "--force"],
        setup=E(source=None),
        input="postgresql://app:" + SENTINEL + "@db.example.com:5432/app?sslmode=verify-full",
    ),
    case(
        "init-from-url-malformed",
        "init",
        ["--from-url", "-", "--force"],
        3,
        setup=E(source=None),
        input=BAD_URL,
    ),
    case(
        "init-from-url-no-dbus",
        "init",
        ["--from-url", "-", "--force"],
        4,
        setup=E(source=None, dbus=False),
        input="postgresql://app:" + SENTINEL + "@db.example.com/app",
    ),
    # ---------------------------------------------------------------- export (the file is 0600)
    case("export-dev-vars", "export", ["--format", "dev-vars"], setup=E(source="secret")),
    case("export-stdout", "export", ["--format", "dotenv", "--out", "-"], stdout_may_hold=True),
    case(
        "export-bad-url-env",
        "export",
        ["--format", "dev-vars"],
        3,
        setup=E(source=None, env_url=BAD_URL),
    ),
    case(
        "export-no-dbus",
        "export",
        ["--format", "dev-vars"],
        4,
        setup=E(source="secret", dbus=False),
    ),
    # ---------------------------------------------------------------- query
    case("query-sleep", "query", ["select pg_sleep(1.5), current_user"], setup=E(source="secret")),
    case("query-json", "query", ["--json", "select 1 as a"]),
    case("query-failed", "query", ["select 1/0"], 1),
    case("query-syntax", "query", ["--json", "selec 1"], 1),
    case("query-wrong-password", "query", ["select 1"], 7, setup=E(user="postgres")),
    case("query-wrong-host", "query", ["select 1"], 5, setup=E(host="nonexistent.invalid")),
    case("query-refused", "query", ["select 1"], 5, setup=E(port="refused")),
    case(
        "query-silent",
        "query",
        ["select 1"],
        5,
        setup=E(host="silent", extra=[f'DB_CONNECT_TIMEOUT = "{SILENT_TIMEOUT}"']),
    ),
    case("query-bad-url-env", "query", ["select 1"], 3, setup=E(source=None, env_url=BAD_URL)),
    case(
        "query-bad-url-secret", "query", ["select 1"], 3, setup=E(source=None, secret_url=BAD_URL)
    ),
    case("query-no-dbus", "query", ["select 1"], 4, setup=E(source="secret", dbus=False)),
    # ---------------------------------------------------------------- secret commands
    case(
        "secret-put-command",
        "secret put",
        ["API_TOKEN", "--command", "sh -c 'exit 1'"],
        setup=E(source="command"),
    ),
    case("secret-allow", "secret allow", [], setup=E(source="command-unapproved")),
    case("secret-list-command", "secret list", ["--json"], setup=E(source="command")),
    case("check-command", "check", ["--json"], setup=E(source="command", dbus=False)),
    case("query-command", "query", ["select pg_sleep(1), 1"], setup=E(source="command")),
    case(
        "url-reveal-command", "url", ["--reveal"], setup=E(source="command"), stdout_may_hold=True
    ),
    case("exec-command", "exec", ["--", "sleep", "1"], setup=E(source="command")),
    case("url-command-fails", "url", ["--reveal"], 4, setup=E(source="command-fail")),
    case("query-command-fails", "query", ["select 1"], 4, setup=E(source="command-fail")),
    case("check-command-unapproved", "check", [], 4, setup=E(source="command-unapproved")),
    # ---------------------------------------------------------------- keyring (headless)
    case(
        "keyring-run-secret-put",
        "keyring run",
        ["--", sys.executable, "-m", "pgconnect", "secret", "put", "API_TOKEN"],
        setup=E(source=None, dbus=False),
        input=SENTINEL,
    ),
    case(
        "keyring-run-check",
        "keyring run",
        ["--", sys.executable, "-m", "pgconnect", "check"],
        setup=E(source="env", dbus=False),
    ),
    case(
        "keyring-run-status",
        "keyring run",
        ["--", "sh", "-c", "exit 5"],
        5,
        setup=E(source=None, dbus=False),
        child_reports=True,
    ),
    case(
        "keyring-shell-secret-put",
        "keyring shell",
        [],
        setup=E(source=None, dbus=False, env={"SHELL": "/bin/sh"}),
        # A here-document: the value reaches secret put's stdin, never a command line.
        input=f"{sys.executable} -m pgconnect secret put API_TOKEN <<'END'\n{SENTINEL}\nEND\n",
    ),
]

SCRIPTS = Path(__file__).resolve().parent / "secret_scripts"


# --------------------------------------------------------------------------- running one case


@dataclass
class Hygiene:
    role: Role
    keyring: KeyringSession
    folder: Path
    tmp: Path
    silent: tuple[str, int]
    refused: int

    def project(
        self, setup: Setup, name: str, folder: Path | None = None
    ) -> tuple[Path, dict[str, str]]:
        """Write the case's project file (in FOLDER, default the test's) and store its secrets;
        return it and the CLI's environment."""
        folder = folder or self.folder
        server = self.role.server
        host: str = server.host
        port: int | str = server.port
        if setup.host == "silent":
            host, port = self.silent
        elif setup.host is not None:
            host = setup.host
        if setup.port == "refused":
            port = self.refused
        elif setup.port is not None:
            port = setup.port
        declared = []
        if setup.source in ("secret", "command", "command-fail", "command-unapproved"):
            declared.append("DB_PASSWORD")
        if setup.secret_url is not None:
            declared.append("DB_URL")
        lines = [
            f'name = "{name}"',
            f"secrets = {json.dumps(declared)}",
            "[vars]",
            f'DB_HOST = "{host}"',
            f'DB_PORT = "{port}"',
            f'DB_USERNAME = "{setup.user or self.role.name}"',
            'DB_NAME = "postgres"',
            'DB_SSLMODE = "verify-full"',
            f'DB_SSLROOTCERT = "{server.ca_file}"',
            *setup.extra,
        ]
        if setup.env_url is not None:
            # A harmless DB_URL in the file, so var list/get show the environment's one.
            lines.append('DB_URL = "postgresql://db.example.com/app"')
        argv: list[str] = []
        if setup.source is not None and setup.source.startswith("command"):
            value_file = folder / "vault-item"  # 0600, as a password manager's own files are
            argv = [
                str(SCRIPTS / ("fail" if setup.source == "command-fail" else "from-file")),
                str(value_file),
            ]
            lines += ["[secret_commands]", f"DB_PASSWORD = {json.dumps(argv)}"]
        folder.mkdir(exist_ok=True)
        path = write_project(folder, "\n".join(lines) + "\n")
        if argv:
            value_file.write_text(SENTINEL + "\n")
            value_file.chmod(0o600)
            if setup.source != "command-unapproved":
                from pgconnect import approval

                approval.approve([approval.subject(path, None, "DB_PASSWORD", argv)])
        for secret, value in (("DB_PASSWORD", SENTINEL), ("DB_URL", setup.secret_url)):
            from_command = secret == "DB_PASSWORD" and setup.source != "secret"
            if secret in declared and value is not None and not from_command:
                stored = self.keyring.secret_tool(
                    "store",
                    "--label",
                    "hygiene",
                    "service",
                    f"pgconnect:{name}",
                    "username",
                    secret,
                    input=value,
                )
                assert stored.returncode == 0, stored.stderr
        env = {"TMPDIR": str(self.tmp), **setup.env}
        if setup.dbus:
            env.update(self.keyring.environ())
        if setup.source == "env":
            env["DB_PASSWORD"] = SENTINEL
        if setup.env_url is not None:
            env["DB_URL"] = setup.env_url
        return path, env

    def roots(self) -> list[Path]:
        return [self.folder, Path(os.environ["HOME"]), self.tmp, self.keyring.runtime]


@pytest.fixture
def hygiene(
    role: Role,
    keyring_session: KeyringSession,
    isolated: Path,
    tmp_path: Path,
    silent_listener: tuple[str, int],
    refused_port: int,
) -> Hygiene:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return Hygiene(role, keyring_session, isolated, tmp, silent_listener, refused_port)


def with_debug(c: Case) -> list[str]:
    """The command line with --debug right after the command's name (before any `--`)."""
    return [*c.command, "--debug", *c.args]


def check_run(c: Case, run: Watched, debug: bool, h: Hygiene, project: Path) -> None:
    label = f"{c.id}{' --debug' if debug else ''}"
    assert run.returncode == c.expect, f"{label}: rc={run.returncode}\n{run.result.stderr}"
    found = leaks(
        run,
        SENTINEL,
        roots=h.roots(),
        project_file=project,
        stdout_may_hold=c.stdout_may_hold,
    )
    if c.argv_may_hold:  # the user typed it: only pgconnect's own argv may hold it
        found = [f for f in found if not (f.startswith("argv: ") and "pgconnect" in f)]
    assert found == [], (label, found, run.result)
    if not debug:
        assert not has_traceback(run), (label, run.result)
    # check reports a failed connection in its report (on stdout), not as an error line.
    reported = c.child_reports or (c.command == ("check",) and c.expect >= 5)
    if c.expect != 0 and not reported:
        assert len(error_lines(run)) == 1, (label, run.result)
    assert "this is a bug in pgconnect" not in run.stderr, (label, run.result)
    assert run.samples >= 1


@pytest.mark.parametrize("c", CASES)
def test_no_secret_leaves_through_any_path(c: Case, hygiene: Hygiene) -> None:
    # The plain run and the --debug run at once, each in a folder and keyring service of its own
    # (a run may change its project or its secrets).
    def go(debug: bool) -> tuple[Watched, Path]:
        label = "debug" if debug else "plain"
        name = f"hyg-{c.id[:30]}-{label}-{SENTINEL[-6:]}"
        folder = hygiene.folder / label
        project, env = hygiene.project(c.setup, name, folder)
        args = with_debug(c) if debug else [*c.command, *c.args]
        run = run_watched(args, input=c.input, env=env, cwd=folder, timeout=c.timeout)
        return run, project

    with ThreadPoolExecutor(max_workers=2) as pool:
        (plain, plain_project), (debug, debug_project) = pool.map(go, [False, True])
    check_run(c, plain, False, hygiene, plain_project)
    check_run(c, debug, True, hygiene, debug_project)
    tally("hygiene: command runs (each checked in stdout, stderr, argv, files)", 2)
    tally("hygiene: argv samples of every process", plain.samples + debug.samples)

    log = hygiene.role.server.cluster.logfile
    assert SENTINEL.encode() not in log.read_bytes(), f"{SENTINEL} in the server log {log}"


def test_every_command_has_a_hygiene_case() -> None:
    """A command registered later (or by another branch) fails here until it has its cases."""
    covered = {p.values[0].command for p in CASES}
    missing = [" ".join(path) for path, _ in cli_tree.leaves() if path not in covered]
    assert missing == []


# --------------------------------------------------------------------------- the watcher works


def test_the_argv_sampler_sees_a_short_lived_process(isolated: Path) -> None:
    """Control: a value the user put on pgconnect's own command line is seen, so an empty list of
    argv hits above means something."""
    write_project(isolated, 'name = "control"\n[vars]\n')
    run = run_watched(["var", "set", "APP_TOKEN", SENTINEL], cwd=isolated)
    assert run.returncode == 0, run.result
    assert any(SENTINEL in hit and "pgconnect" in hit for hit in run.argv_hits), run


def test_the_argv_sampler_sees_every_process(isolated: Path) -> None:
    """Control: the sampler reads every process's argv, not only pgconnect's (here a shell the
    test itself starts while pgconnect runs)."""
    proc = subprocess.Popen(["sh", "-c", f"sleep 30; : {SENTINEL}"])
    try:
        run = run_watched(["var", "--help"], cwd=isolated)
    finally:
        proc.kill()
        proc.wait()
    assert any(SENTINEL in hit for hit in run.argv_hits), run


def test_the_file_scan_finds_a_readable_copy(tmp_path: Path) -> None:
    """Control for the file check: a 0644 copy is a leak, a 0600 one is not."""
    (tmp_path / "open").write_text(SENTINEL)
    (tmp_path / "open").chmod(0o644)
    (tmp_path / "private").write_text(SENTINEL)
    (tmp_path / "private").chmod(0o600)
    from tests.conftest import Result

    found = leaks(Result(0, "", "", []), SENTINEL, roots=[tmp_path])
    assert found == [f"file {tmp_path / 'open'} (mode 0644)"]


# --------------------------------------------------------------------------- the sandbox's password


def test_sandbox_password_never_in_argv_or_readable_files(
    keyring_session: KeyringSession, isolated: Path, tmp_path: Path
) -> None:
    """sandbox start makes its own random password: every argv seen while it ran and every file it
    left are checked once the password is known (read back from the keyring)."""
    name = "hyg-sandbox-" + SENTINEL[-6:]
    write_project(isolated, f'name = "{name}"\n[vars]\n')
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**keyring_session.environ(), "TMPDIR": str(tmp)}
    run = run_watched(["sandbox", "start"], env=env, cwd=isolated, timeout=180, keep_cmdlines=True)
    try:
        assert run.returncode == 0, run.result
        password = keyring_session.lookup(f"pgconnect:{name}:sandbox", "DB_PASSWORD")
        assert password, "the sandbox stored no password"
        assert len(password) >= 16
        seen = [c for c in run.cmdlines if password.encode() in c]
        assert seen == [], seen
        found = leaks(
            run,
            password,
            roots=[isolated, Path(os.environ["HOME"]), tmp],
            project_file=isolated / "pgconnect.toml",
        )
        # The cluster may live under the system temp folder (a private home): check there too.
        state = isolated / ".pgconnect"
        for entry in state.rglob("*") if state.exists() else []:
            if entry.is_file() and password.encode() in entry.read_bytes():
                mode = entry.stat().st_mode & 0o777
                if mode & 0o077:
                    found.append(f"file {entry} (mode {mode:04o})")
        assert found == [], found
        query = run_watched(["explain", "-e", "sandbox"], needles=[password], env=env, cwd=isolated)
        assert query.returncode == 0, query.result
        assert leaks(query, password) == []
        tally("hygiene: command runs (each checked in stdout, stderr, argv, files)", 2)
    finally:
        stopped = subprocess.run(
            [sys.executable, "-m", "pgconnect", "sandbox", "stop"],
            cwd=isolated,
            env=cli_environ(env),
            capture_output=True,
            timeout=60,
        )
        assert stopped.returncode == 0, stopped.stderr


# --------------------------------------------------------------------------- unexpected errors

BOOM = f"""
import sys
import pgconnect.project as project

def boom(*args, **kwargs):
    raise RuntimeError("internal state: postgresql://app:{SENTINEL}@db/x password={SENTINEL}")

project.load = boom
from pgconnect.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_an_unexpected_exception_is_one_line_and_its_traceback_is_redacted(
    isolated: Path, debug: bool
) -> None:
    """The error boundary itself: an exception nobody foresaw (forced here by replacing a function
    in the child process; no switch in pgconnect does this) prints one line, exit 1; --debug adds
    the traceback, never local variables, with secrets masked."""
    write_project(isolated, 'name = "boom"\n[vars]\n')
    args = ["var", "list", *(["--debug"] if debug else [])]
    proc = subprocess.run(
        [sys.executable, "-c", BOOM, *args],
        cwd=isolated,
        env=cli_environ({"DB_PASSWORD": SENTINEL}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    first = proc.stderr.splitlines()[0]
    assert first == (
        "error: unexpected RuntimeError; this is a bug in pgconnect (run again with --debug for "
        "the traceback)"
    )
    assert SENTINEL not in proc.stderr
    if debug:
        assert "Traceback (most recent call last):" in proc.stderr
        assert "RuntimeError: internal state: postgresql://app:****@db/x password=****" in (
            proc.stderr
        )
    else:
        assert proc.stderr.count("\n") == 1, proc.stderr
    tally("hygiene: unexpected-error runs", 1)


def test_a_secret_in_an_unexpected_message_is_masked_even_without_a_pattern(
    isolated: Path,
) -> None:
    """A value pgconnect held as a secret is masked in anything the boundary prints, even where
    no URI or password= pattern gives it away (here a bare value in an exception message)."""
    write_project(isolated, 'name = "boom"\n[vars]\nDB_HOST = "h"\n')
    script = f"""
import sys
import pgconnect.resolve as resolve
real = resolve.build_params

def build(values, folder, environ):
    real(values, folder, environ)
    raise KeyError("{SENTINEL}")

resolve.build_params = build
from pgconnect.cli import main
main(sys.argv[1:])
"""
    proc = subprocess.run(
        [sys.executable, "-c", script, "explain", "--debug"],
        cwd=isolated,
        env=cli_environ({"DB_PASSWORD": SENTINEL}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "KeyError: '****'" in proc.stderr, proc.stderr
    assert SENTINEL not in proc.stderr


def test_a_crash_in_a_worker_thread_prints_no_traceback(isolated: Path) -> None:
    """Python prints a thread's uncaught exception with its traceback; pgconnect's hook prints
    the short line (the traceback only with --debug)."""
    write_project(isolated, 'name = "thread"\n[vars]\n')
    script = """
import functools, sys, threading
import pgconnect.cli.project as cmds
real = cmds.var_list

@functools.wraps(real)
def var_list(*args, **kwargs):
    t = threading.Thread(target=lambda: 1 / 0, name="worker")
    t.start()
    t.join()
    return real(*args, **kwargs)

cmds.var_app.registered_commands[[c.name for c in cmds.var_app.registered_commands].index("list")].callback = var_list
from pgconnect.cli import main
main(sys.argv[1:])
"""
    for debug in (False, True):
        proc = subprocess.run(
            [sys.executable, "-c", script, "var", "list", *(["--debug"] if debug else [])],
            cwd=isolated,
            env=cli_environ(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (
            "error: unexpected ZeroDivisionError in thread worker; this is a bug in pgconnect"
            in proc.stderr
        ), proc.stderr
        assert ("Traceback" in proc.stderr) == debug, proc.stderr


# --------------------------------------------------------------------------- signals keep the rule


def test_interrupted_commands_leave_no_secret_behind(hygiene: Hygiene) -> None:
    """SIGINT/SIGTERM in the middle of a check against a silent server: the usual exit status and
    no secret anywhere."""
    import time

    project, env = hygiene.project(Setup(host="silent"), "hyg-signal-" + SENTINEL[-6:])
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        proc = subprocess.Popen(
            cli_tree.python_argv("check", "--timeout", "20"),
            cwd=hygiene.folder,
            env=cli_environ(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # Signal once the check is waiting on the silent server (a socket is open), not while
        # Python itself is still starting, where no program can report a KeyboardInterrupt.
        deadline = time.monotonic() + 60
        while not _has_socket(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode in (code, -sig), (sig, proc.returncode, err)
        assert SENTINEL.encode() not in out + err
        assert b"Traceback" not in err
        assert (
            leaks(
                _result(proc.returncode, out, err),
                SENTINEL,
                roots=hygiene.roots(),
                project_file=project,
            )
            == []
        )
        tally("hygiene: command runs (each checked in stdout, stderr, argv, files)")


def _has_socket(pid: int) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                return True
        except OSError:
            continue
    return False


def _result(rc: int, out: bytes, err: bytes) -> Any:
    from tests.conftest import Result

    return Result(rc, out.decode(), err.decode(), [])
