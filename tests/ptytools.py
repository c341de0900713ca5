"""Run the CLI on a real pseudo-terminal of a given size, and measure its peak memory.

``peak_rss_on_terminal`` runs the program from a small fresh Python process: a child forked
from the test process would count the test process's own resident memory in its peak (RSS is
counted from the fork, before the exec)."""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PtyRun:
    status: int
    output: bytes  # stdout and stderr as the terminal received them, "\r\n" turned into "\n"
    max_rss_kib: int  # the child's peak RSS (wait4)
    seconds: float

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")


def _spawn(
    argv: list[str],
    environ: dict[str, str],
    cwd: str,
    columns: int,
    lines: int,
    timeout: float,
    keep: bool,
) -> PtyRun:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=environ,
        cwd=cwd,
        start_new_session=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = started + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: every holder of the terminal's other end has closed it
                break
            if not data:
                break
            if keep:
                chunks.append(data)
        else:
            proc.kill()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return PtyRun(
        proc.returncode,
        b"".join(chunks).replace(b"\r\n", b"\n"),
        usage.ru_maxrss,
        time.monotonic() - started,
    )


def _environ(env: Mapping[str, str]) -> dict[str, str]:
    """The test CLI environment, without COLUMNS/LINES: the program must ask the terminal."""
    from tests.conftest import cli_environ

    environ = {**cli_environ(env), "TERM": "xterm-256color"}
    environ.pop("COLUMNS", None)
    environ.pop("LINES", None)
    environ.update({k: v for k, v in env.items() if k in ("COLUMNS", "LINES")})
    return environ


def run_on_terminal(
    args: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    columns: int = 200,
    lines: int = 50,
    timeout: float = 120,
    keep: bool = True,
) -> PtyRun:
    """``python -m pgconnect ARGS`` with stdout and stderr on a COLUMNS×LINES pseudo-terminal.
    KEEP=False reads and drops the output (a big result)."""
    argv = [sys.executable, "-m", "pgconnect", *args]
    return _spawn(argv, _environ(env), str(cwd), columns, lines, timeout, keep)


def peak_rss_on_terminal(
    args: list[str], *, env: Mapping[str, str], cwd: Path, columns: int = 200
) -> tuple[int, float]:
    """(status, peak RSS in MiB) of ``python -m pgconnect ARGS`` on a pseudo-terminal, run from a
    fresh small process; the output is read and dropped as a terminal would."""
    job = {
        "argv": [sys.executable, "-m", "pgconnect", *args],
        "environ": _environ(env),
        "cwd": str(cwd),
        "columns": columns,
    }
    out = subprocess.run(
        [sys.executable, __file__],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    status, kib = json.loads(out)
    return status, kib / 1024


if __name__ == "__main__":  # the fresh process of peak_rss_on_terminal
    job = json.loads(sys.stdin.read())
    run = _spawn(job["argv"], job["environ"], job["cwd"], job["columns"], 50, 540, keep=False)
    print(json.dumps([run.status, run.max_rss_kib]))
