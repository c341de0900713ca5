"""Run the CLI on a real pseudo-terminal of a given size, and measure its peak memory."""

from __future__ import annotations

import fcntl
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

from tests.conftest import cli_environ


@dataclass
class PtyRun:
    status: int
    output: bytes  # stdout and stderr as the terminal received them, "\r\n" turned into "\n"
    max_rss_kib: int  # the child's peak RSS (wait4)
    seconds: float

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")


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
    """``python -m pgconnect ARGS`` with stdout and stderr on a COLUMNS×LINES pseudo-terminal
    (no COLUMNS/LINES in the environment: the program must ask the terminal). KEEP=False
    reads and discards the output (a big result)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    environ = {**cli_environ(env), "TERM": "xterm-256color"}
    environ.pop("COLUMNS", None)
    environ.pop("LINES", None)
    environ.update({k: v for k, v in env.items() if k in ("COLUMNS", "LINES")})
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgconnect", *args],
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
