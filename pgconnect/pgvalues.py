"""PostgreSQL values in their text form: the built-in type OIDs, and text → JSON the way
PostgreSQL's ``to_json`` writes it (numbers exact, arrays as arrays, ISO 8601 dates and times),
with the JSON object helpers for duplicate column names.

``render``'s writers and ``jsoncopy`` use this, so both paths print the same JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from json.decoder import scanstring  # type: ignore[attr-defined]

# --------------------------------------------------------------------------- PostgreSQL types

# Built-in type OIDs (pg_type.dat; fixed across PostgreSQL versions).
BOOL, BYTEA, INT8, INT2, INT4, OID = 16, 17, 20, 21, 23, 26
JSON, JSONB = 114, 3802
FLOAT4, FLOAT8, MONEY, NUMERIC = 700, 701, 790, 1700
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL, TIMETZ = 1082, 1083, 1114, 1184, 1186, 1266

#: to_json writes these as JSON numbers (when the text is a valid JSON number).
NUMBER_TYPES = frozenset({INT2, INT4, INT8, FLOAT4, FLOAT8, NUMERIC})
#: Right-aligned in tables, as psql does.
RIGHT_ALIGNED = NUMBER_TYPES | {OID, MONEY}
DATETIME_TYPES = frozenset({DATE, TIME, TIMETZ, TIMESTAMP, TIMESTAMPTZ})

JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_TZ_HOURS_ONLY = re.compile(r"([+-][0-9]{2})\Z")


def _array_types() -> dict[int, tuple[int, str]]:
    """array OID → (element OID, delimiter) for the types psycopg knows (all built-ins)."""
    from psycopg.postgres import types

    return {t.array_oid: (t.oid, t.delimiter) for t in types if t.array_oid}


_ARRAYS: dict[int, tuple[int, str]] | None = None


def array_element(oid: int) -> tuple[int, str] | None:
    global _ARRAYS
    if _ARRAYS is None:
        _ARRAYS = _array_types()
    return _ARRAYS.get(oid)


def json_value(text: str | None, oid: int, *, iso_dates: bool = True) -> str:
    """One value in PostgreSQL's text form → JSON text, as PostgreSQL's ``to_json`` writes it.

    Numbers stay exactly as PostgreSQL wrote them; NaN and ±Infinity become strings (no bare NaN:
    the output is always valid JSON); json/jsonb are embedded; arrays become arrays; dates and
    times become ISO 8601 (``2024-01-02T03:04:05+00:00``); bytea stays ``\\x…`` hex text;
    anything else is a string of its text form.
    """
    if text is None:
        return "null"
    if oid in NUMBER_TYPES:
        return text if JSON_NUMBER.match(text) else _string(text)
    if oid == BOOL:
        return "true" if text == "t" else "false" if text == "f" else _string(text)
    if oid in (JSON, JSONB):
        # Raw whitespace is the only control character valid JSON holds outside strings; keep
        # each value on one line (jsonl).
        return text.translate(JSON_WHITESPACE)
    if oid in DATETIME_TYPES and iso_dates:
        return _string(iso_datetime(text, oid))
    element = array_element(oid)
    if element is not None:
        elem_oid, delimiter = element
        try:
            parsed = parse_array(text, delimiter)
        except ValueError:
            return _string(text)
        return _json_array(parsed, elem_oid, iso_dates)
    return _string(text)


JSON_WHITESPACE = str.maketrans({"\n": " ", "\r": " ", "\t": " "})


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _json_array(items: object, elem_oid: int, iso_dates: bool) -> str:
    if isinstance(items, list):
        return "[" + ",".join(_json_array(x, elem_oid, iso_dates) for x in items) + "]"
    assert items is None or isinstance(items, str)
    return json_value(items, elem_oid, iso_dates=iso_dates)


def iso_datetime(text: str, oid: int) -> str:
    """PostgreSQL's ISO DateStyle text → the ISO 8601 form its JSON encoder uses.

    ``2024-01-02 03:04:05+00`` → ``2024-01-02T03:04:05+00:00``; ``infinity`` and BC suffixes are
    kept as PostgreSQL keeps them.
    """
    if text in ("infinity", "-infinity"):
        return text
    bc = text.endswith(" BC")
    core = text[:-3] if bc else text
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        core = core.replace(" ", "T", 1)
    if oid in (TIMESTAMPTZ, TIMETZ):
        core = _TZ_HOURS_ONLY.sub(r"\1:00", core)
    return core + (" BC" if bc else "")


def parse_array(text: str, delimiter: str = ",") -> list[object]:
    """PostgreSQL's array text form (``{1,NULL,"a b"}``, nested, ``[0:1]={…}``) → nested lists
    of element text (None for NULL)."""
    i = 0
    if text.startswith("["):  # dimension decoration: [1:2][1:3]={…}
        i = text.index("=") + 1
    n = len(text)

    def parse(i: int) -> tuple[list[object], int]:
        if text[i] != "{":
            raise ValueError("not an array")
        i += 1
        items: list[object] = []
        if i < n and text[i] == "}":
            return items, i + 1
        while i < n:
            c = text[i]
            if c == "{":
                sub, i = parse(i)
                items.append(sub)
            elif c == '"':
                buf = []
                i += 1
                while i < n and text[i] != '"':
                    if text[i] == "\\":
                        i += 1
                    buf.append(text[i])
                    i += 1
                items.append("".join(buf))
                i += 1
            else:
                j = i
                while j < n and text[j] not in (delimiter, "}"):
                    j += 1
                raw = text[i:j].strip()
                items.append(None if raw.upper() == "NULL" else raw)
                i = j
            if i < n and text[i] == delimiter:
                i += 1
                continue
            if i < n and text[i] == "}":
                return items, i + 1
        raise ValueError("unterminated array")

    items, _ = parse(i)
    return items


def unique_names(names: Sequence[str]) -> list[str]:
    """JSON keys for column names: a repeated name gets ``_2``, ``_3``… (never clashing)."""
    taken = set(names)
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        if name not in seen:
            seen.add(name)
            out.append(name)
            continue
        k = 2
        while f"{name}_{k}" in taken or f"{name}_{k}" in seen:
            k += 1
        new = f"{name}_{k}"
        seen.add(new)
        out.append(new)
    return out


_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def object_members(text: str) -> list[tuple[str, str]]:
    """A JSON object's members as (key, raw value text), keeping values byte-exact."""
    i = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if text[i : i + 1] != "{":
        raise ValueError("not a JSON object")
    i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
    members: list[tuple[str, str]] = []
    if text[i : i + 1] == "}":
        return members
    while True:
        if text[i : i + 1] != '"':
            raise ValueError("expected a key")
        key, i = scanstring(text, i + 1)
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i : i + 1] != ":":
            raise ValueError("expected ':'")
        i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
        _, end = _DECODER.raw_decode(text, i)
        members.append((key, text[i:end]))
        i = _WS.match(text, end).end()  # type: ignore[union-attr]
        if text[i : i + 1] == ",":
            i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
            continue
        if text[i : i + 1] == "}":
            return members
        raise ValueError("expected ',' or '}'")


def rename_keys(text: str, keys: Sequence[str]) -> str:
    members = object_members(text)
    return (
        "{"
        + ",".join(
            f"{json.dumps(k, ensure_ascii=False)}:{v}"
            for k, (_, v) in zip(keys, members, strict=True)
        )
        + "}"
    )
