"""pgconnect's benchmark harness: figures and ratios against psql and a bare psycopg script.

Run with ``bash scripts/bench.sh`` (it provides the keyring session P5 needs). It starts its own
local TLS cluster, runs every variant interleaved (A B A B …, so a busy machine slows both alike),
and prints the median wall time, the peak RSS (from ``wait4``), the ratio, and the target. Results also go to ``benchmarks/results/latest.json``. These are figures, not tests:
nothing here fails a build.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pgconnect import pki
from pgconnect.cluster import Cluster, chown_to, free_port, server_user

REPO = Path(__file__).resolve().parent.parent
BIG_QUERY = "select g, md5(g::text), now(), g*1.5 from generate_series(1,{rows}) g"
TABLE_QUERY = "select g, md5(g::text) from generate_series(1,{rows}) g"
TERMINAL_COLUMNS = 200


@dataclass
class Sample:
    seconds: float
    max_rss_kib: int
    returncode: int


@dataclass
class Variant:
    name: str
    argv: list[str]
    env: dict[str, str]
    samples: list[Sample] = field(default_factory=list)
    terminal: int | None = None  # columns of a pseudo-terminal for stdout (None: /dev/null)

    @property
    def median_s(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def max_rss_mib(self) -> float:
        return max(s.max_rss_kib for s in self.samples) / 1024


def run_once(argv: Sequence[str], env: dict[str, str], terminal: int | None = None) -> Sample:
    """Run ARGV with stdout to /dev/null, or to a pseudo-terminal TERMINAL columns wide that is
    read (and dropped) as a terminal would; wall time and the child's peak RSS via wait4."""
    if terminal is not None:
        return _run_on_terminal(argv, env, terminal)
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {argv}\n{err}")
    return Sample(elapsed, usage.ru_maxrss, proc.returncode)


def _run_on_terminal(argv: Sequence[str], env: dict[str, str], columns: int) -> Sample:
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environ = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    environ["TERM"] = "xterm-256color"
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=errors, env=environ
        )
        os.close(slave)
        try:
            while os.read(master, 1 << 16):
                pass
        except OSError:  # EIO: the program closed the terminal
            pass
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        os.close(master)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            errors.seek(0)
            err = errors.read().decode(errors="replace")
            raise SystemExit(f"benchmark command failed ({code}): {argv}\n{err}")
    return Sample(elapsed, usage.ru_maxrss, code)


def interleave(variants: Sequence[Variant], runs: int, warmup: int = 1) -> None:
    """A B C, B C A, C A B, …: interleaved so a busy machine slows every variant alike, and
    rotated so no variant always runs first (or always right after the same neighbour)."""
    for _ in range(warmup):
        for v in variants:
            run_once(v.argv, v.env, v.terminal)
    for i in range(runs):
        shift = i % len(variants)
        for v in [*variants[shift:], *variants[:shift]]:
            v.samples.append(run_once(v.argv, v.env, v.terminal))


@dataclass
class Comparison:
    key: str
    title: str
    subject: Variant
    baseline: Variant
    metric: (
        str  # "time-ratio" (subject/baseline, lower is better) or "throughput" (baseline/subject)
    )
    target: str
    check: Callable[[Comparison], bool]
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        if self.metric == "throughput":
            return self.baseline.median_s / self.subject.median_s
        return self.subject.median_s / self.baseline.median_s

    def row(self) -> dict[str, object]:
        return {
            "key": self.key,
            "title": self.title,
            "subject": self.subject.name,
            "subject_median_ms": round(self.subject.median_s * 1000, 1),
            "subject_peak_rss_mib": round(self.subject.max_rss_mib, 1),
            "baseline": self.baseline.name,
            "baseline_median_ms": round(self.baseline.median_s * 1000, 1),
            "baseline_peak_rss_mib": round(self.baseline.max_rss_mib, 1),
            "ratio": round(self.ratio, 3),
            "metric": self.metric,
            "target": self.target,
            "met": self.check(self),
            **{k: round(v, 1) for k, v in self.extra.items()},
        }


class Server:
    """A throwaway TLS cluster with a password-authenticated role ``bench``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pgconnect-bench-"))
        chown_to(server_user(), self.root)
        self.password = "bench-" + secrets.token_urlsafe(12)
        ca = pki.CA("pgconnect bench CA")
        issued = ca.issue_server("localhost", ["localhost", "127.0.0.1", "::1"])
        self.ca_file = self.root / "root.crt"
        self.ca_file.write_bytes(ca.cert_pem)
        os.chmod(self.root, 0o755)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        chown_to(server_user(), pwfile)
        self.cluster = Cluster(root=self.root / "cluster", port=free_port())
        self.cluster.initdb(pwfile)
        self.cluster.configure(
            ssl=True,
            cert=issued.cert_pem,
            key=issued.key_pem,
            hba=["host all all 127.0.0.1/32 scram-sha-256", "host all all ::1/128 scram-sha-256"],
            extra=["shared_buffers = 128MB", "max_connections = 40"],
        )
        self.cluster.start()

    def stop(self) -> None:
        try:
            self.cluster.stop(mode="immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PG", "DB_", "PGCONNECT_")) or k == "PGCONNECT_SECRET_STORE"
    }
    env.pop("PGCONNECT_SECRET_STORE", None)
    env.update(extra)
    return env


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9, help="timed runs per variant (median)")
    ap.add_argument("--big-runs", type=int, default=3, help="timed runs of the 1M-row variants")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--table-rows", type=int, default=100_000, help="rows of P6's table")
    ap.add_argument("--only", default="", help="comma list of P1..P6 to run")
    args = ap.parse_args(argv)
    only = {x.strip().upper() for x in args.only.split(",") if x.strip()}

    pgconnect = shutil.which("pgconnect", path=str(Path(sys.executable).parent)) or "pgconnect"
    psql = shutil.which("psql") or "psql"
    python = sys.executable
    server = Server()
    project = Path(tempfile.mkdtemp(prefix="pgconnect-bench-project-"))
    try:
        host, port = "127.0.0.1", server.cluster.port
        (project / "pgconnect.toml").write_text(
            'name = "bench"\n[vars]\n'
            f'DB_HOST = "{host}"\nDB_PORT = "{port}"\nDB_USERNAME = "postgres"\n'
            f'DB_NAME = "postgres"\nDB_SSLMODE = "verify-full"\nDB_SSLROOTCERT = "{server.ca_file}"\n'
        )
        cfg = ["--config", str(project / "pgconnect.toml")]
        pw_env = clean_env(DB_PASSWORD=server.password)
        libpq_env = clean_env(
            PGHOST=host,
            PGPORT=str(port),
            PGUSER="postgres",
            PGDATABASE="postgres",
            PGPASSWORD=server.password,
            PGSSLMODE="verify-full",
            PGSSLROOTCERT=str(server.ca_file),
        )
        big = BIG_QUERY.format(rows=args.rows)
        comparisons: list[Comparison] = []

        def want(key: str) -> bool:
            return not only or key in only

        if want("P1"):
            sub = Variant(
                "pgconnect query 'select 1' --format json",
                [pgconnect, "query", "select 1", "--format", "json", *cfg],
                pw_env,
            )
            base = Variant(
                "bare psycopg script",
                [python, str(REPO / "benchmarks" / "bare_psycopg.py")],
                libpq_env,
            )
            psql1 = Variant("psql -Atc 'select 1'", [psql, "-Atc", "select 1"], libpq_env)
            interleave([sub, base, psql1], args.runs)
            c = Comparison(
                "P1",
                "start-up: one-row query",
                sub,
                base,
                "time-ratio",
                "≤ 1.25× bare psycopg",
                lambda c: c.ratio <= 1.25,
            )
            c.extra["psql_median_ms"] = psql1.median_s * 1000
            comparisons.append(c)

        if want("P2") or want("P3"):
            ref = Variant(f"psql --csv ({args.rows} rows)", [psql, "--csv", "-c", big], libpq_env)
            variants = [ref]
            csv_v = Variant(
                f"pgconnect query --format csv ({args.rows} rows)",
                [pgconnect, "query", big, "--format", "csv", *cfg],
                pw_env,
            )
            jsonl_v = Variant(
                f"pgconnect query --format jsonl ({args.rows} rows)",
                [pgconnect, "query", big, "--format", "jsonl", *cfg],
                pw_env,
            )
            if want("P2"):
                variants.append(csv_v)
            if want("P3"):
                variants.append(jsonl_v)
            interleave(variants, args.big_runs)
            if want("P2"):
                comparisons.append(
                    Comparison(
                        "P2",
                        "csv export throughput and memory",
                        csv_v,
                        ref,
                        "throughput",
                        "≥ 0.6× psql, ≤ 64 MiB",
                        lambda c: c.ratio >= 0.6 and c.subject.max_rss_mib <= 64,
                    )
                )
            if want("P3"):
                comparisons.append(
                    Comparison(
                        "P3",
                        "jsonl export throughput and memory",
                        jsonl_v,
                        ref,
                        "throughput",
                        "≥ 1.0× psql, ≤ 64 MiB",
                        lambda c: c.ratio >= 1.0 and c.subject.max_rss_mib <= 64,
                    )
                )

        if want("P4"):
            all_v = Variant(
                "pgconnect check --sslmode all",
                [pgconnect, "check", "--sslmode", "all", *cfg],
                pw_env,
            )
            one_v = Variant(
                "pgconnect check --sslmode require",
                [pgconnect, "check", "--sslmode", "require", *cfg],
                pw_env,
            )
            interleave([all_v, one_v], args.runs)
            comparisons.append(
                Comparison(
                    "P4",
                    "six modes concurrently vs one",
                    all_v,
                    one_v,
                    "time-ratio",
                    "≤ 1.5×",
                    lambda c: c.ratio <= 1.5,
                )
            )

        if want("P5"):
            if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
                print(
                    "P5 skipped: no D-Bus session (run through scripts/bench.sh)", file=sys.stderr
                )
            else:
                put = subprocess.run(
                    [pgconnect, "secret", "put", "DB_PASSWORD", *cfg],
                    input=server.password.encode(),
                    env=clean_env(),
                    capture_output=True,
                )
                if put.returncode != 0:
                    raise SystemExit(f"secret put failed: {put.stderr.decode(errors='replace')}")
                kr_v = Variant(
                    "pgconnect query (password from keyring)",
                    [pgconnect, "query", "select 1", "--format", "json", *cfg],
                    clean_env(),
                )
                env_v = Variant(
                    "pgconnect query (password from environment)",
                    [pgconnect, "query", "select 1", "--format", "json", *cfg],
                    pw_env,
                )
                interleave([kr_v, env_v], args.runs)
                c = Comparison(
                    "P5",
                    "keyring lookup cost",
                    kr_v,
                    env_v,
                    "time-ratio",
                    "adds ≤ 60 ms",
                    lambda c: (c.subject.median_s - c.baseline.median_s) * 1000 <= 60,
                )
                c.extra["added_ms"] = (kr_v.median_s - env_v.median_s) * 1000
                comparisons.append(c)

        if want("P6"):
            table_sql = TABLE_QUERY.format(rows=args.table_rows)
            pg_table = Variant(
                f"pgconnect query --format table --max-rows 0 ({args.table_rows} rows, "
                f"{TERMINAL_COLUMNS}-column terminal)",
                [pgconnect, "query", "--format", "table", "--max-rows", "0", table_sql, *cfg],
                pw_env,
                terminal=TERMINAL_COLUMNS,
            )
            psql_table = Variant(
                "psql -P pager=off (aligned, same terminal)",
                [psql, "-P", "pager=off", "-c", table_sql],
                libpq_env,
                terminal=TERMINAL_COLUMNS,
            )
            interleave([pg_table, psql_table], args.runs)
            comparisons.append(
                Comparison(
                    "P6",
                    "table of 100k rows on a terminal, throughput and memory",
                    pg_table,
                    psql_table,
                    "throughput",
                    "≥ 0.5× psql, ≤ 64 MiB",
                    lambda c: c.ratio >= 0.5 and c.subject.max_rss_mib <= 64,
                )
            )

        rows = [c.row() for c in comparisons]
        machine = {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
            "date": time.strftime("%Y-%m-%d"),
            "runs": args.runs,
            "big_runs": args.big_runs,
            "rows": args.rows,
            "table_rows": args.table_rows,
        }
        print(f"machine: {machine}")
        for r in rows:
            mark = "met" if r["met"] else "MISSED"
            print(
                f"{r['key']} {r['title']}: {r['subject_median_ms']} ms, "
                f"{r['subject_peak_rss_mib']} MiB  vs  {r['baseline']}: "
                f"{r['baseline_median_ms']} ms, {r['baseline_peak_rss_mib']} MiB  → "
                f"ratio {r['ratio']} ({r['metric']}); target {r['target']}: {mark}"
                + (f"; added {r['added_ms']} ms" if "added_ms" in r else "")
                + (f"; psql {r['psql_median_ms']} ms" if "psql_median_ms" in r else "")
            )
        out_dir = REPO / "benchmarks" / "results"
        out_dir.mkdir(exist_ok=True)
        (out_dir / "latest.json").write_text(
            json.dumps({"machine": machine, "results": rows}, indent=2) + "\n"
        )
        return 0
    finally:
        server.stop()
        shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
