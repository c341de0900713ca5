"""The staged connection check (SPEC §5): dns → tcp → tls → auth → query → ready, per sslmode.

The verdict for every sslmode is libpq's own: a real login through psycopg's libpq binding with
that sslmode (and ``gssencmode=disable``), driven by ``login.login()`` under one deadline for the
whole run. Stage attribution for a libpq failure comes from ``login.classify()``; for a timeout,
from the state libpq was in when the time ran out.

pgconnect's own probing only adds facts, never verdicts:
- dns: ``getaddrinfo`` once, in a thread, under the deadline. The addresses are handed to libpq as
  ``hostaddr`` (with ``host`` kept for SNI and verify-full), the way psycopg's async connection
  does, so libpq does not resolve again — psycopg's ``PQconnectStart`` holds the GIL, and a hung
  resolver inside it could not be given up on.
- tcp and tls: one connection of its own, an SSLRequest (answer ``S`` or ``N``) and a TLS handshake
  without verification, to time them and to read the server's certificate (subject, issuer, SANs,
  expiry) whichever sslmodes are checked.
- after each login: ``pg_stat_ssl`` for the session (encrypted, TLS version, cipher) and the
  server version.

Nothing here prints; the CLI renders the Report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import math
import os
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pgconnect import diagnosis, login, params
from pgconnect.errors import ExitCode, QueryError, RejectedError

if TYPE_CHECKING:
    from psycopg import pq

    from pgconnect.clientcert import ClientCertificate
    from pgconnect.resolve import Resolution

#: The SSLRequest message (protocol docs, "SSLRequest"): length 8, then the code 80877103
#: (1234 << 16 | 5679), i.e. b"\x00\x00\x00\x08\x04\xd2\x16\x2f". The server answers one byte:
#: "S" (go ahead with TLS) or "N" (no TLS here).
SSL_REQUEST = struct.pack("!II", 8, 80877103)

#: Strongest first: the order hints recommend modes in.
_STRENGTH = ("verify-full", "verify-ca", "require", "prefer", "allow", "disable")

#: A worker that has not reported by the deadline plus this is given up on (it is a daemon).
_GRACE = 0.25

EXPIRY_WARNING_DAYS = 30

_STAT_SSL = (
    "SELECT ssl, version, cipher, client_dn, pg_is_in_recovery() FROM pg_stat_ssl "
    "WHERE pid = pg_backend_pid()"
)


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
    """One sslmode's outcome. ``as_json()`` is the stable SPEC §5 shape."""

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
    """One host of a multi-host target, tried on its own (SPEC §5 ``hosts``)."""

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


# --------------------------------------------------------------------------- hosts


@dataclass(frozen=True)
class _Host:
    name: str  # host name, IP literal or socket folder ("" = libpq's default socket)
    port: str
    hostaddr: str  # given by the user ("" when not)

    @property
    def is_socket(self) -> bool:
        # libpq: a host starting with "/" (or "@", Linux abstract namespace) or empty is a socket.
        return not self.hostaddr and (self.name == "" or self.name[0] in "/@")

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.name.split("%", 1)[0])
        except ValueError:
            return False
        return True

    @property
    def needs_dns(self) -> bool:
        return not self.hostaddr and not self.is_socket and not self.is_ip


def _hosts(conn: Mapping[str, str], environ: Mapping[str, str]) -> list[_Host]:
    """The host list libpq will try: explicit parameters, else libpq's PG* variables."""
    host = conn.get("host") or environ.get("PGHOST") or ""
    hostaddr = conn.get("hostaddr") or environ.get("PGHOSTADDR") or ""
    port = conn.get("port") or environ.get("PGPORT") or ""
    addrs = hostaddr.split(",") if hostaddr else []
    names = host.split(",") if host else [""] * max(1, len(addrs))
    ports = port.split(",")
    out = []
    for i, name in enumerate(names):
        p = ports[i] if len(ports) == len(names) else ports[0]
        out.append(
            _Host(name.strip(), p.strip() or "5432", addrs[i].strip() if i < len(addrs) else "")
        )
    return out


@dataclass
class _Resolved:
    done: bool = False
    addresses: dict[int, list[tuple[int, str]]] = field(
        default_factory=dict
    )  # index → (family, ip)
    failed: dict[int, str] = field(default_factory=dict)
    ms: float | None = None


def _resolve(hosts: list[_Host], out: _Resolved) -> None:
    start = time.monotonic()
    for i, h in enumerate(hosts):
        if not h.needs_dns:
            continue
        try:
            infos = socket.getaddrinfo(h.name, int(h.port), type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, ValueError) as exc:
            out.failed[i] = str(exc)
            continue
        seen: list[tuple[int, str]] = []
        for family, _, _, _, sockaddr in infos:
            item = (int(family), str(sockaddr[0]))
            if item not in seen:
                seen.append(item)
        out.addresses[i] = seen
    out.ms = (time.monotonic() - start) * 1000
    out.done = True


def _with_addresses(
    conn: Mapping[str, str], hosts: list[_Host], resolved: _Resolved
) -> dict[str, str]:
    """CONN with libpq's host list expanded to the resolved addresses (host kept for TLS)."""
    out = dict(conn)
    if not resolved.addresses:
        return out
    names: list[str] = []
    addrs: list[str] = []
    ports: list[str] = []
    for i, h in enumerate(hosts):
        found = resolved.addresses.get(i)
        # A name our resolver could not resolve keeps an empty hostaddr: libpq then resolves it
        # itself and reports the failure in its own words.
        for ip in [ip for _, ip in found] if found else [h.hostaddr]:
            names.append(h.name)
            addrs.append(ip)
            ports.append(h.port)
    out["host"] = ",".join(names)
    out["hostaddr"] = ",".join(addrs)
    out["port"] = ",".join(ports)
    return out


# --------------------------------------------------------------------------- pgconnect's own probe


def _network_probe(
    host: _Host, addresses: list[tuple[int, str]], deadline: float, net: Network, sni: bool
) -> None:
    """TCP connect, SSLRequest, handshake without verification: timings and the certificate."""
    start = time.monotonic()
    sock: socket.socket | None = None
    last_error = "no address to connect to"
    for family, ip in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        candidate = socket.socket(family, socket.SOCK_STREAM)
        candidate.settimeout(remaining)
        try:
            candidate.connect((ip, int(host.port)))
        except OSError as exc:
            candidate.close()
            last_error = f"{ip} port {host.port}: {exc.strerror or exc}"
            continue
        sock = candidate
        break
    if sock is None:
        net.error = f"TCP connection failed: {last_error}"
        return
    net.tcp_ms = (time.monotonic() - start) * 1000
    start = time.monotonic()
    try:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        sock.sendall(SSL_REQUEST)
        answer = sock.recv(1)
        if answer == b"N":
            net.tls_answer = "N"
            net.tls_ms = (time.monotonic() - start) * 1000
            return
        if answer != b"S":
            net.error = (
                "unexpected answer to SSLRequest" if answer else "the server closed the connection"
            )
            return
        net.tls_answer = "S"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # we only read the certificate; libpq verifies
        server_hostname = host.name if sni and not host.is_ip else None
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        with context.wrap_socket(sock, server_hostname=server_hostname) as tls:
            net.tls_ms = (time.monotonic() - start) * 1000
            net.tls_version = tls.version()
            der = tls.getpeercert(binary_form=True)
            if der:
                net.certificate = parse_certificate(der)
            # close_notify, so the server sees a clean end rather than an SSL error to log.
            tls.settimeout(max(0.001, min(0.2, deadline - time.monotonic())))
            with contextlib.suppress(ssl.SSLError, OSError):
                tls.unwrap()
    except TimeoutError:
        net.error = (
            "no answer to SSLRequest" if net.tls_answer is None else "TLS handshake timed out"
        )
    except (ssl.SSLError, OSError, ValueError) as exc:
        net.error = f"TLS handshake failed: {exc}"
    finally:
        sock.close()


def parse_certificate(der: bytes, now: dt.datetime | None = None) -> Certificate:
    """Subject, issuer, SANs (``DNS:name``, ``IP:addr``), expiry and days left of a DER cert."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        pass
    else:
        for name in ext.value:
            if isinstance(name, x509.DNSName):
                sans.append(f"DNS:{name.value}")
            elif isinstance(name, x509.IPAddress):
                sans.append(f"IP:{name.value}")
            elif isinstance(name, x509.UniformResourceIdentifier):
                sans.append(f"URI:{name.value}")
            elif isinstance(name, x509.RFC822Name):
                sans.append(f"email:{name.value}")
    not_after = cert.not_valid_after_utc
    now = now or dt.datetime.now(dt.UTC)
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        san=sans,
        not_after=not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        days_left=math.floor((not_after - now).total_seconds() / 86400),
    )


# --------------------------------------------------------------------------- one sslmode


class _ModeRun:
    """One sslmode's libpq login in its own thread; the main thread may give up on it."""

    def __init__(
        self,
        sslmode: str,
        conn: Mapping[str, str],
        *,
        first_stage: str,
        started: float,
        deadline: float,
        timeout: float,
        dns_ms: float | None,
    ) -> None:
        self.sslmode = sslmode
        self.conn = conn
        self.started = started
        self.deadline = deadline
        self.timeout = timeout
        self.clock = login.StageClock(sslmode, stage=first_stage)
        if dns_ms is not None:
            self.clock.timings["dns"] = dns_ms
        self.lock = threading.Lock()
        self.result: ModeResult | None = None
        self.thread = threading.Thread(target=self._run, name=f"check-{sslmode}", daemon=True)

    def _finish(self, result: ModeResult) -> None:
        with self.lock:
            if self.result is None:
                result.elapsed_ms = round((time.monotonic() - self.started) * 1000, 1)
                timings = dict(self.clock.timings)  # a copy: the worker may still be running
                last = login.STAGES.index(result.stage)
                result.timings = {
                    k: round(v, 1)
                    for k, v in timings.items()
                    if k in login.STAGES and login.STAGES.index(k) <= last
                }
                self.result = result

    def _failed(self, failure: login.Failure) -> None:
        error = failure.error
        if failure.stage == "query" and isinstance(error, QueryError):
            # The server logged us in and then refused even SELECT 1 (a pooler without a free
            # server, a database shutting down): a rejection, not an SQL bug (exit 7).
            error = RejectedError(error.message, hint=error.hint)
        self._finish(
            ModeResult(
                self.sslmode,
                ok=False,
                stage=failure.stage,
                error=error.message,
                hint=error.hint,
                exit_code=error.exit_code,
            )
        )

    def give_up(self) -> ModeResult:
        """The result for a worker still running after the deadline: a timeout where it is."""
        self._failed(login.timed_out(self.clock.stage, self.timeout))
        assert self.result is not None
        return self.result

    def _run(self) -> None:
        try:
            pgconn = login.login(
                self.conn,
                deadline=self.deadline,
                timeout=self.timeout,
                clock=self.clock,
                sslmode=self.sslmode,
                # GSSAPI encryption would hide the TLS stage; off unless the user requires it
                # (pgconnect never weakens a requirement the user set anywhere libpq reads).
                gssencmode="require" if self.conn.get("gssencmode") == "require" else "disable",
            )
        except login.ConnectFailed as exc:
            self._failed(exc.failure)
            return
        try:
            self.clock.enter("query")
            login.query(pgconn, "SELECT 1", deadline=self.deadline, timeout=self.timeout)
            self.clock.finish()  # the query stage is SELECT 1; what follows is reporting
            libpq_ssl = bool(pgconn.ssl_in_use)
            try:
                rows = login.query(pgconn, _STAT_SSL, deadline=self.deadline, timeout=self.timeout)
            except QueryError:
                rows = []  # not PostgreSQL's catalog (some proxies): fall back to libpq's view
            result = ModeResult(self.sslmode, ok=True, stage="ready", libpq_ssl=libpq_ssl)
            if rows:
                ssl_on, version, cipher, client_dn, recovery = rows[0]
                result.encrypted = ssl_on == "t"
                result.tls_version = version if result.encrypted else None
                result.cipher = cipher if result.encrypted else None
                result.client_dn = client_dn or None
                result.role = "standby" if recovery == "t" else "primary"
            else:
                result.encrypted = libpq_ssl
            result.host, result.port = _landed(pgconn)
            result.server_version = (
                version_text(pgconn.server_version) if pgconn.server_version else None
            )
            self._finish(result)
        except login.ConnectFailed as exc:
            self._failed(exc.failure)
        except QueryError as exc:
            self._failed(login.Failure("query", exc))
        finally:
            pgconn.finish()


def _landed(pgconn: pq.abc.PGconn) -> tuple[str | None, int | None]:
    """The host and port libpq's connection is on (PQhost/PQport: of the host that answered)."""
    import psycopg

    try:
        host = pgconn.host.decode("utf-8", "replace") or None
        port = pgconn.port.decode("utf-8", "replace")
    except psycopg.OperationalError:
        return None, None
    return host, int(port) if port.isdigit() else None


# --------------------------------------------------------------------------- several hosts


def _one_host(
    conn: Mapping[str, str], index: int, hosts: list[_Host], resolved: _Resolved
) -> dict[str, str]:
    """CONN narrowed to the INDEX-th host (its resolved addresses), any session accepted."""
    h = hosts[index]
    out = {k: v for k, v in conn.items() if k not in ("host", "hostaddr", "port")}
    found = resolved.addresses.get(index)
    addrs = [ip for _, ip in found] if found else ([h.hostaddr] if h.hostaddr else [])
    if addrs:
        out["host"] = ",".join([h.name] * len(addrs))
        out["hostaddr"] = ",".join(addrs)
        out["port"] = ",".join([h.port] * len(addrs))
    else:
        out["host"] = h.name
        out["port"] = h.port
    out["target_session_attrs"] = "any"
    out["load_balance_hosts"] = "disable"
    return out


def _host_run(
    conn: Mapping[str, str],
    host: _Host,
    sslmode: str,
    *,
    deadline: float,
    timeout: float,
    sni: bool,
    addresses: list[tuple[int, str]],
    out: HostResult,
) -> None:
    """Log in to one host alone under SSLMODE: reached or not, its stage, primary or standby,
    its certificate (pgconnect's own handshake)."""
    net = Network()
    if addresses:
        _network_probe(host, addresses, deadline, net, sni)
        out.certificate = net.certificate
    clock = login.StageClock(sslmode)
    try:
        pgconn = login.login(
            conn,
            deadline=deadline,
            timeout=timeout,
            clock=clock,
            sslmode=sslmode,
            # as in _ModeRun: GSSAPI off unless the user requires it
            gssencmode="require" if conn.get("gssencmode") == "require" else "disable",
        )
    except login.ConnectFailed as exc:
        out.stage = exc.failure.stage
        out.error = exc.failure.error.message
        out.hint = exc.failure.error.hint
        return
    try:
        rows = login.query(pgconn, "SELECT pg_is_in_recovery()", deadline=deadline, timeout=timeout)
        out.role = "standby" if rows and rows[0][0] == "t" else "primary"
        out.ok = True
        out.stage = "ready"
    except login.ConnectFailed as exc:
        out.stage, out.error = "query", exc.failure.error.message
    except QueryError as exc:
        out.stage, out.error = "query", exc.message
    finally:
        pgconn.finish()


def _check_hosts(
    conn: Mapping[str, str],
    hosts: list[_Host],
    resolved: _Resolved,
    sslmode: str,
    *,
    deadline: float,
    timeout: float,
    sni: bool,
) -> tuple[list[HostResult], list[threading.Thread]]:
    results: list[HostResult] = []
    threads: list[threading.Thread] = []
    for i, h in enumerate(hosts):
        port = int(h.port) if h.port.isdigit() else None
        item = HostResult(host=h.name or "(default socket)", port=port, ok=False, stage="tcp")
        results.append(item)
        if i in resolved.failed:
            item.stage = "dns"
            item.error = f"could not translate host name {h.name!r}: {resolved.failed[i]}"
            continue
        addresses = [] if h.is_socket else (resolved.addresses.get(i) or _literal_addresses(h))
        thread = threading.Thread(
            target=_host_run,
            args=(_one_host(conn, i, hosts, resolved), h, sslmode),
            kwargs={
                "deadline": deadline,
                "timeout": timeout,
                "sni": sni,
                "addresses": addresses,
                "out": item,
            },
            name=f"check-host-{i}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)
    return results, threads


# --------------------------------------------------------------------------- the check


def check(
    conn: Mapping[str, str],
    sslmodes: Sequence[str],
    *,
    effective_sslmode: str,
    timeout: float = 10.0,
    missing_secrets: Sequence[str] = (),
    env: str | None = None,
    missing_put: str | None = None,
    warnings: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    deadline: float | None = None,
    hosts_sslmode: str | None = None,
    implied: Mapping[str, str] | None = None,
) -> Report:
    """Check CONN (libpq keywords, secrets revealed) under each of SSLMODES, all within TIMEOUT.

    The client certificate (if any) is audited first: a file libpq could not use raises
    ConfigError before any connection. With several hosts, each is also tried alone under
    HOSTS_SSLMODE (default: the only mode checked, else EFFECTIVE_SSLMODE).

    EFFECTIVE_SSLMODE is the project's (for warnings); MISSING_SECRETS and ENV name declared
    secrets that are not set (for hints); WARNINGS are added first (e.g. the missing-secret one).
    DEADLINE (``time.monotonic()``) overrides now + TIMEOUT, for a caller whose clock started
    earlier (the CLI counts from its own start). IMPLIED are the values libpq itself will take
    from a connection service (or its PG* variables): they decide the hosts to probe, as they
    decide libpq's.
    """
    environ = os.environ if environ is None else environ
    seen = {**(implied or {}), **conn}  # what libpq will use; CONN wins
    for mode in sslmodes:
        if mode not in params.SSLMODES:
            raise ValueError(f"not an sslmode: {mode!r}")
    started = time.monotonic()
    deadline = started + timeout if deadline is None else deadline
    login.check_conninfo(conn)  # a bad keyword is a configuration error before any thread
    client_cert = None
    if any(m != "disable" for m in sslmodes):  # libpq loads the files for any TLS attempt
        from pgconnect import clientcert

        client_cert = clientcert.audit(seen, environ)
    hosts = _hosts(seen, environ)
    host_results: list[HostResult] = []
    net = Network(unix_socket=all(h.is_socket for h in hosts))

    # dns: once, in a thread, under the deadline.
    resolved = _Resolved()
    if any(h.needs_dns for h in hosts):
        worker = threading.Thread(
            target=_resolve, args=(hosts, resolved), name="check-dns", daemon=True
        )
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        net.dns_ms = resolved.ms
    else:
        resolved.done = True

    endpoint: dict[str, str] = {}
    if not resolved.done:
        where = f'at "{hosts[0].name}", port {hosts[0].port}'
        results = [_dns_timeout(m, timeout, started, where) for m in sslmodes]
        net.error = "name resolution did not finish in time"
    else:
        libpq_conn = _with_addresses(conn, hosts, resolved)
        if (seen.get("gssencmode") or environ.get("PGGSSENCMODE")) == "require":
            libpq_conn["gssencmode"] = "require"
        first = hosts[0]
        first_stage = "dns" if first.needs_dns and 0 not in resolved.addresses else "tcp"
        runs = [
            _ModeRun(
                m,
                libpq_conn,
                first_stage=first_stage,
                started=started,
                deadline=deadline,
                timeout=timeout,
                dns_ms=net.dns_ms,
            )
            for m in sslmodes
        ]
        probe_thread = None
        if 0 in resolved.failed:
            net.error = f"could not resolve {first.name}: {resolved.failed[0]}"
        elif not first.is_socket:
            addresses = resolved.addresses.get(0) or _literal_addresses(first)
            net.addresses = [ip for _, ip in addresses]
            sni = (seen.get("sslsni") or environ.get("PGSSLSNI") or "1") != "0"
            probe_thread = threading.Thread(
                target=_network_probe,
                args=(first, addresses, deadline, net, sni),
                name="check-probe",
                daemon=True,
            )
            probe_thread.start()
        for run in runs:
            run.thread.start()
        host_threads: list[threading.Thread] = []
        if len(hosts) > 1:
            host_results, host_threads = _check_hosts(
                conn,
                hosts,
                resolved,
                hosts_sslmode or (sslmodes[0] if len(sslmodes) == 1 else effective_sslmode),
                deadline=deadline,
                timeout=timeout,
                sni=(seen.get("sslsni") or environ.get("PGSSLSNI") or "1") != "0",
            )
        for run in runs:
            run.thread.join(max(0.0, deadline + _GRACE - time.monotonic()))
        for thread in host_threads:
            thread.join(max(0.0, deadline + _GRACE - time.monotonic()))
        results = [run.result if run.result is not None else run.give_up() for run in runs]
        if probe_thread is not None:
            probe_thread.join(max(0.0, deadline + _GRACE - time.monotonic()))
        endpoint = next((run.clock.endpoint for run in runs if run.clock.endpoint), {})
        _name_addresses(results, hosts, resolved)

    if net.certificate is None and host_results:
        # The first host did not answer TLS: show the certificate of the host libpq landed on,
        # else the first one any host presented.
        landed = {(r.host, r.port) for r in results if r.ok}
        with_cert = [h for h in host_results if h.certificate is not None]
        chosen = [h for h in with_cert if (h.host, h.port) in landed] or with_cert
        if chosen:
            net.certificate = chosen[0].certificate
    target = _target(seen, environ, hosts, endpoint)
    if client_cert is not None:
        client_cert.requested = _requested(results)
    _add_hints(results, net, missing_secrets, env, missing_put)
    _add_context_hints(results, conn, target, client_cert, host_results)
    report = Report(
        target=target,
        effective_sslmode=effective_sslmode,
        libpq_version=libpq_version(),
        results=results,
        network=net,
        client_certificate=client_cert,
        hosts=host_results,
    )
    extra = client_cert.warnings(target.user) if client_cert is not None else []
    # No host from anywhere (DB_HOST, PGHOST, a service): libpq picked its compiled-in socket.
    defaulted = not any(conn.get(k) for k in ("host", "hostaddr", "service")) and not any(
        environ.get(v) for v in ("PGHOST", "PGHOSTADDR", "PGSERVICE")
    )
    report.warnings = list(
        dict.fromkeys([*warnings, *_warnings(report, hosts, host_defaulted=defaulted), *extra])
    )
    return report


def _requested(results: Sequence[ModeResult]) -> bool | None:
    """Did the server ask for the client certificate? An OpenSSL client sends its certificate
    only when asked, and the server then shows its subject in pg_stat_ssl.client_dn."""
    if any(r.client_dn for r in results):
        return True
    if any(
        r.error
        and re.search(
            r"valid client certificate|certificate authentication|"
            r"alert (unknown ca|bad certificate|certificate)",
            r.error,
        )
        for r in results
    ):
        return True
    if any(r.ok and r.encrypted for r in results):
        return False
    return None


def _hosts_summary(host_results: Sequence[HostResult]) -> str:
    parts = []
    for h in host_results:
        where = f"{h.host}:{h.port}" if h.port is not None else h.host
        if h.ok:
            parts.append(f"{where} {h.role}")
        else:
            parts.append(f"{where} failed at {h.stage}")
    return ", ".join(parts)


def _add_context_hints(
    results: list[ModeResult],
    conn: Mapping[str, str],
    target: Target,
    client_cert: ClientCertificate | None,
    host_results: Sequence[HostResult],
) -> None:
    """Hints only the rest of the run can make true: the client certificate's CN, each host's
    role, the server's version."""
    versions = {r.server_version for r in results if r.server_version}
    for r in results:
        if r.ok or r.error is None:
            continue
        if (
            r.stage == "auth"
            and client_cert is not None
            and client_cert.common_name is not None
            and target.user
            and client_cert.common_name != target.user
            and re.search(r"password authentication failed|certificate authentication", r.error)
        ):
            # PostgreSQL checks clientcert=verify-full's CN after the password and then reports
            # "password authentication failed" (auth.c, auth_failed for the password method).
            r.hint = (
                f"your client certificate's CN is {client_cert.common_name!r} but the user is "
                f"{target.user!r}: a server with clientcert=verify-full (or the cert method) "
                "refuses that even with the right password; use a certificate issued for "
                f"{target.user!r} or map the names in pg_ident.conf"
            )
        if host_results and re.search(r"read-only|hot standby mode", r.error):
            r.hint = f"{r.hint} (hosts: {_hosts_summary(host_results)})"
        if (
            conn.get("sslnegotiation") == "direct"
            and r.hint == diagnosis.DIRECT_TO_OLD_SERVER
            and versions
        ):
            r.hint += f" (this server is PostgreSQL {', '.join(sorted(versions))})"


def check_resolution(
    resolution: Resolution,
    sslmodes: Sequence[str],
    *,
    timeout: float = 10.0,
    deadline: float | None = None,
) -> Report:
    """``check()`` for a resolved project environment (SPEC §2)."""
    effective = resolution.get("sslmode") or "prefer"
    extra = resolution.missing_secret_warning()
    return check(
        resolution.connect_params(),
        sslmodes,
        effective_sslmode=effective,
        timeout=timeout,
        missing_secrets=resolution.missing_secrets,
        env=resolution.env,
        missing_put=resolution.missing_secret_commands() if resolution.missing_secrets else None,
        warnings=[extra] if extra else [],
        deadline=deadline,
        implied={p.keyword: p.reveal() for p in resolution.params if not p.explicit},
    )


def _name_addresses(results: list[ModeResult], hosts: list[_Host], resolved: _Resolved) -> None:
    """Say 'at "db.example.com" (192.0.2.7)' as libpq does when it resolves the name itself.

    We pass the addresses we resolved as hostaddr, and libpq then names only the address.
    """
    for i, found in resolved.addresses.items():
        for _, ip in found:
            for r in results:
                if r.error:
                    r.error = r.error.replace(
                        f'at "{ip}", port', f'at "{hosts[i].name}" ({ip}), port'
                    )


def _dns_timeout(mode: str, timeout: float, started: float, where: str) -> ModeResult:
    failure = login.timed_out("dns", timeout, where)
    return ModeResult(
        mode,
        ok=False,
        stage="dns",
        error=failure.error.message,
        hint=failure.error.hint,
        exit_code=failure.error.exit_code,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        timings={"dns": round((time.monotonic() - started) * 1000, 1)},
    )


def _literal_addresses(host: _Host) -> list[tuple[int, str]]:
    ip = host.hostaddr.split(",")[0] if host.hostaddr else host.name
    try:
        family = (
            socket.AF_INET6
            if ipaddress.ip_address(ip.split("%", 1)[0]).version == 6
            else socket.AF_INET
        )
    except ValueError:
        return []
    return [(int(family), ip)]


def _target(
    conn: Mapping[str, str],
    environ: Mapping[str, str],
    hosts: list[_Host],
    endpoint: Mapping[str, str],
) -> Target:
    import getpass

    host = conn.get("host") or environ.get("PGHOST") or endpoint.get("host") or None
    port_text = conn.get("port") or environ.get("PGPORT") or endpoint.get("port") or "5432"
    port_first = port_text.split(",")[0].strip() or "5432"
    user = conn.get("user") or environ.get("PGUSER") or endpoint.get("user")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = None
    dbname = conn.get("dbname") or environ.get("PGDATABASE") or endpoint.get("dbname") or user
    return Target(
        host=host, port=int(port_first) if port_first.isdigit() else None, dbname=dbname, user=user
    )


# --------------------------------------------------------------------------- hints and warnings


def _accepted(results: Sequence[ModeResult]) -> list[str]:
    ok = {r.sslmode for r in results if r.ok}
    return [m for m in _STRENGTH if m in ok]


def _add_hints(
    results: list[ModeResult],
    net: Network,
    missing_secrets: Sequence[str],
    env: str | None,
    missing_put: str | None = None,
) -> None:
    """Sharpen classify()'s generic hints with what this run learnt (other modes, the cert)."""
    accepted = _accepted(results)
    encrypted_ok = [r.sslmode for r in results if r.ok and r.encrypted]
    cert = net.certificate
    for r in results:
        if r.ok or r.error is None:
            continue
        text = r.error
        if r.stage == "auth" and re.search(r"no encryption", text):
            good = [m for m in _STRENGTH if m in encrypted_ok and m not in ("allow", "prefer")]
            if good:
                r.hint = (
                    f"the server only accepts TLS connections: use sslmode={good[0]} "
                    f"(connected in this run: {', '.join(good)})"
                )
            else:
                r.hint = (
                    "the server only accepts TLS connections: use sslmode=require or stronger "
                    "(verify-full with DB_SSLROOTCERT is best)"
                )
        elif r.stage == "tls" and "does not support SSL" in text:
            r.hint = (
                "the server does not accept TLS (it answered 'N' to SSLRequest): enable ssl on the "
                "server; until then only sslmode=disable/allow/prefer connect, in plaintext"
            )
        elif (
            r.stage == "tls"
            and cert is not None
            and re.search(
                r"certificate verify failed|root certificate file|self[- ]signed|local issuer", text
            )
        ):
            r.hint = (
                f"the server's certificate is issued by {cert.issuer}: set DB_SSLROOTCERT to that "
                "CA's certificate (libpq checks the chain whenever a root certificate file exists, "
                "even for sslmode=require)"
            )
            if "root certificate file" in text:
                r.hint = (
                    f"no CA certificate to verify with: set DB_SSLROOTCERT to the certificate of "
                    f"{cert.issuer}, the server's issuer (or sslrootcert=system for a public CA)"
                )
        elif r.stage == "tls" and "does not match host name" in text and cert is not None:
            names = ", ".join(cert.san) or cert.subject
            r.hint = (
                f"the certificate is for {names}: set DB_HOST to one of those names, or use "
                "sslmode=verify-ca to skip the host-name check"
            )
        if r.exit_code == ExitCode.REJECTED and missing_secrets:
            names = ", ".join(missing_secrets)
            where = f" --env {env}" if env else ""
            put = missing_put or f"pgconnect secret put {missing_secrets[0]}{where}"
            note = f"declared secret {names} is not set, so it was not sent: {put}"
            if re.search(r"password|fe_sendauth|authentication failed", text):
                r.hint = note
            else:
                r.hint = f"{r.hint}; also, {note}" if r.hint else note
        if r.stage == "tls" and accepted and r.hint and not any(m in r.hint for m in accepted):
            r.hint += f" (connected in this run: {', '.join(accepted)})"


_NEON = re.compile(r"^(?P<endpoint>[^.]+)\.(?P<rest>.+\.neon\.tech)$", re.IGNORECASE)


def _warnings(report: Report, hosts: list[_Host], *, host_defaulted: bool = False) -> list[str]:
    out: list[str] = []
    net = report.network
    tcp_hosts = [h for h in hosts if not h.is_socket]
    if net.unix_socket and host_defaulted:
        where = f" in {report.target.host}" if report.target.host else ""
        out.append(
            f"DB_HOST is not set, so libpq's default applies: the Unix socket{where}, where "
            "sslmode does not apply (libpq never uses TLS on a socket)"
        )
    elif net.unix_socket:
        out.append(
            "DB_HOST is a Unix socket: sslmode does not apply there (libpq never uses TLS on a "
            "socket; the connection is local)"
        )
    for r in report.results:
        # sslmode governs this client's own link, so libpq's view decides a downgrade (behind a
        # pooler, pg_stat_ssl describes the pooler's link to the server instead).
        plaintext = r.libpq_ssl is False if r.libpq_ssl is not None else r.encrypted is False
        if r.sslmode in ("allow", "prefer") and r.ok and plaintext and tcp_hosts:
            why = (
                "allow only uses TLS when the server insists on it"
                if r.sslmode == "allow"
                else "the server refused TLS, or TLS failed and libpq fell back"
            )
            out.append(
                f"sslmode={r.sslmode} connected in plaintext ({why}): anyone on the path can read "
                "and change the traffic; use sslmode=require or stronger"
            )
        if (
            r.ok
            and r.libpq_ssl is not None
            and r.encrypted is not None
            and r.libpq_ssl != r.encrypted
        ):
            out.append(
                f"sslmode={r.sslmode}: libpq's link is {'encrypted' if r.libpq_ssl else 'plaintext'} "
                f"but the server's pg_stat_ssl says {'encrypted' if r.encrypted else 'plaintext'}: "
                "a pooler or proxy sits in between, and pg_stat_ssl describes its connection to "
                "the server"
            )
    first_host = tcp_hosts[0].name if tcp_hosts else None
    if (
        tcp_hosts
        and report.effective_sslmode != "verify-full"
        and not params.is_loopback_or_socket(",".join(h.name for h in tcp_hosts))
    ):
        out.append(
            f"sslmode={report.effective_sslmode} does not verify that the server is {first_host} "
            "(a machine in the middle can pose as it): set DB_SSLMODE=verify-full and "
            "DB_SSLROOTCERT (or DB_SSLROOTCERT=system for a public CA)"
        )
    cert = net.certificate
    if cert is not None and cert.days_left <= EXPIRY_WARNING_DAYS:
        if cert.days_left < 0:
            out.append(
                f"the server's certificate expired {-cert.days_left} days ago ({cert.not_after})"
            )
        else:
            out.append(
                f"the server's certificate expires in {cert.days_left} days ({cert.not_after}): "
                "renew it before clients with verify-ca/verify-full stop connecting"
            )
    if net.tls_answer == "S" and cert is None and net.error:
        out.append(f"could not read the server's certificate: {net.error}")
    for h in tcp_hosts:
        out.extend(provider_warnings(h.name, h.port))
    return out


def provider_warnings(host: str, port: str) -> list[str]:
    """Managed-provider pooler advice (Neon, Supabase) for HOST:PORT."""
    out: list[str] = []
    m = _NEON.match(host)
    if m and not m.group("endpoint").lower().endswith("-pooler"):
        pooled = f"{m.group('endpoint')}-pooler.{m.group('rest')}"
        out.append(
            f"{host} is Neon's direct endpoint: for serverless functions or many short "
            f"connections use the pooled one, {pooled} (PgBouncer, transaction mode)"
        )
    lowered = host.lower()
    if (
        lowered.endswith(".supabase.co") or lowered.endswith("pooler.supabase.com")
    ) and port == "5432":
        out.append(
            f"{host}:5432 is Supabase's direct (or session-mode) connection: for serverless "
            "functions or many short connections use the transaction pooler on port 6543"
        )
    return out
