"""Query results → bytes: the output formats of ``pgconnect query``, defined once.

Formats (docs/queries.md): ``table`` (for people; drawn by ``pgconnect.table``), ``plain`` (tab-separated,
no header, NULL empty), ``csv`` and ``tsv`` (header row; COPY's quoting), ``json`` (one array of
objects) and ``jsonl`` (one object per line). ``FORMATS`` says, per format, whether every result set is printed and how
the server can produce the format itself (``COPY … TO STDOUT`` options, or JSON built by
``row_to_json``) so that ``query`` streams bytes instead of building values in Python.

Writers never print: they write bytes to the binary stream they are given and return how many
rows they wrote. Values reach them in one of four shapes (see ``TextRows``, ``CopyRows``,
``JsonRows``, ``Passthrough``). For the shapes built in Python, values arrive as PostgreSQL's text
form (``str`` or None) with the column's type OID; ``pgvalues.json_value`` turns one into JSON the way
PostgreSQL's ``to_json`` does, so both paths print the same JSON.

Nothing here imports rich at module level (``--help`` must stay light).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, TYPE_CHECKING, TypeVar

from pgconnect.pgvalues import (
    JSON_WHITESPACE,
    json_value,
    object_members,
    rename_keys,
    unique_names,
)
from pgconnect.safetext import UNSAFE, escape_control

if TYPE_CHECKING:
    from rich.text import Text


class OutputFormat(StrEnum):
    """The output formats of ``pgconnect query --format``."""

    table = "table"
    plain = "plain"
    csv = "csv"
    tsv = "tsv"
    json = "json"
    jsonl = "jsonl"


@dataclass(frozen=True)
class FormatSpec:
    """How a format behaves and how the server can produce it."""

    every_result: bool  # print every result set (table, plain) or only the last one
    copy_options: str | None = None  # COPY (…) TO STDOUT WITH (…) writes this format
    server_json: bool = False  # the server builds one JSON object per row (row_to_json)


FORMATS: dict[OutputFormat, FormatSpec] = {
    OutputFormat.table: FormatSpec(every_result=True),
    # COPY's text format escapes \, tab, newline…; the plain writer undoes that (psql -At style).
    OutputFormat.plain: FormatSpec(every_result=True, copy_options="FORMAT text, NULL ''"),
    OutputFormat.csv: FormatSpec(every_result=False, copy_options="FORMAT csv, HEADER"),
    OutputFormat.tsv: FormatSpec(
        every_result=False, copy_options="FORMAT csv, DELIMITER E'\\t', HEADER"
    ),
    OutputFormat.json: FormatSpec(every_result=False, server_json=True),
    OutputFormat.jsonl: FormatSpec(every_result=False, server_json=True),
}


@dataclass(frozen=True)
class Column:
    """A result column: its name and its type OID (0 when unknown)."""

    name: str
    type_oid: int = 0


# --------------------------------------------------------------------------- COPY text format

# COPY's text format escapes backslash, newline, carriage return, tab, backspace, form feed and
# vertical tab (PostgreSQL: CopyAttributeOutText). NUL never occurs in PostgreSQL text, so it is
# a safe placeholder for an escaped backslash while the others are undone.
_COPY_ESCAPES = [
    (b"\\n", b"\n"),
    (b"\\r", b"\r"),
    (b"\\t", b"\t"),
    (b"\\b", b"\b"),
    (b"\\f", b"\f"),
    (b"\\v", b"\v"),
]
# In row_to_json's output the only characters COPY escapes are backslashes and the raw
# whitespace of embedded json values: a space keeps each object on one line.
_COPY_JSON_ESCAPES = [(b"\\n", b" "), (b"\\r", b" "), (b"\\t", b" ")]


def _unescape_copy(chunk: bytes, escapes: list[tuple[bytes, bytes]]) -> bytes:
    if b"\\" not in chunk:
        return chunk
    chunk = chunk.replace(b"\\\\", b"\x00")
    for escaped, raw in escapes:
        chunk = chunk.replace(escaped, raw)
    return chunk.replace(b"\x00", b"\\")


def unescape_copy_text(chunk: bytes) -> bytes:
    """COPY … (FORMAT text) bytes → the raw values (psql -At style)."""
    return _unescape_copy(chunk, _COPY_ESCAPES)


def unescape_copy_json(chunk: bytes) -> bytes:
    """COPY text-format lines of row_to_json output → JSON lines."""
    return _unescape_copy(chunk, _COPY_JSON_ESCAPES)


# --------------------------------------------------------------------------- result shapes

Buffer = bytes | bytearray | memoryview


@dataclass
class TextRows:
    """Rows in PostgreSQL's text form (None for NULL), with their columns."""

    columns: Sequence[Column]
    rows: Iterable[Sequence[str | None]]
    iso_dates: bool = True  # the session's DateStyle is ISO (json_value can convert)


@dataclass
class CopyRows:
    """The bytes of ``COPY (…) TO STDOUT WITH (<the format's copy_options>)``, one row a chunk."""

    chunks: Iterable[Buffer]


@dataclass
class JsonRows:
    """One JSON object per row, built by the server (row_to_json).

    ``copy_escaped``: chunks come from COPY's text format (one line each, escapes to undo);
    otherwise each item is one object's text, which may hold raw JSON whitespace.
    """

    rows: Iterable[Buffer | str]
    copy_escaped: bool


@dataclass
class JsonLines:
    """Batches of finished JSON lines (each ending with a newline) and how many rows each holds
    (``pgconnect.jsoncopy`` builds them from COPY's text output)."""

    batches: Iterable[tuple[bytes, int]]


@dataclass
class Passthrough:
    """The user's own ``COPY … TO STDOUT``: written as it comes, whatever the format."""

    chunks: Iterable[Buffer]


Result = TextRows | CopyRows | JsonRows | JsonLines | Passthrough


@dataclass(frozen=True)
class Written:
    """What a writer did with one result set."""

    rows: int  # rows in the result
    shown: int  # rows written (fewer for a table capped at --max-rows)


@dataclass(frozen=True)
class TableStyle:
    """What the table writer needs to know about the terminal."""

    width: int = 80
    color: bool = False
    max_rows: int | None = 1000  # None: no cap


T = TypeVar("T")
BATCH = 1000  # rows joined per write


def batches(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    """Lists of up to SIZE consecutive items (itertools.batched arrives with Python 3.12)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_lines(lines: Iterable[str], target: IO[bytes]) -> int:
    """Write text lines joined in batches (one write per BATCH lines); the number written."""
    count = 0
    for batch in batches(lines):
        target.write(("\n".join(batch) + "\n").encode())
        count += len(batch)
    return count


class Writer:
    """Writes result sets in one format to a binary stream.

    Table and plain print every result set as it comes. The machine formats print only the last
    result set: with several statements, each result is spooled to a temporary file (memory stays
    flat) and the last one is copied out by ``finish()``.
    """

    def __init__(
        self,
        fmt: OutputFormat,
        out: IO[bytes],
        *,
        statements: int = 1,
        table: TableStyle | None = None,
    ) -> None:
        self.fmt = fmt
        self.spec = FORMATS[fmt]
        self.out = out
        self.table = table or TableStyle()
        self._spool = not self.spec.every_result and statements > 1
        self._last: IO[bytes] | None = None
        self._results = 0

    # ----------------------------------------------------------------- lifecycle

    def _target(self) -> IO[bytes]:
        if not self._spool:
            return self.out
        import tempfile

        if self._last is not None:
            self._last.close()
        self._last = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish()
        return self._last

    def write(self, result: Result) -> Written:
        """Write one result set (machine formats: replacing the previous one)."""
        target = self._target()
        self._results += 1
        if isinstance(result, Passthrough):
            return self._passthrough(result, target)
        if self.fmt is OutputFormat.table:
            if not isinstance(result, TextRows):
                raise TypeError("the table format takes text rows")
            return self._table(result, target)
        if self.fmt is OutputFormat.plain:
            return self._plain(result, target)
        if self.fmt in (OutputFormat.csv, OutputFormat.tsv):
            return self._csv(result, target)
        return self._json(result, target)

    def finish(self) -> None:
        """End the output: copy the last spooled result out; ``[]`` for JSON with no result."""
        if self._last is not None:
            import shutil

            self._last.seek(0)
            shutil.copyfileobj(self._last, self.out, 1 << 16)
            self._last.close()
            self._last = None
        elif self._results == 0 and self.fmt is OutputFormat.json:
            self.out.write(b"[]\n")
        self.out.flush()

    # ----------------------------------------------------------------- formats

    @staticmethod
    def _passthrough(result: Passthrough, target: IO[bytes]) -> Written:
        count = 0
        for chunk in result.chunks:
            target.write(chunk)
            count += 1
        return Written(count, count)

    def _plain(self, result: Result, target: IO[bytes]) -> Written:
        if isinstance(result, CopyRows):
            return _batched(result.chunks, target, unescape_copy_text)
        if not isinstance(result, TextRows):
            raise TypeError("the plain format takes text or COPY rows")
        count = _write_lines(
            ("\t".join("" if v is None else v for v in row) for row in result.rows), target
        )
        return Written(count, count)

    def _csv(self, result: Result, target: IO[bytes]) -> Written:
        if isinstance(result, CopyRows):
            written = _batched(result.chunks, target, None)
            rows = max(0, written.rows - 1)  # the header is a chunk of its own
            return Written(rows, rows)
        if not isinstance(result, TextRows):
            raise TypeError("the csv/tsv formats take text or COPY rows")
        delimiter = "\t" if self.fmt is OutputFormat.tsv else ","
        quote = _csv_quoter(delimiter)
        target.write((delimiter.join(quote(c.name) for c in result.columns) + "\n").encode())
        count = _write_lines(
            (delimiter.join("" if v is None else quote(v) for v in row) for row in result.rows),
            target,
        )
        return Written(count, count)

    def _json(self, result: Result, target: IO[bytes]) -> Written:
        array = self.fmt is OutputFormat.json
        if isinstance(result, TextRows):
            lines = _json_lines_from_text(result)
        elif isinstance(result, JsonRows):
            lines = _json_lines_from_server(result)
        elif isinstance(result, JsonLines):
            lines = iter(result.batches)
        else:
            raise TypeError("the json formats take text or JSON rows")
        count = 0
        first = True
        if array:
            target.write(b"[")
        for chunk, n in lines:
            count += n
            if array:
                # Each line ends with b"\n" and raw newlines never occur inside one, so the
                # separators can be put in with one replace.
                body = chunk[:-1].replace(b"\n", b",\n")
                target.write((b"\n" if first else b",\n") + body)
            else:
                target.write(chunk)
            first = False
        if array:
            target.write(b"]\n" if first else b"\n]\n")
        return Written(count, count)

    def _table(self, result: TextRows, target: IO[bytes]) -> Written:
        from pgconnect.table import write_table  # streams: rows are drawn as they arrive

        return write_table(result.columns, result.rows, self.table, target)


def _batched(
    chunks: Iterable[Buffer], target: IO[bytes], transform: Callable[[bytes], bytes] | None
) -> Written:
    """Write COPY chunks (one row each), joined in batches; TRANSFORM applies per batch."""
    count = 0
    for batch in batches(chunks):
        data = b"".join(batch)
        target.write(transform(data) if transform else data)
        count += len(batch)
    return Written(count, count)


def _json_lines_from_server(result: JsonRows) -> Iterator[tuple[bytes, int]]:
    """Batches of JSON lines (each ending with a newline) from server-built objects.

    The first object's keys are checked: when column names repeat (``select 1, 2`` has two
    ``?column?``) every object is rewritten with unique keys — the slow path, taken only then.
    """
    it = iter(result.rows)
    first = next(it, None)
    if first is None:
        return
    clean = _clean_json_copy if result.copy_escaped else _clean_json_text
    first_line = clean([first])
    keys = [k for k, _ in object_members(first_line.decode())]
    wanted = unique_names(keys)
    if wanted != keys:
        yield _renamed(first_line, wanted), 1
        for batch in batches(it):
            yield _renamed(clean(batch), wanted), len(batch)
        return
    yield first_line, 1
    for batch in batches(it):
        yield clean(batch), len(batch)


def _clean_json_copy(batch: Sequence[Buffer | str]) -> bytes:
    return unescape_copy_json(b"".join(batch))  # type: ignore[arg-type]


def _clean_json_text(batch: Sequence[Buffer | str]) -> bytes:
    # NUL never occurs in PostgreSQL text: join with it, flatten raw whitespace, then split lines.
    text = "\x00".join(str(r) for r in batch).translate(JSON_WHITESPACE)
    return (text.replace("\x00", "\n") + "\n").encode()


def _renamed(lines: bytes, keys: Sequence[str]) -> bytes:
    out = [rename_keys(line, keys) for line in lines.decode().split("\n")[:-1]]
    return ("\n".join(out) + "\n").encode()


def _json_lines_from_text(result: TextRows) -> Iterator[tuple[bytes, int]]:
    keys = [
        json.dumps(k, ensure_ascii=False) for k in unique_names([c.name for c in result.columns])
    ]
    oids = [c.type_oid for c in result.columns]
    iso = result.iso_dates
    objects = (
        "{"
        + ",".join(
            f"{k}:{json_value(v, oid, iso_dates=iso)}"
            for k, v, oid in zip(keys, row, oids, strict=True)
        )
        + "}"
        for row in result.rows
    )
    for batch in batches(objects):
        yield ("\n".join(batch) + "\n").encode(), len(batch)


def _csv_quoter(delimiter: str) -> Callable[[str], str]:
    """COPY's CSV quoting (CopyAttributeOutCSV): quote when empty (so '' differs from NULL) or
    holding the delimiter, a quote, CR or LF, or the end-of-data marker ``\\.``."""
    specials = (delimiter, '"', "\n", "\r")

    def quote(value: str) -> str:
        if value == "" or value == "\\." or any(s in value for s in specials):
            return '"' + value.replace('"', '""') + '"'
        return value

    return quote


# --------------------------------------------------------------------------- table

# Characters never sent to a terminal raw, and how each is shown: one definition for table cells
# and messages (pgconnect.safetext). A newline stays: it wraps inside the cell.
_UNSAFE = UNSAFE
ESCAPE_STYLE = "bold magenta"
NULL_TEXT = "NULL"
NULL_STYLE = "dim italic"


def safe_text(value: str | None, *, header: bool = False) -> Text:
    """A table cell: never markup (rich.text.Text), control characters shown escaped."""
    from rich.text import Text

    if value is None:
        return Text(NULL_TEXT, style=NULL_STYLE)
    text = Text(style="bold" if header else "")
    pos = 0
    for m in _UNSAFE.finditer(value):
        if m.start() > pos:
            text.append(value[pos : m.start()])
        text.append(escape_control(m.group(0)), style=ESCAPE_STYLE)
        pos = m.end()
    if pos < len(value):
        text.append(value[pos:])
    return text


def render_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str | None]], style: TableStyle
) -> str:
    """ROWS drawn as the table format draws them (see ``pgconnect.table``), as text."""
    from pgconnect.table import write_table

    buf = io.BytesIO()
    write_table(columns, rows, style, buf)
    return buf.getvalue().decode()
