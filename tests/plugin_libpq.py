"""Fixtures for agreeing with libpq on real setups: roles, a socket folder whose path holds a ':'
(Cloud SQL's ``/cloudsql/proj:region:inst``), libpq's own files (service file, passfile)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Server, Servers


@dataclass(frozen=True)
class Roles:
    """Two login roles on the TLS-on server, and one whose bytea_output is escape."""

    server: Server
    app: str
    app_password: str
    other: str
    other_password: str
    escaped: str


@pytest.fixture(scope="session")
def roles(servers: Servers) -> Roles:
    server = servers.tls_on
    roles = Roles(
        server=server,
        app="pgc_agree_app",
        app_password="app-pw:with\\odd chars",
        other="pgc_agree_other",
        other_password="other-pw-7c1e",
        escaped="pgc_agree_escape",
    )
    server.create_role(roles.app, roles.app_password)
    server.create_role(roles.other, roles.other_password)
    server.create_role(roles.escaped, roles.app_password)
    server.execute(f"ALTER ROLE {roles.escaped} SET bytea_output = 'escape'")
    return roles


@pytest.fixture(scope="session")
def colon_socket_dir(servers: Servers) -> Iterator[Path]:
    """A folder whose path holds ':' and that leads to the TLS-on server's socket (a symlink to
    its socket folder: libpq and node connect to ``<folder>/.s.PGSQL.<port>``)."""
    root = Path(tempfile.mkdtemp(prefix="pgconnect-cloudsql-"))
    os.chmod(root, 0o755)
    link = root / "proj:region:inst"
    link.symlink_to(servers.tls_on.cluster.socket_dir)
    yield link
    shutil.rmtree(root, ignore_errors=True)


def write_private(path: Path, text: str, mode: int = 0o600) -> Path:
    """Write TEXT to PATH with MODE (libpq refuses a passfile others can read)."""
    path.write_text(text)
    os.chmod(path, mode)
    return path
