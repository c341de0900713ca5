"""Secrets (docs/secrets.md): the ``secret`` commands against the real gnome-keyring Secret
Service, its failure modes (no D-Bus session, locked, dismissed prompt, hung daemon), the opt-in
file store, resolution through ``explain``, and the Secret type.

Every CLI call is a real subprocess. Secret values are sentinels that must never show up in
stdout or stderr, on success or failure.
"""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pgconnect.filestore import FileStore
from pgconnect.secret import Secret, service_name
from pgconnect.secretinput import BulkInputError, parse_bulk, strip_one_newline
from tests.conftest import (
    KeyringSession,
    Result,
    cli_environ,
    start_keyring_session,
    stop_keyring_session,
    write_project,
)

SENTINEL = "s3ntinel-Pw-7f3a"


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_hidden(result: Result, *values: str) -> None:
    for value in (SENTINEL, *values):
        assert value not in result.stdout, result
        assert value not in result.stderr, result


def declared(path: Path) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(path.read_text())


@pytest.fixture
def ks(keyring_session: KeyringSession) -> KeyringSession:
    return keyring_session


@pytest.fixture
def proj(isolated: Path) -> tuple[Path, str]:
    """A project with a unique name (the shared keyring outlives each test)."""
    name = unique()
    return write_project(isolated, f'name = "{name}"\n\n[vars]\nDB_HOST = "db.example.com"\n'), name


# --------------------------------------------------------------------------- unit: Secret & input


def test_secret_repr_and_str_are_masked() -> None:
    s = Secret(SENTINEL)
    shown = [
        repr(s),
        str(s),
        f"{s}",
        "%s" % s,  # noqa: UP031 - the old formatting path too
        "{}".format(s),  # noqa: UP032
        repr([s]),
        repr({"DB_PASSWORD": s}),
        repr((s,)),
    ]
    for text in shown:
        assert SENTINEL not in text
        assert "****" in text
    assert s.reveal() == SENTINEL
    assert s == Secret(SENTINEL)
    assert s != Secret("other")
    assert bool(s)
    assert not bool(Secret(""))


def test_secret_is_masked_inside_a_traceback() -> None:
    import traceback

    try:
        raise ValueError(Secret(SENTINEL))
    except ValueError as exc:
        text = "".join(traceback.format_exception(exc))
    assert SENTINEL not in text


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("pw\n", "pw"),
        ("pw\r\n", "pw"),
        ("pw\n\n", "pw\n"),
        ("pw\r\n\r\n", "pw\r\n"),
        ("pw", "pw"),
        ("pw\r", "pw\r"),
        (" pw \n", " pw "),
        ("\n", ""),
    ],
)
def test_strip_one_newline(raw: str, stored: str) -> None:
    assert strip_one_newline(raw) == stored


def test_service_names() -> None:
    assert service_name("billing", None) == "pgconnect:billing"
    assert service_name("billing", "staging") == "pgconnect:billing:staging"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"A": "1", "B": null}', {"A": "1", "B": None}),
        ('  \n{"DB_PASSWORD": "p w#x"}', {"DB_PASSWORD": "p w#x"}),
        ("A=1\nB=two words\n", {"A": "1", "B": "two words"}),
        ("# comment\n\nexport A=1\r\nB = 2 # trailing comment\n", {"A": "1", "B": "2"}),
        ("A=x#y\n", {"A": "x#y"}),
        ("A='single # \"kept\" \\n'\n", {"A": 'single # "kept" \\n'}),
        ('A="dq \\"x\\" \\n end" # c\n', {"A": 'dq "x" \n end'}),
        ("A==b=\n", {"A": "=b="}),
    ],
)
def test_parse_bulk(text: str, expected: dict[str, str | None]) -> None:
    assert parse_bulk(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        f'{{"A": "{SENTINEL}"',  # truncated JSON
        f'["{SENTINEL}"]',
        f'{{"A": "{SENTINEL}", "A": "{SENTINEL}"}}',
        '{"A": 5}',
        '{"A": ""}',
        f"{SENTINEL}\n",  # no '='
        f"A={SENTINEL}\nA={SENTINEL}\n",
        "A=\n",
        f"A='{SENTINEL}\n",
        f'A="{SENTINEL}\n',
        f"A='{SENTINEL}' junk\n",
    ],
)
def test_parse_bulk_refuses_bad_input_without_echoing_it(text: str) -> None:
    with pytest.raises(BulkInputError) as info:
        parse_bulk(text)
    assert SENTINEL not in str(info.value)


# --------------------------------------------------------------------------- put


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("pw\n", "pw"), ("pw\r\n", "pw"), ("pw\n\n", "pw\n"), ("pw", "pw")],
)
def test_put_from_stdin_strips_exactly_one_newline(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str], raw: str, stored: str
) -> None:
    path, name = proj
    result = cli("secret", "put", "DB_PASSWORD", input=raw, env=ks.environ())
    assert result.returncode == 0, result
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") == stored
    assert declared(path)["secrets"] == ["DB_PASSWORD"]


def test_put_keeps_value_out_of_output_and_file(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str]
) -> None:
    path, name = proj
    before = path.read_text()
    result = cli("secret", "put", "DB_PASSWORD", input=SENTINEL + "\n", env=ks.environ())
    assert result.returncode == 0, result
    assert_hidden(result)
    assert f"service pgconnect:{name}" in result.stderr
    assert result.stdout == ""
    text = path.read_text()
    assert SENTINEL not in text
    # Declared next to the name, the rest of the file (comments, [vars]) untouched.
    assert text == before.replace(
        f'name = "{name}"\n', f'name = "{name}"\nsecrets = ["DB_PASSWORD"]\n'
    )
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") == SENTINEL
    # The same name again: replaced, not duplicated.
    again = cli("secret", "put", "DB_PASSWORD", input="second\n", env=ks.environ())
    assert again.returncode == 0, again
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") == "second"
    assert declared(path)["secrets"] == ["DB_PASSWORD"]


def test_put_for_a_new_environment_uses_its_own_service(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str]
) -> None:
    path, name = proj
    result = cli(
        "secret", "put", "DB_PASSWORD", "--env", "staging", input=SENTINEL, env=ks.environ()
    )
    assert result.returncode == 0, result
    assert_hidden(result)
    assert ks.lookup(f"pgconnect:{name}:staging", "DB_PASSWORD") == SENTINEL
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") is None
    doc = declared(path)
    assert doc["env"]["staging"]["secrets"] == ["DB_PASSWORD"]
    assert "secrets" not in doc  # the base declares nothing
    # PGCONNECT_ENV selects the environment too.
    other = cli(
        "secret", "put", "API_TOKEN", input="tok", env={**ks.environ(), "PGCONNECT_ENV": "prod"}
    )
    assert other.returncode == 0, other
    assert ks.lookup(f"pgconnect:{name}:prod", "API_TOKEN") == "tok"


@pytest.mark.parametrize("raw", ["", "\n", "\r\n"])
def test_put_refuses_an_empty_value(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str], raw: str
) -> None:
    path, name = proj
    before = path.read_bytes()
    result = cli("secret", "put", "DB_PASSWORD", input=raw, env=ks.environ())
    assert result.returncode == 2, result
    assert "empty" in result.stderr
    assert path.read_bytes() == before
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") is None


@pytest.mark.parametrize(
    "extra", [[SENTINEL], [f"--value={SENTINEL}"], ["--value", SENTINEL], ["--", SENTINEL]]
)
def test_put_never_takes_the_value_as_an_argument(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str], extra: list[str]
) -> None:
    path, name = proj
    before = path.read_bytes()
    result = cli("secret", "put", "DB_PASSWORD", *extra, input="from-stdin", env=ks.environ())
    assert result.returncode == 2, result
    assert_hidden(result)
    assert "command line" in result.stderr
    assert path.read_bytes() == before
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") is None


def test_put_refuses_non_utf8_input(cli: Any, ks: KeyringSession, proj: tuple[Path, str]) -> None:
    result = cli("secret", "put", "DB_PASSWORD", input=b"\xff\xfepw", env=ks.environ())
    assert result.returncode == 2, result
    assert "UTF-8" in result.stderr


@pytest.mark.parametrize(
    ("name", "code"), [("db_password", 3), ("DB_NOPE", 3), ("DB_HOST", 3), ("1X", 3)]
)
def test_put_refuses_bad_or_conflicting_names(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str], name: str, code: int
) -> None:
    path, _ = proj
    before = path.read_bytes()
    result = cli("secret", "put", name, input=SENTINEL, env=ks.environ())
    assert result.returncode == code, result
    assert_hidden(result)
    assert path.read_bytes() == before


def test_put_refuses_a_name_set_in_an_environments_vars(
    cli: Any, ks: KeyringSession, isolated: Path
) -> None:
    name = unique()
    write_project(isolated, f'name = "{name}"\n[env.ci.vars]\nAPI_TOKEN = "abc"\n')
    result = cli("secret", "put", "API_TOKEN", input=SENTINEL, env=ks.environ())
    assert result.returncode == 3, result
    assert "var unset API_TOKEN --env ci" in result.stderr
    assert_hidden(result)


def test_put_without_a_project_file_is_a_config_error(cli: Any, ks: KeyringSession) -> None:
    result = cli("secret", "put", "DB_PASSWORD", input=SENTINEL, env=ks.environ())
    assert result.returncode == 3, result
    assert_hidden(result)


# --------------------------------------------------------------------------- list / delete / bulk


def test_list_shows_declared_secrets_and_whether_set(
    cli: Any, ks: KeyringSession, isolated: Path
) -> None:
    name = unique()
    path = write_project(
        isolated,
        f'name = "{name}"\nsecrets = ["DB_PASSWORD", "API_TOKEN"]\n'
        '[env.staging]\nsecrets = ["DB_PASSWORD"]\n',
    )
    assert cli("secret", "put", "DB_PASSWORD", input=SENTINEL, env=ks.environ()).returncode == 0
    put = cli("secret", "put", "DB_PASSWORD", "-e", "staging", input="s2", env=ks.environ())
    assert put.returncode == 0, put
    result = cli("secret", "list", "--env", "staging", "--json", env=ks.environ())
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == [
        {"name": "DB_PASSWORD", "env": "staging", "set": True, "store": "keyring"},
        {"name": "DB_PASSWORD", "env": None, "set": True, "store": "keyring"},
        {"name": "API_TOKEN", "env": None, "set": False, "store": "keyring"},
    ]
    assert_hidden(result, "s2")
    base = cli("secret", "list", env=ks.environ())
    assert base.returncode == 0, base
    assert base.stdout.splitlines() == [
        f"DB_PASSWORD  set      keyring:pgconnect:{name}",
        f"API_TOKEN    not set  keyring:pgconnect:{name}",
    ]
    assert_hidden(base)
    assert SENTINEL not in path.read_text()


def test_list_with_nothing_declared(cli: Any, ks: KeyringSession, proj: tuple[Path, str]) -> None:
    result = cli("secret", "list", "--json")  # no keyring needed when nothing is declared
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result
    text = cli("secret", "list")
    assert text.returncode == 0
    assert "no secrets declared" in text.stderr


def test_list_unknown_environment_is_a_config_error(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str]
) -> None:
    result = cli("secret", "list", "--env", "nope", env=ks.environ())
    assert result.returncode == 3, result


def test_delete_without_terminal_needs_yes(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str]
) -> None:
    path, name = proj
    assert cli("secret", "put", "DB_PASSWORD", input=SENTINEL, env=ks.environ()).returncode == 0
    before = path.read_bytes()
    refused = cli("secret", "delete", "DB_PASSWORD", env=ks.environ())
    assert refused.returncode == 2, refused
    assert "--yes" in refused.stderr
    assert_hidden(refused)
    assert path.read_bytes() == before
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") == SENTINEL

    done = cli("secret", "delete", "DB_PASSWORD", "--yes", env=ks.environ())
    assert done.returncode == 0, done
    assert_hidden(done)
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") is None
    assert declared(path).get("secrets") == []


def test_delete_environment_secret_keeps_the_base_one(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str]
) -> None:
    path, name = proj
    env = ks.environ()
    assert cli("secret", "put", "DB_PASSWORD", input="base", env=env).returncode == 0
    assert cli("secret", "put", "DB_PASSWORD", "-e", "ci", input="ci", env=env).returncode == 0
    result = cli("secret", "delete", "DB_PASSWORD", "-e", "ci", "-y", env=env)
    assert result.returncode == 0, result
    assert ks.lookup(f"pgconnect:{name}:ci", "DB_PASSWORD") is None
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") == "base"
    doc = declared(path)
    assert doc["secrets"] == ["DB_PASSWORD"]
    assert doc["env"]["ci"]["secrets"] == []


def test_delete_unknown_secret_is_a_config_error(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str]
) -> None:
    result = cli("secret", "delete", "API_TOKEN", "--yes", env=ks.environ())
    assert result.returncode == 3, result


def test_bulk_json_sets_and_null_deletes(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str], isolated: Path
) -> None:
    path, name = proj
    env = ks.environ()
    assert cli("secret", "put", "OLD_TOKEN", input="old", env=env).returncode == 0
    doc = {"DB_PASSWORD": SENTINEL, "API_TOKEN": "tok\nwith newline", "OLD_TOKEN": None}
    (isolated / "s.json").write_text(json.dumps(doc))
    result = cli("secret", "bulk", "s.json", env=env)
    assert result.returncode == 0, result
    assert_hidden(result, "with newline")
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") == SENTINEL
    assert ks.lookup(f"pgconnect:{name}", "API_TOKEN") == "tok\nwith newline"
    assert ks.lookup(f"pgconnect:{name}", "OLD_TOKEN") is None
    assert declared(path)["secrets"] == ["DB_PASSWORD", "API_TOKEN"]
    assert SENTINEL not in path.read_text()


def test_bulk_null_for_a_declared_but_unset_or_unknown_secret(
    cli: Any, ks: KeyringSession, isolated: Path
) -> None:
    name = unique()
    path = write_project(isolated, f'name = "{name}"\nsecrets = ["API_TOKEN"]\n')
    result = cli("secret", "bulk", input='{"API_TOKEN": null, "NEVER": null}', env=ks.environ())
    assert result.returncode == 0, result
    assert "removed the declaration of API_TOKEN" in result.stderr
    assert "NEVER was neither set nor declared" in result.stderr
    assert declared(path)["secrets"] == []


def test_bulk_dotenv_from_stdin_for_an_environment(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str]
) -> None:
    path, name = proj
    dotenv = (
        "# staging secrets\r\n"
        f"export DB_PASSWORD='{SENTINEL}'\r\n"
        'API_TOKEN="a \\"quoted\\" token"\r\n'
        "PLAIN=bare value # comment\r\n"
    )
    result = cli("secret", "bulk", "-", "--env", "staging", input=dotenv, env=ks.environ())
    assert result.returncode == 0, result
    assert_hidden(result)
    svc = f"pgconnect:{name}:staging"
    assert ks.lookup(svc, "DB_PASSWORD") == SENTINEL
    assert ks.lookup(svc, "API_TOKEN") == 'a "quoted" token'
    assert ks.lookup(svc, "PLAIN") == "bare value"
    assert declared(path)["env"]["staging"]["secrets"] == ["DB_PASSWORD", "API_TOKEN", "PLAIN"]


def test_bulk_dry_run_changes_nothing(cli: Any, ks: KeyringSession, proj: tuple[Path, str]) -> None:
    path, name = proj
    env = ks.environ()
    assert cli("secret", "put", "OLD_TOKEN", input="old", env=env).returncode == 0
    before = path.read_bytes()
    doc = json.dumps({"DB_PASSWORD": SENTINEL, "OLD_TOKEN": None})
    result = cli("secret", "bulk", "--dry-run", input=doc, env=env)
    assert result.returncode == 0, result
    assert_hidden(result)
    assert result.stdout.splitlines() == [
        f"would set     DB_PASSWORD  (pgconnect:{name})",
        f"would delete  OLD_TOKEN    (pgconnect:{name})",
    ]
    assert path.read_bytes() == before
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") is None
    assert ks.lookup(f"pgconnect:{name}", "OLD_TOKEN") == "old"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (f'{{"DB_PASSWORD": "{SENTINEL}"', 2),
        (f'{{"DB_PASSWORD": "{SENTINEL}", "N": 1}}', 2),
        (f"DB_PASSWORD={SENTINEL}\nthis line is {SENTINEL}\n", 2),
        ("", 2),
        (f'{{"db_password": "{SENTINEL}"}}', 3),
        (f'{{"DB_PASSWORD": "{SENTINEL}", "DB_HOST": "{SENTINEL}"}}', 3),
    ],
)
def test_bulk_bad_input_changes_nothing(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str], text: str, code: int
) -> None:
    path, name = proj
    before = path.read_bytes()
    result = cli("secret", "bulk", input=text, env=ks.environ())
    assert result.returncode == code, result
    assert_hidden(result)
    assert path.read_bytes() == before
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") is None


def test_bulk_missing_file(cli: Any, ks: KeyringSession, proj: tuple[Path, str]) -> None:
    result = cli("secret", "bulk", "nope.json", env=ks.environ())
    assert result.returncode == 2, result
    assert "nope.json" in result.stderr


# ------------------------------------------------------------------- resolution (docs/sources.md)


def explain(cli: Any, *args: str, env: Mapping[str, str]) -> tuple[dict[str, Any], Result]:
    result = cli("explain", "--json", *args, env=env)
    assert result.returncode == 0, result
    assert_hidden(result, "base-pw", "env-pw", "from-env")
    return {p["name"]: p for p in json.loads(result.stdout)["params"]}, result


def test_explain_sources_environment_then_env_secret_then_base_secret(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str]
) -> None:
    _, name = proj
    env = ks.environ()
    assert cli("secret", "put", "DB_PASSWORD", input="base-pw", env=env).returncode == 0
    assert cli("secret", "put", "DB_USERNAME", input="base-user", env=env).returncode == 0
    staging = cli("secret", "put", "DB_PASSWORD", "-e", "staging", input="env-pw", env=env)
    assert staging.returncode == 0, staging

    base, _ = explain(cli, env=env)
    assert base["DB_PASSWORD"]["source"] == f"secret:pgconnect:{name}"
    assert base["DB_PASSWORD"]["value"] == "****"
    assert base["DB_HOST"]["source"] == "file:[vars]"

    stg, _ = explain(cli, "--env", "staging", env=env)
    assert stg["DB_PASSWORD"]["source"] == f"secret:pgconnect:{name}:staging"
    assert stg["DB_PASSWORD"]["value"] == "****"
    # Inherited from the base when the environment has none of its own.
    assert stg["DB_USERNAME"]["source"] == f"secret:pgconnect:{name}"
    assert stg["DB_USERNAME"]["value"] == "****"

    over, _ = explain(cli, "--env", "staging", env={**env, "DB_PASSWORD": "from-env"})
    assert over["DB_PASSWORD"]["source"] == "environment"
    assert over["DB_PASSWORD"]["value"] == "****"


def test_explain_environment_variable_needs_no_keyring(cli: Any, isolated: Path) -> None:
    name = unique()
    write_project(isolated, f'name = "{name}"\nsecrets = ["DB_PASSWORD"]\n')
    # No D-Bus session at all: the value from the environment is enough (docs/sources.md; CI).
    result = cli("explain", "--json", env={"DB_PASSWORD": SENTINEL})
    assert result.returncode == 0, result
    assert_hidden(result)
    params = {p["name"]: p for p in json.loads(result.stdout)["params"]}
    assert params["DB_PASSWORD"] == {
        "keyword": "password",
        "name": "DB_PASSWORD",
        "value": "****",
        "source": "environment",
    }


def test_declared_but_unset_secret_is_a_warning(
    cli: Any, ks: KeyringSession, isolated: Path
) -> None:
    name = unique()
    write_project(isolated, f'name = "{name}"\nsecrets = ["DB_PASSWORD"]\n')
    result = cli("explain", env=ks.environ())
    assert result.returncode == 0, result
    assert "warning: declared secret DB_PASSWORD is not set" in result.stderr
    assert "pgconnect secret put DB_PASSWORD" in result.stderr
    assert "password" not in result.stdout


# --------------------------------------------------------------------------- failures (exit 4)


def files_containing(folder: Path, needle: str) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle.encode() in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


@pytest.mark.parametrize(
    "args",
    [
        ("secret", "put", "DB_PASSWORD"),
        ("secret", "delete", "DB_PASSWORD", "--yes"),
        ("secret", "bulk", "-"),
        # secret list and explain need no value: tests/test_headless.py
    ],
)
def test_no_dbus_session_is_exit_4_naming_the_options(
    cli: Any, isolated: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    name = unique()
    path = write_project(isolated, f'name = "{name}"\nsecrets = ["DB_PASSWORD"]\n')
    before = path.read_bytes()
    assert "DBUS_SESSION_BUS_ADDRESS" not in cli_environ()
    stdin = json.dumps({"API_TOKEN": SENTINEL}) if args[1:2] == ("bulk",) else SENTINEL
    result = cli(*args, input=stdin + "\n")
    assert result.returncode == 4, result
    assert_hidden(result)
    assert "no OS keyring is available" in result.stderr
    assert "D-Bus" in result.stderr
    for option in (
        "hint: pgconnect keyring shell",
        "in the environment",
        "PGCONNECT_SECRET_STORE=file",
    ):
        assert option in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_bytes() == before
    assert files_containing(Path(os.environ["HOME"]), SENTINEL) == []
    assert files_containing(tmp_path, SENTINEL) == []


def test_dbus_session_without_secret_service_is_exit_4(cli: Any, proj: tuple[Path, str]) -> None:
    # A bus address nobody listens on: keyring finds no Secret Service (and nothing else).
    env = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/pgconnect-bus"}
    result = cli("secret", "put", "DB_PASSWORD", input=SENTINEL, env=env)
    assert result.returncode == 4, result
    assert "no Secret Service" in result.stderr
    assert "PGCONNECT_SECRET_STORE=file" in result.stderr
    assert_hidden(result)
    assert files_containing(Path(os.environ["HOME"]), SENTINEL) == []


def test_keyring_backend_disabled_by_keyring_config_is_exit_4(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str]
) -> None:
    env = {**ks.environ(), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    result = cli("secret", "put", "DB_PASSWORD", input=SENTINEL, env=env)
    assert result.returncode == 4, result
    assert "disabled" in result.stderr
    assert "PYTHON_KEYRING_BACKEND" in result.stderr
    assert_hidden(result)


def test_keyring_backend_chosen_by_the_user_is_honoured(
    cli: Any, ks: KeyringSession, proj: tuple[Path, str]
) -> None:
    _, name = proj
    env = {**ks.environ(), "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring"}
    result = cli("secret", "put", "DB_PASSWORD", input=SENTINEL, env=env)
    assert result.returncode == 0, result
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") == SENTINEL


def test_unknown_store_choice_is_exit_4(cli: Any, proj: tuple[Path, str]) -> None:
    result = cli("secret", "put", "X", input=SENTINEL, env={"PGCONNECT_SECRET_STORE": "plain"})
    assert result.returncode == 4, result
    assert "PGCONNECT_SECRET_STORE=file" in result.stderr


@dataclass
class Private:
    session: KeyringSession
    env: dict[str, str]


@pytest.fixture
def private_keyring(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Private]:
    """A keyring daemon of this test's own, to lock or to stop."""
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    session = start_keyring_session(tmp_path_factory.mktemp("private-keyring"))
    try:
        yield Private(session, session.environ())
    finally:
        stop_keyring_session(session)


def lock_login_collection(session: KeyringSession) -> None:
    """Lock the default collection through the Secret Service API (org.freedesktop.Secret.Service
    .Lock), as the desktop does on screen lock; ``secret-tool lock`` crashes on some versions."""
    import secretstorage

    old = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = session.address
    try:
        conn = secretstorage.dbus_init()
        try:
            collection = secretstorage.get_default_collection(conn)
            collection.lock()
            assert collection.is_locked()
        finally:
            conn.close()
    finally:
        if old is None:
            del os.environ["DBUS_SESSION_BUS_ADDRESS"]
        else:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = old


@pytest.mark.parametrize(
    "args",
    [("secret", "put", "DB_PASSWORD"), ("secret", "list"), ("explain",)],
)
def test_locked_collection_is_exit_4_locked(
    cli: Any, private_keyring: Private, isolated: Path, args: tuple[str, ...]
) -> None:
    """secret put needs the keyring: exit 4. secret list and explain need no value: they say
    the keyring is locked in a warning and show the secret as unknown (tests/test_headless.py)."""
    name = unique()
    path = write_project(isolated, f'name = "{name}"\nsecrets = ["DB_PASSWORD"]\n')
    stored = cli("secret", "put", "DB_PASSWORD", input="old-value", env=private_keyring.env)
    assert stored.returncode == 0, stored
    before = path.read_bytes()
    lock_login_collection(private_keyring.session)

    result = cli(*args, input=SENTINEL, env=private_keyring.env)
    needs_value = args[:2] == ("secret", "put")
    assert result.returncode == (4 if needs_value else 0), result
    assert "the keyring is locked" in result.stderr
    assert "unlock" in result.stderr
    if not needs_value:
        assert result.stderr.startswith("warning: the keyring is locked"), result
        assert "unknown" in result.stdout or "?" in result.stdout, result
    assert_hidden(result, "old-value")
    assert path.read_bytes() == before


def test_dismissed_unlock_prompt_is_exit_4_dismissed(
    cli: Any, private_keyring: Private, proj: tuple[Path, str]
) -> None:
    # With a display, gnome-keyring is asked to prompt; the prompt cannot be shown on this fake
    # display, and gnome-keyring reports it dismissed, exactly as when a user closes it.
    lock_login_collection(private_keyring.session)
    env = {**private_keyring.env, "DISPLAY": ":97"}
    result = cli("secret", "put", "DB_PASSWORD", input=SENTINEL, env=env, timeout=90)
    assert result.returncode == 4, result
    assert "unlock prompt was dismissed" in result.stderr
    assert_hidden(result)


def test_a_secret_is_read_without_keyring_or_its_cryptography(
    cli: Any, private_keyring: Private, isolated: Path
) -> None:
    """Every command that connects reads the password first. On Linux it is read from the
    Secret Service directly (one D-Bus connection, a plain session on the user's own bus), not
    through keyring (its imports, three connections and a Diffie-Hellman session cost ~100 ms):
    the value keyring stored, non-ASCII included, and a missing one is missing."""
    from tests.test_startup import run_and_list_imports

    name = unique()
    write_project(
        isolated,
        f'name = "{name}"\nsecrets = ["DB_PASSWORD"]\n[vars]\nDB_HOST = "db.example.com"\n',
    )
    value = "p@ss wörd:/?" + SENTINEL
    stored = cli("secret", "put", "DB_PASSWORD", input=value, env=private_keyring.env)
    assert stored.returncode == 0, stored
    proc, imported = run_and_list_imports(["url", "--reveal"], isolated, private_keyring.env)
    assert proc.returncode == 0, proc
    assert "p%40ss%20w%C3%B6rd%3A%2F%3F" + SENTINEL in proc.stdout, proc
    assert not {"keyring", "secretstorage", "cryptography"} & set(imported), imported

    write_project(  # a project whose password was never stored
        isolated,
        f'name = "{unique()}"\nsecrets = ["DB_PASSWORD"]\n[vars]\nDB_HOST = "db.example.com"\n',
    )
    proc, imported = run_and_list_imports(["url", "--reveal"], isolated, private_keyring.env)
    assert proc.returncode == 0, proc
    assert "DB_PASSWORD" in proc.stderr, proc
    assert SENTINEL not in proc.stdout + proc.stderr, proc
    assert "keyring" not in imported, imported


@pytest.mark.parametrize("args", [("secret", "put", "DB_PASSWORD"), ("explain",)])
def test_stopped_keyring_daemon_times_out_with_exit_4(
    cli: Any, private_keyring: Private, isolated: Path, args: tuple[str, ...]
) -> None:
    name = unique()
    path = write_project(isolated, f'name = "{name}"\nsecrets = ["DB_PASSWORD"]\n')
    before = path.read_bytes()
    daemon = private_keyring.session.daemon
    assert daemon is not None
    os.kill(daemon.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        result = cli(*args, input=SENTINEL, env=private_keyring.env, timeout=60)
        elapsed = time.monotonic() - start
    finally:
        os.kill(daemon.pid, signal.SIGCONT)
    # explain needs no value: a warning, the password shown as "?" (one deadline, not one per
    # secret); secret put needs the keyring: exit 4.
    assert result.returncode == (0 if args == ("explain",) else 4), result
    assert "did not answer within 5 s" in result.stderr
    assert elapsed < 10, elapsed
    assert_hidden(result)
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- the file store


def store_file() -> Path:
    return Path(os.environ["HOME"]) / ".local" / "share" / "pgconnect" / "secrets.json"


FILE_STORE = {"PGCONNECT_SECRET_STORE": "file"}


def test_file_store_is_opt_in_0600_and_warns(cli: Any, proj: tuple[Path, str]) -> None:
    _, name = proj
    result = cli("secret", "put", "DB_PASSWORD", input=SENTINEL + "\n", env=FILE_STORE)
    assert result.returncode == 0, result
    assert_hidden(result)
    assert "warning: using the plaintext file store" in result.stderr
    path = store_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {f"pgconnect:{name}": {"DB_PASSWORD": SENTINEL}}

    listed = cli("secret", "list", "--json", env=FILE_STORE)
    assert listed.returncode == 0, listed
    assert json.loads(listed.stdout) == [
        {"name": "DB_PASSWORD", "env": None, "set": True, "store": "file"}
    ]
    assert "warning: using the plaintext file store" in listed.stderr

    explained = cli("explain", "--json", env=FILE_STORE)
    assert explained.returncode == 0, explained
    assert_hidden(explained)
    params = {p["name"]: p for p in json.loads(explained.stdout)["params"]}
    assert params["DB_PASSWORD"]["source"] == f"secret:pgconnect:{name}"

    deleted = cli("secret", "delete", "DB_PASSWORD", "--yes", env=FILE_STORE)
    assert deleted.returncode == 0, deleted
    assert SENTINEL not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_file_store_readable_by_others_is_refused(
    cli: Any, proj: tuple[Path, str], mode: int
) -> None:
    assert cli("secret", "put", "DB_PASSWORD", input=SENTINEL, env=FILE_STORE).returncode == 0
    path = store_file()
    path.chmod(mode)
    for args in (("explain",), ("secret", "list"), ("secret", "put", "API_TOKEN")):
        result = cli(*args, input="other", env=FILE_STORE)
        assert result.returncode == 4, result
        assert f"mode {mode:04o}" in result.stderr
        assert f"chmod 600 {path}" in result.stderr
        assert_hidden(result)
    assert "API_TOKEN" not in path.read_text()  # nothing was written into it


def test_file_store_refuses_a_symlink(cli: Any, proj: tuple[Path, str], tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    target.chmod(0o600)
    path = store_file()
    path.parent.mkdir(parents=True)
    path.symlink_to(target)
    result = cli("secret", "put", "DB_PASSWORD", input=SENTINEL, env=FILE_STORE)
    assert result.returncode == 4, result
    assert_hidden(result)
    assert target.read_text() == "{}"


def test_file_store_creates_with_o_excl_and_0600_under_any_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = FileStore(tmp_path / "d" / "secrets.json")
        store.set("pgconnect:x", "A", Secret(SENTINEL))
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert store.get("pgconnect:x", "A") == Secret(SENTINEL)
    assert store.delete("pgconnect:x", "A") is True
    assert store.delete("pgconnect:x", "A") is False
    assert list(store.path.parent.iterdir()) == [store.path]  # no temporary files left


# --------------------------------------------------------------------------- on a terminal


def run_in_pty(
    args: list[str],
    env: Mapping[str, str],
    cwd: Path,
    answers: list[tuple[str, str]],
    timeout: float = 60,
) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its controlling terminal and stdin/stdout/stderr;
    type each answer once its prompt has appeared. Returns (exit status, everything shown)."""
    argv = [sys.executable, "-m", "pgconnect", *args]
    full_env = cli_environ(env)
    pid, fd = os.forkpty()
    if pid == 0:  # the child: exec at once
        try:
            os.chdir(cwd)
            os.execve(sys.executable, argv, full_env)  # noqa: S606 - no shell wanted
        finally:
            os._exit(127)
    shown = b""
    seen = 0
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if pending and pending[0][0].encode() in shown[seen:]:
                seen = len(shown)
                os.write(fd, pending.pop(0)[1].encode())
        else:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"no exit within {timeout} s; shown so far: {shown!r}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", "replace")


def test_put_on_a_terminal_asks_twice_with_hidden_input(
    ks: KeyringSession, proj: tuple[Path, str], isolated: Path
) -> None:
    _, name = proj
    code, shown = run_in_pty(
        ["secret", "put", "DB_PASSWORD"],
        ks.environ(),
        isolated,
        [("Value for DB_PASSWORD", SENTINEL + "\n"), ("Repeat", SENTINEL + "\n")],
    )
    assert code == 0, shown
    assert SENTINEL not in shown  # never echoed
    assert "Repeat the value for DB_PASSWORD" in shown
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") == SENTINEL


def test_put_on_a_terminal_refuses_different_answers(
    ks: KeyringSession, proj: tuple[Path, str], isolated: Path
) -> None:
    path, name = proj
    before = path.read_bytes()
    code, shown = run_in_pty(
        ["secret", "put", "DB_PASSWORD"],
        ks.environ(),
        isolated,
        [("Value for", SENTINEL + "\n"), ("Repeat", SENTINEL + "x\n")],
    )
    assert code == 2, shown
    assert "the two values differ" in shown
    assert SENTINEL not in shown
    assert ks.lookup(f"pgconnect:{name}", "DB_PASSWORD") is None
    assert path.read_bytes() == before


@pytest.mark.parametrize(("answer", "code"), [("n\n", 1), ("\n", 1), ("y\n", 0)])
def test_delete_on_a_terminal_asks(
    ks: KeyringSession, proj: tuple[Path, str], isolated: Path, answer: str, code: int
) -> None:
    path, name = proj
    put = run_in_pty(
        ["secret", "put", "DB_PASSWORD"],
        ks.environ(),
        isolated,
        [("Value for", SENTINEL + "\n"), ("Repeat", SENTINEL + "\n")],
    )
    assert put[0] == 0, put
    status, shown = run_in_pty(
        ["secret", "delete", "DB_PASSWORD"], ks.environ(), isolated, [("[y/N]", answer)]
    )
    assert status == code, shown
    assert f"Delete DB_PASSWORD from the keyring (service pgconnect:{name})" in shown
    assert SENTINEL not in shown
    still = ks.lookup(f"pgconnect:{name}", "DB_PASSWORD")
    if code == 0:
        assert still is None
        assert declared(path)["secrets"] == []
    else:
        assert still == SENTINEL
        assert declared(path)["secrets"] == ["DB_PASSWORD"]
