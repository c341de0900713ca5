"""Rows of ``COPY … TO STDOUT`` read straight from libpq while it has them buffered.

psycopg's ``Copy`` iterator goes through a generator, a wait loop and a state check for every row;
on a million-row export that costs more client CPU than the bytes themselves. Here each row that
libpq already holds is taken with one ``PQgetCopyData`` call; only when libpq has nothing buffered
(or the COPY is over, or failed) does psycopg take over for one row, so waiting (interruptible by
Ctrl-C), the end of the COPY and its errors are psycopg's as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

    from pgconnect.render import Buffer


def rows(copy: psycopg.Copy, conn: psycopg.Connection[object]) -> Iterator[Buffer]:
    """COPY's rows, one a chunk, as iterating COPY would give them."""
    get = conn.pgconn.get_copy_data
    read = copy.read
    while True:
        nbytes, data = get(1)  # async: 0 when nothing is buffered, never blocks
        if nbytes > 0:
            yield data
            continue
        if nbytes == -1:
            # The COPY is over: psycopg collects the final result (or raises its error).
            _finish(conn)
            return
        chunk = read()  # would block (0) or failed (-2): psycopg waits or raises
        if not chunk:
            return
        yield chunk


def batches(
    copy: psycopg.Copy, conn: psycopg.Connection[object], size: int
) -> Iterator[tuple[bytes, int]]:
    """COPY's rows joined SIZE at a time: (bytes, how many rows)."""
    get = conn.pgconn.get_copy_data
    read = copy.read
    batch: list[Buffer] = []
    append = batch.append
    done = False
    while not done:
        while len(batch) < size:
            nbytes, data = get(1)
            if nbytes > 0:
                append(data)
                continue
            if nbytes == -1:
                _finish(conn)
                done = True
                break
            chunk = read()
            if not chunk:
                done = True
                break
            append(chunk)
        if batch:
            yield b"".join(batch), len(batch)
            batch.clear()


def _finish(conn: psycopg.Connection[object]) -> None:
    """Read the results that follow a COPY's end; raise the server's error if it failed."""
    import psycopg
    from psycopg import pq

    pgconn = conn.pgconn
    failed = None
    while (result := pgconn.get_result()) is not None:
        if result.status != pq.ExecStatus.COMMAND_OK and failed is None:
            failed = result
    if failed is not None:
        raise psycopg.errors.error_from_result(failed, encoding=conn.info.encoding)
