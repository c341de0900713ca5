"""pgconnect's own network probing for ``check`` (facts, never verdicts): the host list libpq will
try, DNS once under the deadline, and one connection of its own (TCP, SSLRequest, a TLS handshake
without verification) to time them and read the server's certificate."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import math
import socket
import ssl
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from pgconnect.report import Certificate, Network

#: The SSLRequest message (protocol docs, "SSLRequest"): length 8, then the code 80877103
#: (1234 << 16 | 5679), i.e. b"\x00\x00\x00\x08\x04\xd2\x16\x2f". The server answers one byte:
#: "S" (go ahead with TLS) or "N" (no TLS here).
SSL_REQUEST = struct.pack("!II", 8, 80877103)


# --------------------------------------------------------------------------- hosts


@dataclass(frozen=True)
class Host:
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


def host_list(conn: Mapping[str, str], environ: Mapping[str, str]) -> list[Host]:
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
            Host(name.strip(), p.strip() or "5432", addrs[i].strip() if i < len(addrs) else "")
        )
    return out


@dataclass
class Resolved:
    done: bool = False
    addresses: dict[int, list[tuple[int, str]]] = field(
        default_factory=dict
    )  # index → (family, ip)
    failed: dict[int, str] = field(default_factory=dict)
    ms: float | None = None


def resolve_hosts(hosts: list[Host], out: Resolved) -> None:
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


def with_addresses(
    conn: Mapping[str, str], hosts: list[Host], resolved: Resolved
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


def network_probe(
    host: Host, addresses: list[tuple[int, str]], deadline: float, net: Network, sni: bool
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


def literal_addresses(host: Host) -> list[tuple[int, str]]:
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
