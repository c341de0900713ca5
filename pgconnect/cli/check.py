"""``pgconnect check``: which stage of the connection fails, under one sslmode or all six."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer

from pgconnect import params
from pgconnect.cli import common
from pgconnect.cli.options import ConfigOpt, DebugOpt, EnvOpt, JsonOpt
from pgconnect.errors import ConfigError, ExitCode, UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from pgconnect.report import ModeResult, Report
    from pgconnect.resolve import Resolution

ALL = "all"
_COLUMNS = ("sslmode", "result", "stage", "encrypted", "tls", "cipher", "server", "ms")


def _complete_sslmode(incomplete: str) -> list[str]:
    return [m for m in (*params.SSLMODES, ALL) if m.startswith(incomplete)]


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    sslmode: Annotated[
        str | None,
        typer.Option(
            "--sslmode",
            help="The sslmode to check (disable, allow, prefer, require, verify-ca, verify-full), "
            "or 'all' for the six at once. Default: the project's effective sslmode.",
            autocompletion=_complete_sslmode,
            metavar="MODE|all",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="Give up after this many seconds for the whole check (all modes together).",
            metavar="S",
        ),
    ] = 10.0,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            help="Retry the whole check until it passes or S seconds have passed (backoff, one "
            "progress line per attempt on stderr): a readiness gate that proves login and query.",
            metavar="S",
        ),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print nothing but errors; the exit status says it all."
        ),
    ] = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    env: EnvOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Connect for real and report which stage fails: dns, tcp, tls, auth, query (or ready).

    The verdict for each sslmode is libpq's own (a real login); pgconnect adds the stage, timings,
    whether the session is really encrypted (pg_stat_ssl), the server's certificate, warnings and
    a hint saying what to change. Exit status: that of the checked mode (with 'all', of the
    effective one): 0 connected, 5 network, 6 TLS, 7 rejected.

    Examples:

      pgconnect check

      pgconnect check --sslmode all

      pgconnect check -e staging --sslmode verify-full --timeout 3 --json

      pgconnect check --wait 60 --quiet    # in CI: wait until the database takes logins
    """
    if sslmode is not None and sslmode not in (*params.SSLMODES, ALL):
        raise UsageError(
            f"--sslmode {sslmode!r} is not one of {', '.join(params.SSLMODES)}, or {ALL}"
        )
    if not (timeout > 0 and timeout < 86400):
        raise UsageError(f"--timeout must be a number of seconds above 0, not {timeout:g}")
    if wait is not None and not (wait > 0 and wait < 86400):
        raise UsageError(f"--wait must be a number of seconds above 0, not {wait:g}")
    # --timeout bounds the command, not just the probing: count from pgconnect's own start
    # (reading the project and the keyring come out of the same budget). With --wait, each
    # later attempt gets --timeout of its own and the whole command --wait.
    deadline = common.STARTED + timeout
    ctx = common.load(config, env)
    from pgconnect.store import budget

    with budget(deadline, f"--timeout {timeout:g} s"):
        resolution = ctx.resolve(connection_only=True)
    common.refuse_libpq_defaults(resolution)
    effective = resolution.get("sslmode") or "prefer"
    if sslmode == ALL:
        modes: tuple[str, ...] = params.SSLMODES
        decisive = effective
    else:
        decisive = sslmode or effective
        modes = (decisive,)

    modes, deadline = _fetch_command_secrets(resolution, sslmode, modes, deadline)
    what = "the six sslmodes" if len(modes) > 1 else f"sslmode={modes[0]}"
    if wait is None:
        with common.progress(f"checking {what} (up to {timeout:g} s)"):
            report = _probe(resolution, modes, timeout, deadline)
    else:
        report = _wait_for(resolution, modes, decisive, timeout, wait, quiet)

    _sandbox_hint(ctx, report)
    code = report.exit_code(decisive)
    if quiet:
        if code:
            failed = report.result(decisive)
            common.note(_safe(f"error: {failed.error or 'the check failed'}"))
            if failed.hint:
                common.note(_safe(f"hint: {failed.hint}"))
        raise typer.Exit(int(code))
    for warning in report.warnings:
        common.warn(_safe(warning))
    if json_out:
        common.out(json.dumps(report.as_json(), ensure_ascii=False))
    elif common.stdout_is_tty():
        _render_rich(report)
    else:
        _render_plain(report)
    if code:
        raise typer.Exit(int(code))


def _fetch_command_secrets(
    resolution: Resolution, sslmode: str | None, modes: tuple[str, ...], deadline: float
) -> tuple[tuple[str, ...], float]:
    """Run the secrets' commands now, before the progress spinner (a password manager may ask on
    the terminal), and not out of the network budget: a person typing an unlock password is not
    a slow server. A cloud token is never sent under a mode that allows plaintext: naming such a
    mode is exit 3, and --sslmode all probes only the modes that require TLS."""
    import time

    from pgconnect.resolve import TLS_MODES, token_secret
    from pgconnect.secret_command import CommandSecret

    lazy = [p for p in resolution.params if isinstance(p.value, CommandSecret) and p.explicit]
    token = token_secret(resolution)
    if token is not None and sslmode not in (None, ALL) and sslmode not in TLS_MODES:
        raise ConfigError(
            f"{token.name} is a token from {token.source}: pgconnect does not send it under "
            f"sslmode={sslmode}, which allows plaintext",
            hint=f"check one of {', '.join(TLS_MODES)}, or --sslmode all (it skips the others)",
        )
    if token is not None and sslmode == ALL:
        skipped = [m for m in modes if m not in TLS_MODES]
        modes = tuple(m for m in modes if m in TLS_MODES)
        common.warn(
            f"{token.name} is a token from {token.source}: not probing {', '.join(skipped)} "
            "(they allow plaintext)"
        )
    started = time.monotonic()
    for p in lazy:
        p.reveal()
    if lazy:
        deadline += time.monotonic() - started
    return modes, deadline


def _sandbox_hint(ctx: common.Context, report: Report) -> None:
    """A password the sandbox rejected: nobody knows its password, so the hint is the command
    that sets a new one, not `secret put`."""
    from pgconnect import sandbox
    from pgconnect.errors import ExitCode

    for r in report.results:
        if r.exit_code == ExitCode.REJECTED and "password authentication failed" in (r.error or ""):
            hint = sandbox.password_hint(ctx.project, ctx.env)
            if hint:
                r.hint = hint


def _probe(
    resolution: Resolution, modes: tuple[str, ...], timeout: float, deadline: float
) -> Report:
    from pgconnect import probe

    return probe.check_resolution(resolution, modes, timeout=timeout, deadline=deadline)


def _wait_for(
    resolution: Resolution,
    modes: tuple[str, ...],
    decisive: str,
    timeout: float,
    wait: float,
    quiet: bool,
) -> Report:
    """Run the whole check again until the decisive mode passes or WAIT seconds are up.

    The delay doubles from 0.25 s up to 5 s. A configuration problem (exit 3) is not retried: no
    amount of waiting fixes a file.
    """
    end = common.STARTED + wait
    delay = 0.25
    attempt = 0
    while True:
        attempt += 1
        now = time.monotonic()
        report = _probe(resolution, modes, timeout, min(now + timeout, max(end, now + 0.5)))
        code = report.exit_code(decisive)
        elapsed = time.monotonic() - common.STARTED
        failed = report.result(decisive)
        if code == ExitCode.OK:
            if not quiet:
                common.note(f"attempt {attempt} ({elapsed:.1f} s): ready")
            return report
        left = end - time.monotonic()
        if code == ExitCode.CONFIG or left <= 0:
            if not quiet:
                common.note(
                    f"attempt {attempt} ({elapsed:.1f} s): failed at {failed.stage}; "
                    f"gave up after {wait:g} s"
                )
            return report
        pause = min(delay, left)
        if not quiet:
            common.note(
                _safe(
                    f"attempt {attempt} ({elapsed:.1f} s): sslmode={decisive} failed at "
                    f"{failed.stage}: {failed.error}; retrying in {pause:.2g} s"
                )
            )
        time.sleep(pause)
        delay = min(delay * 2, 5.0)


# --------------------------------------------------------------------------- rendering


def _safe(text: str) -> str:
    """Data for a terminal: control characters escaped, never sent raw."""
    from pgconnect.safetext import escape

    return escape(text)


def _target_line(report: Report) -> str:
    t = report.target
    host = t.host or "(libpq's default socket)"
    where = f"{host}:{t.port}" if t.port is not None else host
    if report.hosts:  # several hosts: each with its own port
        where = ",".join(f"{h.host}:{h.port}" if h.port else h.host for h in report.hosts)
    return (
        f"{t.user or '?'}@{where}/{t.dbname or '?'}  ·  effective sslmode "
        f"{report.effective_sslmode}  ·  libpq {report.libpq_version}"
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _probe_line(report: Report) -> str | None:
    net = report.network
    if net.unix_socket:
        return "Unix socket: no DNS, TCP or TLS stage"
    parts = []
    if net.dns_ms is not None:
        parts.append(f"dns {_ms(net.dns_ms)}")
    if net.tcp_ms is not None:
        parts.append(f"tcp {_ms(net.tcp_ms)}")
    if net.tls_answer == "S":
        tls = f"tls {_ms(net.tls_ms)} (the server accepts TLS"
        tls += f", {net.tls_version})" if net.tls_version else ")"
        parts.append(tls)
    elif net.tls_answer == "N":
        parts.append("tls refused (the server answered 'N' to SSLRequest)")
    if net.error:
        parts.append(f"stopped: {net.error}")
    return ", ".join(parts)


def _row(r: ModeResult) -> list[str]:
    encrypted = "-" if r.encrypted is None else ("yes" if r.encrypted else "no")
    return [
        r.sslmode,
        "ok" if r.ok else "FAILED",
        r.stage,
        encrypted,
        r.tls_version or "-",
        r.cipher or "-",
        r.server_version or "-",
        f"{r.elapsed_ms:.1f}",
    ]


def _stages_line(r: ModeResult) -> str:
    parts = [f"{stage} {ms:.1f} ms" for stage, ms in r.timings.items()]
    end = "ready" if r.ok else f"failed at {r.stage}"
    return " → ".join([*parts, end])


def _certificate_lines(report: Report) -> list[str]:
    cert = report.certificate
    if cert is None:
        return []
    left = f"{cert.days_left} days left" if cert.days_left >= 0 else "EXPIRED"
    return [
        f"certificate  {cert.subject}",
        f"  issuer     {cert.issuer}",
        f"  SAN        {', '.join(cert.san) or '-'}",
        f"  expires    {cert.not_after} ({left})",
    ]


def _client_cert_lines(report: Report) -> list[str]:
    cc = report.client_certificate
    if cc is None:
        return []
    left = f"{cc.days_left} days left" if cc.days_left >= 0 else "EXPIRED"
    key = "matches the certificate" if cc.key_matches else "not checked"
    if cc.key_encrypted:
        key += ", encrypted (sslpassword set)" if cc.sslpassword_available else ", encrypted"
    requested = {True: "yes", False: "no (the server did not ask for it)", None: "unknown"}
    return [
        f"client certificate  {cc.subject}  ({cc.cert_file})",
        f"  issuer     {cc.issuer}",
        f"  expires    {cc.not_after} ({left})",
        f"  key        {cc.key_file}: {key}",
        f"  requested  {requested[cc.requested]}",
    ]


def _hosts_lines(report: Report) -> list[str]:
    """Every host of a multi-host target, and where each mode's connection landed."""
    if not report.hosts:
        return []
    out = ["hosts (each tried alone):"]
    for h in report.hosts:
        where = f"{h.host}:{h.port}" if h.port is not None else h.host
        state = f"ok  {h.role}" if h.ok else f"FAILED at {h.stage}: {h.error or '?'}"
        cert = f"  cert {h.certificate.subject}" if h.certificate is not None else ""
        out.append(f"  {where}  {state}{cert}")
    for r in report.results:
        if r.ok and r.host:
            role = f" ({r.role})" if r.role else ""
            out.append(f"sslmode={r.sslmode} connected to {r.host}:{r.port}{role}")
    return out


def _failure_lines(report: Report) -> list[tuple[str, str]]:
    """(label, text) pairs under the table: each distinct failure's error and hint, once, with
    the modes that share it (a refused port fails the same way under all six)."""
    groups: dict[tuple[str, str | None], list[str]] = {}
    for r in report.results:
        if not r.ok:
            groups.setdefault((r.error or "failed", r.hint), []).append(r.sslmode)
    out: list[tuple[str, str]] = []
    for (error, hint), modes in groups.items():
        out.append((f"{', '.join(modes)}:", error))
        if hint:
            out.append(("  hint:", hint))
    return out


def _render_plain(report: Report) -> None:
    common.out(_safe(_target_line(report)))
    probe_line = _probe_line(report)
    if probe_line:
        common.out(_safe(f"probe: {probe_line}"))
    common.out()
    rows = [list(_COLUMNS), *(_row(r) for r in report.results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        common.out(
            _safe("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        )
    if len(report.results) == 1:
        common.out(_safe(f"stages: {_stages_line(report.results[0])}"))
    failures = _failure_lines(report)
    if failures:
        common.out()
        for label, text in failures:
            common.out(_safe(f"{label} {text}"))
    for block in (_hosts_lines(report), _certificate_lines(report), _client_cert_lines(report)):
        if block:
            common.out()
            for line in block:
                common.out(_safe(line))


def _text(value: str, style: str = "") -> Text:
    from rich.text import Text

    return Text(_safe(value), style=style)  # a Text is never parsed for markup


def _render_rich(report: Report) -> None:
    from rich.text import Text

    console = common.out_console()
    console.print(_text(_target_line(report), "bold"))
    probe_line = _probe_line(report)
    if probe_line:
        console.print(_text(f"probe: {probe_line}", "dim"))
    _results_rich(report, console)
    if len(report.results) == 1:
        console.print(_text(f"stages: {_stages_line(report.results[0])}", "dim"))
    for label, text in _failure_lines(report):
        line = Text()
        line.append(_safe(f"{label} "), style="yellow" if label.strip() == "hint:" else "bold red")
        line.append(_safe(text))  # Text.append takes the string as data, never as markup
        console.print(line)
    for block in (_hosts_lines(report), _certificate_lines(report), _client_cert_lines(report)):
        if block:
            console.print()
            for block_line in block:
                console.print(_text(block_line))


def _results_rich(report: Report, console: Console) -> None:
    """The results table. Cells are never cut or folded mid-token ("verify-f…" on 80 columns):
    every column keeps its full width; on a terminal too narrow for the boxed table the boxes go
    (one space between columns fits the eight columns in 80), and narrower still, one record per
    mode, wrapped between words."""
    from rich.table import Table
    from rich.text import Text

    rows = [_row(r) for r in report.results]
    need = sum(max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(_COLUMNS))
    if console.width < need + len(_COLUMNS) - 1:
        for r, cells in zip(report.results, rows, strict=True):
            record = Text()
            record.append(_safe(cells[0].ljust(11)), style="bold")
            record.append(" ")
            record.append(_safe(cells[1]), style="green" if r.ok else "red")
            pairs = [f"{c}={v}" for c, v in zip(_COLUMNS[2:], cells[2:], strict=True)]
            record.append(_safe(" " + " ".join(pairs)))
            console.print(record)
        return
    if console.width >= need + 3 * len(_COLUMNS) + 1:
        table = Table(header_style="bold")
    else:
        table = Table(header_style="bold", box=None, padding=(0, 1, 0, 0), pad_edge=False)
    for column in _COLUMNS:
        table.add_column(column, no_wrap=True)
    for r, cells in zip(report.results, rows, strict=True):
        style = "green" if r.ok else "red"
        table.add_row(
            _text(cells[0], "bold"),
            _text(cells[1], style),
            _text(cells[2], "" if r.ok else style),
            *(_text(c) for c in cells[3:]),
        )
    console.print(table)
