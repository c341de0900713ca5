"""The Workers workflow: ``init --from-wrangler``, ``export --format dev-vars|dotenv``, and the
page's own Worker run by the real ``wrangler dev`` against ``pgconnect sandbox``.

Oracles are wrangler's own code, installed from npm into tests/workers by scripts/setup.sh:
``unstable_readConfig`` says what vars each environment gets, the dotenv/dotenv-expand versions
wrangler bundles read back what ``export`` wrote, and workerd itself verifies the server's
certificate (it refuses the sandbox's private CA unless ``exec`` hands it over).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgconnect import export, wrangler
from pgconnect.cluster import free_port
from pgconnect.errors import ConfigError
from tests.conftest import REPO, KeyringSession, Result, Server, Servers, clean_environ, run_cli

WORKERS = REPO / "tests" / "workers"
SENTINEL = "S3ntinel-pw'\"$HOME`x"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Workers tests run wrangler's own code")
    if not (WORKERS / "node_modules" / "wrangler").is_dir():
        pytest.skip("npm could not install wrangler into tests/workers (scripts/setup.sh)")
    return node


def _node_json(*args: str) -> Any:
    proc = subprocess.run(
        [_node(), *args],
        capture_output=True,
        text=True,
        cwd=WORKERS,
        env=clean_environ(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- import

WRANGLER_TOML = """\
name = "billing-worker"
main = "src/index.ts"
compatibility_date = "2025-01-01"
compatibility_flags = ["nodejs_compat"]
secrets.required = ["DB_PASSWORD", "API_TOKEN"]

[vars]
DB_USERNAME = "app"
DB_HOST = "db.example.com"
DB_PORT = "5432"
DB_NAME = "billing"
DB_SSLMODE = "verify-full"
GREETING = "hello # not a comment"

# repeats every base var, changes one: inherits
[env.staging.vars]
DB_USERNAME = "app"
DB_HOST = "staging.db.example.com"
DB_PORT = "5432"
DB_NAME = "billing"
DB_SSLMODE = "verify-full"
GREETING = "hello # not a comment"

# lacks DB_SSLMODE and GREETING, adds FEATURE: must not inherit them
[env.production]
secrets.required = ["DB_PASSWORD"]
[env.production.vars]
DB_USERNAME = "app_prod"
DB_HOST = "prod.db.example.com"
DB_PORT = "6543"
DB_NAME = "billing"
FEATURE = "on"
"""

WRANGLER_JSONC = """\
// A JSONC wrangler configuration: comments, trailing commas, a URL with // in a string.
{
  "name": "billing-worker",
  "main": "src/index.ts", /* the entry point */
  "compatibility_date": "2025-01-01",
  "vars": {
    "DB_HOST": "db.example.com",
    "DB_PORT": 5432,               // a number: the Worker sees 5432
    "DOCS": "https://example.com/a//b /* not a comment */",
    "DEBUG": false,
  },
  "env": {
    "staging": {"vars": {"DB_HOST": "staging.db.example.com", "DB_PORT": 5432, "DOCS": "https://example.com/a//b /* not a comment */", "DEBUG": true,},},
    "preview": {},
  },
}
"""


def _pgconnect_vars(folder: Path, env: str | None) -> dict[str, str]:
    args = ["var", "list", "--json", *(["-e", env] if env else [])]
    result = run_cli(*args, cwd=folder)
    assert result.returncode == 0, result
    return dict(json.loads(result.stdout))


def _as_worker_sees(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


@pytest.mark.parametrize(
    ("filename", "text", "envs"),
    [
        ("wrangler.toml", WRANGLER_TOML, ["staging", "production"]),
        ("wrangler.jsonc", WRANGLER_JSONC, ["staging", "preview"]),
    ],
)
def test_import_gives_each_environment_what_wrangler_gives_it(
    isolated: Path, filename: str, text: str, envs: list[str]
) -> None:
    (isolated / filename).write_text(text)
    expected = _node_json(str(WORKERS / "read-config.js"), str(isolated / filename), *envs)
    result = run_cli("init", "--from-wrangler", cwd=isolated)
    assert result.returncode == 0, result
    assert filename in result.stderr
    for env in [None, *envs]:
        wanted = {k: _as_worker_sees(v) for k, v in expected[env or ""]["vars"].items()}
        assert _pgconnect_vars(isolated, env) == wanted, env
    # The non-inheritance is written down, and only where it is needed.
    doc = (isolated / "pgconnect.toml").read_text()
    if filename.endswith(".toml"):
        assert "[env.production]\ninherit_vars = false" in doc
        assert doc.count("inherit_vars") == 1
        # staging repeats the base: only what differs is written.
        assert 'DB_HOST = "staging.db.example.com"' in doc
        assert doc.count("GREETING") == 1


def test_import_declares_wranglers_secrets(isolated: Path) -> None:
    (isolated / "wrangler.toml").write_text(WRANGLER_TOML)
    expected = _node_json(
        str(WORKERS / "read-config.js"), str(isolated / "wrangler.toml"), "production"
    )
    assert run_cli("init", "--from-wrangler", cwd=isolated).returncode == 0
    listed = run_cli("secret", "list", "--json", "-e", "production", cwd=isolated)
    # No keyring here: secret list may fail to read the store, so read the file's declarations.
    import tomllib

    doc = tomllib.loads((isolated / "pgconnect.toml").read_text())
    assert doc["secrets"] == expected[""]["secrets"] == ["DB_PASSWORD", "API_TOKEN"]
    assert doc["env"]["production"]["secrets"] == expected["production"]["secrets"]
    assert SENTINEL not in listed.output


def test_import_names_the_page_secret_when_wrangler_does_not(isolated: Path) -> None:
    # The page's parts way: vars for the parts, DB_PASSWORD set with `wrangler secret put`.
    (isolated / "wrangler.toml").write_text(
        '[vars]\nDB_USERNAME = "postgres"\nDB_HOST = "h.example.com"\nDB_PORT = "5432"\n'
    )
    # The URL way: nothing in vars, DB_URL only in the local .dev.vars (names are read, values not).
    other = isolated / "other"
    other.mkdir()
    (other / "wrangler.json").write_text('{"name": "w", "vars": {"GREETING": "hi"}}')
    (other / ".dev.vars").write_text(f"DB_URL='postgresql://u:{SENTINEL}@h/db'\n")
    assert run_cli("init", "--from-wrangler", cwd=isolated).returncode == 0
    result = run_cli("init", "--from-wrangler", cwd=other)
    assert result.returncode == 0, result
    assert SENTINEL not in result.output
    assert 'secrets = ["DB_PASSWORD"]' in (isolated / "pgconnect.toml").read_text()
    text = (other / "pgconnect.toml").read_text()
    assert 'secrets = ["DB_URL"]' in text
    assert SENTINEL not in text


@pytest.mark.parametrize(
    ("vars_text", "what"),
    [
        (f'DB_PASSWORD = "{SENTINEL[:10]}"', "DB_PASSWORD"),
        (f'DB_URL = "postgresql://app:{SENTINEL[:10]}@h/db"', "DB_URL"),
    ],
)
def test_import_refuses_a_password_in_vars(isolated: Path, vars_text: str, what: str) -> None:
    (isolated / "wrangler.toml").write_text(f'name = "w"\n[env.staging.vars]\n{vars_text}\n')
    result = run_cli("init", "--from-wrangler", "wrangler.toml", cwd=isolated)
    assert result.returncode == 3, result
    assert what in result.stderr
    assert "secret put" in result.stderr
    assert SENTINEL[:10] not in result.output
    assert not (isolated / "pgconnect.toml").exists()


def test_import_skips_what_is_not_a_variable_and_says_so(isolated: Path) -> None:
    (isolated / "wrangler.json").write_text(
        json.dumps({"vars": {"apiBase": "x", "LIMITS": {"a": 1}, "DB_POOL_MAX": "5", "OK": "1"}})
    )
    result = run_cli("init", "--from-wrangler", cwd=isolated)
    assert result.returncode == 0, result
    for name in ("apiBase", "LIMITS", "DB_POOL_MAX"):
        assert f"not imported: vars.{name}" in result.stderr
    assert _pgconnect_vars(isolated, None) == {"OK": "1"}


def test_import_errors_are_one_line_and_exit_3(isolated: Path) -> None:
    assert run_cli("init", "--from-wrangler", cwd=isolated).returncode == 3  # nothing to import
    (isolated / "wrangler.json").write_text('{"vars": {"A": "1"}, // no comments in .json\n}')
    result = run_cli("init", "--from-wrangler", cwd=isolated)
    assert result.returncode == 3, result
    assert "wrangler.json:1:" in result.stderr
    assert "wrangler.jsonc" in result.stderr
    (isolated / "wrangler.toml").write_text("[vars]\nA = \n")
    result = run_cli("init", "--from-wrangler", "wrangler.toml", cwd=isolated)
    assert result.returncode == 3, result
    assert "invalid TOML" in result.stderr
    result = run_cli("init", "stray-argument", cwd=isolated)
    assert result.returncode == 2, result
    assert not (isolated / "pgconnect.toml").exists()


@pytest.mark.parametrize(
    ("jsonc", "expected"),
    [
        ('{"a": "x // y", /* c */ "b": [1, 2,],}', {"a": "x // y", "b": [1, 2]}),
        (
            '{"a": "q\\" // still a string", // c\n"b": ",}"}',
            {"a": 'q" // still a string', "b": ",}"},
        ),
        ("// only\n{\n/* multi\nline */ }", {}),
    ],
)
def test_jsonc_comments_and_trailing_commas(jsonc: str, expected: dict[str, Any]) -> None:
    assert json.loads(wrangler.strip_jsonc(jsonc)) == expected


# --------------------------------------------------------------------------- export: the bytes

VALUES = st.text(
    alphabet=st.sampled_from([*list("aZ09 _-'\"`$\\#=\n\t{}"), "é", "€"]), max_size=24
) | st.sampled_from(["", " lead", "trail ", "$HOME", "${X:-y}", "a\\$b", "#x", "\\n", "'\"`"])


@pytest.mark.parametrize("fmt", export.FORMATS)
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(VALUES, min_size=30, max_size=30))
def test_exported_values_read_back_exactly_by_wranglers_readers(
    fmt: str, values: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    entries, refused = [], []
    for i, value in enumerate(values):
        try:
            export.quote(f"V{i}", value, fmt)
        except ConfigError as exc:
            message = exc.message
            refused.append(value)
        else:
            entries.append((f"V{i}", value))
            continue
        assert value not in message or not value.strip()
    path = tmp_path_factory.mktemp("dotenv") / "file"
    path.write_text(export.render(export.Export(entries), fmt, "test"))
    assert _node_json(str(WORKERS / "dotenv-read.js"), fmt, str(path)) == dict(entries)
    for value in refused:  # refused only what no quoting carries
        assert (
            "\r" in value
            or value.endswith("\\")
            or all(q in value for q in "'\"`")
            or ("'" in value and "`" in value and ("\\n" in value or "\\r" in value))
        )


# --------------------------------------------------------------------------- export: the file


def _project(folder: Path, server: Server, name: str, *extra: str) -> Path:
    lines = [
        f'name = "{name}"',
        'secrets = ["DB_PASSWORD"]',
        "[vars]",
        f'DB_HOST = "{server.host}"',
        f'DB_PORT = "{server.port}"',
        f'DB_USERNAME = "{server.user}"',
        f'DB_NAME = "{server.dbname}"',
        'DB_SSLMODE = "verify-full"',
        f'DB_SSLROOTCERT = "{server.ca_file}"',
        'GREETING = "price: $5"',
        *extra,
    ]
    path = folder / "pgconnect.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def keyed(servers: Servers, keyring_session: KeyringSession, isolated: Path) -> Iterator[Any]:
    """A project on the TLS server whose DB_PASSWORD is in the real keyring."""
    name = f"wk-{uuid.uuid4().hex[:8]}"
    _project(isolated, servers.tls_on, name, "[env.staging.vars]", 'GREETING = "staging"')
    env = keyring_session.environ()

    def cli(*args: str, **kw: Any) -> Result:
        return run_cli(*args, env={**env, **kw.pop("env", {})}, cwd=isolated, **kw)

    put = cli("secret", "put", "DB_PASSWORD", input=servers.tls_on.password)
    assert put.returncode == 0, put
    yield cli
    cli("secret", "delete", "DB_PASSWORD", "--yes")


def test_export_writes_the_page_two_ways_0600(keyed: Any, isolated: Path, servers: Servers) -> None:
    server = servers.tls_on
    result = keyed("export", "--format", "dev-vars", "--hyperdrive", "HYPERDRIVE")
    assert result.returncode == 0, result
    path = isolated / ".dev.vars"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server.password not in result.output
    assert "left out DB_SSLROOTCERT" in result.stderr
    got = _node_json(str(WORKERS / "dotenv-read.js"), "dev-vars", str(path))
    assert list(got)[:6] == [
        "DB_URL",
        "DB_HOST",
        "DB_PORT",
        "DB_USERNAME",
        "DB_NAME",
        "DB_PASSWORD",
    ]
    assert got["DB_PASSWORD"] == server.password
    assert got["DB_HOST"] == server.host
    assert got["DB_PORT"] == str(server.port)
    assert got["DB_SSLMODE"] == "verify-full"
    assert got["GREETING"] == "price: $5"
    assert got["CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_HYPERDRIVE"] == got["DB_URL"]
    assert "sslrootcert" not in got["DB_URL"]
    assert "DB_SSLROOTCERT" not in got
    # The URL is the connection: libpq logs in with it (given the CA a Worker gets from exec).
    with psycopg.connect(got["DB_URL"], sslrootcert=str(server.ca_file)) as conn:
        assert conn.pgconn.ssl_in_use
    # The same file again is replaced; a dotenv for an environment goes to .env.staging.
    assert keyed("export", "--format", "dev-vars").returncode == 0
    assert keyed("export", "--format", "dotenv", "-e", "staging").returncode == 0
    staged = _node_json(str(WORKERS / "dotenv-read.js"), "dotenv", str(isolated / ".env.staging"))
    assert staged["GREETING"] == "staging"
    assert staged["DB_PASSWORD"] == server.password


def test_export_to_stdout_and_environment_file_name(keyed: Any, isolated: Path) -> None:
    result = keyed("export", "--format", "dev-vars", "-e", "staging", "--out", "-")
    assert result.returncode == 0, result
    assert result.stdout.startswith(export.MARKER)
    assert "GREETING='staging'" in result.stdout
    assert not list(isolated.glob(".dev.vars*"))
    assert keyed("export", "--format", "dev-vars", "-e", "staging").returncode == 0
    assert (isolated / ".dev.vars.staging").is_file()


def test_export_refuses_a_file_git_would_commit(keyed: Any, isolated: Path) -> None:
    subprocess.run(["git", "init", "-q", str(isolated)], check=True)
    result = keyed("export", "--format", "dev-vars")
    assert result.returncode == 3, result
    assert "git would commit" in result.stderr
    assert ".dev.vars*" in result.stderr
    assert not (isolated / ".dev.vars").exists()
    (isolated / ".gitignore").write_text(".dev.vars*\n")
    assert keyed("export", "--format", "dev-vars").returncode == 0
    # Tracked already (force-added once): git would commit the new contents.
    (isolated / ".env").write_text(f"{export.MARKER}\n")
    subprocess.run(["git", "-C", str(isolated), "add", ".env"], check=True)
    assert keyed("export", "--format", "dotenv").returncode == 3
    assert keyed("export", "--format", "dotenv", "--force").returncode == 0


def test_export_never_replaces_a_file_it_did_not_write(keyed: Any, isolated: Path) -> None:
    mine = isolated / ".dev.vars"
    mine.write_text("MY_OWN=1\n")
    result = keyed("export", "--format", "dev-vars")
    assert result.returncode == 3, result
    assert "not written by pgconnect" in result.stderr
    assert mine.read_text() == "MY_OWN=1\n"
    target = isolated / "elsewhere"
    target.write_text("keep\n")
    mine.unlink()
    mine.symlink_to(target)
    assert keyed("export", "--format", "dev-vars").returncode == 3
    assert keyed("export", "--format", "dev-vars", "--force").returncode == 0
    assert target.read_text() == "keep\n"  # the link was replaced, never followed
    assert not mine.is_symlink()
    assert stat.S_IMODE(mine.stat().st_mode) == 0o600


def test_export_refuses_a_value_dotenv_cannot_carry(
    keyed: Any, isolated: Path, servers: Servers
) -> None:
    # A password with a CR: dotenv turns every CR into LF, so wrangler would get another one.
    weird = "pa'ss\"wo`rd\r" + SENTINEL
    result = keyed("export", "--format", "dev-vars", env={"DB_PASSWORD": weird})
    assert result.returncode == 3, result
    assert "DB_PASSWORD" in result.stderr
    assert weird not in result.output
    assert SENTINEL not in result.output
    assert not (isolated / ".dev.vars").exists()


# --------------------------------------------------------------------------- exec: the CA


def _exec_env(cli: Any, extra: dict[str, str] | None = None) -> dict[str, str]:
    result = cli(
        "exec",
        "--",
        "python3",
        "-c",
        "import json,os; print(json.dumps(dict(os.environ)))",
        env=extra or {},
    )
    assert result.returncode == 0, result
    return dict(json.loads(result.stdout))


def test_exec_names_the_root_ca_for_node(keyed: Any, servers: Servers, isolated: Path) -> None:
    child = _exec_env(keyed, {"NODE_EXTRA_CA_CERTS": ""})  # empty: unset, for node too
    assert child["NODE_EXTRA_CA_CERTS"] == str(servers.tls_on.ca_file)
    # A user's own NODE_EXTRA_CA_CERTS (many images name the system bundle) is kept: the child
    # gets a bundle of both.
    own = isolated / "own-ca.pem"
    own.write_bytes(servers.tls_on.wrong_ca_file.read_bytes())
    child = _exec_env(keyed, {"NODE_EXTRA_CA_CERTS": str(own)})
    bundle = Path(child["NODE_EXTRA_CA_CERTS"]).read_bytes()
    assert own.read_bytes() in bundle
    assert servers.tls_on.ca_file.read_bytes() in bundle


def test_node_postgres_verifies_through_exec(keyed: Any, servers: Servers) -> None:
    node = _node()
    script = (
        "const {Client} = require('pg');"
        "(async () => { const c = new Client(process.env.DATABASE_URL); await c.connect();"
        "const r = await c.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');"
        "console.log(JSON.stringify(r.rows[0])); await c.end(); })()"
        ".catch(e => { console.error(e.message); process.exit(1); });"
    )
    # Without exec's CA, node refuses the private CA; through exec it verifies and connects.
    url = keyed("url", "--reveal").stdout.strip()
    bare = subprocess.run(
        [node, "-e", script],
        capture_output=True,
        text=True,
        cwd=WORKERS,
        env={**clean_environ(), "DATABASE_URL": url.split("&sslrootcert")[0]},
        timeout=60,
    )
    assert bare.returncode == 1
    assert "certificate" in bare.stderr
    done = keyed(
        "exec",
        "--url-var",
        "DATABASE_URL",
        "--",
        node,
        "-e",
        script,
        env={"NODE_PATH": str(WORKERS / "node_modules")},
    )
    assert done.returncode == 0, done
    assert json.loads(done.stdout) == {"ssl": True}


# --------------------------------------------------------------------------- the real thing


def _get(port: int, deadline: float) -> str | None:
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as response:
                return str(response.read().decode())
        except OSError:
            time.sleep(0.5)
    return None


@pytest.mark.slow
def test_the_pages_worker_queries_the_sandbox_through_wrangler_dev(
    keyring_session: KeyringSession,
) -> None:
    _node()
    folder = Path(tempfile.mkdtemp(prefix="pgconnect-test-workers-"))
    os.chmod(folder, 0o755)  # as root the sandbox's server user must reach .pgconnect/
    project = folder / "seed-worker"
    shutil.copytree(WORKERS / "worker", project)
    os.symlink(WORKERS / "node_modules", project / "node_modules")
    os.chmod(project, 0o755)
    env = {
        **keyring_session.environ(),
        "PATH": f"{WORKERS / 'node_modules' / '.bin'}:{os.environ['PATH']}",
        "WRANGLER_SEND_METRICS": "false",
        "CLOUDFLARE_CF_FETCH_ENABLED": "false",
        "WRANGLER_HIDE_BANNER": "true",
        "XDG_CONFIG_HOME": str(folder / "xdg"),
        # As on many machines: node already trusts a bundle of the user's choosing.
        "NODE_EXTRA_CA_CERTS": "/etc/ssl/certs/ca-certificates.crt",
    }

    def cli(*args: str) -> Result:
        return run_cli(*args, env=env, cwd=project, timeout=120)

    dev: subprocess.Popen[bytes] | None = None
    try:
        assert (
            cli("init", "--from-wrangler", "--name", f"seed-{uuid.uuid4().hex[:8]}").returncode == 0
        )
        started = cli("sandbox", "start")
        assert started.returncode == 0, started
        # The page's Worker queries rnc_database: here a view of the session's TLS state.
        made = cli(
            "query",
            "-e",
            "sandbox",
            "create view rnc_database as select ssl, version, current_user as usr "
            "from pg_stat_ssl where pid = pg_backend_pid()",
        )
        assert made.returncode == 0, made
        (project / ".gitignore").write_text(".dev.vars*\nnode_modules\n")
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        exported = cli("export", "--format", "dev-vars", "-e", "sandbox")
        assert exported.returncode == 0, exported
        port, inspector = free_port(), free_port()
        argv = [
            "pgconnect",
            "exec",
            "-e",
            "sandbox",
            "--",
            "wrangler",
            "dev",
            "--env",
            "sandbox",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--inspector-port",
            str(inspector),
        ]
        import sys

        dev = subprocess.Popen(
            [sys.executable, "-m", *argv],
            cwd=project,
            env={**clean_environ(), "PYTHONPATH": str(REPO), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        body = _get(port, time.monotonic() + 90)
        assert body is not None, "wrangler dev did not answer"
        rows = json.loads(body)
        assert rows == [{"ssl": True, "version": rows[0]["version"], "usr": "app"}], body
        assert rows[0]["version"].startswith("TLSv1.")
    finally:
        if dev is not None:
            os.killpg(dev.pid, signal.SIGTERM)
            try:
                out, _ = dev.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
                out, _ = dev.communicate()
            log = out.decode("utf-8", "replace")
            assert "Using secrets defined in .dev.vars.sandbox" in log, log[-3000:]
        cli("sandbox", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_inherit_vars_is_a_checked_project_key(isolated: Path) -> None:
    (isolated / "pgconnect.toml").write_text(
        'name = "p"\n[vars]\nA = "1"\nB = "2"\n[env.solo]\ninherit_vars = false\n'
        '[env.solo.vars]\nB = "3"\n[env.bad]\ninherit_vars = "no"\n'
    )
    result = run_cli("var", "list", "--json", "-e", "solo", cwd=isolated)
    assert result.returncode == 3, result  # the file is checked whole: [env.bad] is invalid
    assert "inherit_vars must be true or false" in result.stderr
    text = (isolated / "pgconnect.toml").read_text().replace('inherit_vars = "no"', "")
    (isolated / "pgconnect.toml").write_text(text)
    assert _pgconnect_vars(isolated, "solo") == {"B": "3"}
    assert _pgconnect_vars(isolated, "bad") == {"A": "1", "B": "2"}
