"""A crash of pgconnect while it holds a password leaves no core file (RLIMIT_CORE is 0).

The CLI is started with core dumps allowed (RLIMIT_CORE unlimited, as a developer's shell may
have it) and killed with SIGABRT while ``exec`` holds the password; a control process, treated
the same way, proves this machine would have written a core file into the folder.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cli_environ, write_project
from tests.faultkit import SENTINEL, files_containing, tally


def _allow_cores() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _cores(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name == "core" or p.name.startswith("core.")]


def _control_dumps(folder: Path) -> bool:
    """Does a process that aborts here, with cores allowed, leave a core file in FOLDER?"""
    control = folder / "control"
    control.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", "import os; os.abort()"],
        cwd=control,
        preexec_fn=_allow_cores,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGABRT
    found = bool(_cores(control))
    for core in _cores(control):
        core.unlink()
    control.rmdir()
    return found


def test_a_crash_holding_the_password_leaves_no_core(isolated: Path, tmp_path: Path) -> None:
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if not _control_dumps(isolated):
        pytest.skip(f"this machine writes no core file into the folder (core_pattern {pattern!r})")
    write_project(isolated, 'name = "core"\nsecrets = []\n[vars]\nDB_HOST = "localhost"\n')
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = cli_environ({"DB_PASSWORD": SENTINEL, "XDG_RUNTIME_DIR": str(runtime)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgconnect", "exec", "--", "sleep", "5"],
        cwd=isolated,
        env=env,
        preexec_fn=_allow_cores,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not list(runtime.glob("*.pgpass")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(runtime.glob("*.pgpass")), "exec never wrote its passfile"
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        proc.send_signal(signal.SIGABRT)
        assert proc.wait(30) == -signal.SIGABRT
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(0.5)  # a core is written before the parent sees the status; be generous anyway
    assert _cores(isolated) == []
    assert files_containing(SENTINEL, isolated) == []
    # Soft and hard: nothing pgconnect runs can raise it again.
    assert any(
        line.startswith("Max core file size") and line.split()[4:6] == ["0", "0"]
        for line in limits.splitlines()
    ), limits
    tally("trust: no core file")
