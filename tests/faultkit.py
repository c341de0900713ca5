"""Tools shared by the reliability suites (hygiene, faults, bad input, fuzzing).

- ``SENTINEL``: a secret value unique to the test session; it must never show up where secret
  hygiene forbids it (docs/secret-hygiene.md).
- ``run_watched``: run the CLI as a real subprocess while a thread samples every process's argv
  (``/proc/*/cmdline``), so a password handed to a child on its command line is caught.
- ``leaks``: every place a value was found that it must not be (outputs, argv, the project file,
  files that are not 0600).
- ``tally``: how many cases each class tried; ``conftest.pytest_terminal_summary`` prints it and
  the README's "Reliability" section cites it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.cli_tree import python_argv
from tests.conftest import Result, cli_environ

#: Letters and digits only: the same in a URI, a conninfo string, JSON and shell quoting, so a
#: leak cannot hide behind an encoding.
SENTINEL = "Sntl" + secrets.token_hex(10)


# --------------------------------------------------------------------------- counting

TALLY: Counter[str] = Counter()


def tally(kind: str, n: int = 1) -> None:
    """Count N cases of KIND (e.g. "bad input: TOML files")."""
    TALLY[kind] += n


def tally_report() -> list[str]:
    if not TALLY:
        return []
    width = max(len(k) for k in TALLY)
    lines = [f"{k.ljust(width)}  {v}" for k, v in sorted(TALLY.items())]
    target = os.environ.get("PGCONNECT_RELIABILITY_JSON")
    if target:
        Path(target).write_text(json.dumps(dict(sorted(TALLY.items())), indent=1) + "\n")
    return lines


# --------------------------------------------------------------------------- watching a run


@dataclass
class Watched:
    """A finished CLI run and what the argv sampler saw while it ran."""

    result: Result
    argv_hits: list[str]  # cmdlines that contained a watched value
    samples: int  # how many times every process's argv was read
    elapsed: float
    cmdlines: set[bytes] = field(default_factory=set)  # every distinct cmdline seen

    @property
    def returncode(self) -> int:
        return self.result.returncode

    @property
    def stdout(self) -> str:
        return self.result.stdout

    @property
    def stderr(self) -> str:
        return self.result.stderr


def _all_cmdlines() -> Iterable[tuple[int, bytes]]:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                data = fh.read()
        except OSError:  # the process ended meanwhile
            continue
        if data:
            yield int(entry.name), data


def run_watched(
    args: Sequence[str],
    *,
    needles: Sequence[str] = (SENTINEL,),
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
    keep_cmdlines: bool = False,
    interval: float = 0.005,
) -> Watched:
    """Run ``python -m pgconnect ARGS``; sample every process's argv every INTERVAL seconds
    while it runs."""
    argv = python_argv(*args)
    data = input.encode() if isinstance(input, str) else input
    wanted = [n.encode() for n in needles if n]
    hits: list[str] = []
    seen: set[bytes] = set()
    samples = 0
    done = threading.Event()
    own = os.getpid()

    def sample() -> None:
        nonlocal samples
        while True:
            for pid, cmdline in _all_cmdlines():
                if pid == own:
                    continue
                if keep_cmdlines:
                    seen.add(cmdline)
                if any(w in cmdline for w in wanted):
                    hits.append(cmdline.replace(b"\0", b" ").decode("utf-8", "replace"))
            samples += 1
            if done.wait(interval):
                return

    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_environ(env),
        cwd=cwd,
    )
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(data if data is not None else b"", timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        done.set()
        sampler.join(10)
    elapsed = time.monotonic() - start
    result = Result(
        proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), argv
    )
    return Watched(result, hits, samples, elapsed, seen)


# --------------------------------------------------------------------------- where a value leaked


def files_containing(needle: str, *roots: Path) -> list[tuple[Path, int]]:
    """(path, mode) of every regular file under ROOTS whose bytes contain NEEDLE."""
    found: list[tuple[Path, int]] = []
    raw = needle.encode()
    for root in roots:
        if not root.exists():
            continue
        for folder, _dirs, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                try:
                    st = path.lstat()
                    if not stat.S_ISREG(st.st_mode) or st.st_size > 64 * 1024 * 1024:
                        continue
                    if raw in path.read_bytes():
                        found.append((path, stat.S_IMODE(st.st_mode)))
                except OSError:  # gone meanwhile (a passfile being removed), or a socket
                    continue
    return found


def leaks(
    run: Watched | Result,
    value: str,
    *,
    roots: Sequence[Path] = (),
    project_file: Path | None = None,
    stdout_may_hold: bool = False,
) -> list[str]:
    """Where VALUE is that secret hygiene (docs/secret-hygiene.md) forbids: stdout, stderr, argv, the project file, and any file
    under ROOTS that group or others may read. Empty when clean."""
    result = run.result if isinstance(run, Watched) else run
    found: list[str] = []
    if value in result.stdout and not stdout_may_hold:
        found.append("stdout")
    if value in result.stderr:
        found.append("stderr")
    if isinstance(run, Watched) and run.argv_hits:
        found += [f"argv: {cmd}" for cmd in run.argv_hits]
    if (
        project_file is not None
        and project_file.exists()
        and value.encode() in project_file.read_bytes()
    ):
        found.append(f"project file {project_file}")
    for path, mode in files_containing(value, *roots):
        if mode & 0o077:
            found.append(f"file {path} (mode {mode:04o})")
    return found


def has_traceback(result: Result | Watched) -> bool:
    text = result.stderr
    return "Traceback" in text or 'File "' in text


def error_lines(result: Result | Watched) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


# --------------------------------------------------------------------------- server roles


def scram_verifier(password: str, *, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier for PASSWORD (RFC 5802/7677, as ``pg_authid`` stores
    it), so a role gets its password without the password ever being sent to the server."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
