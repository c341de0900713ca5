"""The ``exec`` passfile never outlives pgconnect, however pgconnect dies.

pgconnect is killed with SIGKILL at the worst moments (right after the file is written, right
after its guard starts) and at random moments of a run; afterwards no file anywhere in the private
runtime folder holds the sentinel password.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cli_environ, write_project
from tests.faultkit import SENTINEL, files_containing, tally

PROJECT = 'name = "pf"\nsecrets = []\n[vars]\nDB_HOST = "localhost"\nDB_NAME = "app"\n'


def _kill_after(function: str) -> str:
    """python -c code: pgconnect, with handoff.FUNCTION made to SIGKILL the process once it
    has returned (the moment right after that step)."""
    return (
        "import os, sys\n"
        "import pgconnect.handoff as h\n"
        f"orig = h.{function}\n"
        "def wrapped(*a, **k):\n"
        "    result = orig(*a, **k)\n"
        "    os.kill(os.getpid(), 9)\n"
        "    return result\n"
        f"h.{function} = wrapped\n"
        "from pgconnect.cli import main\n"
        "main(sys.argv[1:])\n"
    )


def _leftovers(runtime: Path, deadline: float = 10) -> list[str]:
    """Files in RUNTIME holding the sentinel, once the guard had DEADLINE seconds to act."""
    end = time.monotonic() + deadline
    while True:
        found = [str(p) for p, _ in files_containing(SENTINEL, runtime)]
        names = [p.name for p in runtime.iterdir() if p.name.endswith(".pgpass")]
        if (not found and not names) or time.monotonic() > end:
            return found + names
        time.sleep(0.05)


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    return folder


@pytest.mark.parametrize("step", ["write_passfile", "_start_watchdog"])
def test_sigkill_right_after_each_step_leaves_no_passfile(
    isolated: Path, runtime: Path, step: str
) -> None:
    write_project(isolated, PROJECT)
    env = cli_environ({"DB_PASSWORD": SENTINEL, "XDG_RUNTIME_DIR": str(runtime)})
    proc = subprocess.run(
        [sys.executable, "-c", _kill_after(step), "exec", "--", "sleep", "30"],
        capture_output=True,
        env=env,
        cwd=isolated,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc
    assert _leftovers(runtime) == []
    assert SENTINEL.encode() not in proc.stdout + proc.stderr
    tally("trust: passfile vs SIGKILL at each step")


def test_sigkill_at_random_moments_leaves_no_passfile(isolated: Path, runtime: Path) -> None:
    write_project(isolated, PROJECT)
    env = cli_environ({"DB_PASSWORD": SENTINEL, "XDG_RUNTIME_DIR": str(runtime)})
    rng = random.Random(13)
    # Calibrate: how long a start takes here, so the kills fall across the whole start-up.
    began = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pgconnect", "exec", "--", "true"],
        env=env,
        cwd=isolated,
        timeout=60,
        check=True,
    )
    span = time.monotonic() - began
    for _ in range(20):
        proc = subprocess.Popen(
            [sys.executable, "-m", "pgconnect", "exec", "--", "sleep", "3"],
            env=env,
            cwd=isolated,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 1.2) * span)
        proc.kill()
        proc.wait()
        assert _leftovers(runtime) == []
    # The children (sleep 3) orphaned by the kills end by themselves.
    tally("trust: passfile vs SIGKILL at random moments", 20)
