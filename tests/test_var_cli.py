"""``pgconnect init``, ``var set|get|list|unset`` and ``explain`` as a user's shell runs them.

Every test runs the CLI as a real subprocess (the ``cli`` fixture) in a temporary folder with the
PG*/DB_*/PGCONNECT_* environment cleared.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, cli_environ

SENTINEL = "s3ntinel-Pa55word"


def ok(result: Result) -> Result:
    assert result.returncode == 0, result
    return result


def fails(result: Result, code: int = 3) -> Result:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr, result
    assert result.stdout == "", result
    return result


def no_sentinel(result: Result) -> None:
    assert SENTINEL not in result.stdout, result
    assert SENTINEL not in result.stderr, result


# --------------------------------------------------------------------------- the "done when" check


def test_init_set_list_behaves_as_the_spec_says(isolated: Path, cli: Any) -> None:
    """`pgconnect init && pgconnect var set DB_HOST db.example.com && pgconnect var list`."""
    bindir = Path(sys.executable).parent
    # The installed console script when there is one, else the module, as a shell sees it.
    define = (
        "" if (bindir / "pgconnect").exists() else 'pgconnect() { python -m pgconnect "$@"; }; '
    )
    script = "pgconnect init && pgconnect var set DB_HOST db.example.com && pgconnect var list"
    proc = subprocess.run(
        ["sh", "-c", define + script],
        cwd=isolated,
        env={**cli_environ(), "PATH": f"{bindir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "DB_HOST  db.example.com  (file:[vars])\n"
    path = isolated / "pgconnect.toml"
    assert proc.stderr.splitlines() == [
        f"wrote {path} (project 'work')",
        f"set DB_HOST in [vars] of {path}",
    ]
    data = tomllib.loads(path.read_text())
    assert data == {"name": "work", "secrets": [], "vars": {"DB_HOST": "db.example.com"}}
    assert path.read_text().startswith("# pgconnect project file")  # the comments survive
    explained = json.loads(ok(cli("explain", "--json")).stdout)
    assert explained == {
        "env": None,
        "params": [
            {
                "keyword": "host",
                "name": "DB_HOST",
                "value": "db.example.com",
                "source": "file:[vars]",
            },
            {"keyword": "sslmode", "name": "DB_SSLMODE", "value": "require", "source": "default"},
        ],
    }


# --------------------------------------------------------------------------- init


def test_init_writes_a_file_that_parses_and_refuses_to_overwrite(isolated: Path, cli: Any) -> None:
    folder = isolated / "My Project (v2)!"
    folder.mkdir()
    ok(cli("init", cwd=folder))
    path = folder / "pgconnect.toml"
    data = tomllib.loads(path.read_text())
    assert data["name"] == "My-Project-v2"  # the folder's name, made a valid project name
    assert data["secrets"] == []
    assert data["vars"] == {}
    assert ok(cli("var", "list", cwd=folder)).stdout == ""

    ok(cli("var", "set", "DB_HOST", "kept", cwd=folder))
    before = path.read_bytes()
    r = fails(cli("init", cwd=folder))
    assert f"error: {path} already exists; nothing was changed" in r.stderr
    assert "--force" in r.stderr
    assert path.read_bytes() == before

    ok(cli("init", "--force", "--name", "billing", cwd=folder))
    assert tomllib.loads(path.read_text())["name"] == "billing"
    assert "DB_HOST" not in tomllib.loads(path.read_text())["vars"]


@pytest.mark.parametrize("name", ["bad name", "a/b", "pgconnect:x", "ü"])
def test_init_refuses_a_bad_name_and_writes_nothing(isolated: Path, cli: Any, name: str) -> None:
    r = fails(cli("init", "--name", name))
    assert "error:" in r.stderr
    assert not (isolated / "pgconnect.toml").exists()


def test_init_in_a_subfolder_of_a_project_writes_there(isolated: Path, cli: Any) -> None:
    ok(cli("init", "--name", "outer"))
    sub = isolated / "service"
    sub.mkdir()
    ok(cli("init", cwd=sub))
    assert tomllib.loads((sub / "pgconnect.toml").read_text())["name"] == "service"
    assert tomllib.loads((isolated / "pgconnect.toml").read_text())["name"] == "outer"


def test_init_with_config_names_the_file(isolated: Path, cli: Any) -> None:
    target = isolated / "conf" / "db.toml"
    target.parent.mkdir()
    ok(cli("init", "--config", str(target), "--name", "x"))
    assert tomllib.loads(target.read_text())["name"] == "x"
    ok(cli("var", "set", "--config", str(target), "DB_HOST", "h"))
    assert ok(cli("var", "get", "--config", str(target), "DB_HOST")).stdout == "h\n"


# --------------------------------------------------------------------------- environments

ENVS = """\
name = "envs"

[vars]
DB_HOST = "db.example.com"
DB_PORT = "5432"
DB_NAME = "billing"
APP_MODE = "prod"

[env.staging.vars]
DB_HOST = "staging.db.example.com"
APP_MODE = "staging"
DB_APPLICATION_NAME = "billing-staging"

[env.empty]
"""


@pytest.fixture
def envs(isolated: Path) -> Path:
    path = isolated / "pgconnect.toml"
    path.write_text(ENVS)
    return path


def test_var_list_shows_each_value_and_its_source(envs: Path, cli: Any) -> None:
    assert ok(cli("var", "list")).stdout == (
        "APP_MODE  prod            (file:[vars])\n"
        "DB_HOST   db.example.com  (file:[vars])\n"
        "DB_NAME   billing         (file:[vars])\n"
        "DB_PORT   5432            (file:[vars])\n"
    )
    assert ok(cli("var", "list", "--env", "staging")).stdout == (
        "APP_MODE             staging                 (file:[env.staging.vars])\n"
        "DB_APPLICATION_NAME  billing-staging         (file:[env.staging.vars])\n"
        "DB_HOST              staging.db.example.com  (file:[env.staging.vars])\n"
        "DB_NAME              billing                 (file:[vars])\n"
        "DB_PORT              5432                    (file:[vars])\n"
    )


def test_environments_override_key_by_key_and_inherit_the_rest(envs: Path, cli: Any) -> None:
    staging = json.loads(ok(cli("var", "list", "--json", "-e", "staging")).stdout)
    assert staging == {
        "APP_MODE": "staging",
        "DB_APPLICATION_NAME": "billing-staging",
        "DB_HOST": "staging.db.example.com",
        "DB_NAME": "billing",
        "DB_PORT": "5432",
    }
    base = {
        "APP_MODE": "prod",
        "DB_HOST": "db.example.com",
        "DB_NAME": "billing",
        "DB_PORT": "5432",
    }
    assert json.loads(ok(cli("var", "list", "--json")).stdout) == base
    assert json.loads(ok(cli("var", "list", "--json", "-e", "empty")).stdout) == base
    assert ok(cli("var", "get", "-e", "staging", "DB_HOST")).stdout == "staging.db.example.com\n"
    assert ok(cli("var", "get", "-e", "staging", "DB_NAME")).stdout == "billing\n"
    assert ok(cli("var", "get", "DB_HOST")).stdout == "db.example.com\n"

    explained = json.loads(ok(cli("explain", "--json", "-e", "staging")).stdout)
    assert explained["env"] == "staging"
    by_keyword = {p["keyword"]: (p["value"], p["source"]) for p in explained["params"]}
    assert by_keyword == {
        "host": ("staging.db.example.com", "file:[env.staging.vars]"),
        "port": ("5432", "file:[vars]"),
        "dbname": ("billing", "file:[vars]"),
        "sslmode": ("require", "default"),
        "application_name": ("billing-staging", "file:[env.staging.vars]"),
    }
    # explain lists connection parameters only; plain variables (APP_MODE) are var list's.
    assert "APP_MODE" not in json.dumps(explained)


def test_pgconnect_env_selects_and_env_option_wins(envs: Path, cli: Any) -> None:
    env = {"PGCONNECT_ENV": "staging"}
    assert ok(cli("var", "get", "DB_HOST", env=env)).stdout == "staging.db.example.com\n"
    assert json.loads(ok(cli("explain", "--json", env=env)).stdout)["env"] == "staging"
    assert ok(cli("var", "get", "DB_HOST", "-e", "empty", env=env)).stdout == "db.example.com\n"
    # var set writes to the selected environment too.
    ok(cli("var", "set", "DB_PORT", "6543", env=env))
    data = tomllib.loads(envs.read_text())
    assert data["env"]["staging"]["vars"]["DB_PORT"] == "6543"
    assert data["vars"]["DB_PORT"] == "5432"


@pytest.mark.parametrize(
    "args",
    [
        ["var", "list"],
        ["var", "list", "--json"],
        ["var", "get", "DB_HOST"],
        ["var", "unset", "DB_HOST"],
        ["explain"],
        ["explain", "--json"],
    ],
)
def test_an_unknown_environment_is_exit_3(envs: Path, cli: Any, args: list[str]) -> None:
    before = envs.read_bytes()
    for extra, env in ((["--env", "prodd"], None), ([], {"PGCONNECT_ENV": "prodd"})):
        r = fails(cli(*args, *extra, env=env))
        assert f"error: {envs}: no environment 'prodd' (environments: empty, staging)" in r.stderr
        assert "hint: create it with: pgconnect var set --env prodd NAME VALUE" in r.stderr
    assert envs.read_bytes() == before


def test_var_set_creates_a_new_environment(envs: Path, cli: Any) -> None:
    r = ok(cli("var", "set", "--env", "prod-eu", "DB_HOST", "eu.db.example.com"))
    assert r.stderr == f"set DB_HOST in [env.prod-eu.vars] of {envs}\n"
    assert envs.read_text() == ENVS + '\n[env.prod-eu.vars]\nDB_HOST = "eu.db.example.com"\n'
    assert ok(cli("var", "get", "-e", "prod-eu", "DB_NAME")).stdout == "billing\n"


@pytest.mark.parametrize("env", ["bad name", "a.b", "x/y", "ü"])
def test_a_bad_environment_name_is_exit_3(envs: Path, cli: Any, env: str) -> None:
    before = envs.read_bytes()
    r = fails(cli("var", "set", "--env", env, "DB_HOST", "x"))
    assert f"environment name {env!r} may use only letters, digits, '_' and '-'" in r.stderr
    assert envs.read_bytes() == before


def test_var_unset_removes_from_the_selected_table(envs: Path, cli: Any) -> None:
    r = ok(cli("var", "unset", "-e", "staging", "DB_HOST"))
    assert r.stderr == "removed DB_HOST from [env.staging.vars]\n"
    # The base value shows through again.
    assert ok(cli("var", "get", "-e", "staging", "DB_HOST")).stdout == "db.example.com\n"
    r = fails(cli("var", "unset", "-e", "staging", "DB_HOST"))
    assert f"error: DB_HOST is not set in [env.staging.vars] of {envs}" in r.stderr
    r = fails(cli("var", "unset", "DB_SSLMODE"))
    assert f"error: DB_SSLMODE is not set in [vars] of {envs}" in r.stderr


# --------------------------------------------------------------------------- var get / var list


def test_var_get_prints_the_bare_value(isolated: Path, cli: Any) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text(
        'name = "g"\n[vars]\nDB_OPTIONS = "-c search_path=app,public"\nGREETING = "héllo wörld ✓"\nDB_PORT = 5432\n'
    )
    r = ok(cli("var", "get", "DB_OPTIONS"))
    assert (r.stdout, r.stderr) == ("-c search_path=app,public\n", "")
    assert ok(cli("var", "get", "GREETING")).stdout == "héllo wörld ✓\n"
    assert ok(cli("var", "get", "DB_PORT")).stdout == "5432\n"  # a TOML integer reads as text
    r = fails(cli("var", "get", "DB_HOST"))
    assert r.stderr.splitlines()[0] == "error: DB_HOST is not set"
    r = fails(cli("var", "get", "db_host"))
    assert "invalid variable name 'db_host'" in r.stderr


def test_var_list_json_is_an_object_of_effective_values(isolated: Path, cli: Any) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text('name = "j"\n[vars]\nDB_HOST = "h"\nDB_PORT = 5432\nQUOTE = "say \\"hi\\""\n')
    r = ok(cli("var", "list", "--json"))
    assert json.loads(r.stdout) == {"DB_HOST": "h", "DB_PORT": "5432", "QUOTE": 'say "hi"'}
    assert r.stdout.endswith("}\n")
    assert r.stderr == ""
    path.write_text('name = "j"\n')
    r = ok(cli("var", "list", "--json"))
    assert r.stdout == "{}\n"
    r = ok(cli("var", "list"))
    assert r.stdout == ""
    assert "no variables set" in r.stderr


def test_the_process_environment_overrides_the_file(envs: Path, cli: Any) -> None:
    env = {"DB_HOST": "ci.example.com", "APP_MODE": "ci"}
    assert ok(cli("var", "get", "DB_HOST", env=env)).stdout == "ci.example.com\n"
    listed = ok(cli("var", "list", "-e", "staging", env=env)).stdout.splitlines()
    assert "DB_HOST              ci.example.com   (environment)" in listed
    assert "APP_MODE             ci               (environment)" in listed
    assert "DB_NAME              billing          (file:[vars])" in listed
    assert json.loads(ok(cli("var", "list", "--json", env=env)).stdout)["DB_HOST"] == (
        "ci.example.com"
    )
    params = json.loads(ok(cli("explain", "--json", env=env)).stdout)["params"]
    assert params[0] == {
        "keyword": "host",
        "name": "DB_HOST",
        "value": "ci.example.com",
        "source": "environment",
    }


def test_an_invalid_value_from_the_environment_is_exit_3(envs: Path, cli: Any) -> None:
    r = fails(cli("var", "list", env={"DB_PORT": "99999"}))
    assert "error: environment variable DB_PORT: '99999' is not a port number" in r.stderr


# --------------------------------------------------------------------------- explain


def test_explain_json_shape(envs: Path, cli: Any) -> None:
    for args, env in (
        (["explain", "--json"], None),
        (["explain", "--json", "-e", "staging"], "staging"),
    ):
        data = json.loads(ok(cli(*args)).stdout)
        assert set(data) == {"env", "params"}
        assert data["env"] == env
        assert data["params"]
        for p in data["params"]:
            assert set(p) == {"keyword", "name", "value", "source"}
            assert all(isinstance(p[k], str) for k in ("keyword", "value", "source"))
            assert p["name"] is None or isinstance(p["name"], str)


def test_explain_text(envs: Path, cli: Any) -> None:
    assert ok(cli("explain")).stdout == (
        "host     db.example.com  file:[vars]\n"
        "port     5432            file:[vars]\n"
        "dbname   billing         file:[vars]\n"
        "sslmode  require         default\n"
    )


@pytest.mark.parametrize(
    ("host", "mode"),
    [
        ("127.0.0.1", "prefer"),
        ("localhost", "prefer"),
        ("::1", "prefer"),
        ("/var/run/postgresql", "prefer"),
        ("db.example.com", "require"),
        ("localhost,db.example.com", "require"),
        (None, "prefer"),  # no host: libpq uses the Unix socket
    ],
)
def test_default_sslmode(isolated: Path, cli: Any, host: str | None, mode: str) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text('name = "s"\n[vars]\n' + (f'DB_HOST = "{host}"\n' if host else ""))
    params = json.loads(ok(cli("explain", "--json")).stdout)["params"]
    assert {
        "keyword": "sslmode",
        "name": "DB_SSLMODE",
        "value": mode,
        "source": "default",
    } in params
    # An explicit sslmode is never replaced by the default.
    ok(cli("var", "set", "DB_SSLMODE", "verify-full"))
    params = json.loads(ok(cli("explain", "--json")).stdout)["params"]
    assert {
        "keyword": "sslmode",
        "name": "DB_SSLMODE",
        "value": "verify-full",
        "source": "file:[vars]",
    } in params


def test_explain_shows_libpq_environment_variables(isolated: Path, cli: Any) -> None:
    (isolated / "pgconnect.toml").write_text('name = "l"\n[vars]\nDB_NAME = "app"\n')
    data = json.loads(ok(cli("explain", "--json", env={"PGHOST": "db.example.com"})).stdout)
    assert data["params"] == [
        {"keyword": "host", "name": None, "value": "db.example.com", "source": "libpq-env:PGHOST"},
        {"keyword": "dbname", "name": "DB_NAME", "value": "app", "source": "file:[vars]"},
        # The default follows the host libpq will use: not loopback, so require.
        {"keyword": "sslmode", "name": "DB_SSLMODE", "value": "require", "source": "default"},
    ]
    env = {"PGSSLMODE": "verify-ca", "PGDATABASE": "other", "PGMAXPROTOCOLVERSION": "3.2"}
    params = json.loads(ok(cli("explain", "--json", env=env)).stdout)["params"]
    by_keyword = {p["keyword"]: p["source"] for p in params}
    assert by_keyword["sslmode"] == "libpq-env:PGSSLMODE"
    assert by_keyword["dbname"] == "file:[vars]"  # the file wins over libpq's own variable
    assert by_keyword["max_protocol_version"] == "libpq-env:PGMAXPROTOCOLVERSION"


def test_explain_masks_a_password_from_the_environment(envs: Path, cli: Any) -> None:
    for args in (["explain"], ["explain", "--json"]):
        r = ok(cli(*args, env={"DB_PASSWORD": SENTINEL, "PGPASSWORD": SENTINEL}))
        no_sentinel(r)
        assert "****" in r.stdout
    data = json.loads(ok(cli("explain", "--json", env={"DB_PASSWORD": SENTINEL})).stdout)
    assert {
        "keyword": "password",
        "name": "DB_PASSWORD",
        "value": "****",
        "source": "environment",
    } in data["params"]


# --------------------------------------------------------------------------- passwords are refused

PASSWORD_URLS = [
    f"postgresql://app:{SENTINEL}@db.example.com/billing",
    f"postgresql://app@db.example.com/billing?sslmode=require&password={SENTINEL}",
    f"postgresql://db.example.com/billing?passw%6Frd={SENTINEL}",
    f"host=db.example.com user=app password={SENTINEL}",
    f"host=db.example.com password='{SENTINEL} x'",
    f"host=db.example.com sslpassword={SENTINEL}",
]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_PASSWORD", SENTINEL),
        ("DB_SSLPASSWORD", SENTINEL),
        ("DB_OAUTH_CLIENT_SECRET", SENTINEL),
        *[("DB_URL", url) for url in PASSWORD_URLS],
    ],
)
def test_var_set_refuses_a_password(isolated: Path, cli: Any, name: str, value: str) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text('name = "pw"\n[vars]\nDB_HOST = "h"\n')
    before = path.read_bytes()
    for env in ([], ["--env", "staging"]):
        r = fails(cli("var", "set", *env, name, value))
        no_sentinel(r)
        assert "never goes in the project file" in r.stderr or "DB_URL carries a" in r.stderr
        assert "pgconnect secret put" in r.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "line",
    [
        f'DB_PASSWORD = "{SENTINEL}"',
        f"DB_PASSWORD = '{SENTINEL}'",
        *[f"DB_URL = {json.dumps(url)}" for url in PASSWORD_URLS],
    ],
)
@pytest.mark.parametrize("table", ["[vars]", "[env.staging.vars]"])
def test_a_password_in_the_file_is_refused(isolated: Path, cli: Any, line: str, table: str) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text(
        f'name = "pw"\n[vars]\nDB_HOST = "h"\n{"" if table == "[vars]" else table}\n{line}\n'
    )
    before = path.read_bytes()
    for args in (
        ["var", "list"],
        ["explain", "--json"],
        ["var", "get", "DB_HOST"],
        ["var", "set", "A", "1"],
    ):
        r = fails(cli(*args, "-e", "staging") if table != "[vars]" else cli(*args))
        no_sentinel(r)
        assert str(path) in r.stderr
        assert table in r.stderr
        assert "pgconnect secret put" in r.stderr
    assert path.read_bytes() == before


def test_a_url_without_a_password_is_fine(isolated: Path, cli: Any) -> None:
    (isolated / "pgconnect.toml").write_text('name = "u"\n')
    ok(
        cli(
            "var",
            "set",
            "DB_URL",
            "postgresql://app@db.example.com:6432/billing?sslmode=verify-full",
        )
    )
    ok(cli("var", "set", "DB_PORT", "5433"))  # an explicit part overrides the URL's
    by_keyword = {
        p["keyword"]: (p["value"], p["source"], p["name"])
        for p in json.loads(ok(cli("explain", "--json")).stdout)["params"]
    }
    assert by_keyword["host"] == ("db.example.com", "file:[vars]", "DB_URL")
    assert by_keyword["port"] == ("5433", "file:[vars]", "DB_PORT")
    assert by_keyword["sslmode"] == ("verify-full", "file:[vars]", "DB_URL")


def test_var_get_never_prints_a_secret(isolated: Path, cli: Any) -> None:
    path = isolated / "pgconnect.toml"
    path.write_text('name = "s"\nsecrets = ["DB_PASSWORD"]\n[vars]\nDB_HOST = "h"\n')
    for env in ({"DB_PASSWORD": SENTINEL}, None):
        r = fails(cli("var", "get", "DB_PASSWORD", env=env))
        no_sentinel(r)
        assert "is a secret" in r.stderr
    path.write_text('name = "s"\n[vars]\nDB_HOST = "h"\n')  # not declared: from the environment
    r = fails(cli("var", "get", "DB_PASSWORD", env={"DB_PASSWORD": SENTINEL}))
    no_sentinel(r)
    assert "error: DB_PASSWORD is a secret (environment); its value is never printed" in r.stderr
