"""What pgconnect shows people: secrets masked (``redact``), control characters escaped (``escape``).

``redact`` is the one redaction for every text that may hold a connection string: error messages
(pgconnect's own and libpq's, which echoes a malformed URI whole), notices, tracebacks under
``--debug``. It does not parse: a string that reaches a message is often malformed, so it masks
everything that *might* be a secret, whatever the shape:

- a URI's user info, whatever the scheme (``postgresql://``, ``postgresql+psycopg2://``,
  ``postgis://``, ``POSTGRESQL://``, ``postgresql:/``…): everything after the first ``:`` up to the
  *last* ``@`` of the line, so a password holding a raw ``/``, ``@``, space or quote is masked
  whole although libpq would have split it elsewhere;
- the value of every secret keyword (``params.SECRET_KEYWORDS``) in ``key=value``, URI query,
  dotenv, JSON and Python-repr shapes, in any case, with blanks or quotes around the ``=``, with
  any letter percent-encoded (``passw%6Frd=``), and with any prefix (``PGPASSWORD=``,
  ``DB_PASSWORD=``, ``?sslpassword=``);
- every secret value the caller names, raw and percent-encoded.

``escape`` keeps terminal control sequences in text that came from a project file or a server from
reaching the terminal raw; ``render`` uses the same characters and spellings for table cells.

Pure and light: imported by the CLI's message writer on every run.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from pgconnect.params import SECRET_KEYWORDS

MASK = "****"

# --------------------------------------------------------------------------- escaping

# Characters never sent to a terminal raw: C0 controls (but newline), DEL, C1 controls (0x80–0x9f:
# 0x9b is a one-byte CSI), and the bidirectional overrides that reorder what a terminal shows
# (CVE-2021-42574, "Trojan Source").
UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_NAMED = {"\t": "\\t", "\r": "\\r", "\x1b": "\\x1b", "\x00": "\\x00"}
# Lone surrogates: what Python makes of bytes that are not UTF-8 (surrogateescape, in argv and
# the environment). Written raw they would make the stream's encoder raise.
_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_control(ch: str) -> str:
    """How one unsafe character is shown: ``\\t``, ``\\r``, ``\\x1b``, ``\\u202e``."""
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """TEXT for a terminal: control characters, bidi overrides and undecodable bytes escaped;
    newlines kept."""
    text = UNSAFE.sub(lambda m: escape_control(m.group(0)), text)
    return _SURROGATE.sub(lambda m: escape_control(m.group(0)), text)


# --------------------------------------------------------------------------- redaction

# Any URI scheme (RFC 3986: a letter, then letters, digits, '+', '-', '.'), then ':' and one or
# more '/'.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:/+")


def _spelled(word: str) -> str:
    # Each letter as itself or percent-encoded: libpq decodes URI query keywords
    # (?passw%6Frd= is password).
    return "".join(f"(?:{re.escape(c)}|%{ord(c):02x})" for c in word)


# A secret keyword, then an optional closing quote, then '=' (or ':' after a quote: JSON, repr).
_SECRET_KEY = re.compile(
    "(?:"
    + "|".join(_spelled(k) for k in sorted(SECRET_KEYWORDS, key=len, reverse=True))
    + r")(?:[\"']?[ \t\r\f\v]*=|[\"'][ \t\r\f\v]*:)[ \t\r\f\v]*",
    re.IGNORECASE,
)


def _mask_userinfo(text: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _SCHEME.finditer(text):
        if m.start() < pos:
            continue  # inside what was just masked
        start = m.end()
        line_end = text.find("\n", start)
        limit = len(text) if line_end < 0 else line_end
        following = _SCHEME.search(text, start, limit)
        if following is not None:
            limit = following.start()
        at = text.rfind("@", start, limit)
        if at < 0:
            continue
        colon = text.find(":", start, at)
        if colon < 0:
            continue  # user name only: libpq's user info without a password
        out.append(text[pos : colon + 1])
        out.append(MASK)
        pos = at
    out.append(text[pos:])
    return "".join(out)


def _value_end(text: str, v: int, in_query: bool) -> int:
    """Where the secret value starting at V ends (conservatively: rather too far)."""
    n = len(text)
    if v < n and text[v] in "'\"":
        quote_char = text[v]
        i = v + 1
        while i < n and text[i] != "\n":
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == quote_char:
                return i + 1
            i += 1
        return min(i, n)  # unterminated: to the end of the line
    if in_query:
        # A URI query value runs to the next '&' (a raw space or quote inside is still value),
        # and on over every following '&' segment without an '=': libpq would reject those as
        # parameters, so they are most likely the rest of a password holding a raw '&'.
        i = v
        while True:
            while i < n and text[i] not in "&\n":
                i += 1
            if i >= n or text[i] != "&":
                return i
            j = i + 1
            while j < n and text[j] not in "&\n=":
                j += 1
            if j < n and text[j] == "=":
                return i
            i = j
    # key=value (libpq, dotenv): to the next blank; a backslash escapes one. libpq reads a word
    # after the blank as a new keyword, and pgconnect's parser never quotes such a word after a
    # secret (conninfo._Options.token).
    i = v
    while i < n and not text[i].isspace():
        i += 2 if text[i] == "\\" else 1
    return min(i, n)


def _mask_keywords(text: str) -> str:
    out: list[str] = []
    pos = 0
    search_from = 0
    while True:
        m = _SECRET_KEY.search(text, search_from)
        if m is None:
            break
        # A URI query: the keyword follows '?' or '&' (any prefix letters aside).
        k = m.start()
        while k > 0 and (text[k - 1].isalnum() or text[k - 1] in "_%"):
            k -= 1
        in_query = k > 0 and text[k - 1] in "?&"
        end = _value_end(text, m.end(), in_query)
        out.append(text[pos : m.end()])
        out.append(MASK)
        pos = search_from = max(end, m.end())
    out.append(text[pos:])
    return "".join(out)


def redact(text: str, *secrets: str) -> str:
    """TEXT with everything that may be a secret masked as ``****`` (see the module's doc)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
        encoded = quote(secret, safe="")
        if encoded != secret:
            text = text.replace(encoded, MASK)
    text = _mask_userinfo(text)
    return _mask_keywords(text)


def shown(text: str, *secrets: str) -> str:
    """TEXT as pgconnect may show it to people: redacted, then escaped."""
    return escape(redact(text, *secrets))
