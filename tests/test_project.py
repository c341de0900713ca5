"""The project file: golden-file edits, refusals that leave the file alone, safe writes, discovery.

Edits go through the real CLI (``python -m pgconnect`` subprocesses) and are checked byte by byte:
an edit changes exactly the line it must and leaves every other byte as it was.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgconnect import project
from pgconnect.errors import CommandError, ConfigError
from tests.conftest import Result, cli_environ, run_cli

# --------------------------------------------------------------------------- helpers


def lines(data: bytes) -> list[bytes]:
    """Split on b"\\n" only (bytes.splitlines also splits on a lone \\r), keeping the endings."""
    return [line for line in re.split(rb"(?<=\n)", data) if line]


def changes(before: bytes, after: bytes) -> list[tuple[str, list[bytes], list[bytes]]]:
    """The differing runs of lines: (tag, old lines, new lines) per run."""
    a, b = lines(before), lines(after)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    return [
        (tag, a[i1:i2], b[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    ]


def one_change(before: bytes, after: bytes) -> tuple[str, int, int]:
    """(tag, old line count, new line count) of the only differing run; fails on more runs."""
    diff = changes(before, after)
    assert len(diff) == 1, diff
    tag, old, new = diff[0]
    return tag, len(old), len(new)


def one_line_changed(before: bytes, after: bytes) -> tuple[bytes, bytes]:
    assert one_change(before, after) == ("replace", 1, 1), changes(before, after)
    _, old, new = changes(before, after)[0]
    return old[0], new[0]


def one_line_added(before: bytes, after: bytes) -> bytes:
    assert one_change(before, after) == ("insert", 0, 1), changes(before, after)
    return changes(before, after)[0][2][0]


def one_line_removed(before: bytes, after: bytes) -> bytes:
    assert one_change(before, after) == ("delete", 1, 0), changes(before, after)
    return changes(before, after)[0][1][0]


def all_crlf(data: bytes) -> bool:
    return data.count(b"\n") == data.count(b"\r\n") > 0


def toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


@contextlib.contextmanager
def unchanged(path: Path) -> Iterator[None]:
    """Assert PATH keeps its bytes, inode and mtime, and its folder gains no file."""
    before = path.read_bytes()
    st_before = os.stat(path)
    listing = sorted(os.listdir(path.parent))
    yield
    st_after = os.stat(path)
    assert path.read_bytes() == before
    assert (st_after.st_ino, st_after.st_mtime_ns) == (st_before.st_ino, st_before.st_mtime_ns)
    assert sorted(os.listdir(path.parent)) == listing


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_clean_failure(result: Result, code: int) -> None:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr, result
    assert len(error_lines(result)) == 1, result
    assert result.stdout == "", result


# --------------------------------------------------------------------------- golden file

GOLDEN = (
    b"# pgconnect project for billing: a top comment\r\n"
    b'name = "billing"  # inline comment on name\r\n'
    b'secrets = ["DB_PASSWORD"]\r\n'
    b"\r\n"
    b"# staging comes before [vars] on purpose\r\n"
    b"[env.staging.vars]  # comment on a table header\r\n"
    b"DB_HOST = 'staging.db.example.com'  # literal-quoted\r\n"
    b"DB_SSLROOTCERT = 'C:\\certs\\staging.crt'\r\n"
    b"\r\n"
    b"[vars]\r\n"
    b"# a comment inside a table\r\n"
    b'DB_HOST = "db.example.com"   # aligned comment\r\n'
    b"DB_PORT = 5432\r\n"
    b'DB_NAME = "billing"\r\n'
    b"DB_SSLMODE = 'verify-full'\r\n"
    b"\r\n"
    b"[env.prod]\r\n"
    b'vars = { DB_HOST = "prod.db.example.com", DB_NAME = "billing_prod" }  # inline table\r\n'
    b"\r\n"
    b"# trailing comment\r\n"
)


@pytest.fixture
def golden(isolated: Path) -> Path:
    path = isolated / "pgconnect.toml"
    path.write_bytes(GOLDEN)
    return path


def test_golden_file_is_read_as_written(golden: Path, cli: Any) -> None:
    r = cli("var", "list", "--json", "-e", "staging")
    assert r.returncode == 0, r
    assert r.stdout == (
        '{"DB_HOST": "staging.db.example.com", "DB_NAME": "billing", "DB_PORT": "5432", '
        '"DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": "C:\\\\certs\\\\staging.crt"}\n'
    )


@pytest.mark.parametrize(
    ("args", "old_line", "new_line"),
    [
        (
            ["DB_HOST", "new.example.com"],
            b'DB_HOST = "db.example.com"   # aligned comment\r\n',
            b'DB_HOST = "new.example.com"   # aligned comment\r\n',
        ),
        (
            ["-e", "staging", "DB_HOST", "s2.example.com"],
            b"DB_HOST = 'staging.db.example.com'  # literal-quoted\r\n",
            b"DB_HOST = 's2.example.com'  # literal-quoted\r\n",
        ),
        (  # a quote cannot go in a literal string: the value switches to a basic string
            ["-e", "staging", "DB_HOST", "it's.example.com"],
            b"DB_HOST = 'staging.db.example.com'  # literal-quoted\r\n",
            b'DB_HOST = "it\'s.example.com"  # literal-quoted\r\n',
        ),
        (
            ["DB_PORT", "6432"],
            b"DB_PORT = 5432\r\n",
            b'DB_PORT = "6432"\r\n',
        ),
        (
            ["DB_SSLMODE", "require"],
            b"DB_SSLMODE = 'verify-full'\r\n",
            b"DB_SSLMODE = 'require'\r\n",
        ),
        (  # into the inline table: it stays inline, on its one line
            ["-e", "prod", "DB_HOST", "p2.example.com"],
            b'vars = { DB_HOST = "prod.db.example.com", DB_NAME = "billing_prod" }'
            b"  # inline table\r\n",
            b'vars = { DB_HOST = "p2.example.com", DB_NAME = "billing_prod" }  # inline table\r\n',
        ),
    ],
)
def test_var_set_changes_exactly_one_line(
    golden: Path, cli: Any, args: list[str], old_line: bytes, new_line: bytes
) -> None:
    r = cli("var", "set", *args)
    assert r.returncode == 0, r
    after = golden.read_bytes()
    assert one_line_changed(GOLDEN, after) == (old_line, new_line)
    assert all_crlf(after)
    env = args[1] if args[0] == "-e" else None
    name, value = args[-2:]
    r = cli("var", "get", name, *(["-e", env] if env else []))
    assert (r.returncode, r.stdout) == (0, value + "\n"), r


def test_var_set_adds_exactly_one_line(golden: Path, cli: Any) -> None:
    r = cli("var", "set", "DB_APPLICATION_NAME", "billing-api")
    assert r.returncode == 0, r
    after = golden.read_bytes()
    assert one_line_added(GOLDEN, after) == b'DB_APPLICATION_NAME = "billing-api"\r\n'
    assert all_crlf(after)
    # It lands in [vars], after its last key.
    assert b"DB_SSLMODE = 'verify-full'\r\nDB_APPLICATION_NAME" in after
    assert toml(golden)["vars"]["DB_APPLICATION_NAME"] == "billing-api"


def test_var_set_adds_one_line_to_a_table_before_vars(golden: Path, cli: Any) -> None:
    r = cli("var", "set", "-e", "staging", "DB_PORT", "6543")
    assert r.returncode == 0, r
    after = golden.read_bytes()
    assert one_line_added(GOLDEN, after) == b'DB_PORT = "6543"\r\n'
    assert b'staging.crt\'\r\nDB_PORT = "6543"\r\n\r\n[vars]' in after
    data = toml(golden)
    assert data["env"]["staging"]["vars"]["DB_PORT"] == "6543"
    assert data["vars"]["DB_PORT"] == 5432


def test_var_set_adds_to_an_inline_table_on_its_line(golden: Path, cli: Any) -> None:
    r = cli("var", "set", "-e", "prod", "DB_PORT", "5433")
    assert r.returncode == 0, r
    old, new = one_line_changed(GOLDEN, golden.read_bytes())
    assert old.startswith(b"vars = {")
    assert new.startswith(b"vars = {")
    assert new.endswith(b"  # inline table\r\n")
    assert toml(golden)["env"]["prod"]["vars"] == {
        "DB_HOST": "prod.db.example.com",
        "DB_NAME": "billing_prod",
        "DB_PORT": "5433",
    }


@pytest.mark.parametrize(
    ("args", "removed"),
    [
        (["DB_NAME"], b'DB_NAME = "billing"\r\n'),
        (["DB_HOST"], b'DB_HOST = "db.example.com"   # aligned comment\r\n'),
        (["-e", "staging", "DB_SSLROOTCERT"], b"DB_SSLROOTCERT = 'C:\\certs\\staging.crt'\r\n"),
    ],
)
def test_var_unset_removes_exactly_one_line(
    golden: Path, cli: Any, args: list[str], removed: bytes
) -> None:
    r = cli("var", "unset", *args)
    assert r.returncode == 0, r
    after = golden.read_bytes()
    assert one_line_removed(GOLDEN, after) == removed
    assert all_crlf(after)


def test_var_unset_in_an_inline_table_changes_its_line(golden: Path, cli: Any) -> None:
    r = cli("var", "unset", "-e", "prod", "DB_NAME")
    assert r.returncode == 0, r
    one_line_changed(GOLDEN, golden.read_bytes())
    assert toml(golden)["env"]["prod"]["vars"] == {"DB_HOST": "prod.db.example.com"}


def test_var_set_env_new_creates_the_environment_at_the_end(golden: Path, cli: Any) -> None:
    r = cli("var", "set", "--env", "qa", "DB_HOST", "qa.example.com")
    assert r.returncode == 0, r
    after = golden.read_bytes()
    assert after.startswith(GOLDEN)  # nothing before it moved
    assert after[len(GOLDEN) :] == b'\r\n[env.qa.vars]\r\nDB_HOST = "qa.example.com"\r\n'
    r = cli("var", "list", "-e", "qa", "--json")
    assert r.stdout.startswith('{"DB_HOST": "qa.example.com", "DB_NAME": "billing"'), r


def test_nothing_is_written_when_the_value_is_already_set(golden: Path, cli: Any) -> None:
    with unchanged(golden):
        r = cli("var", "set", "DB_NAME", "billing")
    assert r.returncode == 0, r


# The brief's shape: an environment written as an inline table under [env].
INLINE_ENV = """name = "inline"
[vars]
DB_NAME = "app"

[env]
staging = { vars = { DB_HOST = "x" } }  # inline environment
"""


@pytest.mark.parametrize(
    ("args", "expected_vars"),
    [
        (["set", "-e", "staging", "DB_HOST", "y"], {"DB_HOST": "y"}),
        (["set", "-e", "staging", "DB_PORT", "5433"], {"DB_HOST": "x", "DB_PORT": "5433"}),
        (["unset", "-e", "staging", "DB_HOST"], {}),
    ],
)
def test_editing_into_an_inline_environment_keeps_it_inline(
    isolated: Path, cli: Any, args: list[str], expected_vars: dict[str, str]
) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text(INLINE_ENV)
    r = cli("var", *args)
    assert r.returncode == 0, r
    _old, new = one_line_changed(INLINE_ENV.encode(), path.read_bytes())
    assert new.startswith(b"staging = { vars = {")
    assert new.endswith(b"# inline environment\n")
    assert toml(path)["env"]["staging"]["vars"] == expected_vars


def test_a_new_environment_beside_an_inline_one_gets_its_own_table(
    isolated: Path, cli: Any
) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text(INLINE_ENV)
    r = cli("var", "set", "-e", "prod", "DB_HOST", "p")
    assert r.returncode == 0, r
    data = toml(path)
    assert data["env"] == {
        "staging": {"vars": {"DB_HOST": "x"}},
        "prod": {"vars": {"DB_HOST": "p"}},
    }
    assert path.read_text().startswith(INLINE_ENV)


def test_a_new_environment_inside_a_top_level_inline_env(isolated: Path, cli: Any) -> None:
    # env = { … } cannot take a [env.prod.vars] header: the new environment goes inside it.
    text = 'name = "i"\nenv = { staging = { vars = { DB_HOST = "x" } } }\n[vars]\nA = "1"\n'
    path = isolated / "pgconnect.toml"
    path.write_text(text)
    r = cli("var", "set", "-e", "prod", "DB_HOST", "p")
    assert r.returncode == 0, r
    _old, new = one_line_changed(text.encode(), path.read_bytes())
    assert new.startswith(b"env = {")
    assert toml(path)["env"]["prod"] == {"vars": {"DB_HOST": "p"}}


def test_a_new_environment_after_dotted_keys(isolated: Path, cli: Any) -> None:
    # tomlkit would put [env.new.vars] mid-file and capture the dotted keys that follow it.
    text = 'name = "d"\nenv.staging.vars.DB_HOST = "s"\nvars.A = "1"\n'
    path = isolated / "pgconnect.toml"
    path.write_text(text)
    r = cli("var", "set", "-e", "new", "DB_HOST", "n")
    assert r.returncode == 0, r
    assert toml(path) == {
        "name": "d",
        "env": {"staging": {"vars": {"DB_HOST": "s"}}, "new": {"vars": {"DB_HOST": "n"}}},
        "vars": {"A": "1"},
    }
    assert path.read_text().startswith(text)


def test_mixed_line_endings_keep_every_other_line(isolated: Path, cli: Any) -> None:
    before = b'name = "m"\r\n[vars]\nA = "1"\r\nB = "2"\n'
    path = isolated / "pgconnect.toml"
    path.write_bytes(before)
    assert cli("var", "set", "A", "x").returncode == 0
    assert one_line_changed(before, path.read_bytes()) == (b'A = "1"\r\n', b'A = "x"\r\n')


def test_a_file_without_a_final_newline(isolated: Path, cli: Any) -> None:
    path = isolated / "pgconnect.toml"
    path.write_bytes(b'name = "n"\n[vars]\nA = "1"')
    assert cli("var", "set", "B", "2").returncode == 0
    assert path.read_bytes() == b'name = "n"\n[vars]\nA = "1"\nB = "2"\n'


# --------------------------------------------------------------------------- invalid files

INVALID_FILES = [
    pytest.param(
        'name = "bad"\n[vars]\nDB_NAME = "n"\nDB_HOST = "unterminated\n',
        r"pgconnect\.toml:4:24: invalid TOML",
        id="syntax",
    ),
    pytest.param(
        'name = "bad"\n[vars]\nDB_NAME = "n"\nDB_HOST = "x"\nDB_HOST = "y"\n',
        r"pgconnect\.toml:5:\d+: invalid TOML",
        id="duplicate-key",
    ),
    pytest.param('name = "bad"\n[vars\n', r"pgconnect\.toml:2:6: invalid TOML", id="header"),
    pytest.param(
        '\ufeffname = "bad"\n', r"pgconnect\.toml:1:1: invalid TOML.*byte-order mark", id="bom"
    ),
    pytest.param(
        'name = "bad"\n[vars]\nDB_NAME = "n"\nDB_HOST = "x"\nDB_SSLMODE = "required"\n',
        r"pgconnect\.toml: \[vars\] DB_SSLMODE: 'required' is not one of",
        id="sslmode",
    ),
    pytest.param(
        'name = "bad"\n[vars]\nDB_NAME = "n"\nDB_HOST = "x"\nDB_PORT = "99999"\n',
        r"pgconnect\.toml: \[vars\] DB_PORT: '99999' is not a port number",
        id="port",
    ),
    pytest.param(
        'name = "bad"\n[vars]\nDB_NAME = "n"\nDB_HOST = "x"\n[env.staging.vars]\nDB_PORT = 99999\n',
        r"pgconnect\.toml: \[env\.staging\.vars\] DB_PORT: '99999' is not a port number",
        id="port-in-env",
    ),
    pytest.param(
        'name = "bad"\n[vars]\nDB_NAME = "n"\nDB_HOST = "x"\nDB_FOO = "1"\n',
        r"pgconnect\.toml: \[vars\] DB_FOO maps to no libpq connection keyword",
        id="db-foo",
    ),
    pytest.param(
        'name = "bad"\n[vars]\nDB_NAME = "n"\nDB_HOST = "a,b"\nDB_PORT = "1,2,3"\n',
        r"pgconnect\.toml: \[vars\] DB_PORT lists 3 ports for 2 hosts",
        id="port-list",
    ),
    pytest.param(
        'name = "bad"\n[vars]\nDB_NAME = "n"\nDB_HOST = "x\\u0000y"\n',
        r"pgconnect\.toml: \[vars\] DB_HOST: value contains a NUL byte",
        id="nul",
    ),
    pytest.param(
        'name = "bad"\n[vars]\nDB_NAME = "n"\nDB_HOST = true\n',
        r"pgconnect\.toml: \[vars\] DB_HOST: value must be a string",
        id="boolean",
    ),
    pytest.param(
        'name = "bad"\n[vars]\nDB_NAME = "n"\nlower = "x"\n',
        r"pgconnect\.toml: \[vars\] invalid variable name 'lower'",
        id="lowercase-name",
    ),
    pytest.param(
        'name = "bad"\nhost = "x"\n[vars]\nDB_NAME = "n"\n',
        r"pgconnect\.toml: unknown top-level key 'host'",
        id="unknown-top-level",
    ),
]

COMMANDS = [
    ["var", "list"],
    ["var", "list", "--json"],
    ["var", "get", "DB_NAME"],
    ["explain"],
    ["explain", "--json"],
    ["var", "set", "DB_NAME", "x"],
    ["var", "set", "--env", "new", "DB_NAME", "x"],
    ["var", "unset", "DB_NAME"],  # the file keeps its error without DB_NAME: nothing written
]


@pytest.mark.parametrize(("text", "message"), INVALID_FILES)
def test_an_invalid_file_is_exit_3_and_left_alone(
    isolated: Path, cli: Any, text: str, message: str
) -> None:
    path = isolated / "pgconnect.toml"
    path.write_bytes(text.encode())
    for args in COMMANDS:
        with unchanged(path):
            r = cli(*args)
        assert_clean_failure(r, 3)
        assert re.search(message, r.stderr), (args, r)
        assert str(path) in r.stderr


@pytest.mark.parametrize(
    ("text", "args", "fixed"),
    [
        (
            'name = "r"\n[vars]\nDB_SSLMODE = "required"\n',
            ["set", "DB_SSLMODE", "require"],
            {"DB_SSLMODE": "require"},
        ),
        ('name = "r"\n[vars]\nDB_PORT = 99999\n', ["set", "DB_PORT", "5432"], {"DB_PORT": "5432"}),
        ('name = "r"\n[vars]\nDB_FOO = "1"\nA = "2"\n', ["unset", "DB_FOO"], {"A": "2"}),
    ],
)
def test_setting_or_removing_the_bad_value_repairs_the_file(
    isolated: Path, cli: Any, text: str, args: list[str], fixed: dict[str, str]
) -> None:
    """An edit may start from a file holding an invalid value, if the result is valid."""
    path = isolated / "pgconnect.toml"
    path.write_text(text)
    r = cli("var", *args)
    assert r.returncode == 0, r
    assert toml(path)["vars"] == fixed
    assert cli("var", "list").returncode == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DB_SSLMODE", "required", "DB_SSLMODE: 'required' is not one of"),
        ("DB_SSLMODE", "VERIFY-FULL", "DB_SSLMODE: 'VERIFY-FULL' is not one of"),
        ("DB_PORT", "99999", "DB_PORT: '99999' is not a port number"),
        ("DB_PORT", "²", "DB_PORT: '²' is not a port number"),
        ("DB_FOO", "1", "DB_FOO maps to no libpq connection keyword"),
        ("db_host", "x", "invalid variable name 'db_host'"),
        ("DB_CONNECT_TIMEOUT", "soon", "DB_CONNECT_TIMEOUT: 'soon' is not an integer"),
        ("DB_PORT", "5432,5433", "DB_PORT lists 2 ports for 3 hosts"),
    ],
)
def test_var_set_of_an_invalid_value_is_exit_3_and_changes_nothing(
    isolated: Path, cli: Any, name: str, value: str, message: str
) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text('name = "v"\n[vars]\nDB_HOST = "a,b,c"\n')
    for env in ([], ["--env", "staging"]):
        with unchanged(path):
            r = cli("var", "set", *env, name, value)
        assert_clean_failure(r, 3)
        assert message in r.stderr, r


# --------------------------------------------------------------------------- concurrency


def test_twenty_concurrent_var_set_processes_all_land(isolated: Path) -> None:
    path = isolated / "pgconnect.toml"
    original = '# keep me\nname = "race"\n\n[vars]\nDB_NAME = "app"  # and me\n'
    path.write_text(original)
    argv = [sys.executable, "-m", "pgconnect", "var", "set"]
    env = cli_environ()
    procs = [
        subprocess.Popen(
            [*argv, f"KEY_{i:02d}", f"value {i}"],
            cwd=isolated,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(20)
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read() if p.stderr else b"") for p in procs]
    for p in procs:
        for stream in (p.stdout, p.stderr):
            if stream:
                stream.close()
    assert [rc for rc, _ in outcomes] == [0] * 20, outcomes
    data = toml(path)
    assert data["vars"] == {"DB_NAME": "app", **{f"KEY_{i:02d}": f"value {i}" for i in range(20)}}
    assert path.read_text().startswith(original.rstrip("\n"))
    assert os.listdir(isolated) == ["pgconnect.toml"]  # no temporary file left behind


# --------------------------------------------------------------------------- writes that never lose data


@pytest.mark.parametrize(
    "args",
    [
        ["var", "set", "DB_HOST", "x"],
        ["var", "set", "--env", "new", "DB_HOST", "x"],
        ["var", "unset", "DB_NAME"],
        ["init", "--force"],
    ],
)
def test_a_read_only_file_is_refused_and_left_alone(
    isolated: Path, cli: Any, args: list[str]
) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text('name = "ro"\n[vars]\nDB_NAME = "app"\n')
    path.chmod(0o444)
    with unchanged(path):
        r = cli(*args)
    assert_clean_failure(r, 1)
    assert error_lines(r) == [f"error: {path} is read-only (mode 0444); nothing was changed"]
    assert f"chmod u+w {path}" in r.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def _unprivileged() -> tuple[list[str], int, int] | None:
    """argv prefix, uid, gid to run a command as a user that file modes apply to."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        return None
    if not shutil.which("setpriv"):
        return None
    prefix = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
    # The dropped-to user must be able to run pgconnect from this checkout (a clone in a private
    # 0700 temp folder is out of its reach): try it rather than guess from modes.
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import pgconnect.cli"],
        env=cli_environ(),
        cwd="/",
        capture_output=True,
        timeout=60,
    )
    if probe.returncode != 0:
        return None
    return prefix, entry.pw_uid, entry.pw_gid


@pytest.mark.parametrize(
    ("folder_mode", "message"),
    [
        (0o555, "cannot write in {folder}: Permission denied; pgconnect.toml was not changed"),
        (0o333, "cannot lock {folder}: Permission denied; nothing was changed"),  # unlistable
    ],
)
def test_a_folder_we_cannot_write_is_a_clear_error_with_no_temporary_file(
    folder_mode: int, message: str
) -> None:
    who = _unprivileged()
    if who is None:
        pytest.skip(
            "running as root without a postgres user to drop to, or that user cannot reach "
            "this checkout and its interpreter"
        )
    prefix, uid, gid = who
    base = Path(tempfile.mkdtemp(prefix="pgconnect-rofolder-"))
    try:
        base.chmod(0o755)
        folder = base / "project"
        folder.mkdir()
        path = folder / "pgconnect.toml"
        path.write_text('name = "rofolder"\n[vars]\nDB_NAME = "app"\n')
        os.chown(folder, uid, gid)
        os.chown(path, uid, gid)
        path.chmod(0o644)  # the file is writable, the folder is not
        folder.chmod(folder_mode)
        with unchanged(path):
            proc = subprocess.run(
                [*prefix, sys.executable, "-m", "pgconnect", "var", "set", "DB_HOST", "x"],
                cwd=folder,
                env=cli_environ({"HOME": str(base)}),
                capture_output=True,
                text=True,
                timeout=60,
            )
        r = Result(proc.returncode, proc.stdout, proc.stderr, [])
        assert_clean_failure(r, 1)
        assert error_lines(r) == ["error: " + message.format(folder=folder)]
    finally:
        with contextlib.suppress(OSError):
            (base / "project").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_a_full_disk_is_a_clear_error_with_no_temporary_file(small_disk: Path) -> None:
    path = small_disk / "pgconnect.toml"
    path.write_text('name = "full"\n[vars]\nDB_NAME = "app"\n')
    with open(small_disk / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"x" * 4096)
    with pytest.raises(OSError, match="No space left on device") as info:
        (small_disk / "probe").write_bytes(b"x" * 4096)
    assert info.value.errno == errno.ENOSPC
    (small_disk / "probe").unlink(missing_ok=True)
    with unchanged(path):
        r = run_cli("var", "set", "DB_HOST", "x" * 8000, cwd=small_disk)
    assert_clean_failure(r, 1)
    assert error_lines(r) == [
        f"error: cannot write {path}: the disk is full; the file was not changed"
    ]


@pytest.mark.parametrize("mode", [0o640, 0o600, 0o664])
def test_the_file_mode_is_kept(isolated: Path, cli: Any, mode: int) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text('name = "mode"\n[vars]\n')
    path.chmod(mode)
    assert cli("var", "set", "DB_HOST", "x").returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_the_file_owner_is_kept_when_root_edits(isolated: Path, cli: Any) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text('name = "owner"\n[vars]\n')
    os.chown(path, 12345, 23456)
    assert cli("var", "set", "DB_HOST", "x").returncode == 0
    assert (path.stat().st_uid, path.stat().st_gid) == (12345, 23456)


def test_a_new_file_gets_the_umask_mode(isolated: Path) -> None:
    proc = subprocess.run(
        ["sh", "-c", f'umask 027 && exec "{sys.executable}" -m pgconnect init'],
        cwd=isolated,
        env=cli_environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((isolated / "pgconnect.toml").stat().st_mode) == 0o640


def test_a_symlinked_file_is_written_through_to_its_target(isolated: Path, cli: Any) -> None:
    shared = isolated / "shared"
    shared.mkdir()
    target = shared / "billing.toml"
    target.write_text('name = "linked"\n[vars]\nDB_NAME = "app"\n')
    target.chmod(0o640)
    project_dir = isolated / "project"
    project_dir.mkdir()
    link = project_dir / "pgconnect.toml"
    link.symlink_to(Path("..") / "shared" / "billing.toml")
    r = cli("var", "set", "DB_HOST", "x", cwd=project_dir)
    assert r.returncode == 0, r
    assert link.is_symlink()
    assert os.readlink(link) == str(Path("..") / "shared" / "billing.toml")
    assert toml(target)["vars"] == {"DB_NAME": "app", "DB_HOST": "x"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(os.listdir(project_dir)) == ["pgconnect.toml"]
    assert sorted(os.listdir(shared)) == ["billing.toml"]


def test_an_interrupted_write_leaves_the_file_and_no_temporary(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: the rename fails (as on a crash before it); the original survives whole."""
    path = isolated / "pgconnect.toml"
    path.write_text('name = "atomic"\n[vars]\nDB_NAME = "app"\n')
    before = path.read_bytes()

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", failing_replace)
    with (
        pytest.raises(CommandError, match="Input/output error; the file was not changed"),
        project.edit(path) as editor,
    ):
        editor.set_var("DB_HOST", "x", None)
    assert path.read_bytes() == before
    assert os.listdir(isolated) == ["pgconnect.toml"]


# --------------------------------------------------------------------------- discovery


def write(folder: Path, name: str, host: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pgconnect.toml"
    path.write_text(f'name = "{name}"\n[vars]\nDB_HOST = "{host}"\n')
    return path


def test_discovery_order(isolated: Path, cli: Any) -> None:
    top = write(isolated / "repo", "repo", "from-upwards")
    sub = isolated / "repo" / "src" / "deep"
    sub.mkdir(parents=True)
    other = write(isolated / "other", "other", "from-env")
    explicit = write(isolated / "explicit", "explicit", "from-option")

    def host(*args: str, env: dict[str, str] | None = None) -> str:
        r = cli("var", "get", "DB_HOST", *args, cwd=sub, env=env)
        assert r.returncode == 0, r
        return str(r.stdout.strip())

    assert host() == "from-upwards"  # nearest pgconnect.toml in a parent folder
    assert host(env={"PGCONNECT_CONFIG": str(other)}) == "from-env"
    assert host(env={"PGCONNECT_CONFIG": str(other.parent)}) == "from-env"  # a folder works
    assert host("--config", str(explicit)) == "from-option"
    assert host("--config", str(explicit.parent)) == "from-option"
    # --config wins over PGCONNECT_CONFIG, which wins over the search upwards.
    assert host("--config", str(explicit), env={"PGCONNECT_CONFIG": str(other)}) == "from-option"
    # The nearest file wins: one in the current folder shadows the parent's.
    write(sub, "deep", "from-here")
    assert host() == "from-here"
    assert top.exists()


def test_no_project_file_is_exit_3_with_the_init_hint(isolated: Path, cli: Any) -> None:
    for parent in (isolated, *isolated.parents):
        if (parent / "pgconnect.toml").exists():
            pytest.skip(f"a stray {parent / 'pgconnect.toml'} is on the way up")
    for args in (
        ["var", "list"],
        ["var", "set", "DB_HOST", "x"],
        ["explain"],
        ["var", "unset", "A"],
    ):
        r = cli(*args)
        assert_clean_failure(r, 3)
        assert f"error: no pgconnect.toml in {isolated} or any parent folder" in r.stderr
        assert "hint: create one with: pgconnect init" in r.stderr
    assert os.listdir(isolated) == []


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_named_file_that_does_not_exist_is_exit_3(isolated: Path, cli: Any, how: str) -> None:
    missing = isolated / "nowhere" / "pgconnect.toml"
    if how == "option":
        r = cli("var", "list", "--config", str(missing))
        origin = "--config"
    else:
        r = cli("var", "list", env={"PGCONNECT_CONFIG": str(missing)})
        origin = "PGCONNECT_CONFIG"
    assert_clean_failure(r, 3)
    assert f"error: {missing}: no such project file (from {origin})" in r.stderr
    assert "pgconnect init --config" in r.stderr


def test_find_in_process(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(isolated, "p", "h")
    (isolated / "a" / "b").mkdir(parents=True)
    assert project.find(cwd=isolated / "a" / "b") == path.resolve()
    assert project.find(str(isolated)) == path
    monkeypatch.setenv("PGCONNECT_CONFIG", str(path))
    assert project.find() == path
    monkeypatch.setenv("PGCONNECT_CONFIG", "")  # empty means unset
    assert project.find(cwd=isolated) == path.resolve()


# --------------------------------------------------------------------------- fuzzing the editor

FUZZ_BASE = """\
# fuzz base: comments everywhere
name = "fuzz"  # the name
secrets = ["DB_PASSWORD"]

[env.staging.vars]  # before [vars]
DB_HOST = 'staging.example.com'  # literal
LITERAL = 'C:\\path'

[vars]
# inside
DB_HOST = "db.example.com"  # trailing
DB_APPLICATION_NAME = 'app'
PLAIN = "plain value"

[env.prod]
vars = { DB_HOST = "prod.example.com" }  # inline
"""

names = st.one_of(
    st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True).filter(
        lambda n: not n.startswith("DB_")
    ),
    st.sampled_from(
        ["DB_HOST", "DB_APPLICATION_NAME", "DB_OPTIONS", "DB_NAME", "LITERAL", "PLAIN"]
    ),
)
values = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=30,
)
envs = st.sampled_from([None, "staging", "prod", "fresh"])


def _vars_of(data: dict[str, Any], env: str | None) -> dict[str, Any]:
    if env is None:
        return dict(data.get("vars", {}))
    return dict(data.get("env", {}).get(env, {}).get("vars", {}))


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=names, value=values, env=envs, crlf=st.booleans())
def test_fuzz_var_set_keeps_everything_else(
    name: str, value: str, env: str | None, crlf: bool
) -> None:
    base = FUZZ_BASE.replace("\n", "\r\n") if crlf else FUZZ_BASE
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pgconnect.toml"
        path.write_bytes(base.encode())
        before = tomllib.loads(base)
        with project.edit(path) as editor:
            editor.set_var(name, value, env)
        after_bytes = path.read_bytes()
        after = tomllib.loads(after_bytes.decode())
        assert os.listdir(folder) == ["pgconnect.toml"]

    # The key has the value; every other key of every table is unchanged.
    assert _vars_of(after, env)[name] == value
    expected = _vars_of(before, env)
    expected[name] = value
    assert _vars_of(after, env) == expected
    for other in [None, "staging", "prod", "fresh"]:
        if other != env:
            assert _vars_of(after, other) == _vars_of(before, other)
    assert {k: v for k, v in after.items() if k not in ("vars", "env")} == {
        k: v for k, v in before.items() if k not in ("vars", "env")
    }
    # The file reads back through pgconnect's own validating reader.
    project.parse(path, after_bytes)
    # Line endings kept; and outside a new table, one line changed or one added.
    if crlf:
        assert all_crlf(after_bytes)
    else:
        assert b"\r\n" not in after_bytes.replace(b"\\r", b"")
    if env != "fresh" and after_bytes != base.encode():
        assert one_change(base.encode(), after_bytes) in {("replace", 1, 1), ("insert", 0, 1)}


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, str, str, str | None]]:
    ops = []
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["set", "set", "unset"]))
        ops.append((op, draw(names), draw(values), draw(envs)))
    return ops


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=operations())
def test_fuzz_edit_sequences_match_a_model(ops: list[tuple[str, str, str, str | None]]) -> None:
    model: dict[str | None, dict[str, Any]] = {}
    base = tomllib.loads(FUZZ_BASE)
    for env in [None, "staging", "prod"]:
        model[env] = _vars_of(base, env)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pgconnect.toml"
        path.write_text(FUZZ_BASE)
        for op, name, value, env in ops:
            with project.edit(path) as editor:
                if op == "set":
                    editor.set_var(name, value, env)
                    model.setdefault(env, {})[name] = value
                else:
                    removed = editor.unset_var(name, env)
                    assert removed == (name in model.get(env, {}))
                    model.get(env, {}).pop(name, None)
            data = tomllib.loads(path.read_text())
            for e, expected in model.items():
                assert _vars_of(data, e) == expected
        assert data["name"] == "fuzz"
        assert data["secrets"] == ["DB_PASSWORD"]
        assert path.read_text().startswith("# fuzz base: comments everywhere\nname = ")


def test_set_var_rejects_bad_values_in_process(isolated: Path) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text('name = "p"\n')
    before = path.read_bytes()
    for name, value in [("DB_PORT", "0"), ("DB_PASSWORD", "pw"), ("DB_FOO", "x"), ("A", "\x00")]:
        with pytest.raises(ConfigError), project.edit(path) as editor:
            editor.set_var(name, value, None)
    assert path.read_bytes() == before
