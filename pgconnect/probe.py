"""The staged connection check (docs/check.md): dns → tcp → tls → auth → query → ready, per sslmode.

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

The Report and its JSON shape live in ``report``, the probing in ``netprobe``, hints and
warnings in ``advice``. Nothing here prints; the CLI renders the Report.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pgconnect import login, params
from pgconnect.advice import add_context_hints, add_hints, cert_requested, warnings_for
from pgconnect.errors import QueryError, RejectedError
from pgconnect.netprobe import (
    Host,
    Resolved,
    host_list,
    literal_addresses,
    network_probe,
    resolve_hosts,
    with_addresses,
)
from pgconnect.report import (
    HostResult,
    ModeResult,
    Network,
    Report,
    Target,
    libpq_version,
    version_text,
)

if TYPE_CHECKING:
    from psycopg import pq

    from pgconnect.resolve import Resolution


#: A worker that has not reported by the deadline plus this is given up on (it is a daemon).
_GRACE = 0.25


_STAT_SSL = (
    "SELECT ssl, version, cipher, client_dn, pg_is_in_recovery() FROM pg_stat_ssl "
    "WHERE pid = pg_backend_pid()"
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
    conn: Mapping[str, str], index: int, hosts: list[Host], resolved: Resolved
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
    host: Host,
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
        network_probe(host, addresses, deadline, net, sni)
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
    hosts: list[Host],
    resolved: Resolved,
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
        addresses = [] if h.is_socket else (resolved.addresses.get(i) or literal_addresses(h))
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
    hosts = host_list(seen, environ)
    host_results: list[HostResult] = []
    net = Network(unix_socket=all(h.is_socket for h in hosts))

    # dns: once, in a thread, under the deadline.
    resolved = Resolved()
    if any(h.needs_dns for h in hosts):
        worker = threading.Thread(
            target=resolve_hosts, args=(hosts, resolved), name="check-dns", daemon=True
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
        libpq_conn = with_addresses(conn, hosts, resolved)
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
            addresses = resolved.addresses.get(0) or literal_addresses(first)
            net.addresses = [ip for _, ip in addresses]
            sni = (seen.get("sslsni") or environ.get("PGSSLSNI") or "1") != "0"
            probe_thread = threading.Thread(
                target=network_probe,
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
        client_cert.requested = cert_requested(results)
    add_hints(results, net, missing_secrets, env, missing_put)
    add_context_hints(results, conn, target, client_cert, host_results)
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
        dict.fromkeys([*warnings, *warnings_for(report, hosts, host_defaulted=defaulted), *extra])
    )
    return report


def check_resolution(
    resolution: Resolution,
    sslmodes: Sequence[str],
    *,
    timeout: float = 10.0,
    deadline: float | None = None,
) -> Report:
    """``check()`` for a resolved project environment (docs/sources.md)."""
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


def _name_addresses(results: list[ModeResult], hosts: list[Host], resolved: Resolved) -> None:
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


def _target(
    conn: Mapping[str, str],
    environ: Mapping[str, str],
    hosts: list[Host],
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
