"""exec's wait for its child holds when another thread of the process exists.

A process-directed SIGCHLD goes to any thread that does not block it. pgconnect blocks it in the
thread that waits; a thread started earlier (a keyring call's deadline, a library's worker) does
not, and would take and discard it: the wait must not depend on that signal alone.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import REPO, clean_environ

SCRIPT = textwrap.dedent(
    """
    import threading, time
    from pgconnect import handoff

    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()  # SIGCHLD unblocked
    for _ in range(20):
        prepared = handoff.Handoff(environ={"PATH": "/usr/bin:/bin"})
        assert handoff.run(["true"], prepared) == 0
        assert handoff.run(["sh", "-c", "exit 3"], prepared) == 3
    print("done")
    """
)


def test_the_child_wait_ends_when_another_thread_took_sigchld() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**clean_environ(), "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
