"""JSON lines from ``COPY … TO STDOUT``'s text format, built in bulk.

``row_to_json`` costs the server more than the rows themselves (it forms and takes apart a
composite value and looks up each column's type for every row), and on a 1M-row export the server
is the bottleneck. So for a plain query whose columns are known (``… LIMIT 0`` describes it without
running it), the server sends each column as text — ``to_json(column)`` only where the JSON is
not the text itself or a simple rewrite of it (arrays, composites, bytea, time with time zone,
types pgconnect does not know; dates and times too when DateStyle is not ISO) — and pgconnect puts
keys, quotes, commas and braces around the fields with byte operations over a batch of rows at a
time, on the other CPU: one split into fields, one %-format that puts them into a template of the
batch's objects.

A batch takes the fast way when its values need nothing (numbers without NaN/Infinity, strings
without a quote, a backslash or a control character, no NULLs); otherwise only the columns that
need it are converted value by value, by the rules PostgreSQL's ``to_json`` follows (see
``pgvalues.json_value``), so the bytes are the same as ``row_to_json``'s whichever way a batch went.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

from pgconnect import pgvalues, render

#: Types whose JSON is their text form as a string (PostgreSQL's to_json: "other" types).
STRING_TYPES = frozenset(
    {
        18,  # "char"
        19,  # name
        25,  # text
        26,  # oid (not a JSON number for to_json)
        142,  # xml
        650,  # cidr
        705,  # unknown
        774,  # macaddr8
        790,  # money
        829,  # macaddr
        869,  # inet
        1042,  # bpchar
        1043,  # varchar
        1186,  # interval
        1560,  # bit
        1562,  # varbit
        2950,  # uuid
        3220,  # pg_lsn
    }
)
NUMBERS = pgvalues.NUMBER_TYPES
RAW_JSON = frozenset({pgvalues.JSON, pgvalues.JSONB})
BOOLEANS = {b"t": b"true", b"f": b"false", b"\\N": b"null"}

EXACT = frozenset({pgvalues.INT2, pgvalues.INT4, pgvalues.INT8})  # never NaN or Infinity


#: Bytes that JSON text must escape (PostgreSQL's escape_json and json.dumps agree: control
#: characters, the quote and the backslash); deleting them is the quickest way to look for one.
_CONTROL = bytes(range(0x20))


def _plain(joined: bytes) -> bool:
    """Can these strings go into JSON as they are? Not when one holds a quote, a backslash (COPY
    doubles a backslash, escapes control characters with one, and writes NULL as \\N) or a raw
    control character. Every other character, non-ASCII included, JSON keeps as it is."""
    return (
        b'"' not in joined
        and b"\\" not in joined
        and len(joined.translate(None, _CONTROL)) == len(joined)
    )


_WHITESPACE = bytes.maketrans(b"\n\r\t", b"   ")
NULL = b"\\N"  # COPY's text format writes NULL so; a backslash in data is doubled
BATCH = 2000  # rows put together at a time


#: Dates and times whose ISO DateStyle text pgconnect turns into to_json's ISO 8601 itself
#: (``pgvalues.iso_datetime``: a "T" for the space, "+00:00" for "+00"); only when DateStyle is ISO.
DATETIMES = frozenset({pgvalues.DATE, pgvalues.TIME, pgvalues.TIMESTAMP, pgvalues.TIMESTAMPTZ})


def by_server(oid: int, iso_dates: bool = True) -> bool:
    """Is the column sent as ``to_json(column)`` (its JSON is not its text form)?"""
    if oid in DATETIMES:
        return not iso_dates
    return not (oid in NUMBERS or oid == pgvalues.BOOL or oid in RAW_JSON or oid in STRING_TYPES)


def select_list(oids: Sequence[int], iso_dates: bool = True) -> str:
    """The COPY's select list over the columns, named "1", "2", … by the subquery's alias."""
    return ", ".join(
        f'to_json("{i}")' if by_server(oid, iso_dates) else f'"{i}"'
        for i, oid in enumerate(oids, 1)
    )


def _datetime(value: bytes, oid: int) -> bytes:
    if value == NULL:
        return b"null"
    return b'"' + pgvalues.iso_datetime(value.decode(), oid).encode() + b'"'


def _datetimes(col: list[bytes], oid: int) -> list[bytes] | None:
    """A batch of one date/time column in bulk (without quotes), or None when a value needs
    more than the common case (NULL, BC, infinity, a zone offset with minutes)."""
    rows = len(col)
    joined = b"\n".join(col) + b"\n"  # a newline never occurs in these values
    if b"\\" in joined:  # NULL
        return None
    if oid in (pgvalues.TIMESTAMP, pgvalues.TIMESTAMPTZ):
        if joined.count(b" ") != rows:  # BC, infinity
            return None
        joined = joined.replace(b" ", b"T")
    elif b" " in joined or b"i" in joined:  # BC, infinity
        return None
    if oid == pgvalues.TIMESTAMPTZ:
        zone = col[0][-3:] + b"\n"  # "+00": hours only, the common case
        if zone[:1] not in (b"+", b"-") or joined.count(zone) != rows:
            return None
        joined = joined.replace(zone, zone[:3] + b":00\n")
    return joined[:-1].split(b"\n")


def _string(value: bytes) -> bytes:
    if value == NULL:
        return b"null"
    text = render.unescape_copy_text(value).decode()
    return json.dumps(text, ensure_ascii=False).encode()


def _number(value: bytes) -> bytes:
    if value == NULL:
        return b"null"
    return value if pgvalues.JSON_NUMBER.match(value.decode()) else b'"' + value + b'"'


def _embedded(value: bytes) -> bytes:
    """json/jsonb text or to_json output: COPY's escapes undone, raw whitespace (only possible
    between tokens) made a space so that each object stays on one line."""
    if value == NULL:
        return b"null"
    return render.unescape_copy_text(value).translate(_WHITESPACE)


class Assembler:
    """Turns batches of COPY text lines into JSON lines with the given column names and types."""

    def __init__(self, names: Sequence[str], oids: Sequence[int], iso_dates: bool = True) -> None:
        self.oids = list(oids)
        self.iso_dates = iso_dates
        # As %-format pieces: a percent sign in a column name is doubled.
        self.keys = [
            json.dumps(k, ensure_ascii=False).encode().replace(b"%", b"%%")
            for k in pgvalues.unique_names(names)
        ]
        self._template: tuple[tuple[bool, ...], int, bytes] = ((), 0, b"")

    def template(self, quoted: Sequence[bool], rows: int) -> bytes:
        """ROWS JSON objects as one %-format: a ``%s`` per value, in quotes where QUOTED says.
        Built once for the common batch (the same columns quoted, BATCH rows) and reused."""
        key = (tuple(quoted), rows)
        if self._template[:2] != key:
            pieces = []
            for j, quote in enumerate(quoted):
                q = b'"' if quote else b""
                pieces.append((b"," if j else b"{") + self.keys[j] + b":" + q + b"%s" + q)
            self._template = (*key, (b"".join(pieces) + b"}\n") * rows)
        return self._template[2]

    def lines(self, batch: bytes, rows: int) -> bytes:
        """BATCH: ROWS complete lines of COPY text output → as many JSON lines."""
        k = len(self.oids)
        fields = batch[:-1].replace(b"\n", b"\t").split(b"\t")
        if len(fields) != rows * k:
            raise ValueError("unexpected COPY output")
        # No backslash anywhere: no NULL and no COPY escape in any column of this batch.
        escapes = b"\\" in batch
        quoted: list[bool] = []
        for j, oid in enumerate(self.oids):
            col = fields[j::k]
            quote = False
            new: list[bytes] | None = None
            if oid in STRING_TYPES:
                if _plain(b"".join(col)):
                    quote = True
                else:
                    new = [_string(v) for v in col]
            elif oid in EXACT:
                if escapes and NULL in col:
                    new = [_number(v) for v in col]
            elif oid in NUMBERS:
                joined = b"".join(col)  # digits . - + e, unless NULL (\\N), NaN or Infinity
                if b"N" in joined or b"I" in joined:
                    new = [_number(v) for v in col]
            elif oid == pgvalues.BOOL:
                new = [BOOLEANS[v] for v in col]
            elif oid in DATETIMES and self.iso_dates:
                new = _datetimes(col, oid)
                if new is None:
                    new = [_datetime(v, oid) for v in col]
                else:
                    quote = True
            elif escapes and b"\\" in b"".join(col):  # json, jsonb, to_json(…): NULLs, escapes
                new = [_embedded(v) for v in col]
            if new is not None:
                fields[j::k] = new
            quoted.append(quote)
        return self.template(quoted, rows) % tuple(fields)


def json_lines(
    batches: Iterable[tuple[bytes, int]],
    names: Sequence[str],
    oids: Sequence[int],
    iso_dates: bool = True,
) -> Iterator[tuple[bytes, int]]:
    """Batches of COPY's rows (bytes, how many) → batches of JSON lines, how many each holds."""
    assembler = Assembler(names, oids, iso_dates)
    for batch, rows in batches:
        yield assembler.lines(batch, rows), rows
