"""Variable names ↔ libpq keywords, and value validation, checked against libpq itself."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from pgconnect import params
from pgconnect.errors import ConfigError
from pgconnect.resolve import LIBPQ_ENV


def libpq_options() -> list[psycopg.pq.ConninfoOption]:
    return list(psycopg.pq.Conninfo.get_defaults())


# --------------------------------------------------------------------------- against libpq


def test_keyword_list_covers_every_keyword_libpq_reports() -> None:
    reported = {o.keyword.decode() for o in libpq_options()}
    assert reported, "libpq reported no keywords"
    missing = reported - params.LIBPQ_KEYWORDS
    assert not missing, f"libpq {psycopg.pq.version()} knows keywords pgconnect lacks: {missing}"


def test_every_keyword_libpq_masks_is_a_secret_keyword() -> None:
    # libpq's dispchar "*" marks a field to hide (password, sslpassword, oauth_client_secret).
    masked = {o.keyword.decode() for o in libpq_options() if o.dispchar == b"*"}
    assert "password" in masked
    assert masked <= params.SECRET_KEYWORDS


def test_every_libpq_environment_variable_is_known_to_explain() -> None:
    # explain shows libpq-env:PGxxx for a parameter libpq fills from its own environment.
    reported = {o.envvar.decode(): o.keyword.decode() for o in libpq_options() if o.envvar}
    assert {k: LIBPQ_ENV.get(k) for k in reported} == reported


@pytest.mark.parametrize("keyword", sorted(params.LIBPQ_KEYWORDS))
def test_every_keyword_round_trips_through_its_name(keyword: str) -> None:
    name = params.name_for(keyword)
    params.check_name(name)
    assert params.keyword_for(name) == keyword


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "keyword"),
    [
        ("DB_USERNAME", "user"),
        ("DB_USER", "user"),
        ("DB_NAME", "dbname"),
        ("DB_PASSWORD", "password"),
        ("DB_HOST", "host"),
        ("DB_SSLMODE", "sslmode"),
        ("DB_SSLROOTCERT", "sslrootcert"),
        ("DB_CONNECT_TIMEOUT", "connect_timeout"),
        ("DB_TARGET_SESSION_ATTRS", "target_session_attrs"),
        ("DB_CHANNEL_BINDING", "channel_binding"),
        ("DB_HOSTADDR", "hostaddr"),
        ("DB_URL", None),
        ("API_KEY", None),
        ("_PRIVATE", None),
    ],
)
def test_names_map_to_keywords(name: str, keyword: str | None) -> None:
    params.check_name(name)
    assert params.keyword_for(name) == keyword


@pytest.mark.parametrize(
    "name",
    ["DB_FOO", "DB_", "DB_DATABASE", "db_host", "Db_HOST", "1ABC", "A-B", "A B", "", "DB_HOST\n"],
)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(params.InvalidName) as info:
        params.check_name(name)
    assert repr(name) in str(info.value) or name in str(info.value)


# --------------------------------------------------------------------------- values

VALID = [
    ("DB_SSLMODE", mode)
    for mode in ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
] + [
    ("DB_PORT", "5432"),
    ("DB_PORT", "1"),
    ("DB_PORT", "65535"),
    ("DB_PORT", "5432,5433"),
    ("DB_PORT", ",5433"),  # libpq: an empty entry is the default port
    ("DB_CONNECT_TIMEOUT", "10"),
    ("DB_CONNECT_TIMEOUT", " 10 "),  # libpq's parse_int_param skips blanks
    ("DB_CONNECT_TIMEOUT", "-1"),
    ("DB_KEEPALIVES_IDLE", "+30"),
    ("DB_KEEPALIVES", "0"),
    ("DB_KEEPALIVES", "1"),
    ("DB_SSLSNI", "1"),
    ("DB_GSSENCMODE", "disable"),
    ("DB_CHANNEL_BINDING", "require"),
    ("DB_TARGET_SESSION_ATTRS", "prefer-standby"),
    ("DB_LOAD_BALANCE_HOSTS", "random"),
    ("DB_SSL_MIN_PROTOCOL_VERSION", "TLSv1.3"),
    ("DB_HOST", "db.example.com"),
    ("DB_HOST", "/var/run/postgresql"),
    ("DB_OPTIONS", "-c search_path=app"),
    ("API_KEY", "anything at all ✓"),
    ("DB_HOST", ""),
]

INVALID = [
    ("DB_SSLMODE", "VERIFY-FULL", "not one of"),  # libpq compares case-sensitively
    ("DB_SSLMODE", "required", "not one of"),
    ("DB_SSLMODE", "", "not one of"),  # libpq would ignore it and fall back to prefer
    ("DB_SSLMODE", "verify_full", "not one of"),
    ("DB_PORT", "0", "not a port number"),
    ("DB_PORT", "99999", "not a port number"),
    ("DB_PORT", "65536", "not a port number"),
    ("DB_PORT", "54x32", "not a port number"),
    ("DB_PORT", "-5432", "not a port number"),
    ("DB_PORT", "", "not a port number"),
    ("DB_PORT", "5432,99999", "not a port number"),
    ("DB_PORT", "²", "not a port number"),  # str.isdigit() says yes; libpq says no
    ("DB_PORT", "٥٤٣٢", "not a port number"),  # Arabic-Indic digits
    ("DB_CONNECT_TIMEOUT", "ten", "not an integer"),
    ("DB_CONNECT_TIMEOUT", "1.5", "not an integer"),
    ("DB_CONNECT_TIMEOUT", "١٠", "not an integer"),
    ("DB_CONNECT_TIMEOUT", "", "not an integer"),
    ("DB_KEEPALIVES", "yes", "not 0 or 1"),
    ("DB_KEEPALIVES", "true", "not 0 or 1"),
    ("DB_SSLSNI", "", "not 0 or 1"),
    ("DB_GSSENCMODE", "allow", "not one of"),
    ("DB_TARGET_SESSION_ATTRS", "readwrite", "not one of"),
    ("DB_SSL_MIN_PROTOCOL_VERSION", "tlsv1.2", "not one of"),
    ("DB_HOST", "db\x00.example.com", "NUL"),
    ("API_KEY", "a\x00b", "NUL"),
]


@pytest.mark.parametrize(("name", "value"), VALID)
def test_valid_values_pass(name: str, value: str) -> None:
    params.check_value(name, value)


@pytest.mark.parametrize(("name", "value", "why"), INVALID)
def test_invalid_values_are_refused_naming_the_key(name: str, value: str, why: str) -> None:
    with pytest.raises(params.InvalidValue) as info:
        params.check_value(name, value)
    assert str(info.value).startswith(f"{name}: ")
    assert why in str(info.value)


@pytest.mark.parametrize(
    ("host", "port", "ok"),
    [
        ("a,b", "5432,5433", True),
        ("a,b", "5432", True),  # one port for every host
        ("a", "5432", True),
        (None, "5432,5433,5434", True),  # nothing to compare with
        ("a,b", "5432,5433,5434", False),  # 3 ports for 2 hosts
        ("a,b,c", "5432,5433", False),
    ],
)
def test_host_and_port_lists(host: str | None, port: str, ok: bool) -> None:
    if ok:
        params.check_host_port_lists(host, port)
    else:
        with pytest.raises(params.InvalidValue, match="ports for"):
            params.check_host_port_lists(host, port)


@pytest.mark.parametrize(
    ("host", "mode"),
    [
        (None, "prefer"),  # libpq's default: the Unix socket
        ("", "prefer"),
        ("127.0.0.1", "prefer"),
        ("127.1.2.3", "prefer"),
        ("localhost", "prefer"),
        ("::1", "prefer"),
        ("/var/run/postgresql", "prefer"),
        ("/tmp,localhost", "prefer"),
        ("db.example.com", "require"),
        ("localhost,db.example.com", "require"),
        ("10.0.0.5", "require"),
        ("127.0.0.1.example.com", "require"),
        ("127.٠.٠.١", "require"),
    ],
)
def test_default_sslmode(host: str | None, mode: str) -> None:
    assert params.default_sslmode(host) == mode


# --------------------------------------------------------------------------- passwords in DB_URL

SENTINEL = "s3ntinel-PW"

WITH_SECRET = [
    f"postgresql://app:{SENTINEL}@db.example.com/billing",
    f"postgres://app:{SENTINEL}@db.example.com:5432/billing?sslmode=require",
    f"postgresql://app:{SENTINEL}@h1:5432,h2:5433/billing",
    f"postgresql://app@db.example.com/billing?password={SENTINEL}",
    f"postgresql://db.example.com/billing?sslmode=require&password={SENTINEL}",
    f"postgresql://db.example.com?password={SENTINEL}",
    f"postgresql://db.example.com/billing?passw%6Frd={SENTINEL}",  # libpq decodes the name
    f"postgresql://db.example.com/billing?sslpassword={SENTINEL}",
    f"postgresql://app:p%40ss{SENTINEL}@db.example.com/billing",
    f"postgresql://app:pa?ss{SENTINEL}@db.example.com/billing",
    f"host=db.example.com password={SENTINEL}",
    f"host=db.example.com password = '{SENTINEL} with spaces'",
    f"password={SENTINEL} host=db.example.com",
    f"host=db.example.com\tpassword={SENTINEL}",
    f"host=db.example.com sslpassword={SENTINEL}",
    f"host=db.example.com oauth_client_secret={SENTINEL}",
]

WITHOUT_SECRET = [
    "postgresql://app@db.example.com/billing",
    "postgresql://app@db.example.com/billing?sslmode=verify-full",
    "postgresql://db.example.com/billing",
    "postgresql://app:@db.example.com/billing",  # an empty password is no password
    "postgresql:///billing?host=/var/run/postgresql",
    "host=db.example.com user=app dbname=billing",
    "host='a password=b'",  # inside a quoted value
    "host=db.example.com user=password",
    "",
]


@pytest.mark.parametrize("url", WITH_SECRET)
def test_urls_carrying_a_secret_are_detected(url: str) -> None:
    assert params.url_has_password(url)
    # libpq agrees that the string sets a secret keyword.
    parsed = conninfo_to_dict(url)
    assert any(parsed.get(k) for k in params.SECRET_KEYWORDS)


@pytest.mark.parametrize("url", WITHOUT_SECRET)
def test_urls_without_a_secret_pass(url: str) -> None:
    assert not params.url_has_password(url)
    if url:
        parsed = conninfo_to_dict(url)
        assert not any(parsed.get(k) for k in params.SECRET_KEYWORDS)


_word = st.text(alphabet="abcdefghij%@:/?&=' \\,._-", max_size=12)
_uri_word = st.text(alphabet="abc%20-._~:@/", max_size=8)


@st.composite
def connection_strings(draw: st.DrawFn) -> str:
    keys = st.sampled_from(
        ["host", "user", "password", "sslpassword", "dbname", "passw%6Frd", "sslmode", "port"]
    )
    if draw(st.booleans()):
        userinfo = draw(st.sampled_from(["", "u@", "u:@", "u:x@", "u:%70w@", "u:p/w@"]))
        query = "&".join(f"{draw(keys)}={draw(_uri_word)}" for _ in range(draw(st.integers(0, 3))))
        tail = draw(st.sampled_from(["", "/db", "/db?", "?"]))
        host = draw(st.sampled_from(["h", "h:5432", "h1,h2", "", "[::1]"]))
        return f"postgresql://{userinfo}{host}{tail}{query}"
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        value = draw(_word)
        if draw(st.booleans()):
            value = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        parts.append(f"{draw(keys)}{draw(st.sampled_from(['=', ' = ', '=']))}{value}")
    return " ".join(parts)


@settings(max_examples=400, deadline=None)
@given(connection_strings())
# libpq takes the last of two passwords; pgconnect refuses the string for the first one, whose
# percent-encoded bytes are not UTF-8 text (found by this test): refused is not missed.
@example("postgresql://h/db?password=%a0&password=0")
def test_secret_detection_never_misses_what_libpq_parses(url: str) -> None:
    try:
        parsed = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return  # libpq refuses the string: it can never connect with a password from it
    except UnicodeDecodeError:
        return  # libpq parsed it, but psycopg cannot decode a percent-encoded non-UTF-8 byte
    if any(parsed.get(k) for k in params.SECRET_KEYWORDS):
        try:
            found = params.url_has_password(url)
        except ConfigError as exc:
            refusal = str(exc)
        else:
            assert found, parsed
            return
        # pgconnect refuses the whole string, password and all: nothing gets through.
        assert "is not UTF-8 text" in refusal, refusal
