"""The one table of libpq keywords, checked against the libpq psycopg links, and every reader of it;
libpq's own files (service file, passfile) read and written as libpq does, with libpq as oracle."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from pgconnect import connstr as conninfo
from pgconnect import handoff, keywords, libpqfiles, params, resolve
from pgconnect.errors import ConfigError

SENTINEL = "SENTINEL-kw-4d2a"


def _defaults() -> dict[str, pq.ConninfoOption]:
    return {o.keyword.decode(): o for o in pq.Conninfo.get_defaults()}


def test_table_is_libpqs_keyword_list() -> None:
    assert set(_defaults()) == keywords.NAMES


def test_table_env_vars_are_libpqs() -> None:
    expected = {k: o.envvar.decode() for k, o in _defaults().items() if o.envvar}
    assert expected == keywords.ENV_VARS
    assert {v: k for k, v in expected.items()} == keywords.BY_ENV_VAR


def test_table_secrets_cover_what_libpq_hides() -> None:
    hidden = {k for k, o in _defaults().items() if o.dispchar == b"*"}
    assert hidden <= keywords.SECRET
    # libpq 18's SCRAM keys are shown as "D" (debug) by libpq, but they are credentials.
    assert {"scram_client_key", "scram_server_key"} <= keywords.SECRET


def test_every_enum_choice_is_accepted_by_libpq() -> None:
    for keyword, allowed in keywords.choices().items():
        for value in allowed:
            assert conninfo_to_dict(conninfo.to_conninfo({keyword: value})) == {keyword: value}


def test_old_names_are_views_of_the_table() -> None:
    # Other modules (and another engineer's redaction work) read params' names.
    assert params.SECRET_KEYWORDS == keywords.SECRET
    assert params.LIBPQ_KEYWORDS == keywords.NAMES
    assert params.PATH_KEYWORDS == keywords.PATHS
    assert conninfo.ENV_VARS == keywords.ENV_VARS
    assert resolve.LIBPQ_ENV == keywords.BY_ENV_VAR


@pytest.mark.parametrize("keyword", sorted(keywords.SECRET))
def test_every_secret_keyword_is_redacted_in_both_forms(keyword: str) -> None:
    kv = f"host=db.example.com {keyword}={SENTINEL} port=5432"
    uri = f"postgresql://db.example.com/app?{keyword}={SENTINEL}&sslmode=require"
    for text in (kv, uri, f"connection to {uri} failed", f"error in '{kv}'"):
        assert SENTINEL not in conninfo.redact(text), text
    for fmt, build in conninfo.FORMATS.items():
        shown = build({"host": "h", keyword: SENTINEL})
        assert SENTINEL not in shown, fmt


@pytest.mark.parametrize(
    ("keyword", "value", "needed"),
    [
        ("require_auth", "scram-sha-256", 16),
        ("sslrootcert", "system", 16),
        ("sslrootcert", "/etc/ssl/root.crt", None),
        ("sslcertmode", "require", 16),
        ("sslnegotiation", "direct", 17),
        ("sslnegotiation", "postgres", None),  # what libpq before 17 does anyway
        ("sslcertmode", "allow", None),
        ("load_balance_hosts", "random", 16),
        ("target_session_attrs", "read-write", None),
        ("target_session_attrs", "standby", 14),
        ("sslmode", "verify-full", None),
    ],
)
def test_needs(keyword: str, value: str, needed: int | None) -> None:
    assert keywords.needs(keyword, value) == needed


def test_unsupported_names_the_parameter_and_version() -> None:
    got = handoff.unsupported(
        {"require_auth": "scram-sha-256", "sslrootcert": "system", "sslmode": "verify-full"}, 15
    )
    assert got == [("require_auth", 16), ("sslrootcert=system", 16)]
    assert handoff.unsupported({"require_auth": "scram-sha-256"}, 16) == []


# --------------------------------------------------------------------------- provider parameters


@pytest.mark.parametrize("name", sorted(keywords.PROVIDER_PARAMETERS))
def test_provider_parameter_is_refused_with_its_meaning(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        conninfo.parse(f"postgresql://app@h/db?{name}=1")
    assert name in info.value.message
    assert info.value.hint is not None
    assert "libpq does not take it" in info.value.hint


def test_provider_parameters_are_removed_and_the_rest_kept() -> None:
    url = "postgresql://u:p%3F@h:6543/postgres?pgbouncer=true&sslmode=require&connection_limit=1"
    clean, removed = conninfo.without_provider_parameters(url)
    assert removed == ["pgbouncer", "connection_limit"]
    assert conninfo_to_dict(clean) == {
        "user": "u",
        "password": "p?",
        "host": "h",
        "port": "6543",
        "dbname": "postgres",
        "sslmode": "require",
    }
    assert conninfo.without_provider_parameters("host=h pgbouncer=true") == (
        "host=h pgbouncer=true",
        [],
    )


# --------------------------------------------------------------------------- URIs


@pytest.mark.parametrize(
    ("host", "expected_start"),
    [
        (
            "/cloudsql/proj:region:inst",
            "postgresql://app@/db?host=%2Fcloudsql%2Fproj%3Aregion%3Ainst",
        ),
        ("/var/run/postgresql", "postgresql://app@%2Fvar%2Frun%2Fpostgresql:5432/db"),
        ("::1", "postgresql://app@[::1]:5432/db"),
    ],
)
def test_uri_host_forms_round_trip_through_libpq(host: str, expected_start: str) -> None:
    p = {"host": host, "port": "5432", "user": "app", "dbname": "db", "sslmode": "prefer"}
    uri = conninfo.to_uri(p)
    assert uri.startswith(expected_start), uri
    parsed = conninfo_to_dict(uri)
    socket = host.startswith("/")
    assert parsed == ({k: v for k, v in p.items() if k != "sslmode"} if socket else p)


def test_socket_only_uri_carries_no_tls_demand() -> None:
    p = {
        "host": "/tmp",
        "sslmode": "require",
        "sslrootcert": "/r.crt",
        "sslcert": "/c.crt",
        "sslkey": "/c.key",
        "dbname": "d",
    }
    assert conninfo.to_uri(p) == "postgresql://%2Ftmp/d"
    # A TCP host keeps them all.
    assert "sslmode=require" in conninfo.to_uri({**p, "host": "/tmp,db.example.com"})


# --------------------------------------------------------------------------- service files


def _service_file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "services.conf"
    path.write_text(text)
    return {"PGSERVICEFILE": str(path), "HOME": str(tmp_path)}


def test_service_file_parsed_as_libpq_does(tmp_path: Path) -> None:
    environ = _service_file(
        tmp_path,
        "# comment\n[other]\nhost=elsewhere\n\n  [agree]  \n  host=db.example.com \n"
        "port=6543\nsslmode=verify-full\nsslmode=disable\noptions=-c a=b\n[next]\nhost=x\n",
    )
    entry = libpqfiles.find_service("agree", environ)
    assert entry.values == {
        "host": "db.example.com",
        "port": "6543",
        "sslmode": "verify-full",  # the first setting wins
        "options": "-c a=b",
    }
    assert entry.path == Path(environ["PGSERVICEFILE"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[s]\nhost = x\n", "syntax error in service file"),
        ("[s]\nnot_a_keyword=1\n", "syntax error in service file"),
        ("[s]\nservice=t\n", "nested service specifications not supported"),
        ("[t]\nhost=x\n", 'definition of service "s" not found'),
    ],
)
def test_service_file_errors_are_libpqs(tmp_path: Path, text: str, message: str) -> None:
    environ = _service_file(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        libpqfiles.find_service("s", environ)
    # libpq agrees: a real connection attempt with the same file fails the same way.
    import psycopg

    old = dict(os.environ)
    try:
        os.environ.update(environ)
        with pytest.raises(psycopg.OperationalError, match=re.escape(message)):
            psycopg.connect("service=s connect_timeout=1")
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_service_file_falls_back_to_the_system_file(tmp_path: Path) -> None:
    sysconf = tmp_path / "etc"
    sysconf.mkdir()
    (sysconf / "pg_service.conf").write_text("[s]\nport=7777\n")
    (tmp_path / ".pg_service.conf").write_text("[t]\nport=1\n")
    environ = {"HOME": str(tmp_path), "PGSYSCONFDIR": str(sysconf)}
    assert libpqfiles.find_service("s", environ).values == {"port": "7777"}
    assert libpqfiles.find_service("t", environ).values == {"port": "1"}


def test_service_text_is_read_back(tmp_path: Path) -> None:
    values = {"host": "h", "sslpassword": "a=b c#d", "options": "-c x=y"}
    environ = _service_file(tmp_path, libpqfiles.service_text("s", values))
    assert libpqfiles.find_service("s", environ).values == values
    with pytest.raises(ConfigError):
        libpqfiles.service_text("s", {"sslpassword": "two\nlines"})


# --------------------------------------------------------------------------- passfiles


@pytest.mark.parametrize(
    ("line", "host", "found"),
    [
        ("h:5432:db:u:pw", "h", "pw"),
        ("*:*:*:*:pw", "other", "pw"),
        ("h:5432:db:u:p\\:w\\\\d:ignored", "h", "p:w\\d"),
        ("localhost:5432:db:u:pw", "", "pw"),
        ("localhost:5432:db:u:pw", "/var/run/postgresql", "pw"),
        ("localhost:5432:db:u:pw", "/tmp", None),
        ("/tmp:5432:db:u:pw", "/tmp", "pw"),
        ("h\\:x:5432:db:u:pw", "h:x", "pw"),
        ("h:5433:db:u:pw", "h", None),
        ("#h:5432:db:u:pw", "h", None),
    ],
)
def test_passfile_lookup(tmp_path: Path, line: str, host: str, found: str | None) -> None:
    path = tmp_path / "pgpass"
    path.write_text(line + "\n")
    path.chmod(0o600)
    assert libpqfiles.passfile_lookup(path, host, "5432", "db", "u") == found


def test_passfile_libpq_would_refuse_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "pgpass"
    path.write_text("*:*:*:*:pw\n")
    path.chmod(0o644)
    assert libpqfiles.passfile_lookup(path, "h", "5432", "db", "u") is None
    path.chmod(0o600)
    assert libpqfiles.passfile_lookup(path, "h", "5432", "db", "u") == "pw"


def test_passfile_entries_are_scoped_and_escaped(tmp_path: Path) -> None:
    targets = libpqfiles.targets(
        {"host": "a,b:c,*", "port": "1,2,3", "dbname": "d", "user": "u"}, {}
    )
    text = libpqfiles.passfile_entries(targets, "p:w\\")
    assert text == "a:1:d:u:p\\:w\\\\\nb\\:c:2:d:u:p\\:w\\\\\n\\*:3:d:u:p\\:w\\\\\n"
    path = tmp_path / "pgpass"
    path.write_text(text)
    path.chmod(0o600)
    assert libpqfiles.passfile_lookup(path, "b:c", "2", "d", "u") == "p:w\\"
    assert libpqfiles.passfile_lookup(path, "*", "3", "d", "u") == "p:w\\"
    assert libpqfiles.passfile_lookup(path, "other", "3", "d", "u") is None
    assert libpqfiles.passfile_lookup(path, "a", "1", "d", "someone-else") is None
