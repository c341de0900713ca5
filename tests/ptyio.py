"""A command on a pseudo-terminal, driven like a person at a keyboard (expect / send)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType


class Pty:
    """ARGV with stdin, stdout and stderr on one pseudo-terminal. ``output`` is everything it
    wrote; ``expect`` waits for text after the last match."""

    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout: float = 30
    ) -> None:
        self.timeout = timeout
        self._master, slave = os.openpty()
        self.proc = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=dict(env),
            cwd=cwd,
            close_fds=True,
            start_new_session=True,  # the pty becomes its controlling terminal (getpass, shells)
        )
        os.close(slave)
        self._buffer = ""
        self._pos = 0

    def __enter__(self) -> Pty:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self._master)

    @property
    def output(self) -> str:
        return self._buffer

    def _read(self, until: float) -> bool:
        ready, _, _ = select.select(
            [self._master], [], [], max(0.0, min(0.2, until - time.monotonic()))
        )
        if not ready:
            return True
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: the other side is closed
            return False
        if not data:
            return False
        self._buffer += data.decode("utf-8", "replace")
        return True

    def expect_re(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + self.timeout
        regex = re.compile(pattern)
        while True:
            m = regex.search(self._buffer, self._pos)
            if m:
                self._pos = m.end()
                return m
            if time.monotonic() > deadline or not self._read(deadline):
                raise AssertionError(f"{pattern!r} not seen; output:\n{self._buffer[-3000:]}")

    def expect(self, text: str) -> None:
        self.expect_re(re.escape(text))

    def send(self, text: str) -> None:
        os.write(self._master, text.encode())

    def wait(self) -> int:
        deadline = time.monotonic() + self.timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            if not self._read(deadline):
                break
        return self.proc.wait(max(1.0, deadline - time.monotonic()))
