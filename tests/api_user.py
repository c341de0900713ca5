"""A user's script, typed: ``tests/test_api.py`` runs ``mypy --strict`` on it (not collected by
pytest). It uses every name of the public API the way the documentation shows."""

from __future__ import annotations

import asyncio
import sys

import pgconnect


def show(env: str | None = None) -> str:
    s: pgconnect.Settings = pgconnect.settings(env)
    host: str | None = s.get("host")
    sources: dict[str, str] = s.sources()
    return f"{host} {sources} {s!r}"


def count_users(env: str | None = None) -> int:
    try:
        with pgconnect.connect(env, autocommit=True) as conn:
            row = conn.execute("select count(*) from pg_roles").fetchone()
    except pgconnect.RejectedError as exc:
        sys.exit(int(exc.exit_code))
    return 0 if row is None else int(row[0])


async def server_version(env: str | None = None) -> str:
    conn = await pgconnect.connect_async(env)
    async with conn:
        cur = await conn.execute("show server_version")
        row = await cur.fetchone()
    return "" if row is None else str(row[0])


def dsn_for_another_driver() -> str:
    info: str = pgconnect.conninfo(config="pgconnect.toml")
    return info


def exit_status(exc: pgconnect.PgconnectError) -> int:
    code: pgconnect.ExitCode = exc.exit_code
    return int(code)


if __name__ == "__main__":
    print(show(), count_users(), asyncio.run(server_version()))
