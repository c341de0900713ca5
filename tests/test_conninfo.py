"""conninfo: the pure-Python parser agrees with libpq; the builders round-trip; secrets stay masked.

libpq itself (through ``psycopg.conninfo.conninfo_to_dict``) is the reference everywhere: the
parser is compared with it on libpq's own URI regression inputs, on a table of odd cases and on
random strings; the builders' output is parsed back by it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgconnect import connstr, params
from pgconnect.connstr import parse, redact, to_conninfo, to_env, to_json, to_uri
from pgconnect.errors import ConfigError
from pgconnect.project import parse as parse_project
from pgconnect.resolve import LIBPQ_ENV, resolve
from pgconnect.secret import Secret
from tests.conftest import REPO
from tests.libpq_cases import LIBPQ_INVALID_URIS

WEIRD = "p@ss:w/rd %?#'\"\\+=&"


def libpq(dsn: str) -> dict[str, str] | None:
    """libpq's reading of DSN (None when libpq refuses it)."""
    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except (psycopg.ProgrammingError, UnicodeDecodeError):
        return None


def ours(dsn: str) -> dict[str, str] | None:
    try:
        return parse(dsn)
    except ConfigError:
        return None


# The inputs of libpq's own URI regression test (src/interfaces/libpq/t/001_uri.pl, formerly
# test/regress.in), valid and invalid alike.
LIBPQ_URI_CASES = [
    "postgresql://uri-user:secret@host:12345/db",
    "postgresql://uri-user@host:12345/db",
    "postgresql://uri-user@host/db",
    "postgresql://host:12345/db",
    "postgresql://host/db",
    "postgresql://uri-user@host:12345/",
    "postgresql://uri-user@host/",
    "postgresql://uri-user@",
    "postgresql://host:12345/",
    "postgresql://host:12345",
    "postgresql://host/",
    "postgresql://host",
    "postgresql://",
    "postgresql://?hostaddr=127.0.0.1",
    "postgresql://example.com?hostaddr=63.1.2.4",
    "postgresql://%68ost/",
    "postgresql://host/db?user=uri-user",
    "postgresql://host/db?user=uri-user&port=12345",
    "postgresql://host/db?u%73er=someotheruser&port=12345",
    "postgresql://host/db?u%7aer=someotheruser&port=12345",
    "postgresql://host:12345?user=uri-user",
    "postgresql://host?user=uri-user",
    "postgresql://host?",
    "postgresql://[::1]:12345/db",
    "postgresql://[::1]/db",
    "postgresql://[2001:db8::1234]/",
    "postgresql://[200z:db8::1234]/",
    "postgresql://[::1]",
    "postgres://",
    "postgres:///",
    "postgres:///db",
    "postgres://uri-user@/db",
    "postgres://?host=/path/to/socket/dir",
    *LIBPQ_INVALID_URIS,
    "postgres://@host",
    "postgres://host:/",
    "postgres://:12345/",
    "postgres://otheruser@?host=/no/such/directory",
    "postgres://otheruser@/?host=/no/such/directory",
    "postgres://otheruser@:12345?host=/no/such/socket/path",
    "postgres://otheruser@:12345/db?host=/path/to/socket",
    "postgres://:12345/db?host=/path/to/socket",
    "postgres://:12345?host=/path/to/socket",
    "postgres://%2Fvar%2Flib%2Fpostgresql/dbname",
    "postgresql://host?sslmode=disable",
    "postgresql://host?sslmode=prefer",
    "postgresql://host?sslmode=verify-full",
]

# Odd cases of our own: quoting, escapes, white space, unicode, libpq's quirks.
ODD_CASES = [
    "",
    "   ",
    "host=a",
    "host = a  port =5432",
    "host=a host=b",
    "password='a b' user=x",
    r"password='it\'s' user=x",
    r"password=a\ b\\c",
    "password='' user=x",
    "password=   user=x",  # libpq: the value is 'user=x'
    "dbname='snow ☃ man' user=☃",
    "host='a'port=5",
    "application_name=a'b",
    "options='-c search_path=x'",
    "requiressl=1",
    "requiressl=0",
    "host=a\tport=1\nuser=u",
    "host='unterminated",
    r"host='a\\",
    "=x",
    "nosuchoption=1",
    "host",
    "host=a b",
    "POSTGRESQL://host",
    " postgresql://host",
    "postgresql://user:pa:ss@host",
    "postgresql://user:p?ss#x@host/db",
    "postgresql://user@host/db?password=s%26x",
    "postgresql://host?user=a@b",  # libpq looks ahead for '@' past the '?'
    "postgresql://host/db@x",
    "postgresql://h1,h2,h3",
    "postgresql://h1:1,h2:2/db",
    "postgresql://h1:1,h2",
    "postgresql://,",
    "postgresql://[::1]:1,[fe80::1%25eth0]:2/db",
    "postgresql://[::1],h2",
    "postgresql://host:1:2",
    "postgresql://host/db/x?sslmode=require",
    "postgresql://host?ssl=true",
    "postgresql://host?ssl=false",
    "postgresql://host?a=1&&b=2",
    "postgresql://host?sslmode=require&",
    "postgresql://host?&",
    "postgresql://host?=x",
    "postgresql://host?%41=1",
    "postgresql://host?dbname=%FF",
    "postgresql://host/%E2%98%83",
    "postgresql://%E2%98%83:%E2%98%83@%E2%98%83/%E2%98%83",
    "postgresql://u%3Ax:p%40w@host",
    "postgresql://user:p+w@host?application_name=a+b",
    "postgresql://host?options=-c%20search_path%3Dx",
    "postgresql://%2Fvar%2Frun%2Fpostgresql:5433/db",
    "postgresql:///db?host=%2Ftmp",
    "postgresql://[%3A%3A1]/db",
    "postgresql://[]:5",
    "postgresql://host?host=other",
    "postgresql://host?requiressl=1",
    "postgresql://app:SENTINEL@[::1/db",
]


@pytest.mark.parametrize("dsn", LIBPQ_URI_CASES + ODD_CASES)
def test_parse_agrees_with_libpq(dsn: str) -> None:
    assert ours(dsn) == libpq(dsn)


def test_parse_known_values() -> None:
    # Agreement alone could hide a shared misunderstanding: a few values written out.
    assert parse("postgresql://%2Fvar%2Frun%2Fpostgresql:5433/db") == {
        "host": "/var/run/postgresql",
        "port": "5433",
        "dbname": "db",
    }
    assert parse("postgresql://a%40b:p%2Fw@[::1]:1,h2:2/d%2Fb?sslmode=verify-full") == {
        "user": "a@b",
        "password": "p/w",
        "host": "::1,h2",
        "port": "1,2",
        "dbname": "d/b",
        "sslmode": "verify-full",
    }
    assert parse("postgresql://u:p+w@h") == {"user": "u", "password": "p+w", "host": "h"}
    assert parse(r"password='a\'b c' host=x") == {"password": "a'b c", "host": "x"}


URI_TOKENS = [
    "postgresql://",
    "postgres://",
    "@",
    ":",
    "/",
    "?",
    "&",
    "=",
    ",",
    "[",
    "]",
    "[::1]",
    "%",
    "%2F",
    "%41",
    "%zz",
    "%E2%98%83",
    "%FF",
    "host",
    "user",
    "password",
    "dbname",
    "port",
    "sslmode",
    "ssl",
    "true",
    "requiressl",
    "1",
    "5432",
    "a",
    "☃",
    " ",
    "'",
    "\\",
    "\t",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(URI_TOKENS), max_size=14).map("".join))
def test_parse_agrees_with_libpq_on_random_strings(dsn: str) -> None:
    assert ours(dsn) == libpq(dsn)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["host", "user", "password", "dbname", "port", "bogus", ""]),
            st.sampled_from([" ", "", "\t"]),
            st.text(
                alphabet=st.sampled_from(list("ab '\\=\t☃")),
                max_size=6,
            ),
        ),
        max_size=4,
    ).map(lambda parts: " ".join(f"{k}{sp}={v}" for k, sp, v in parts))
)
def test_parse_agrees_with_libpq_on_random_key_value_strings(dsn: str) -> None:
    assert ours(dsn) == libpq(dsn)


# --------------------------------------------------------------------------- errors, redaction

SENTINEL = "S3ntinel-Pw"


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://app:{SENTINEL}@[::1/db",
        f"postgresql://app:{SENTINEL}@[]/db",
        f"postgresql://app:{SENTINEL}@[::1]z/db",
        f"postgresql://app:{SENTINEL}%zz@host/db",
        f"postgresql://app:{SENTINEL}%00@host/db",
        f"postgresql://app:{SENTINEL}%FF@host/db",
        f"postgresql://app:{SENTINEL}@host/db?zzz",
        f"postgresql://app:{SENTINEL}@host/db?sslmode=require&x=1",
        f"postgresql://app@host/db?password={SENTINEL}%zz",
        f"postgresql://app@host/db?password={SENTINEL}&junk",
        f"postgresql://app:{SENTINEL}?x@host/db?junk",
        f"host=h password={SENTINEL} user",
        f"host=h password='{SENTINEL}",
        f"host=h password={SENTINEL} bogus=1",
        f"password={SENTINEL[:4]} {SENTINEL[4:]}",
        f"host=h password='{SENTINEL}' nosuch=1",
    ],
)
def test_invalid_strings_are_config_errors_without_the_password(dsn: str) -> None:
    assert libpq(dsn) is None  # libpq refuses it too
    with pytest.raises(ConfigError) as info:
        parse(dsn)
    message = info.value.message
    assert message.startswith("not a valid connection string")
    assert SENTINEL not in message
    assert SENTINEL[4:] not in message


def test_libpq_echoes_the_password_and_we_do_not() -> None:
    dsn = f"postgresql://app:{SENTINEL}@[::1/db"
    with pytest.raises(psycopg.ProgrammingError) as info:
        conninfo_to_dict(dsn)
    assert SENTINEL in str(info.value)  # the reason redaction exists
    with pytest.raises(ConfigError) as ours_info:
        parse(dsn)
    assert "postgresql://app:****@[::1/db" in ours_info.value.message


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("connect to postgresql://u:secret@h/db failed", "secret"),
        ("postgres://u:se?c#r:et@h/db", "se?c#r:et"),
        ('URI: "postgresql://u:p%40ss@[::1"', "p%40ss"),
        ("postgresql://u@h/db?sslmode=require&password=secret&x=1", "secret"),
        ("host=h password=secret user=u", "secret"),
        ("host=h password = 'sec ret' user=u", "sec ret"),
        (r"host=h password=sec\ ret user=u", "ret"),
        ("host=h sslpassword=secret", "secret"),
        ("PASSWORD=secret", "secret"),
    ],
)
def test_redact(text: str, gone: str) -> None:
    assert gone not in redact(text)
    assert "****" in redact(text)


def test_redact_given_secrets_also_percent_encoded() -> None:
    text = f"x {WEIRD} y p%40ss%3Aw%2Frd%20%25%3F%23%27%22%5C%2B%3D%26 z"
    out = redact(text, WEIRD)
    assert out == "x **** y **** z"


def test_parse_refuses_nul() -> None:
    with pytest.raises(ConfigError):
        parse("host=a\x00b")


def test_parse_does_not_import_psycopg() -> None:
    code = (
        "import sys\n"
        "from pgconnect import connstr\n"
        "p = connstr.parse('postgresql://u:p@h/db?sslmode=require')\n"
        "connstr.to_uri(p); connstr.to_conninfo(p); connstr.to_env(p); connstr.to_json(p)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'keyring')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.stdout.strip() == "[]", out


# --------------------------------------------------------------------------- libpq's tables


def test_keywords_are_libpqs() -> None:
    defaults = psycopg.pq.Conninfo.get_defaults()
    assert {o.keyword.decode() for o in defaults} == set(params.LIBPQ_KEYWORDS)


def test_environment_variables_are_libpqs() -> None:
    defaults = psycopg.pq.Conninfo.get_defaults()
    expected = {o.keyword.decode(): o.envvar.decode() for o in defaults if o.envvar}
    assert expected == connstr.ENV_VARS
    assert {v: k for k, v in expected.items()} == LIBPQ_ENV


# --------------------------------------------------------------------------- builders

# Any unicode but NUL (libpq strings are C strings) and lone surrogates (not encodable).
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30)


@settings(max_examples=300, deadline=None)
@given(password=TEXT, user=TEXT, dbname=TEXT)
def test_any_password_user_dbname_round_trips_through_libpq(
    password: str, user: str, dbname: str
) -> None:
    p = {
        "host": "db.example.com",
        "port": "5432",
        "user": user,
        "password": password,
        "dbname": dbname,
        "sslmode": "verify-full",
    }
    uri = to_uri(p, reveal=True)
    kv = to_conninfo(p, reveal=True)
    assert conninfo_to_dict(uri) == p
    assert conninfo_to_dict(kv) == p
    assert parse(uri) == p
    assert parse(kv) == p


PARAM_DICTS = st.dictionaries(
    st.sampled_from(
        [
            "host",
            "hostaddr",
            "port",
            "dbname",
            "user",
            "password",
            "sslmode",
            "sslrootcert",
            "options",
            "application_name",
            "sslpassword",
        ]
    ),
    TEXT,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(PARAM_DICTS)
def test_to_conninfo_is_make_conninfo(p: dict[str, str]) -> None:
    assert to_conninfo(p, reveal=True) == make_conninfo("", **p)


@settings(max_examples=300, deadline=None)
@given(PARAM_DICTS)
def test_to_uri_round_trips_any_parameters(p: dict[str, str]) -> None:
    uri = to_uri(p, reveal=True)
    expected = dict(p)
    if "port" not in p and "," in p.get("host", ""):
        expected["port"] = "," * p["host"].count(",")  # the exception documented in to_uri
    hosts = p.get("host", "").split(",")
    if p.get("host") and not p.get("hostaddr") and all(h.startswith(("/", "@")) for h in hosts):
        # The other documented exception: a socket-only URI carries no TLS keyword (libpq
        # ignores them on a socket; node-postgres would demand TLS).
        for keyword in ("sslmode", "sslcert", "sslkey", "sslrootcert", "sslnegotiation"):
            expected.pop(keyword, None)
    assert conninfo_to_dict(uri) == expected
    assert parse(uri) == expected
    assert "+" not in uri  # never quote_plus: '+' is %2B, space is %20


HOSTS = st.lists(
    st.one_of(
        st.sampled_from(["db.example.com", "127.0.0.1", "::1", "fe80::1%eth0", "/var/run/pg", ""]),
        TEXT.filter(lambda h: "," not in h),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(HOSTS, st.integers(0, 3), st.integers(1, 65535))
def test_to_uri_keeps_host_and_port_lists(hosts: list[str], nports: int, port: int) -> None:
    p = {"host": ",".join(hosts)}
    if nports == 1:
        p["port"] = str(port)
    elif nports > 1:
        p["port"] = ",".join(str(port + i) if i % 2 else "" for i in range(len(hosts)))
    uri = to_uri(p, reveal=True)
    expected = dict(p)
    if nports == 0 and len(hosts) > 1:
        # libpq reads "postgresql://h1,h2" with one empty port per host (documented in to_uri).
        expected["port"] = "," * (len(hosts) - 1)
    assert conninfo_to_dict(uri) == expected
    assert parse(uri) == expected


@pytest.mark.parametrize(
    ("p", "uri"),
    [
        (
            {"host": "::1", "port": "5432", "user": "app", "dbname": "billing"},
            "postgresql://app@[::1]:5432/billing",
        ),
        (
            {"host": "/var/run/postgresql", "dbname": "x"},
            "postgresql://%2Fvar%2Frun%2Fpostgresql/x",
        ),
        (
            {"host": "h1,h2", "port": "5432,5433", "dbname": "d"},
            "postgresql://h1:5432,h2:5433/d",
        ),
        (
            {"host": "h1,h2", "port": "6543", "dbname": "d"},
            "postgresql://h1,h2/d?port=6543",
        ),
        (
            {"user": "a b", "password": "p+q", "host": "h", "options": "-c x=1"},
            "postgresql://a%20b:p%2Bq@h/?options=-c%20x%3D1",
        ),
        (
            {"user": "app", "password": WEIRD, "host": "h"},
            "postgresql://app:p%40ss%3Aw%2Frd%20%25%3F%23%27%22%5C%2B%3D%26@h",
        ),
        ({"dbname": "", "user": "", "host": ""}, "postgresql:///?user=&host=&dbname="),
    ],
)
def test_to_uri_shapes(p: dict[str, str], uri: str) -> None:
    assert to_uri(p, reveal=True) == uri
    assert conninfo_to_dict(uri) == p


def test_masked_output_never_holds_the_password() -> None:
    p = {"host": "h", "user": "app", "password": WEIRD, "sslpassword": "keypw", "dbname": "d"}
    assert to_uri(p) == "postgresql://app:****@h/d?sslpassword=****"
    assert to_conninfo(p) == "host=h user=app password=**** sslpassword=**** dbname=d"
    assert to_json(p) == (
        '{"host": "h", "user": "app", "password": "****", "sslpassword": "****", "dbname": "d"}'
    )
    assert "PGPASSWORD=****" in to_env(p)
    assert "export PGPASSWORD" not in to_env(p)


@settings(max_examples=200, deadline=None)
@given(PARAM_DICTS, TEXT, TEXT)
def test_masked_output_does_not_depend_on_the_secrets(
    p: dict[str, str], password: str, other: str
) -> None:
    # Stronger than "the password is not in it": the masked text is the same whatever the
    # password (and sslpassword) is, so nothing about it can leak.
    one = {**p, "password": password, "sslpassword": password}
    two = {**p, "password": other, "sslpassword": other}
    for fmt in connstr.FORMATS.values():
        assert fmt(one, False) == fmt(two, False)


def _eval_env(text: str, names: list[str]) -> dict[str, str]:
    script = 'eval "$1"; shift; for n in "$@"; do eval "printf \'%s\\0\' \\"\\${$n-UNSET}\\""; done'
    out = subprocess.run(
        ["sh", "-c", script, "sh", text, *names],
        capture_output=True,
        check=True,
        env={"PATH": os.defpath},
    ).stdout.decode()
    return dict(zip(names, out.split("\0")[:-1], strict=True))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(PARAM_DICTS)
def test_env_format_evaluates_back_to_the_values(p: dict[str, str]) -> None:
    text = to_env(p, reveal=True)
    variables, dropped = connstr.env_vars(p)
    assert set(dropped) == {"sslpassword"} & set(p)
    assert _eval_env(text, list(variables)) == variables


def test_env_format_shape() -> None:
    text = to_env({"host": "db.example.com", "password": WEIRD, "application_name": "a b"}, True)
    assert text.splitlines() == [
        "export PGHOST=db.example.com",
        "export PGPASSWORD='p@ss:w/rd %?#'\"'\"'\"\\+=&'",
        "export PGAPPNAME='a b'",
    ]


# --------------------------------------------------------------------------- DB_URL and defaults


def _project(tmp_path: Path, text: str) -> object:
    path = tmp_path / "pgconnect.toml"
    path.write_text(text)
    return parse_project(path, text.encode())


def _resolve(
    tmp_path: Path, vars_toml: str, environ: dict[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    project = _project(tmp_path, f'name = "t"\n[vars]\n{vars_toml}\n')
    resolution = resolve(project, None, None, environ=environ or {})  # type: ignore[arg-type]
    return {p.keyword: (p.shown(), p.source) for p in resolution.params}


def test_db_url_is_the_base_and_db_vars_override_its_parts(tmp_path: Path) -> None:
    got = _resolve(
        tmp_path,
        'DB_URL = "postgresql://app@db.example.com:5432/billing?sslmode=verify-ca"\n'
        'DB_HOST = "replica.example.com"\nDB_NAME = "reports"',
        {"DB_PASSWORD": "pw"},
    )
    assert got == {
        "host": ("replica.example.com", "file:[vars]"),
        "port": ("5432", "file:[vars]"),
        "dbname": ("reports", "file:[vars]"),
        "user": ("app", "file:[vars]"),
        "password": ("****", "environment"),
        "sslmode": ("verify-ca", "file:[vars]"),
    }


def test_db_url_from_the_environment_with_a_password(tmp_path: Path) -> None:
    project = _project(tmp_path, 'name = "t"\n[vars]\nDB_PORT = "6543"\n')
    resolution = resolve(
        project,  # type: ignore[arg-type]
        None,
        None,
        environ={"DB_URL": f"postgresql://app:{quote(WEIRD, safe='')}@h1,h2/db"},
    )
    assert resolution.connect_params() == {
        "host": "h1,h2",
        "port": "6543",
        "dbname": "db",
        "user": "app",
        "password": WEIRD,
        "sslmode": "require",
    }
    assert isinstance(resolution.param("password").value, Secret)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("host", "sslmode"),
    [
        (None, "prefer"),
        ("localhost", "prefer"),
        ("127.0.0.1", "prefer"),
        ("::1", "prefer"),
        ("/var/run/postgresql", "prefer"),
        ("db.example.com", "require"),
        ("10.0.0.5", "require"),
        ("localhost,db.example.com", "require"),
        ("/tmp,127.0.0.2", "prefer"),
    ],
)
def test_default_sslmode(tmp_path: Path, host: str | None, sslmode: str) -> None:
    got = _resolve(tmp_path, f'DB_HOST = "{host}"' if host else "")
    assert got["sslmode"] == (sslmode, "default")


def test_default_sslmode_follows_the_host_from_db_url(tmp_path: Path) -> None:
    got = _resolve(tmp_path, 'DB_URL = "postgresql://db.example.com/x"')
    assert got["sslmode"] == ("require", "default")
    got = _resolve(tmp_path, 'DB_URL = "postgresql://db.example.com/x"\nDB_HOST = "127.0.0.1"')
    assert got["sslmode"] == ("prefer", "default")


def test_invalid_value_inside_db_url(tmp_path: Path) -> None:
    # The file's DB_URL is checked when the file is read (docs/project-file.md), before resolve.
    with pytest.raises(ConfigError, match=r"\[vars\] DB_URL has an invalid sslmode"):
        _resolve(tmp_path, 'DB_URL = "postgresql://h/x?sslmode=verify"')


def test_malformed_db_url_names_its_source_and_hides_the_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(tmp_path, "", {"DB_URL": f"postgresql://app:{SENTINEL}@[::1/db"})
    assert info.value.message.startswith(
        "DB_URL (from environment) is not a valid connection string"
    )
    assert SENTINEL not in info.value.message
