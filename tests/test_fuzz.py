"""Fuzzing (hypothesis) of the chain a user's values travel, end to end, and of the TOML editor.

Extends, not repeats, the unit fuzzing elsewhere: tests/test_conninfo.py fuzzes each builder and
the parser on its own, tests/test_project.py fuzzes ``set_var`` on one fixed file. Here:

- values written with the editor into pgconnect.toml, read back with tomllib, resolved with an
  environment, a secret and a DB_URL base, then built as a URI, a key=value string and JSON,
  and parsed by libpq itself (``psycopg.conninfo.conninfo_to_dict``): libpq must get exactly the
  resolved parameters, and the masked forms never hold the password;
- the editor on randomly generated documents (comments, quoting styles, inline and dotted tables,
  CRLF) with random sequences of every edit it offers (set, unset, declare and undeclare a
  secret, create an environment), checked against a model after each step: re-parsed with
  tomllib, the other keys are unchanged, and the comments survive;
- a sample through the real CLI: ``var set`` then ``url --reveal`` gives libpq the same
  parameters.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from pgconnect import connstr, project
from pgconnect.errors import ConfigError
from pgconnect.filestore import FileStore
from pgconnect.params import SSLMODES, default_sslmode
from pgconnect.resolve import resolve
from pgconnect.secret import Secret, service_name
from tests.conftest import run_cli
from tests.faultkit import tally

# Any unicode but NUL (libpq strings are C strings) and lone surrogates (not encodable).
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=24)
SOME_TEXT = TEXT.filter(lambda t: t.strip() != "")
HOSTS = st.lists(
    st.one_of(
        st.sampled_from(["db.example.com", "127.0.0.1", "::1", "/var/run/postgresql", "h-1"]),
        SOME_TEXT.filter(lambda h: "," not in h),
    ),
    min_size=1,
    max_size=3,
)
PORT = st.integers(1, 65535).map(str)

# --------------------------------------------------------------------------- project → libpq


@st.composite
def connections(draw: st.DrawFn) -> dict[str, Any]:
    """A random project: base variables, an environment's overrides, a password and its source."""
    hosts = draw(HOSTS)
    base: dict[str, str] = {"DB_HOST": ",".join(hosts)}
    if draw(st.booleans()):
        base["DB_PORT"] = ",".join(draw(PORT) for _ in hosts)
    for name in ("DB_NAME", "DB_USERNAME", "DB_OPTIONS", "DB_APPLICATION_NAME"):
        if draw(st.booleans()):
            base[name] = draw(SOME_TEXT)
    if draw(st.booleans()):
        base["DB_SSLMODE"] = draw(st.sampled_from(SSLMODES))
    if draw(st.booleans()):
        base["DB_SSLROOTCERT"] = "/" + draw(SOME_TEXT.filter(lambda t: "\\" not in t))
    env_vars: dict[str, str] = {}
    if draw(st.booleans()):
        for name in draw(
            st.lists(st.sampled_from(["DB_NAME", "DB_USERNAME", "PLAIN"]), max_size=2)
        ):
            env_vars[name] = draw(SOME_TEXT)
    return {
        "base": base,
        "env": env_vars or None,
        # A fixed prefix makes the password findable in a masked string, whatever the text.
        "password": "Pw-" + draw(TEXT),
        "source": draw(st.sampled_from(["environment", "secret"])),
    }


KEYWORD = {
    "DB_HOST": "host",
    "DB_PORT": "port",
    "DB_NAME": "dbname",
    "DB_USERNAME": "user",
    "DB_OPTIONS": "options",
    "DB_APPLICATION_NAME": "application_name",
    "DB_SSLMODE": "sslmode",
    "DB_SSLROOTCERT": "sslrootcert",
}


def expected_params(c: dict[str, Any]) -> dict[str, str]:
    """What libpq must get (docs/sources.md): env overrides base, the password, a default sslmode."""
    merged = {**c["base"], **(c["env"] or {})}
    out = {KEYWORD[n]: v for n, v in merged.items() if n in KEYWORD}
    out["password"] = c["password"]
    if "sslmode" not in out:
        out["sslmode"] = default_sslmode(out["host"])
    return out


def libpq_reads(text: str, params: dict[str, str]) -> dict[str, str]:
    got = {k: str(v) for k, v in conninfo_to_dict(text).items()}
    # to_uri's one documented exception: a host list without ports reads back with port=",…".
    if "port" not in params and "port" in got and set(got["port"]) <= {","}:
        del got["port"]
    # The other: a socket-only URI leaves out the TLS keywords (libpq ignores them on a socket).
    hosts = params.get("host", "").split(",")
    if (
        text.startswith("postgresql://")
        and params.get("host")
        and not params.get("hostaddr")
        and all(h.startswith(("/", "@")) for h in hosts)
    ):
        for keyword in ("sslmode", "sslcert", "sslkey", "sslrootcert", "sslnegotiation"):
            if keyword in params and keyword not in got:
                got[keyword] = params[keyword]
    return got


EXAMPLES = {
    "project → libpq": 0,
    "editor sequences": 0,
    "editor edits applied": 0,
    "editor edits refused": 0,
    "CLI → libpq": 0,
}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(connections())
def test_values_reach_libpq_exactly(c: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pgconnect.toml"
        project.create(path, project.initial_text("fuzz"), force=False)
        environ: dict[str, str] = {}
        store = FileStore(Path(folder) / "store" / "secrets.json")
        with project.edit(path) as editor:
            for name, value in c["base"].items():
                editor.set_var(name, value, None)
            if c["env"]:
                editor.ensure_env("staging")
                for name, value in c["env"].items():
                    editor.set_var(name, value, "staging")
            if c["source"] == "secret":
                editor.declare_secret("DB_PASSWORD", None)
        if c["source"] == "secret":
            store.set(service_name("fuzz", None), "DB_PASSWORD", Secret(c["password"]))
        else:
            environ["DB_PASSWORD"] = c["password"]
        loaded = project.load(path)
        env = "staging" if c["env"] else None
        resolution = resolve(loaded, env, store, environ=environ, connection_only=True)
    params = resolution.connect_params()
    assert params == expected_params(c)
    for fmt in ("uri", "conninfo"):
        assert libpq_reads(connstr.FORMATS[fmt](params, True), params) == params, fmt
        masked = connstr.FORMATS[fmt](params, False)
        assert c["password"] not in masked, fmt
    assert json.loads(connstr.to_json(params, True)) == params
    assert c["password"] not in connstr.to_json(params, False)
    EXAMPLES["project → libpq"] += 1


@st.composite
def url_with_overrides(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, str]]:
    """A DB_URL's parameters and the explicit DB_* variables that override some of them."""
    base = {"host": ",".join(draw(HOSTS)), "password": "Pw-" + draw(TEXT)}
    for keyword in ("dbname", "user", "options", "application_name"):
        if draw(st.booleans()):
            base[keyword] = draw(SOME_TEXT)
    base["sslmode"] = draw(st.sampled_from(SSLMODES))
    overrides: dict[str, str] = {}
    for name in draw(st.lists(st.sampled_from(["DB_NAME", "DB_USERNAME", "DB_OPTIONS"]))):
        overrides[name] = draw(SOME_TEXT)
    if draw(st.booleans()):
        overrides["DB_SSLMODE"] = draw(st.sampled_from(SSLMODES))
    return base, overrides


@settings(max_examples=200, deadline=None)
@given(url_with_overrides(), st.sampled_from(["environment", "secret"]))
def test_a_db_url_base_and_its_overrides_reach_libpq(
    case: tuple[dict[str, str], dict[str, str]], source: str
) -> None:
    base, overrides = case
    url = connstr.to_uri(base, reveal=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pgconnect.toml"
        project.create(path, project.initial_text("fuzz"), force=False)
        store = FileStore(Path(folder) / "store" / "secrets.json")
        environ: dict[str, str] = {}
        with project.edit(path) as editor:
            for name, value in overrides.items():
                editor.set_var(name, value, None)
            if source == "secret":
                editor.declare_secret("DB_URL", None)
        if source == "secret":
            store.set(service_name("fuzz", None), "DB_URL", Secret(url))
        else:
            environ["DB_URL"] = url
        resolution = resolve(project.load(path), None, store, environ=environ)
    params = resolution.connect_params()
    expected = {k: str(v) for k, v in conninfo_to_dict(url).items()}
    expected.update({KEYWORD[n]: v for n, v in overrides.items()})
    if "sslmode" not in expected:  # a socket-only URI carries none: pgconnect's default applies
        expected["sslmode"] = default_sslmode(expected.get("host"))
    assert params == expected
    for fmt in ("uri", "conninfo"):
        assert libpq_reads(connstr.FORMATS[fmt](params, True), params) == params
        assert base["password"] not in connstr.FORMATS[fmt](params, False)
    EXAMPLES["project → libpq"] += 1


# --------------------------------------------------------------------------- the editor, any document

PLAIN_NAMES = ["APP_A", "APP_B", "LITERAL", "PLAIN", "DB_NAME", "DB_APPLICATION_NAME"]
ENVS = ["staging", "prod"]


def _value(draw: st.DrawFn) -> tuple[str, str]:
    """(TOML text, value) of a string in a random quoting style."""
    value = draw(
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)
    )
    style = draw(st.sampled_from(["basic", "literal", "multiline"]))
    if style == "literal" and "'" not in value:
        return f"'{value}'", value
    if style == "multiline" and '"' not in value and "\\" not in value:
        return f'"""{value}"""', value
    return json.dumps(value, ensure_ascii=False), value


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A random valid project file and what it holds: {None|env: {vars}, secrets…}."""
    comment = st.sampled_from(["", "  # c", "  # ünïcode", "\t# tab"])
    lines = [f"# head{draw(comment)}", f'name = "fuzz"{draw(comment)}']
    model: dict[str, Any] = {"vars": {None: {}}, "secrets": {None: []}}
    base_secrets: list[str] = draw(
        st.lists(st.sampled_from(["DB_PASSWORD", "API_TOKEN"]), unique=True)
    )
    always: bool = draw(st.booleans())
    if base_secrets or always:
        lines.append(f"secrets = {json.dumps(base_secrets)}{draw(comment)}")
    model["secrets"][None] = base_secrets

    def table(where: str, key: str | None) -> None:
        names = draw(st.lists(st.sampled_from(PLAIN_NAMES), unique=True, max_size=4))
        pairs = []
        for n in names:
            text, value = _value(draw)
            pairs.append((n, text))
            model["vars"][key][n] = value
        style = draw(st.sampled_from(["table", "inline", "dotted"]))
        if style == "inline" and where == "vars":
            lines.append(f"vars = {{ {', '.join(f'{n} = {t}' for n, t in pairs)} }}{draw(comment)}")
        elif style == "dotted" and where == "vars":
            lines.extend(f"vars.{n} = {t}{draw(comment)}" for n, t in pairs)
        else:
            lines.append("")
            lines.append(f"[{where}]{draw(comment)}")
            for n, t in pairs:
                if draw(st.booleans()):
                    lines.append(f"# before {n}")
                lines.append(f"{n} = {t}{draw(comment)}")

    if draw(st.booleans()):
        table("vars", None)
    for env in draw(st.lists(st.sampled_from(ENVS), unique=True)):
        model["vars"][env] = {}
        model["secrets"][env] = []
        table(f"env.{env}.vars", env)
    text = "\n".join(lines) + "\n"
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return text, model


@st.composite
def edits(draw: st.DrawFn) -> list[tuple[str, str, str, str | None]]:
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["set", "set", "unset", "declare", "undeclare", "ensure"]))
        name = draw(st.sampled_from([*PLAIN_NAMES, "NEW_ONE", "API_TOKEN"]))
        value = draw(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")))
        env = draw(st.sampled_from([None, *ENVS, "fresh"]))
        ops.append((op, name, value, env))
    return ops


def read_model(data: dict[str, Any]) -> tuple[dict[Any, dict[str, str]], dict[Any, list[str]]]:
    vars_: dict[Any, dict[str, str]] = {None: dict(data.get("vars", {}))}
    secrets: dict[Any, list[str]] = {None: list(data.get("secrets", []))}
    for env, table in data.get("env", {}).items():
        vars_[env] = dict(table.get("vars", {}))
        secrets[env] = list(table.get("secrets", []))
    return vars_, secrets


def comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(documents(), edits())
def test_editor_on_any_document_changes_only_what_it_must(
    doc: tuple[str, dict[str, Any]], ops: list[tuple[str, str, str, str | None]]
) -> None:
    text, _ = doc
    try:
        project.parse(Path("pgconnect.toml"), text.encode())
    except ConfigError:
        assume(False)
    data = tomllib.loads(text)
    want_vars, want_secrets = read_model(data)
    crlf = "\r\n" in text
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pgconnect.toml"
        path.write_bytes(text.encode())
        for op, name, value, env in ops:
            before = path.read_bytes()
            try:
                with project.edit(path) as editor:
                    if op == "set":
                        editor.set_var(name, value, env)
                    elif op == "unset":
                        editor.unset_var(name, env)
                    elif op == "declare":
                        editor.declare_secret(name, env)
                    elif op == "undeclare":
                        editor.undeclare_secret(name, env)
                    else:
                        editor.ensure_env(env or "fresh")
            except ConfigError:
                # Refused (an invalid value for a DB_ name): nothing was written.
                assert path.read_bytes() == before
                EXAMPLES["editor edits refused"] += 1
                continue
            EXAMPLES["editor edits applied"] += 1
            # The model of what the edit must have done.
            target = env if op != "ensure" else (env or "fresh")
            if target is not None:
                want_vars.setdefault(target, {})
                want_secrets.setdefault(target, [])
            if op == "set":
                want_vars[env][name] = value
            elif op == "unset":
                want_vars.get(env, {}).pop(name, None)
            elif op == "declare" and name not in want_secrets[env]:
                want_secrets[env].append(name)
            elif op == "undeclare" and name in want_secrets.get(env, []):
                want_secrets[env].remove(name)
            after = path.read_bytes()
            got_vars, got_secrets = read_model(tomllib.loads(after.decode()))
            # Environments created empty may read back without a vars table: compare contents.
            assert {k: v for k, v in got_vars.items() if v} == {
                k: v for k, v in want_vars.items() if v
            }
            assert {k: v for k, v in got_secrets.items() if v} == {
                k: v for k, v in want_secrets.items() if v
            }
            assert tomllib.loads(after.decode())["name"] == "fuzz"
            project.parse(path, after)  # the validating reader every command uses
            if crlf:
                assert after.count(b"\n") == after.count(b"\r\n")
            # No comment is ever lost, unless it sat on a line the edit removed.
            if op not in ("unset", "undeclare"):
                assert set(comments(before.decode())) <= set(comments(after.decode()))
            assert os.listdir(folder) == ["pgconnect.toml"]
    EXAMPLES["editor sequences"] += 1


# --------------------------------------------------------------------------- through the real CLI


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(c=connections())
def test_cli_var_set_then_url_reveal_gives_libpq_the_same(
    c: dict[str, Any], isolated: Path
) -> None:
    with tempfile.TemporaryDirectory(dir=isolated) as folder:
        cwd = Path(folder)
        (cwd / "pgconnect.toml").write_text('name = "fuzz"\n')
        for name, value in c["base"].items():
            done = run_cli("var", "set", "--", name, value, cwd=cwd)
            assert done.returncode == 0, done
        env = {"DB_PASSWORD": c["password"]}
        outputs = {
            fmt: run_cli("url", "--reveal", "--format", fmt, env=env, cwd=cwd)
            for fmt in ("uri", "conninfo", "json")
        }
    expected = expected_params({**c, "env": None})
    for fmt, out in outputs.items():
        assert out.returncode == 0, out
        text = out.stdout.rstrip("\n")
        got = json.loads(text) if fmt == "json" else libpq_reads(text, expected)
        assert got == expected, fmt
    EXAMPLES["CLI → libpq"] += 1


@pytest.fixture(scope="module", autouse=True)
def _count() -> Any:
    yield
    for kind, n in EXAMPLES.items():
        if n:
            tally(f"fuzz: {kind}", n)
