"""Shell completion (docs/completions.md): the scripts in completions/ are current, and real shells that load
them complete commands, options, environment, variable and secret names, and sslmodes.

Every completion goes through a real ``bash`` (and ``zsh``/``fish`` when installed) running the
checked-in script, which calls back into ``pgconnect`` (a shim on PATH running this checkout).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pgconnect import completion
from pgconnect.cli import check, common
from tests import cli_tree
from tests.conftest import REPO, cli_environ, write_project

COMPLETIONS = REPO / "completions"
BASH_FILE = COMPLETIONS / "pgconnect.bash"

PROJECT = """\
name = "shop"
secrets = ["DB_PASSWORD"]

[vars]
DB_HOST = "db.example.com"
DB_PORT = "5432"
APP_MODE = "web"

[env.staging.vars]
DB_HOST = "staging.example.com"

[env.prod]
secrets = ["API_TOKEN"]

[env.prod.vars]
DB_NAME = "shop_prod"
"""


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    """A folder with a ``pgconnect`` executable that runs this checkout (as the scripts expect)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    exe = folder / "pgconnect"
    exe.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m pgconnect "$@"\n')
    exe.chmod(0o755)
    return folder


def _env(shim: Path) -> dict[str, str]:
    env = cli_environ()
    env["PATH"] = f"{shim}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def bash_complete(words: list[str], shim: Path, cwd: Path) -> list[str]:
    """Source completions/pgconnect.bash in bash, set COMP_WORDS/COMP_CWORD (the last word is the
    one being completed), call the completion function, return COMPREPLY."""
    cword = len(words) - 1
    script = "\n".join(
        [
            f"source {shlex.quote(str(BASH_FILE))}",
            # The function registered for pgconnect, as bash would find it on <Tab>.
            "func=$(complete -p pgconnect | sed -E 's/.* -F ([^ ]+) .*/\\1/')",
            f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})",
            f"COMP_CWORD={cword}",
            f'COMP_LINE="{" ".join(words)}"',
            '"$func" pgconnect "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
            "printf '%s\\n' \"${COMPREPLY[@]}\"",
        ]
    )
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        env=_env(shim),
        cwd=cwd,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


@pytest.fixture
def project(isolated: Path) -> Path:
    write_project(isolated, PROJECT)
    return isolated


# --------------------------------------------------------------------------- the files


def test_files_are_current(tmp_path: Path) -> None:
    """Regenerate into a temporary folder; completions/ must be identical (else run
    `python -m pgconnect.completion`)."""
    written = completion.write_all(tmp_path / "fresh")
    assert sorted(p.name for p in written) == sorted(completion.FILES.values())
    for path in written:
        committed = COMPLETIONS / path.name
        assert committed.exists(), f"missing {committed}: run python -m pgconnect.completion"
        assert committed.read_text() == path.read_text(), (
            f"{committed} is stale: run python -m pgconnect.completion"
        )


@pytest.mark.parametrize("shell", sorted(completion.FILES))
def test_source_instruction_prints_the_same_script(shell: str, shim: Path, tmp_path: Path) -> None:
    """`eval "$(_PGCONNECT_COMPLETE=source_bash pgconnect)"` gives exactly the checked-in script."""
    proc = subprocess.run(
        ["pgconnect"],
        capture_output=True,
        text=True,
        env={**_env(shim), completion.COMPLETE_VAR: f"source_{shell}"},
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    committed = (COMPLETIONS / completion.FILES[shell]).read_text()
    assert proc.stdout.rstrip("\n") == committed.rstrip("\n")


def test_bash_script_registers_the_function() -> None:
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", f"source {BASH_FILE} && complete -p pgconnect"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.stdout.strip() == "complete -o default -F _pgconnect_completion pgconnect"


# --------------------------------------------------------------------------- bash, for real


@pytest.mark.parametrize("name", cli_tree.top_level())
def test_bash_completes_every_command_from_two_letters(
    name: str, shim: Path, tmp_path: Path
) -> None:
    assert name in bash_complete(["pgconnect", name[:2]], shim, tmp_path)


def test_bash_completes_sa_to_sandbox(shim: Path, tmp_path: Path) -> None:
    assert bash_complete(["pgconnect", "sa"], shim, tmp_path) == ["sandbox"]


def test_bash_completes_se_to_secret(shim: Path, tmp_path: Path) -> None:
    assert "secret" in bash_complete(["pgconnect", "se"], shim, tmp_path)


@pytest.mark.parametrize(
    "group", [p[0] for p, c in cli_tree.walk() if len(p) == 1 and hasattr(c, "commands")]
)
def test_bash_completes_every_subcommand(group: str, shim: Path, tmp_path: Path) -> None:
    expected = {p[1] for p in cli_tree.paths() if len(p) == 2 and p[0] == group}
    assert set(bash_complete(["pgconnect", group, ""], shim, tmp_path)) == expected


def test_bash_completes_options(shim: Path, tmp_path: Path) -> None:
    got = bash_complete(["pgconnect", "sandbox", "start", "--"], shim, tmp_path)
    assert {"--port", "--env", "--config", "--debug", "--help"} <= set(got)


def test_bash_completes_environment_names(shim: Path, project: Path) -> None:
    assert bash_complete(["pgconnect", "var", "list", "-e", ""], shim, project) == [
        "prod",
        "staging",
    ]
    assert bash_complete(["pgconnect", "explain", "--env", "st"], shim, project) == ["staging"]


def test_bash_completes_environment_names_from_config(shim: Path, project: Path) -> None:
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    got = bash_complete(
        ["pgconnect", "var", "list", "--config", str(project / "pgconnect.toml"), "-e", "p"],
        shim,
        elsewhere,
    )
    assert got == ["prod"]


def test_bash_completes_variable_names(shim: Path, project: Path) -> None:
    got = bash_complete(["pgconnect", "var", "get", "DB_"], shim, project)
    assert got == ["DB_HOST", "DB_NAME", "DB_PORT"]


def test_bash_completion_outside_a_project_is_empty_and_quiet(shim: Path, tmp_path: Path) -> None:
    assert bash_complete(["pgconnect", "var", "get", "DB_"], shim, tmp_path) == []


def test_bash_completes_secret_names(shim: Path, project: Path) -> None:
    assert bash_complete(["pgconnect", "secret", "delete", ""], shim, project) == [
        "API_TOKEN",
        "DB_PASSWORD",
    ]
    assert bash_complete(["pgconnect", "secret", "delete", "-e", "staging", ""], shim, project) == [
        "DB_PASSWORD"
    ]


def test_bash_completes_secret_put_s_command_options_and_allow_s_names(
    shim: Path, project: Path
) -> None:
    got = bash_complete(["pgconnect", "secret", "put", "DB_PASSWORD", "--"], shim, project)
    expected = {"--command", "--aws-rds-iam", "--region", "--gcp-cloudsql-iam", "--azure-entra"}
    assert expected | {"--timeout"} <= set(got)
    path = project / "pgconnect.toml"
    path.write_text(
        path.read_text().replace(
            "[env.prod.vars]",
            '[env.prod.secret_commands]\nAPI_TOKEN = ["op", "read", "x"]\n\n[env.prod.vars]',
        )
    )
    assert bash_complete(["pgconnect", "secret", "allow", ""], shim, project) == ["API_TOKEN"]
    assert bash_complete(["pgconnect", "secret", "allow", "-e", "staging", ""], shim, project) == []


def test_bash_completes_sslmodes(shim: Path, tmp_path: Path) -> None:
    got = bash_complete(["pgconnect", "check", "--sslmode", ""], shim, tmp_path)
    assert set(got) == {
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
        "all",
    }
    assert bash_complete(["pgconnect", "check", "--sslmode", "verify-"], shim, tmp_path) == [
        "verify-ca",
        "verify-full",
    ]


# --------------------------------------------------------------------------- the helpers


def test_secret_and_sslmode_helpers(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The callbacks commands attach (secret NAME arguments, check --sslmode)."""
    monkeypatch.setattr(common, "STATE", common.State())
    assert common.complete_secret("") == ["API_TOKEN", "DB_PASSWORD"]
    assert common.complete_secret("DB") == ["DB_PASSWORD"]
    monkeypatch.setattr(common, "STATE", common.State(env="prod"))
    assert common.complete_secret("") == ["API_TOKEN", "DB_PASSWORD"]
    monkeypatch.setattr(common, "STATE", common.State(env="staging"))
    assert common.complete_secret("") == ["DB_PASSWORD"]
    assert check._complete_sslmode("verify") == ["verify-ca", "verify-full"]
    assert check._complete_sslmode("a") == ["allow", "all"]
    monkeypatch.chdir(project.parent)
    monkeypatch.setattr(common, "STATE", common.State())
    assert common.complete_secret("") == []  # no project: nothing, no error


# --------------------------------------------------------------------------- zsh and fish, for real


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
@pytest.mark.parametrize("how", ["sourced", "autoloaded"])
def test_zsh_completes(how: str, shim: Path, project: Path) -> None:
    """zsh runs the checked-in _pgconnect; compsys's functions are stubs that print their input.
    Autoloaded from $fpath it must complete on the very first call (not only register)."""
    load = (
        f"source {COMPLETIONS / '_pgconnect'}"
        if how == "sourced"
        else f"fpath=({COMPLETIONS} $fpath); autoload -Uz _pgconnect"
    )
    script = "\n".join(
        [
            # compsys, reduced to what the script uses: compdef maps a command to a function,
            # and <Tab> calls the mapped function (_pgconnect, from #compdef, until remapped).
            "typeset -A comps",
            'compdef() { comps[$2]=$1; print -r -- "COMPDEF $*" }',
            "tab() { ${comps[pgconnect]:-_pgconnect} }",
            '_arguments() { print -r -- "ARGS $*" }',
            "_files() { print -r -- FILES }",
            load,
            "words=(pgconnect sa); CURRENT=2",
            "tab",
            "words=(pgconnect var list -e ''); CURRENT=5",
            "tab",
        ]
    )
    proc = subprocess.run(
        ["zsh", "-f", "-c", script],
        capture_output=True,
        text=True,
        env=_env(shim),
        cwd=project,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    args = [line for line in lines if line.startswith("ARGS ")]
    assert len(args) == 2, proc.stdout
    assert '"sandbox"' in args[0]
    assert '"prod"' in args[1]
    assert '"staging"' in args[1]
    assert lines.count("COMPDEF _pgconnect_completion pgconnect") == 1


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes(shim: Path, project: Path) -> None:
    script = (
        f"source {COMPLETIONS / 'pgconnect.fish'}; "
        "complete -C'pgconnect sa'; complete -C'pgconnect var list -e '; "
        "complete -C'pgconnect var get DB_H'"
    )
    env = {**_env(shim), "HOME": str(project), "XDG_CONFIG_HOME": str(project / ".config")}
    proc = subprocess.run(
        ["fish", "--no-config", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    values = [line.split("\t")[0] for line in proc.stdout.splitlines()]
    assert values == ["sandbox", "prod", "staging", "DB_HOST"]
