"""The README's main-job command, ``bash scripts/demo.sh``, run for real as a user would: without
a keyring session (it must bring its own, never plaintext), leaving no server and no folder behind.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, clean_environ

pytestmark = pytest.mark.slow

STEPS = [
    "$ pgconnect init",
    "$ pgconnect sandbox start",
    "$ pgconnect secret list -e sandbox",
    "$ pgconnect check -e sandbox --sslmode all",
    '$ pgconnect query -e sandbox --format table "select current_user',
    '$ pgconnect query -e sandbox --json "select 42 as answer',
    "$ pgconnect url -e sandbox",
    "$ pgconnect sandbox stop",
]


def _run_demo(
    tmp_path: Path, script: Path = REPO / "scripts" / "demo.sh"
) -> tuple[subprocess.CompletedProcess[str], Path]:
    env = clean_environ()
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # a machine with no keyring session
    env["HOME"] = str(tmp_path)
    proc = subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    m = re.search(r"^# a new project in (\S+)$", proc.stdout, re.M)
    assert m, proc
    return proc, Path(m.group(1))


def _postgres_in(folder: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(folder).encode() in cmdline:
                found.append(entry.name)
    return found


def test_demo_runs_every_step_against_the_sandbox(tmp_path: Path) -> None:
    proc, project = _run_demo(tmp_path)
    assert proc.returncode == 0, proc
    positions = [proc.stdout.find(step) for step in STEPS]
    assert all(p >= 0 for p in positions), (positions, proc.stdout)
    assert positions == sorted(positions)
    assert "throwaway gnome-keyring" in proc.stderr  # it brought its own keyring
    # Between the --json step and the next step, stdout holds exactly the query's JSON.
    after = proc.stdout[positions[5] :].split("\n", 1)[1]
    [row] = json.loads(after[: after.index("$ pgconnect url")])
    assert row["answer"] == 42
    assert row["ok"] is True
    assert row["doc"] == {"tags": ["a", "b"]}
    assert "verify-full" in proc.stdout + proc.stderr
    assert "postgresql://app:****@localhost:" in proc.stdout
    assert not project.parent.exists()
    assert _postgres_in(project.parent) == []


def test_demo_stops_the_sandbox_when_a_step_fails(tmp_path: Path) -> None:
    """A step after `sandbox start` fails (a copy of the demo with `run false` inserted there):
    the trap must stop the sandbox and remove the folder, and the demo's status is the failed
    step's."""
    copy = tmp_path / "checkout"
    (copy / "scripts").mkdir(parents=True)
    (copy / ".venv").symlink_to(REPO / ".venv")
    for name in ("setup.sh", "with-keyring.sh"):
        (copy / "scripts" / name).symlink_to(REPO / "scripts" / name)
    text = (REPO / "scripts" / "demo.sh").read_text()
    assert "\nstarted=1\n" in text
    (copy / "scripts" / "demo.sh").write_text(
        text.replace("\nstarted=1\n", "\nstarted=1\nrun false\n")
    )
    proc, project = _run_demo(tmp_path, copy / "scripts" / "demo.sh")
    assert proc.returncode == 1, proc
    assert "$ pgconnect sandbox start" in proc.stdout
    assert "$ false" in proc.stdout
    assert "sandbox running" in proc.stderr
    assert "the sandbox was stopped" in proc.stderr
    assert not project.parent.exists()
    assert _postgres_in(project.parent) == []
