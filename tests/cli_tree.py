"""The registered command tree, for tests that must cover every command (help, README, completion).

Commands are discovered from the app, so a new command is covered by these tests (help, docs,
completion) as soon as it is registered.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from pgconnect.cli import app


def root() -> Any:
    return typer.main.get_command(app)


def walk() -> list[tuple[tuple[str, ...], Any]]:
    """(path, command) for the root, every group and every command, depth first, hidden skipped."""
    out: list[tuple[tuple[str, ...], Any]] = []

    def visit(path: tuple[str, ...], cmd: Any) -> None:
        out.append((path, cmd))
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            if not getattr(sub, "hidden", False):
                visit((*path, name), sub)

    visit((), root())
    return out


def paths() -> list[tuple[str, ...]]:
    return [p for p, _ in walk() if p]


def leaves() -> list[tuple[tuple[str, ...], Any]]:
    return [(p, c) for p, c in walk() if p and not hasattr(c, "commands")]


def top_level() -> list[str]:
    return sorted(getattr(root(), "commands", {}))


def run_in_pty(
    argv: list[str], *, env: Mapping[str, str], cwd: Path, timeout: float = 60
) -> tuple[int, bytes]:
    """Run ARGV with stdin, stdout and stderr on a pseudo-terminal; return (status, all output)."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=dict(env), cwd=cwd, close_fds=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the pty's other end has closed it
                break
            if not data:
                break
            chunks.append(data)
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return status, b"".join(chunks)


def python_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pgconnect", *args]
