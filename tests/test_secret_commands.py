"""Secrets kept elsewhere: a command prints the value; presets make cloud tokens (docs/secret-commands.md).

Everything here runs the real CLI as a subprocess against the suite's real servers, with real
commands (the scripts in tests/secret_scripts, and the real AWS CLI for the RDS IAM preset).
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pgconnect import approval, secret_command
from pgconnect import project as projectfile
from pgconnect.errors import ConfigError
from tests.conftest import REPO, Servers, cli_environ, project_for, write_project

SCRIPTS = REPO / "tests" / "secret_scripts"
FROM_FILE = str(SCRIPTS / "from-file")


def _value_file(folder: Path, value: str) -> Path:
    path = folder / "vault-item"
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


def _runs(value_file: Path) -> int:
    runs = Path(f"{value_file}.runs")
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def _approvals() -> Path:
    return approval.path()


# --------------------------------------------------------------------------- against a server


def test_a_command_supplies_the_password_for_check_query_url_and_exec(
    servers: Servers, cli: Any, isolated: Path
) -> None:
    server = servers.tls_on
    project_for(server, isolated)
    item = _value_file(isolated.parent, server.password)
    put = cli("secret", "put", "DB_PASSWORD", "--command", f"{FROM_FILE} {item}")
    assert put.returncode == 0, put
    assert "approved on this machine" in put.stderr
    text = (isolated / "pgconnect.toml").read_text()
    assert f'DB_PASSWORD = ["{FROM_FILE}", "{item}"]' in text
    assert 'secrets = ["DB_PASSWORD"]' in text
    assert server.password not in text

    # explain and a masked url never run it
    explain = cli("explain", "--json")
    assert explain.returncode == 0, explain
    password = next(p for p in json.loads(explain.stdout)["params"] if p["keyword"] == "password")
    assert password == {
        "keyword": "password",
        "name": "DB_PASSWORD",
        "value": "****",
        "source": f"command:{FROM_FILE}",
    }
    assert cli("url").returncode == 0
    assert _runs(item) == 0

    check = cli("check", "--json")
    assert check.returncode == 0, check
    assert json.loads(check.stdout)["results"][0]["ok"] is True

    query = cli("query", "select current_user")
    assert query.returncode == 0, query
    assert query.stdout == f"{server.user}\n"

    url = cli("url", "--reveal", "--format", "json")
    assert url.returncode == 0, url
    assert json.loads(url.stdout)["password"] == server.password

    child = cli("exec", "--", "psql", "-Atc", "select 'via exec ' || current_user")
    assert child.returncode == 0, child
    assert child.stdout == f"via exec {server.user}\n"

    # Run each time it was needed, once per command: never cached anywhere.
    assert _runs(item) == 4
    for result in (check, query, url, child):
        assert server.password not in result.stderr


def test_shell_metacharacters_in_the_command_never_run(cli: Any, isolated: Path) -> None:
    project_for_host(isolated)
    item = _value_file(isolated.parent, "pw-meta-1234")
    tricks = [
        "; touch MARKER1",
        "&& touch MARKER2",
        "| touch MARKER3",
        "$(touch MARKER4)",
        "`touch MARKER5`",
        "> MARKER6",
    ]
    put = cli("secret", "put", "DB_PASSWORD", "--command", f"{FROM_FILE} {item} {' '.join(tricks)}")
    assert put.returncode == 0, put
    assert "runs without a shell" in put.stderr
    url = cli("url", "--reveal", "--format", "json")
    assert url.returncode == 0, url
    assert json.loads(url.stdout)["password"] == "pw-meta-1234"
    assert _runs(item) == 1
    for folder in (isolated, isolated.parent, SCRIPTS):
        assert not [p.name for p in folder.iterdir() if p.name.startswith("MARKER")]


def project_for_host(folder: Path, *extra: str, sslmode: str = "prefer") -> Path:
    lines = [
        'name = "cmd"',
        "[vars]",
        'DB_HOST = "127.0.0.1"',
        'DB_PORT = "5433"',
        'DB_USERNAME = "app"',
        'DB_NAME = "app"',
        f'DB_SSLMODE = "{sslmode}"',
        *extra,
    ]
    return write_project(folder, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- approval


def _write_repo_project(folder: Path, item: Path) -> Path:
    text = "\n".join(
        [
            'name = "shared"',
            'secrets = ["DB_PASSWORD"]',
            "[vars]",
            'DB_HOST = "127.0.0.1"',
            'DB_USERNAME = "app"',
            "[secret_commands]",
            f'DB_PASSWORD = ["{FROM_FILE}", "{item}", "--vault", "prod"]',
        ]
    )
    return write_project(folder, text + "\n")


def test_a_command_from_the_repository_runs_only_after_secret_allow(
    cli: Any, isolated: Path, tmp_path: Path
) -> None:
    item = _value_file(tmp_path, "pw-approved-9876")
    _write_repo_project(isolated, item)

    refused = cli("url", "--reveal")
    assert refused.returncode == 4, refused
    assert "has not been approved on this machine; it was not run" in refused.stderr
    assert "hint: read it, then approve it: pgconnect secret allow\n" in refused.stderr
    assert _runs(item) == 0
    listed = json.loads(cli("secret", "list", "--json").stdout)
    assert listed == [
        {
            "name": "DB_PASSWORD",
            "env": None,
            "set": True,
            "store": "command",
            "approved": False,
            "command": [FROM_FILE, str(item), "--vault", "prod"],
            "preset": None,
        }
    ]

    allowed = cli("secret", "allow")
    assert allowed.returncode == 0, allowed
    assert f"{FROM_FILE} {item} --vault prod" in allowed.stderr
    assert "approved 1 command" in allowed.stderr
    assert _runs(item) == 0  # approving shows the command, it does not run it
    mode = stat.S_IMODE(os.stat(_approvals()).st_mode)
    assert mode == 0o600
    assert "pw-approved" not in _approvals().read_text()

    ok = cli("url", "--reveal", "--format", "json")
    assert ok.returncode == 0, ok
    assert json.loads(ok.stdout)["password"] == "pw-approved-9876"
    assert _runs(item) == 1
    assert "approved" in cli("secret", "list").stdout
    assert json.loads(cli("secret", "list", "--json").stdout)[0]["approved"] is True

    # The same project copied elsewhere: not approved there, and not run.
    copy = tmp_path / "copy"
    shutil.copytree(isolated, copy)
    moved = cli("url", "--reveal", cwd=copy)
    assert moved.returncode == 4, moved
    assert "not for this one" in moved.stderr
    assert _runs(item) == 1

    # One word of the command changed (in the original place): refused, not run.
    path = isolated / "pgconnect.toml"
    path.write_text(path.read_text().replace('"prod"', '"prod2"'))
    changed = cli("url", "--reveal")
    assert changed.returncode == 4, changed
    assert "changed" in changed.stderr
    assert "it was not run" in changed.stderr
    assert _runs(item) == 1

    # From another folder, the hint names the file.
    elsewhere = cli("url", "--reveal", "--config", str(path), cwd=tmp_path)
    assert elsewhere.returncode == 4
    assert f"pgconnect secret allow --config {path}" in elsewhere.stderr


def test_a_changed_script_needs_approving_again(cli: Any, isolated: Path) -> None:
    script = isolated / "get-password"
    script.write_text("#!/bin/sh\necho pw-script-1111\n")
    script.chmod(0o755)
    project_for_host(isolated)
    assert cli("secret", "put", "DB_PASSWORD", "--command", "./get-password").returncode == 0
    sub = isolated / "sub"
    sub.mkdir()
    # Relative to the project's folder, from any subfolder.
    first = cli("url", "--reveal", "--format", "json", cwd=sub)
    assert first.returncode == 0, first
    assert json.loads(first.stdout)["password"] == "pw-script-1111"
    script.write_text("#!/bin/sh\ntouch RAN\necho pw-script-2222\n")
    again = cli("url", "--reveal")
    assert again.returncode == 4, again
    assert not (isolated / "RAN").exists()


def test_secret_allow_for_an_environment_and_one_name(cli: Any, isolated: Path) -> None:
    text = "\n".join(
        [
            'name = "envs"',
            "[vars]",
            'DB_HOST = "127.0.0.1"',
            "[env.prod]",
            'secrets = ["DB_PASSWORD", "API_TOKEN"]',
            "[env.prod.secret_commands]",
            'DB_PASSWORD = ["echo", "pw-prod-4242"]',
            'API_TOKEN = { command = ["echo", "tok"], timeout = 5 }',
        ]
    )
    write_project(isolated, text + "\n")
    refused = cli("url", "--reveal", "--env", "prod")
    assert refused.returncode == 4
    assert "pgconnect secret allow --env prod" in refused.stderr
    assert "[env.prod.secret_commands]" in refused.stderr
    unknown = cli("secret", "allow", "--env", "prod", "NOPE")
    assert unknown.returncode == 3, unknown
    one = cli("secret", "allow", "--env", "prod", "DB_PASSWORD")
    assert one.returncode == 0, one
    assert "API_TOKEN" not in one.stderr
    ok = cli("url", "--reveal", "--env", "prod", "--format", "json")
    assert ok.returncode == 0, ok
    assert json.loads(ok.stdout)["password"] == "pw-prod-4242"
    rows = {r["name"]: r for r in json.loads(cli("secret", "list", "-e", "prod", "--json").stdout)}
    assert rows["DB_PASSWORD"]["approved"] is True
    assert rows["API_TOKEN"]["approved"] is False
    # The base has no such command: not approved for the base.
    assert cli("url", "--reveal").returncode == 0  # the base declares nothing


def test_an_approvals_file_others_can_write_is_refused(cli: Any, isolated: Path) -> None:
    project_for_host(isolated)
    assert cli("secret", "put", "DB_PASSWORD", "--command", "echo pw-x-5555").returncode == 0
    _approvals().chmod(0o622)
    result = cli("url", "--reveal")
    assert result.returncode == 4, result
    assert f"chmod 600 {_approvals()}" in result.stderr


# --------------------------------------------------------------------------- failures


def test_a_hanging_command_is_killed_at_its_deadline_with_everything_it_started(
    cli: Any, isolated: Path, tmp_path: Path
) -> None:
    project_for_host(isolated)
    pids = tmp_path / "pids"
    sentinel = "sentinel-partial-" + os.urandom(6).hex()
    put = cli(
        "secret",
        "put",
        "DB_PASSWORD",
        "--command",
        f"{SCRIPTS / 'hang'} {pids} {_value_file(tmp_path, sentinel)}",
        "--timeout",
        "1.5",
    )
    assert put.returncode == 0, put
    assert "timeout = 1.5" in (isolated / "pgconnect.toml").read_text()
    started = time.monotonic()
    result = cli("url", "--reveal", timeout=30)
    took = time.monotonic() - started
    assert result.returncode == 4, result
    assert "did not finish within 1.5 s and was stopped" in result.stderr
    assert took < 10, took
    assert sentinel not in result.output
    assert "still working on ****" in result.stderr  # its last stderr line, redacted
    leader, helper = (int(p) for p in pids.read_text().split())
    for pid in (leader, helper):
        assert not _alive(pid), f"process {pid} outlived the deadline"


def test_sigterm_to_pgconnect_stops_the_command_too(
    cli: Any, isolated: Path, tmp_path: Path
) -> None:
    import signal
    import subprocess

    project_for_host(isolated)
    pids = tmp_path / "pids"
    command = f"{SCRIPTS / 'hang'} {pids} {_value_file(tmp_path, 'pw-term-3131')}"
    assert cli("secret", "put", "DB_PASSWORD", "--command", command).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgconnect", "url", "--reveal"],
        env=cli_environ(),
        cwd=isolated,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pids.exists(), "the command never started"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err
    assert b"pw-term-3131" not in out + err
    time.sleep(0.2)
    for pid in (int(p) for p in pids.read_text().split()):
        assert not _alive(pid), f"process {pid} outlived pgconnect"


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.split(")")[-1].split()[0] != "Z"  # a zombie is gone, waiting to be reaped


def test_a_failing_command_shows_its_last_stderr_line_redacted(cli: Any, isolated: Path) -> None:
    project_for_host(isolated)
    sentinel = "sentinel-fail-" + os.urandom(6).hex()
    item = _value_file(isolated.parent, sentinel)
    put = cli("secret", "put", "DB_PASSWORD", "--command", f"{SCRIPTS / 'fail'} {item}")
    assert put.returncode == 0, put
    for args in (("url", "--reveal"), ("check",), ("query", "select 1"), ("exec", "--", "true")):
        # --debug: the traceback it adds is redacted too.
        result = cli(args[0], "--debug", *args[1:])
        assert result.returncode == 4, result
        assert "failed (exit status 3): error: could not finish, value was ****" in result.stderr
        assert "Traceback" in result.stderr
        assert sentinel not in result.output


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("true", "printed nothing on its standard output"),
        ("printf '\\n'", "printed nothing on its standard output"),
        ("no-such-program-pgconnect", "no-such-program-pgconnect: command not found"),
        ("false", "failed (exit status 1) (it wrote nothing on stderr)"),
    ],
)
def test_a_command_that_gives_no_value_is_exit_4(
    cli: Any, isolated: Path, command: str, message: str
) -> None:
    project_for_host(isolated)
    assert cli("secret", "put", "DB_PASSWORD", "--command", command).returncode == 0
    result = cli("url", "--reveal")
    assert result.returncode == 4, result
    assert message in result.stderr


def test_one_trailing_newline_is_removed_and_no_more(cli: Any, isolated: Path) -> None:
    project_for_host(isolated)
    assert cli("secret", "put", "DB_PASSWORD", "--command", "printf 'a b \\n\\n'").returncode == 0
    result = cli("url", "--reveal", "--format", "json")
    assert json.loads(result.stdout)["password"] == "a b \n"


def test_the_command_does_not_read_the_sql_on_stdin(
    servers: Servers, cli: Any, isolated: Path
) -> None:
    server = servers.tls_on
    project_for(server, isolated)
    item = _value_file(isolated.parent, server.password)
    # `cat` would swallow the SQL if it got pgconnect's stdin; it gets /dev/null.
    script = isolated / "pw"
    script.write_text(f"#!/bin/sh\ncat\ncat {item}\n")
    script.chmod(0o755)
    assert cli("secret", "put", "DB_PASSWORD", "--command", "./pw").returncode == 0
    result = cli("query", input="select 'from stdin'")
    assert result.returncode == 0, result
    assert result.stdout == "from stdin\n"


def test_on_a_terminal_the_command_can_ask_and_ctrl_c_stops_it(isolated: Path) -> None:
    """stdin and stderr are the terminal, and the command is its foreground job (a password
    manager's unlock prompt works; Ctrl-C reaches the command, and pgconnect exits 130)."""
    project_for_host(isolated)
    env = cli_environ()
    argv = [sys.executable, "-m", "pgconnect"]
    import subprocess

    put = subprocess.run(
        [*argv, "secret", "put", "DB_PASSWORD", "--command", str(SCRIPTS / "ask")],
        env=env,
        cwd=isolated,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    assert put.returncode == 0, put
    status, output = _in_terminal([*argv, "url", "--reveal"], env, isolated, b"open-sesame\n")
    assert status == 0, output
    assert b"unlock passphrase: " in output
    assert b"postgresql://app:value-after-open-sesame@" in output
    status, output = _in_terminal([*argv, "url", "--reveal"], env, isolated, b"\x03")
    assert status == 130, output


def _in_terminal(
    argv: list[str], env: dict[str, str], cwd: Path, answer: bytes
) -> tuple[int, bytes]:
    """Run ARGV on a new pseudo-terminal that is its controlling terminal (as in a login shell);
    type ANSWER once the command asks."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(cwd)
        os.execve(argv[0], argv, env)  # noqa: S606 - the CLI itself, no shell
    output = b""
    answered = False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                output += data
            if not answered and b"unlock passphrase:" in output:
                os.write(fd, answer)
                answered = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output


# --------------------------------------------------------------------------- the file and the CLI


def test_put_a_value_replaces_the_command_and_delete_removes_both(cli: Any, isolated: Path) -> None:
    project_for_host(isolated)
    path = isolated / "pgconnect.toml"
    file_store = {"PGCONNECT_SECRET_STORE": "file"}
    assert cli("secret", "put", "DB_PASSWORD", "--command", "echo pw-cmd-7777").returncode == 0
    stored = cli("secret", "put", "DB_PASSWORD", input="pw-stored-8888\n", env=file_store)
    assert stored.returncode == 0, stored
    assert "replaced DB_PASSWORD's command in [secret_commands]" in stored.stderr
    assert "pw-cmd-7777" not in path.read_text()
    url = cli("url", "--reveal", "--format", "json", env=file_store)
    assert json.loads(url.stdout)["password"] == "pw-stored-8888"

    assert cli("secret", "put", "API_TOKEN", "--command", "echo tok-1").returncode == 0
    assert 'API_TOKEN = ["echo", "tok-1"]' in path.read_text()
    deleted = cli("secret", "delete", "API_TOKEN", "--yes")
    assert deleted.returncode == 0, deleted
    text = path.read_text()
    assert "API_TOKEN" not in text
    projectfile.load(path)


def test_put_command_usage_errors(cli: Any, isolated: Path) -> None:
    project_for_host(isolated)
    cases = [
        (("--command", "op read 'x"), 2, "No closing quotation"),
        (("--command", ""), 2, "the command is empty"),
        (("--command", "op", "--aws-rds-iam"), 2, "cannot be combined"),
        (("--region", "eu-west-1"), 2, "--region goes with --aws-rds-iam"),
        (("--timeout", "5"), 2, "--timeout goes with --command"),
        (("--command", "op read", "--timeout", "0"), 2, "timeout must be above 0"),
        (("--aws-rds-iam", "--region", "moon"), 2, "not an AWS region name"),
    ]
    before = (isolated / "pgconnect.toml").read_bytes()
    for args, code, message in cases:
        result = cli("secret", "put", "DB_PASSWORD", *args)
        assert result.returncode == code, (args, result)
        assert message in result.stderr, (args, result)
    token = cli("secret", "put", "API_TOKEN", "--gcp-cloudsql-iam")
    assert token.returncode == 2, token
    assert "bind it to DB_PASSWORD" in token.stderr
    loose = cli("secret", "put", "DB_PASSWORD", "--command", "op", "read", "x")
    assert loose.returncode == 2
    assert "quote the whole command" in loose.stderr
    assert (isolated / "pgconnect.toml").read_bytes() == before


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('DB_PASSWORD = "op read x"', "must be a list of words"),
        ("DB_PASSWORD = []", "the command is empty"),
        ("DB_PASSWORD = [1, 2]", "must be a list of strings"),
        ('DB_PASSWORD = { command = ["a"], preset = "azure-entra" }', "exactly one of"),
        ('DB_PASSWORD = { preset = "oracle" }', "unknown preset 'oracle'"),
        ('DB_PASSWORD = { command = ["a"], timeout = -1 }', "timeout must be above 0"),
        ('DB_PASSWORD = { command = ["a"], shell = true }', "unknown key 'shell'"),
        ('DB_PASSWORD = { preset = "azure-entra", region = "eu-west-1" }', "aws-rds-iam preset"),
        ('OTHER = ["a"]', "OTHER has a command but is not declared in secrets"),
    ],
)
def test_the_file_s_secret_commands_are_validated(table: str, message: str, tmp_path: Path) -> None:
    text = f'name = "v"\nsecrets = ["DB_PASSWORD"]\n[secret_commands]\n{table}\n'
    with pytest.raises(ConfigError) as caught:
        projectfile.parse(tmp_path / "pgconnect.toml", text.encode())
    assert message in caught.value.message
    assert "[secret_commands]" in caught.value.message


def test_presets_build_their_command_from_the_connection() -> None:
    spec = secret_command.CommandSpec(preset="aws-rds-iam")
    built = spec.build(
        {"host": "db1.abc123.eu-west-3.rds.amazonaws.com", "port": None, "user": "iam"}
    )
    assert built == [
        "aws",
        "rds",
        "generate-db-auth-token",
        "--hostname",
        "db1.abc123.eu-west-3.rds.amazonaws.com",
        "--port",
        "5432",
        "--username",
        "iam",
        "--region",
        "eu-west-3",
    ]
    with pytest.raises(ConfigError, match="one TCP host"):
        spec.build({"host": "a,b", "port": "5432", "user": "u"})
    with pytest.raises(ConfigError, match="DB_USERNAME"):
        spec.build({"host": "h", "port": "5432", "user": None})
    gcp = secret_command.CommandSpec(preset="gcp-cloudsql-iam")
    assert gcp.build({"host": "10.0.0.3", "port": "5432", "user": "me@example.com"}) == [
        "gcloud",
        "sql",
        "generate-login-token",
    ]


def test_a_token_needs_tls(cli: Any, isolated: Path) -> None:
    project_for_host(isolated, sslmode="prefer")
    assert cli("secret", "put", "DB_PASSWORD", "--azure-entra").returncode == 0
    for args in (("url", "--reveal"), ("check",), ("exec", "--", "true"), ("explain",)):
        result = cli(*args)
        assert result.returncode == 3, (args, result)
        assert "needs TLS, but the effective sslmode is prefer (file:[vars])" in result.stderr
        assert "pgconnect var set DB_SSLMODE verify-full" in result.stderr


# --------------------------------------------------------------------------- the real AWS CLI


@pytest.fixture
def aws_env(tmp_path: Path) -> dict[str, str]:
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip("the AWS CLI is not installed (pip install -e '.[dev]' installs awscli)")
    empty = tmp_path / "aws-empty-config"
    empty.write_text("")
    temp = tmp_path / "tmp"
    temp.mkdir(mode=0o700)
    return {
        "PATH": f"{aws.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "TMPDIR": str(temp),
        "XDG_RUNTIME_DIR": "",
    }


CHILD = """
import json, os, stat, sys
passfile = os.environ["PGPASSFILE"]
line = open(passfile).read().splitlines()[0]
token = line.split(":", 4)[4].replace("\\\\:", ":").replace("\\\\\\\\", "\\\\")
# The signature: hex, the same in every encoding (a passfile escapes ':' and '\\').
needle = token.rsplit("X-Amz-Signature=", 1)[1].encode()
found = []
for top in sys.argv[1:]:
    for folder, _, names in os.walk(top):
        for name in names:
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as f:
                    if needle in f.read():
                        found.append(path)
            except OSError:
                pass
print(json.dumps({"token": token, "passfile": passfile,
                  "mode": stat.S_IMODE(os.stat(passfile).st_mode), "found": found}))
"""


def test_aws_rds_iam_token_from_the_real_aws_cli(
    servers: Servers, cli: Any, isolated: Path, tmp_path: Path, aws_env: dict[str, str]
) -> None:
    server = servers.tls_on
    project_for(server, isolated, sslmode="verify-full")
    put = cli("secret", "put", "DB_PASSWORD", "--aws-rds-iam", "--region", "eu-west-1", env=aws_env)
    assert put.returncode == 0, put
    text = (isolated / "pgconnect.toml").read_text()
    assert 'DB_PASSWORD = {preset = "aws-rds-iam", region = "eu-west-1"}' in text

    url = cli("url", "--reveal", "--format", "json", env=aws_env)
    assert url.returncode == 0, url
    token = json.loads(url.stdout)["password"]
    prefix = f"{server.host}:{server.port}/?Action=connect&DBUser={server.user}"
    assert token.startswith(prefix), token
    assert "X-Amz-Signature=" in token
    assert "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE" in token
    assert "eu-west-1%2Frds-db%2Faws4_request" in token

    tokens = []
    for i in range(2):
        if i:
            time.sleep(1.1)  # the signature covers X-Amz-Date, to the second
        child = cli("exec", "--", sys.executable, "-c", CHILD, str(tmp_path), env=aws_env)
        assert child.returncode == 0, child
        seen = json.loads(child.stdout)
        assert seen["token"].startswith(prefix)
        assert seen["mode"] == 0o600
        # The token is in no file under the test's folders (home, data, project, temp) but the
        # passfile.
        assert seen["found"] == [seen["passfile"]], seen
        assert not Path(seen["passfile"]).exists()  # removed when the child ended
        tokens.append(seen["token"])
    assert tokens[0] != tokens[1]
    listed = json.loads(cli("secret", "list", "--json").stdout)
    assert listed[0]["preset"] == "aws-rds-iam"
    assert listed[0]["approved"] is True
    explained = cli("explain", "--json", env=aws_env)
    source = next(p for p in json.loads(explained.stdout)["params"] if p["keyword"] == "password")
    assert source["source"] == "command:aws"


def test_check_never_sends_a_token_without_tls(
    servers: Servers, cli: Any, isolated: Path, aws_env: dict[str, str]
) -> None:
    server = servers.tls_on
    project_for(server, isolated, sslmode="verify-full")
    assert (
        cli("secret", "put", "DB_PASSWORD", "--aws-rds-iam", "--region", "us-east-1").returncode
        == 0
    )
    weak = cli("check", "--sslmode", "prefer", env=aws_env)
    assert weak.returncode == 3, weak
    assert "does not send it under sslmode=prefer" in weak.stderr
    every = cli("check", "--sslmode", "all", "--json", env=aws_env)
    # The token is no password for the test server: the login is refused (exit 7) under the
    # modes that were probed, and only those.
    assert every.returncode == 7, every
    modes = [r["sslmode"] for r in json.loads(every.stdout)["results"]]
    assert modes == ["require", "verify-ca", "verify-full"]
    assert "not probing disable, allow, prefer" in every.stderr


def test_gcloud_and_az_presets_run_their_cli_with_the_documented_arguments(
    cli: Any, isolated: Path, tmp_path: Path
) -> None:
    """Stand-ins for gcloud and az on PATH (the real ones need an account): each records its
    arguments and prints a token, which becomes the password."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("gcloud", "az"):
        script = bin_dir / program
        script.write_text(
            f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/{program}.args\necho {program}-token-77\n'
        )
        script.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    project_for_host(isolated, sslmode="require")
    expected = {
        "gcloud": (["--gcp-cloudsql-iam"], ["sql", "generate-login-token"]),
        "az": (
            ["--azure-entra"],
            [
                "account",
                "get-access-token",
                "--resource-type",
                "oss-rdbms",
                "--query",
                "accessToken",
                "-o",
                "tsv",
            ],
        ),
    }
    for program, (flags, args) in expected.items():
        put = cli("secret", "put", "DB_PASSWORD", *flags, env=env)
        assert put.returncode == 0, put
        url = cli("url", "--reveal", "--format", "json", env=env)
        assert url.returncode == 0, url
        assert json.loads(url.stdout)["password"] == f"{program}-token-77"
        assert (tmp_path / f"{program}.args").read_text().splitlines() == args
        explained = json.loads(cli("explain", "--json", env=env).stdout)
        password = next(p for p in explained["params"] if p["keyword"] == "password")
        assert password["source"] == f"command:{program}"


def test_the_library_never_gives_the_command_the_terminal(isolated: Path) -> None:
    """resolve() without terminal=True (every library caller): stdin is /dev/null, stderr is
    captured, whatever pgconnect's own are."""
    from pgconnect.resolve import resolve

    path = project_for_host(
        isolated,
        "[secret_commands]",
        'DB_PASSWORD = ["sh", "-c", "readlink /proc/$$/fd/0; echo on-stderr >&2"]',
    )
    text = path.read_text().replace('name = "cmd"', 'name = "cmd"\nsecrets = ["DB_PASSWORD"]')
    path.write_text(text)
    project = projectfile.load(path)
    spec = project.command_for("DB_PASSWORD", None)
    assert spec is not None
    approval.approve([approval.subject(path, None, "DB_PASSWORD", spec.template())])
    resolution = resolve(project, None, None, environ={})
    assert resolution.get("password") == "/dev/null"
