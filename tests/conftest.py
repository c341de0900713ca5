"""The real things the tests run against, as pytest plugins (one file per topic):

- ``tests/plugin_servers.py``: the PostgreSQL test clusters (TLS on, TLS only, TLS off, wrong host
  certificate), a silent listener, a refused port, a small disk;
- ``tests/plugin_keyring.py``: a private D-Bus session with an unlocked gnome-keyring;
- ``tests/plugin_isolation.py``: every test isolated from the machine (``PG*``/``DB_*``/
  ``PGCONNECT_*`` cleared, a temporary HOME), and the CLI run as a real subprocess.

A new fixture goes into a new ``tests/plugin_<topic>.py``, registered with one line below. The
names tests import from here are re-exported from the plugins.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.plugin_isolation import (
        REPO,
        Result,
        clean_environ,
        cli_environ,
        project_for,
        run_cli,
        write_project,
    )
    from tests.plugin_keyring import KeyringSession, start_keyring_session, stop_keyring_session
    from tests.plugin_servers import HBA_ANY, HBA_TLS_ONLY, PKI, Server, Servers

pytest_plugins = [
    "tests.plugin_isolation",
    "tests.plugin_servers",
    "tests.plugin_keyring",
    "tests.plugin_check",
    "tests.plugin_libpq",
]

__all__ = [
    "HBA_ANY",
    "HBA_TLS_ONLY",
    "PKI",
    "REPO",
    "KeyringSession",
    "Result",
    "Server",
    "Servers",
    "clean_environ",
    "cli_environ",
    "project_for",
    "run_cli",
    "start_keyring_session",
    "stop_keyring_session",
    "write_project",
]


_FROM = {
    "tests.plugin_isolation": (
        "REPO",
        "Result",
        "clean_environ",
        "cli_environ",
        "project_for",
        "run_cli",
        "write_project",
    ),
    "tests.plugin_keyring": ("KeyringSession", "start_keyring_session", "stop_keyring_session"),
    "tests.plugin_servers": ("HBA_ANY", "HBA_TLS_ONLY", "PKI", "Server", "Servers"),
}


def __getattr__(name: str) -> Any:
    # Imported on first use, after pytest has loaded the plugins (with assertion rewriting).
    for module, names in _FROM.items():
        if name in names:
            return getattr(__import__(module, fromlist=[name]), name)
    raise AttributeError(name)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The reliability suites' case counts (tests/faultkit.py), cited by the README."""
    module = sys.modules.get("tests.faultkit")
    lines = module.tally_report() if module is not None else []
    if lines:
        terminalreporter.write_sep("-", "reliability: cases tried per class")
        for line in lines:
            terminalreporter.write_line(line)
