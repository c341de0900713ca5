"""``pgconnect check``: which stage of the connection fails, under one sslmode or all six."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from pgconnect import params
from pgconnect.cli import common
from pgconnect.cli.options import ConfigOpt, DebugOpt, EnvOpt, JsonOpt
from pgconnect.errors import UsageError

if TYPE_CHECKING:
    from rich.text import Text

    from pgconnect.probe import ModeResult, Report

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
    """
    if sslmode is not None and sslmode not in (*params.SSLMODES, ALL):
        raise UsageError(
            f"--sslmode {sslmode!r} is not one of {', '.join(params.SSLMODES)}, or {ALL}"
        )
    if not (timeout > 0 and timeout < 86400):
        raise UsageError(f"--timeout must be a number of seconds above 0, not {timeout:g}")
    # --timeout bounds the command, not just the probing: count from pgconnect's own start
    # (reading the project and the keyring come out of the same budget).
    deadline = common.STARTED + timeout
    ctx = common.load(config, env)
    from pgconnect.secrets import budget

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

    from pgconnect import probe

    what = "the six sslmodes" if len(modes) > 1 else f"sslmode={modes[0]}"
    with common.progress(f"checking {what} (up to {timeout:g} s)"):
        report = probe.check_resolution(resolution, modes, timeout=timeout, deadline=deadline)

    _sandbox_hint(ctx, report)
    for warning in report.warnings:
        common.warn(_safe(warning))
    if json_out:
        common.out(json.dumps(report.as_json(), ensure_ascii=False))
    elif common.stdout_is_tty():
        _render_rich(report)
    else:
        _render_plain(report)
    code = report.exit_code(decisive)
    if code:
        raise typer.Exit(int(code))


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


# --------------------------------------------------------------------------- rendering


def _safe(text: str) -> str:
    """Data for a terminal: control characters escaped, never sent raw."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def _target_line(report: Report) -> str:
    t = report.target
    host = t.host or "(libpq's default socket)"
    where = f"{host}:{t.port}" if t.port is not None else host
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
    cert_lines = _certificate_lines(report)
    if cert_lines:
        common.out()
        for line in cert_lines:
            common.out(_safe(line))


def _text(value: str, style: str = "") -> Text:
    from rich.text import Text

    return Text(_safe(value), style=style)  # a Text is never parsed for markup


def _render_rich(report: Report) -> None:
    from rich.table import Table
    from rich.text import Text

    console = common.out_console()
    console.print(_text(_target_line(report), "bold"))
    probe_line = _probe_line(report)
    if probe_line:
        console.print(_text(f"probe: {probe_line}", "dim"))
    table = Table(*(c for c in _COLUMNS), header_style="bold")
    for r in report.results:
        cells = _row(r)
        style = "green" if r.ok else "red"
        table.add_row(
            _text(cells[0], "bold"),
            _text(cells[1], style),
            _text(cells[2], "" if r.ok else style),
            *(_text(c) for c in cells[3:]),
        )
    console.print(table)
    if len(report.results) == 1:
        console.print(_text(f"stages: {_stages_line(report.results[0])}", "dim"))
    for label, text in _failure_lines(report):
        line = Text()
        line.append(_safe(f"{label} "), style="yellow" if label.strip() == "hint:" else "bold red")
        line.append(_safe(text))  # Text.append takes the string as data, never as markup
        console.print(line)
    cert_lines = _certificate_lines(report)
    if cert_lines:
        console.print()
        for cert_line in cert_lines:
            console.print(_text(cert_line))
