"""pgconnect never weakens what the user configured anywhere libpq reads, and agrees with libpq
on real setups: connection service files, sslrootcert=system, passfiles, what a child process
gets, URIs other drivers read, provider parameters, bytea. psql, libpq (psycopg) and
node-postgres are the oracles; the servers are the suite's real clusters."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgconnect import keywords
from tests.conftest import KeyringSession, Result, clean_environ, write_project
from tests.plugin_libpq import Roles, write_private
from tests.test_connect_cli import node_login

SENTINEL = "SENTINEL-agree-51c7"


def psql(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", *args],
        capture_output=True,
        text=True,
        env={**clean_environ(), **(env or {})},
        timeout=60,
    )


def tcp_project(folder: Path, roles: Roles, *extra: str, name: str = "agree") -> Path:
    server = roles.server
    lines = [
        f'name = "{name}"',
        "[vars]",
        'DB_HOST = "127.0.0.1"',
        f'DB_PORT = "{server.port}"',
        f'DB_USERNAME = "{roles.app}"',
        'DB_NAME = "postgres"',
        'DB_SSLMODE = "verify-full"',
        f'DB_SSLROOTCERT = "{server.ca_file}"',
        *extra,
    ]
    return write_project(folder, "\n".join(lines) + "\n")


def explained(result: Result) -> dict[str, dict[str, Any]]:
    assert result.returncode == 0, result
    return {p["keyword"]: p for p in json.loads(result.stdout)["params"]}


# --------------------------------------------------------------------------- connection services


def service_setup(folder: Path, roles: Roles, *, rootcert: bool) -> dict[str, str]:
    """A service file naming the TLS server with sslmode=verify-full, and a project that has
    only DB_SERVICE. Returns the environment (PGSERVICEFILE, the password)."""
    server = roles.server
    lines = [
        "[agree]",
        "host=localhost",
        f"port={server.port}",
        f"user={roles.app}",
        "dbname=postgres",
        "sslmode=verify-full",
        *([f"sslrootcert={server.ca_file}"] if rootcert else []),
    ]
    servicefile = folder.parent / "pg_service.conf"
    servicefile.write_text("\n".join(lines) + "\n")
    write_project(folder, 'name = "svc"\n[vars]\nDB_SERVICE = "agree"\n')
    return {"PGSERVICEFILE": str(servicefile), "DB_PASSWORD": roles.app_password}


def _missing_root(text: str) -> str:
    found = re.search(r'root certificate file "([^"]+)" does not exist', text)
    assert found, text
    return found.group(1)


def test_service_verify_full_without_root_cert_is_refused_as_psql_refuses_it(
    roles: Roles, isolated: Path, cli: Any
) -> None:
    env = service_setup(isolated, roles, rootcert=False)
    oracle = psql(
        "-c",
        "select 1",
        env={**env, "PGSERVICE": "agree", "PGPASSWORD": roles.app_password},
    )
    assert oracle.returncode == 2, oracle
    expected = _missing_root(oracle.stderr)

    params = explained(cli("explain", "--json", env=env))
    assert params["sslmode"]["value"] == "verify-full"
    assert params["sslmode"]["source"] == "libpq-service:agree"
    assert params["host"]["source"] == "libpq-service:agree"
    assert all(p["source"] != "default" for p in params.values()), params

    for args in (["query", "select 1"], ["check"]):
        out = cli(*args, env=env)
        assert out.returncode == 6, out  # TLS: verify-full's requirement not met
        assert _missing_root(out.stderr + out.stdout) == expected
    checked = cli("check", "--json", env=env)
    report = json.loads(checked.stdout)
    assert report["effective_sslmode"] == "verify-full"
    assert report["results"][0]["stage"] == "tls"
    assert not any("Unix socket" in w for w in report["warnings"]), report


def test_service_with_its_ca_connects_and_is_probed_over_tls(
    roles: Roles, isolated: Path, cli: Any
) -> None:
    env = service_setup(isolated, roles, rootcert=True)
    oracle = psql(
        "-Atc",
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
        env={**env, "PGSERVICE": "agree", "PGPASSWORD": roles.app_password},
    )
    assert (oracle.returncode, oracle.stdout.strip()) == (0, "t"), oracle

    out = cli("check", "--json", env=env)
    assert out.returncode == 0, out
    report = json.loads(out.stdout)
    assert report["target"]["host"] == "localhost"
    assert report["target"]["port"] == roles.server.port
    (result,) = report["results"]
    assert result["sslmode"] == "verify-full"
    assert result["ok"], report
    assert result["encrypted"], report
    # pgconnect's own probe went over TCP and TLS to the service's host: the certificate.
    assert report["certificate"] is not None, report
    assert "DNS:localhost" in report["certificate"]["san"]
    assert not any("Unix socket" in w for w in report["warnings"]), report

    query = cli("query", "--format", "plain", "select current_user", env=env)
    assert (query.returncode, query.stdout.strip()) == (0, roles.app), query


def test_project_value_beats_the_service_and_the_child_sees_the_same(
    roles: Roles, isolated: Path, cli: Any
) -> None:
    env = service_setup(isolated, roles, rootcert=True)
    # The project sets the user; the service's user must not win in the child either (libpq
    # puts a service above PG* variables, so exec hands the project's values over in a service).
    (isolated / "pgconnect.toml").write_text(
        f'name = "svc"\n[vars]\nDB_SERVICE = "agree"\nDB_USERNAME = "{roles.other}"\n'
    )
    env["DB_PASSWORD"] = roles.other_password
    params = explained(cli("explain", "--json", env=env))
    assert (params["user"]["value"], params["user"]["source"]) == (roles.other, "file:[vars]")
    assert params["host"]["source"] == "libpq-service:agree"
    out = cli("exec", "--", "psql", "-XAtc", "select current_user", env=env)
    assert (out.returncode, out.stdout.strip()) == (0, roles.other), out


# --------------------------------------------------------------------------- sslrootcert=system


def test_sslrootcert_system_means_verify_full_as_in_libpq(
    roles: Roles, isolated: Path, cli: Any
) -> None:
    server = roles.server
    write_project(
        isolated,
        f'name = "sys"\n[vars]\nDB_HOST = "localhost"\nDB_PORT = "{server.port}"\n'
        f'DB_USERNAME = "{roles.app}"\nDB_NAME = "postgres"\nDB_SSLROOTCERT = "system"\n',
    )
    env = {"DB_PASSWORD": roles.app_password}
    params = explained(cli("explain", "--json", env=env))
    assert params["sslmode"]["value"] == "verify-full"
    assert "sslmode=verify-full" in cli("url", env=env).stdout

    # libpq: the test CA is not among the system's roots, so verification fails at TLS.
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(
            make_conninfo(
                "",
                **server.params(
                    host="localhost",
                    user=roles.app,
                    sslmode=None,
                    password=roles.app_password,
                    sslrootcert="system",
                ),
            )
        )
    out = cli("check", "--json", env=env)
    assert out.returncode == 6, out
    assert json.loads(out.stdout)["results"][0]["stage"] == "tls"
    # Every weaker mode is refused by libpq with this root; check says why, not "tcp".
    every = cli("check", "--json", "--sslmode", "all", env=env)
    assert every.returncode == 6, every
    for r in json.loads(every.stdout)["results"]:
        assert not r["ok"], r
        if r["sslmode"] != "verify-full":
            assert "weak sslmode" in r["error"], r
            assert "sslrootcert=system" in r["hint"], r

    # A weaker mode with it: libpq refuses the pair, so does pgconnect (exit 3, named).
    with pytest.raises(psycopg.OperationalError, match="weak sslmode"):
        psycopg.connect(make_conninfo("", **server.params(sslmode="require", sslrootcert="system")))
    weak = cli("query", "select 1", env={**env, "DB_SSLMODE": "require"})
    assert weak.returncode == 3, weak
    assert "sslrootcert=system" in weak.stderr
    assert "verify-full" in weak.stderr


def test_pgsslmode_in_the_environment_beats_the_default(
    roles: Roles, isolated: Path, cli: Any
) -> None:
    write_project(isolated, 'name = "envmode"\n[vars]\nDB_HOST = "db.example.com"\n')
    params = explained(cli("explain", "--json", env={"PGSSLMODE": "verify-full"}))
    assert params["sslmode"] == {
        "keyword": "sslmode",
        "name": None,
        "value": "verify-full",
        "source": "libpq-env:PGSSLMODE",
    }
    assert "sslmode" not in cli("url", env={"PGSSLMODE": "verify-full"}).stdout


# --------------------------------------------------------------------------- passfiles


def test_explain_names_the_passfile_libpq_will_use(roles: Roles, isolated: Path, cli: Any) -> None:
    tcp_project(isolated, roles)
    pgpass = Path(os.environ["HOME"]) / ".pgpass"
    write_private(pgpass, f"127.0.0.1:{roles.server.port}:postgres:{roles.app}:{SENTINEL}\n")
    out = cli("explain")
    assert out.returncode == 0, out
    assert f"libpq-passfile:{pgpass}" in out.stdout
    assert SENTINEL not in out.output
    # libpq agrees: it logs in with that password (here the wrong one, so it is rejected).
    query = cli("query", "select 1")
    assert query.returncode == 7, query
    assert SENTINEL not in query.output
    # A passfile libpq refuses (group/other may read it) is not reported.
    pgpass.chmod(0o644)
    assert "libpq-passfile" not in cli("explain").stdout


def test_child_gets_another_roles_password_from_the_users_pgpass(
    roles: Roles, isolated: Path, cli: Any
) -> None:
    server = roles.server
    tcp_project(isolated, roles)
    env = {"DB_PASSWORD": roles.app_password}
    pgpass = Path(os.environ["HOME"]) / ".pgpass"
    write_private(
        pgpass, f"127.0.0.1:{server.port}:postgres:{roles.other}:{roles.other_password}\n"
    )
    script = 'cat "$PGPASSFILE"; psql -XAtc "select current_user" -U "$1"'
    ran = cli("exec", "--", "sh", "-c", script, "sh", roles.other, env=env)
    assert ran.returncode == 0, ran
    lines = ran.stdout.splitlines()
    # The project's password only for the project's connection, then the user's own file.
    escaped = roles.app_password.replace("\\", "\\\\").replace(":", "\\:")
    assert lines[0] == f"127.0.0.1:{server.port}:postgres:{roles.app}:{escaped}"
    assert lines[1] == f"127.0.0.1:{server.port}:postgres:{roles.other}:{roles.other_password}"
    assert lines[-1] == roles.other
    # The project's own connection still logs in through the passfile.
    own = cli("exec", "--", "psql", "-XAtc", "select current_user", env=env)
    assert (own.returncode, own.stdout.strip()) == (0, roles.app), own


def test_project_password_is_not_offered_to_another_role(
    roles: Roles, isolated: Path, cli: Any
) -> None:
    server = roles.server
    same = "pgc_agree_same"
    server.create_role(same, roles.app_password)  # the project's password would let it in
    tcp_project(isolated, roles)
    env = {"DB_PASSWORD": roles.app_password}
    ran = cli("exec", "--", "psql", "-XAtc", "select current_user", "-U", same, env=env)
    assert ran.returncode == 2, ran
    assert "no password supplied" in ran.stderr, ran
    # A user's passfile libpq would refuse (mode 0644) is not copied in either.
    write_private(
        Path(os.environ["HOME"]) / ".pgpass",
        f"*:*:*:{same}:{roles.app_password}\n",
        mode=0o644,
    )
    ran = cli("exec", "--", "psql", "-XAtc", "select current_user", "-U", same, env=env)
    assert ran.returncode == 2, ran


@pytest.fixture
def encrypted_client_key(roles: Roles, pki_files: Any, isolated: Path) -> tuple[Path, Path]:
    """A client certificate with its key encrypted under SENTINEL (libpq loads it, and so needs
    sslpassword, whether or not the server asks for it)."""
    from cryptography.hazmat.primitives import serialization

    issued = pki_files.ca.issue_server("client", ["client"])
    key = serialization.load_pem_private_key(issued.key_pem, password=None)
    cert = isolated.parent / "client.crt"
    key_path = isolated.parent / "client.key"
    cert.write_bytes(issued.cert_pem)
    write_private(key_path, "")
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(SENTINEL.encode()),
        )
    )
    return cert, key_path


def test_sslpassword_reaches_the_child_through_a_private_service_file(
    roles: Roles, isolated: Path, cli: Any, encrypted_client_key: tuple[Path, Path]
) -> None:
    cert, key = encrypted_client_key
    tcp_project(isolated, roles, f'DB_SSLCERT = "{cert}"', f'DB_SSLKEY = "{key}"')
    env = {"DB_PASSWORD": roles.app_password}
    # Without sslpassword, libpq (psql) cannot load the key.
    bare = cli("exec", "--", "psql", "-XAtc", "select 1", env=env)
    assert bare.returncode == 2, bare
    assert "private key" in bare.stderr, bare

    env["DB_SSLPASSWORD"] = SENTINEL
    script = (
        'echo "FILE=$PGSERVICEFILE"; echo "MODE=$(stat -c %a "$PGSERVICEFILE")"; '
        'echo "SERVICE=$PGSERVICE"; psql -XAtc "select current_user"'
    )
    ran = cli("exec", "--", "sh", "-c", script, env=env)
    assert ran.returncode == 0, ran
    got = dict(line.split("=", 1) for line in ran.stdout.splitlines() if "=" in line)
    assert got["MODE"] == "600"
    assert got["SERVICE"] == "pgconnect"
    assert ran.stdout.splitlines()[-1] == roles.app
    assert not Path(got["FILE"]).exists()  # removed with the passfile
    assert "reads no environment variable" not in ran.stderr
    assert SENTINEL not in ran.output


# --------------------------------------------------------------------------- the child's libpq


@pytest.mark.parametrize(
    ("line", "named", "version"),
    [
        ('DB_REQUIRE_AUTH = "scram-sha-256"', "require_auth", 16),
        ('DB_SSLNEGOTIATION = "direct"', "sslnegotiation", 17),
        ('DB_SSLCERTMODE = "require"', "sslcertmode", 16),
    ],
)
def test_psql_refuses_what_its_libpq_would_ignore(
    roles: Roles, isolated: Path, cli: Any, line: str, named: str, version: int
) -> None:
    found = re.search(r"\(PostgreSQL\) (\d+)", psql("--version").stdout)
    assert found, "psql --version"
    if int(found.group(1)) >= version:
        pytest.skip(f"psql {found.group(1)} supports {named}")
    tcp_project(isolated, roles, line)
    env = {"DB_PASSWORD": roles.app_password}
    out = cli("psql", "-c", "select 1", env=env)
    assert out.returncode == 3, out
    assert named in out.stderr, out
    assert f"needs psql {version}" in out.stderr, out
    # exec cannot know its child's libpq: one warning per such parameter, then it runs.
    ran = cli("exec", "--", "sh", "-c", "exit 0", env=env)
    assert ran.returncode == 0, ran
    assert ran.stderr.count(named) == 1, ran


def test_psql_refuses_sslrootcert_system_before_16(roles: Roles, isolated: Path, cli: Any) -> None:
    found = re.search(r"\(PostgreSQL\) (\d+)", psql("--version").stdout)
    assert found
    if int(found.group(1)) >= 16:
        pytest.skip("psql 16+ knows sslrootcert=system")
    tcp_project(isolated, roles)
    out = cli("psql", "-c", "select 1", env={"DB_SSLROOTCERT": "system"})
    assert out.returncode == 3, out
    assert "sslrootcert=system" in out.stderr
    assert "16" in out.stderr


# --------------------------------------------------------------------------- URIs for every driver


@pytest.mark.parametrize("kind", ["tcp", "ipv6", "socket", "socket-with-colon"])
def test_revealed_uri_logs_in_with_psql_psycopg_and_node(
    roles: Roles, isolated: Path, cli: Any, colon_socket_dir: Path, kind: str
) -> None:
    server = roles.server
    host = {
        "tcp": "127.0.0.1",
        "ipv6": "::1",
        "socket": str(server.cluster.socket_dir),
        "socket-with-colon": str(colon_socket_dir),
    }[kind]
    tls = kind in ("tcp", "ipv6")
    lines = [
        'name = "uri"',
        "[vars]",
        f'DB_HOST = "{host}"',
        f'DB_PORT = "{server.port}"',
        f'DB_USERNAME = "{roles.app}"',
        'DB_NAME = "postgres"',
        *([f'DB_SSLROOTCERT = "{server.ca_file}"', 'DB_SSLMODE = "verify-full"'] if tls else []),
    ]
    write_project(isolated, "\n".join(lines) + "\n")
    out = cli("url", "--reveal", env={"DB_PASSWORD": roles.app_password})
    assert out.returncode == 0, out
    url = out.stdout.strip()
    if kind == "socket-with-colon":
        assert "@/postgres?host=%2F" in url, url
        assert "%3Aregion%3Ainst" in url, url
    if not tls:
        assert "ssl" not in url, url  # node-postgres would demand TLS on a socket

    assert psycopg.connect(url).execute("select current_user").fetchone() == (roles.app,)
    by_psql = psql("-Atc", "select current_user", url)
    assert (by_psql.returncode, by_psql.stdout.strip()) == (0, roles.app), by_psql
    by_node = node_login(url)
    assert by_node.returncode == 0, by_node.stderr
    assert json.loads(by_node.stdout) == {"user": roles.app, "dbname": "postgres", "ssl": tls}


# --------------------------------------------------------------------------- provider parameters


def test_pgbouncer_parameter_gets_its_hint(isolated: Path, cli: Any) -> None:
    write_project(isolated, 'name = "prov"\n')
    url = "postgresql://app@db.example.com:6543/postgres?pgbouncer=true"
    for args in (["url"], ["explain"], ["query", "select 1"]):
        out = cli(*args, env={"DB_URL": url})
        assert out.returncode == 3, out
        assert "pgbouncer" in out.stderr, out
        assert "Prisma" in out.stderr, out
        assert "libpq does not take it" in out.stderr, out
    refused = cli("var", "set", "DB_URL", url)
    assert refused.returncode == 3, refused
    assert "Prisma" in refused.stderr, refused


def test_init_from_url_removes_provider_parameters_with_a_note(isolated: Path, cli: Any) -> None:
    url = (
        "postgresql://app@db.example.com:6543/postgres"
        "?pgbouncer=true&sslmode=verify-full&connection_limit=1"
    )
    out = cli("init", "--from-url", "-", input=url + "\n")
    assert out.returncode == 0, out
    assert "removed ?pgbouncer=" in out.stderr
    assert "removed ?connection_limit=" in out.stderr
    text = (isolated / "pgconnect.toml").read_text()
    assert "pgbouncer" not in text
    assert "connection_limit" not in text
    assert 'DB_SSLMODE = "verify-full"' in text
    assert cli("url").stdout.strip() == (
        "postgresql://app@db.example.com:6543/postgres?sslmode=verify-full"
    )


# --------------------------------------------------------------------------- bytea


@pytest.mark.parametrize(
    "args",
    [
        ["--format", "plain"],
        ["--format", "csv"],
        ["--format", "json"],
        ["--format", "table"],
        ["--format", "json", "--read-only"],
        ["--format", "plain", "-p", "x=1"],
    ],
)
def test_bytea_is_hex_whatever_the_roles_bytea_output(
    roles: Roles, isolated: Path, cli: Any, args: list[str]
) -> None:
    server = roles.server
    oracle = psql(
        "-Atc",
        "select '\\x01ff'::bytea",
        env={
            "PGHOST": "127.0.0.1",
            "PGPORT": str(server.port),
            "PGUSER": roles.escaped,
            "PGPASSWORD": roles.app_password,
            "PGDATABASE": "postgres",
        },
    )
    assert oracle.stdout.strip() == "\\001\\377", oracle  # the role's setting is in force
    tcp_project(isolated, roles)  # DB_USERNAME from the environment: the escape role
    sql = "select '\\x01ff'::bytea as b" + (" where %(x)s = '1'" if "-p" in args else "")
    out = cli(
        "query",
        *args,
        sql,
        env={"DB_PASSWORD": roles.app_password, "DB_USERNAME": roles.escaped},
    )
    assert out.returncode == 0, out
    assert "\\x01ff" in out.stdout, out
    assert "\\001" not in out.stdout, out


# --------------------------------------------------------------------------- masking everywhere

COMMANDS: list[list[str]] = [
    ["explain"],
    ["explain", "--json"],
    ["url"],
    ["url", "--format", "conninfo"],
    ["url", "--format", "env"],
    ["url", "--format", "json"],
    ["var", "list"],
    ["var", "list", "--json"],
    ["check", "--json", "--timeout", "3"],
    ["query", "--timeout", "3", "select 1"],
]


def _sentinel(keyword: str) -> str:
    return f"{SENTINEL}-{keyword.replace('_', '')}"


def _values(form: str, port: int) -> dict[str, str]:
    """Every secret keyword at once, each with its own sentinel, in one FORM."""
    secret = sorted(keywords.SECRET)
    if form == "direct":
        return {"DB_" + k.upper(): _sentinel(k) for k in secret}
    if form == "kv":
        parts = " ".join(f"{k}={_sentinel(k)}" for k in secret)
        return {"DB_URL": f"host=127.0.0.1 port={port} dbname=postgres {parts}"}
    query = "&".join(f"{k}={_sentinel(k)}" for k in secret)
    return {"DB_URL": f"postgresql://127.0.0.1:{port}/postgres?{query}"}


def _no_sentinel(out: Result) -> None:
    assert SENTINEL not in out.stdout, out
    assert SENTINEL not in out.stderr, out


@pytest.mark.parametrize("form", ["direct", "kv", "uri"])
@pytest.mark.parametrize("keyword", sorted(keywords.SECRET))
def test_a_secret_keyword_in_the_file_is_refused_unechoed(
    keyword: str, form: str, isolated: Path, cli: Any
) -> None:
    secret = _sentinel(keyword)
    name, value = {
        "direct": ("DB_" + keyword.upper(), secret),
        "kv": ("DB_URL", f"host=db.example.com {keyword}={secret}"),
        "uri": ("DB_URL", f"postgresql://db.example.com/app?{keyword}={secret}"),
    }[form]
    write_project(isolated, f'name = "mask"\n[vars]\n{name} = "{value}"\n')
    for args in (["var", "list"], ["url"]):
        out = cli(*args)
        assert out.returncode == 3, (form, out)
        _no_sentinel(out)


@pytest.mark.parametrize("source", ["environment", "secret"])
@pytest.mark.parametrize("form", ["direct", "kv", "uri"])
def test_every_secret_keyword_is_masked_in_every_commands_output(
    form: str,
    source: str,
    isolated: Path,
    cli: Any,
    refused_port: int,
    keyring_session: KeyringSession,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    values = _values(form, refused_port)
    write_project(isolated, 'name = "mask"\n[vars]\nDB_HOST = "127.0.0.1"\n')
    env = keyring_session.environ()
    if source == "environment":
        env = {**env, **values}
    else:
        for name, value in values.items():
            put = cli("secret", "put", name, input=value + "\n", env=env)
            assert put.returncode == 0, (form, put)
            _no_sentinel(put)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda args: cli(*args, env=env), COMMANDS))
    for args, out in zip(COMMANDS, results, strict=True):
        assert out.returncode in (0, 3, 5), (args, out)
        _no_sentinel(out)
