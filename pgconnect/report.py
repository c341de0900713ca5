"""The report of a connection check (docs/check.md): what each sslmode and host did, the network facts,
the server's certificate, and the JSON shape ``check --json`` prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pgconnect.errors import ExitCode

if TYPE_CHECKING:
    from pgconnect.clientcert import ClientCertificate


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Certificate:
    """The server's certificate, as read by pgconnect's own handshake (not verified)."""

    subject: str
    issuer: str
    san: list[str]
    not_after: str  # ISO 8601, UTC, "Z"
    days_left: int

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "san": list(self.san),
            "not_after": self.not_after,
            "days_left": self.days_left,
        }


@dataclass
class Network:
    """What pgconnect's own probe saw, shared by every sslmode."""

    unix_socket: bool = False
    addresses: list[str] = field(default_factory=list)
    dns_ms: float | None = None
    tcp_ms: float | None = None
    tls_ms: float | None = None
    #: The server's answer to SSLRequest: "S" (accepts TLS), "N" (refuses), None (no answer).
    tls_answer: str | None = None
    tls_version: str | None = None
    certificate: Certificate | None = None
    #: Why the probe stopped early (one line), if it did.
    error: str | None = None


@dataclass
class ModeResult:
    """One sslmode's outcome. ``as_json()`` is the stable shape of ``check --json`` (docs/check.md)."""

    sslmode: str
    ok: bool
    stage: str
    encrypted: bool | None = None
    tls_version: str | None = None
    cipher: str | None = None
    server_version: str | None = None
    elapsed_ms: float = 0.0
    error: str | None = None
    hint: str | None = None
    exit_code: ExitCode = ExitCode.OK
    #: Milliseconds spent in each stage (dns is the shared resolution).
    timings: dict[str, float] = field(default_factory=dict)
    #: libpq's own view of whether its link is encrypted (differs from pg_stat_ssl behind a pooler).
    libpq_ssl: bool | None = None
    #: The host and port libpq's connection landed on (several hosts: which one answered).
    host: str | None = None
    port: int | None = None
    #: The client certificate's subject as the server saw it (pg_stat_ssl.client_dn).
    client_dn: str | None = None
    #: primary / standby (pg_is_in_recovery()) of the server it landed on.
    role: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "sslmode": self.sslmode,
            "ok": self.ok,
            "stage": self.stage,
            "encrypted": self.encrypted,
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "server_version": self.server_version,
            "elapsed_ms": self.elapsed_ms,
            "error": self.error,
            "hint": self.hint,
            "host": self.host,
            "port": self.port,
        }


@dataclass
class HostResult:
    """One host of a multi-host target, tried on its own (``hosts`` in ``check --json``; docs/diagnosis.md)."""

    host: str
    port: int | None
    ok: bool
    stage: str
    role: str | None = None  # primary | standby
    error: str | None = None
    hint: str | None = None
    certificate: Certificate | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "ok": self.ok,
            "stage": self.stage,
            "role": self.role,
            "error": self.error,
            "certificate": None if self.certificate is None else self.certificate.as_json(),
        }


@dataclass(frozen=True)
class Target:
    host: str | None
    port: int | None
    dbname: str | None
    user: str | None

    def as_json(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "dbname": self.dbname, "user": self.user}


@dataclass
class Report:
    target: Target
    effective_sslmode: str
    libpq_version: str
    results: list[ModeResult]
    network: Network
    warnings: list[str] = field(default_factory=list)
    client_certificate: ClientCertificate | None = None
    #: Every host of a multi-host target, each tried alone (empty for a single host).
    hosts: list[HostResult] = field(default_factory=list)

    @property
    def certificate(self) -> Certificate | None:
        return self.network.certificate

    def result(self, sslmode: str) -> ModeResult:
        for r in self.results:
            if r.sslmode == sslmode:
                return r
        raise KeyError(sslmode)

    def exit_code(self, sslmode: str) -> ExitCode:
        return self.result(sslmode).exit_code

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target.as_json(),
            "effective_sslmode": self.effective_sslmode,
            "libpq_version": self.libpq_version,
            "results": [r.as_json() for r in self.results],
            "certificate": None if self.certificate is None else self.certificate.as_json(),
            "client_certificate": (
                None if self.client_certificate is None else self.client_certificate.as_json()
            ),
            "hosts": [h.as_json() for h in self.hosts] if self.hosts else None,
            "warnings": list(self.warnings),
        }


def version_text(number: int) -> str:
    """libpq/server version numbers as people write them: 180006 → 18.6, 90624 → 9.6.24."""
    if number >= 100000:
        return f"{number // 10000}.{number % 10000}"
    return f"{number // 10000}.{(number // 100) % 100}.{number % 100}"


def libpq_version() -> str:
    from psycopg import pq

    return version_text(pq.version())
