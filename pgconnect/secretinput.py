"""What a user gives pgconnect as secret values: one value read from stdin or a command (one
trailing newline dropped), or many at once for ``secret bulk`` (a JSON object or a dotenv file).
"""

from __future__ import annotations


def strip_one_newline(text: str) -> str:
    """Remove exactly one trailing ``\\r\\n`` or ``\\n`` (what ``echo`` and editors add)."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


class BulkInputError(ValueError):
    """The input of ``secret bulk`` is not a JSON object of strings/nulls or a dotenv file.

    Messages name the line or key, never the value.
    """


def parse_bulk(text: str) -> dict[str, str | None]:
    """NAME → value (None: delete) from a JSON object or a dotenv file.

    JSON when the first non-blank character is ``{``; otherwise dotenv: ``NAME=value`` lines,
    optional ``export``, ``#`` comments, values bare (a `` #`` starts a comment, surrounding
    blanks are dropped), in single quotes (literal) or in double quotes (``\\n``, ``\\"``, ``\\\\``
    escapes). A name given twice is an error, not "last one wins".
    """
    if text.lstrip().startswith("{"):
        return _parse_json(text)
    return _parse_dotenv(text)


def _parse_json(text: str) -> dict[str, str | None]:
    import json

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        seen: dict[str, object] = {}
        for key, value in items:
            if key in seen:
                raise BulkInputError(f"{key} is given twice")
            seen[key] = value
        return seen

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        # exc.msg and the position only: the document itself may hold secrets.
        raise BulkInputError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise BulkInputError("invalid JSON: nested too deeply") from None
    except ValueError:
        # Python's int limit (4300 digits): a value that is no string anyway.
        raise BulkInputError("invalid JSON: a number too long to read") from None
    if not isinstance(data, dict):
        raise BulkInputError("the JSON must be an object of NAME: value (or null to delete)")
    out: dict[str, str | None] = {}
    for key, value in data.items():
        if value is not None and not isinstance(value, str):
            raise BulkInputError(
                f"{key}: the value must be a string, or null to delete (got {type(value).__name__})"
            )
        if value == "":
            raise BulkInputError(f"{key}: empty value refused (use null to delete)")
        if value is not None and "\x00" in value:
            raise BulkInputError(f"{key}: {_NUL_REFUSED}")
        out[key] = value
    return out


#: libpq takes C strings: a value with a NUL would silently be cut there.
_NUL_REFUSED = "the value contains a NUL byte, which libpq cannot pass on"

_DOTENV_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def _parse_dotenv(text: str) -> dict[str, str | None]:
    import re

    out: dict[str, str | None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = re.fullmatch(r"(?:export\s+)?([^=\s]+)\s*=\s*(.*)", stripped, flags=re.DOTALL)
        if m is None:
            raise BulkInputError(f"line {number}: expected NAME=value")
        name, rest = m.group(1), m.group(2)
        value = _dotenv_value(rest, number, name)
        if name in out:
            raise BulkInputError(f"line {number}: {name} is given twice")
        if value == "":
            raise BulkInputError(f"line {number}: {name}: empty value refused")
        if "\x00" in value:
            raise BulkInputError(f"line {number}: {name}: {_NUL_REFUSED}")
        out[name] = value
    return out


def _dotenv_value(rest: str, number: int, name: str) -> str:
    if rest.startswith("'"):
        end = rest.find("'", 1)
        if end < 0:
            raise BulkInputError(f"line {number}: {name}: unterminated single quote")
        tail = rest[end + 1 :].strip()
        if tail and not tail.startswith("#"):
            raise BulkInputError(f"line {number}: {name}: text after the closing quote")
        return rest[1:end]
    if rest.startswith('"'):
        chars: list[str] = []
        i = 1
        while i < len(rest):
            c = rest[i]
            if c == "\\" and i + 1 < len(rest):
                nxt = rest[i + 1]
                chars.append(_DOTENV_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            if c == '"':
                tail = rest[i + 1 :].strip()
                if tail and not tail.startswith("#"):
                    raise BulkInputError(f"line {number}: {name}: text after the closing quote")
                return "".join(chars)
            chars.append(c)
            i += 1
        raise BulkInputError(f"line {number}: {name}: unterminated double quote")
    # Bare value: a '#' after a blank starts a comment (as in shells and python-dotenv).
    import re

    return re.split(r"\s+#", rest, maxsplit=1)[0].strip()
