"""What ``check`` says beyond libpq's verdicts: hints that sharpen a failure with what the run learnt,
and warnings about a connection that worked (plaintext, no verification, expiry, poolers)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pgconnect import diagnosis, params
from pgconnect.errors import ExitCode
from pgconnect.netprobe import Host
from pgconnect.report import HostResult, ModeResult, Network, Report, Target

if TYPE_CHECKING:
    from pgconnect.clientcert import ClientCertificate

#: Strongest first: the order hints recommend modes in.
_STRENGTH = ("verify-full", "verify-ca", "require", "prefer", "allow", "disable")


EXPIRY_WARNING_DAYS = 30


def cert_requested(results: Sequence[ModeResult]) -> bool | None:
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


def add_context_hints(
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


# --------------------------------------------------------------------------- hints and warnings


def _accepted(results: Sequence[ModeResult]) -> list[str]:
    ok = {r.sslmode for r in results if r.ok}
    return [m for m in _STRENGTH if m in ok]


def add_hints(
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


def warnings_for(report: Report, hosts: list[Host], *, host_defaulted: bool = False) -> list[str]:
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
