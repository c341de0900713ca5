"""Reading SQL text the way psql does: where statements end, and what each one is.

``split()`` cuts a script at the semicolons psql would cut it at — not inside quotes ('…', E'…',
"…"), dollar quotes ($tag$…$tag$), comments (--, nested /* */), parentheses, or the BEGIN … END
body of a SQL-standard function (psql's own heuristic, psqlscan.l) — and records, per statement,
the words at each parenthesis depth, the ``%(name)s`` placeholders and ``%%`` escapes outside
literals, and any backslash outside literals (a psql meta-command such as ``\\dt``, which is not
SQL). Nothing here talks to a server; it is pure text work, kept apart from ``query`` so that it
can be tested on its own and used before any connection is made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# Identifiers: letters (any script), digits, _ and $ (PostgreSQL: scan.l's ident_start/ident_cont;
# \w is Unicode-aware, and compiles far faster than explicit code-point ranges).
_WORD_START = re.compile(r"[^\W\d]")
_WORD = re.compile(r"[^\W\d][\w$]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_.]*")
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_PARAM = re.compile(r"\$[0-9]+")
_PLACEHOLDER = re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s")
_META = re.compile(r"\\\S{0,20}")

#: Statements whose result is a relation pgconnect may wrap (COPY (…), a subquery, a cursor).
QUERY_VERBS = frozenset({"select", "values", "table"})
DML_VERBS = frozenset({"insert", "update", "delete", "merge"})
#: Statements that end or start a transaction (refused inside pgconnect's own transaction).
TRANSACTION_VERBS = frozenset({"begin", "start", "commit", "end", "rollback", "abort"})


@dataclass(frozen=True)
class Placeholder:
    """``%(name)s`` at ``start``..``end`` (offsets in the whole SQL text)."""

    start: int
    end: int
    name: str


@dataclass(frozen=True)
class Word:
    """An unquoted word (lower case) and the parenthesis depth it sits at."""

    text: str
    depth: int


@dataclass
class Statement:
    """One statement of a script: its text and what pgconnect needs to know about it."""

    sql: str  # the whole script
    start: int  # offset of the statement's first character in ``sql``
    end: int  # offset just past its last character (the ';' excluded)
    words: list[Word] = field(default_factory=list)
    placeholders: list[Placeholder] = field(default_factory=list)
    percents: list[int] = field(default_factory=list)  # offsets of '%%'
    meta: int | None = None  # offset of a backslash outside literals, if any
    starts_with_paren: bool = False

    @property
    def text(self) -> str:
        return self.sql[self.start : self.end]

    def top(self) -> list[str]:
        """The words at parenthesis depth 0."""
        return [w.text for w in self.words if w.depth == 0]

    @property
    def verb(self) -> str:
        """The first word (``(`` for a statement that starts with a parenthesis)."""
        if self.starts_with_paren:
            return "("
        return self.words[0].text if self.words else ""

    def main_verb(self) -> str:
        """The statement's verb, looking past a WITH clause (``with … select`` → ``select``)."""
        verb = self.verb
        if verb != "with":
            return verb
        for word in self.top()[1:]:
            if word in QUERY_VERBS or word in DML_VERBS:
                return word
        return verb

    def modifies_in_with(self) -> bool:
        """A data-modifying statement inside a WITH clause (it cannot move into a subquery)."""
        return self.verb == "with" and any(w.depth > 0 and w.text in DML_VERBS for w in self.words)

    def is_query(self) -> bool:
        """A plain query that returns rows and can be wrapped: COPY (…), a subquery, a cursor.

        SELECT … INTO (creates a table, returns no rows) and WITH clauses holding INSERT/UPDATE/
        DELETE (PostgreSQL only allows them at the top level) are not.
        """
        verb = self.main_verb()
        if verb not in QUERY_VERBS and verb != "(":
            return False
        if "into" in self.top():
            return False
        return not self.modifies_in_with()

    def modifies_and_returns(self) -> bool:
        """Rows from a data-modifying statement: INSERT/UPDATE/DELETE/MERGE … RETURNING (after a
        WITH or not), or a query whose WITH clause holds one. COPY (…) TO STDOUT can stream
        these; a subquery or a cursor cannot hold them."""
        verb = self.main_verb()
        if verb in DML_VERBS:
            return "returning" in self.top()
        return verb in QUERY_VERBS and self.modifies_in_with() and "into" not in self.top()

    def copy_direction(self) -> str | None:
        """For a user's own COPY: 'out' for TO STDOUT, 'in' for FROM STDIN, else None."""
        if self.verb != "copy":
            return None
        top = self.top()
        for i, word in enumerate(top[:-1]):
            if word == "to" and top[i + 1] == "stdout":
                return "out"
            if word == "from" and top[i + 1] == "stdin":
                return "in"
        return None

    def controls_transaction(self) -> bool:
        """BEGIN, COMMIT, ROLLBACK (but not ROLLBACK TO SAVEPOINT), PREPARE TRANSACTION …"""
        top = self.top()
        verb = self.verb
        if verb == "rollback" and len(top) > 1 and top[1] == "to":
            return False
        if verb == "prepare" and len(top) > 1 and top[1] == "transaction":
            return True
        return verb in TRANSACTION_VERBS


def split(sql: str) -> list[Statement]:
    """Cut SQL into statements as psql does; statements holding only comments are dropped."""
    statements: list[Statement] = []
    n = len(sql)
    i = 0
    cur: Statement | None = None
    depth = 0
    # psql's BEGIN ATOMIC heuristic: inside CREATE [OR REPLACE] FUNCTION|PROCEDURE, count
    # BEGIN/CASE … END so that the semicolons of the body do not end the statement.
    idents: list[str] = []
    begin_depth = 0

    def content(at: int) -> Statement:
        nonlocal cur
        if cur is None:
            cur = Statement(sql=sql, start=at, end=at)
        return cur

    def finish(at: int) -> None:
        nonlocal cur, depth, begin_depth
        if cur is not None:
            end = at
            while end > cur.start and sql[end - 1].isspace():
                end -= 1
            cur.end = end
            statements.append(cur)
        cur = None
        depth = 0
        begin_depth = 0
        idents.clear()

    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
            continue
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
            continue
        if c == ";" and depth == 0 and begin_depth == 0:
            finish(i)
            i += 1
            continue
        stmt = content(i)
        if c == "'":
            i = _skip_quoted(sql, i, "'", backslash=False)
        elif c == '"':
            i = _skip_quoted(sql, i, '"', backslash=False)
            stmt.words.append(Word('"', depth))  # a quoted identifier: never a keyword
        elif c == "$":
            m = _DOLLAR_TAG.match(sql, i)
            if m:
                j = sql.find(m.group(0), m.end())
                i = n if j < 0 else j + len(m.group(0))
            else:
                pm = _PARAM.match(sql, i)
                i = pm.end() if pm else i + 1
        elif c == "(":
            if not stmt.words and depth == 0 and i == stmt.start:
                stmt.starts_with_paren = True
            depth += 1
            i += 1
        elif c == ")":
            depth = max(0, depth - 1)
            i += 1
        elif c == "%":
            pm = _PLACEHOLDER.match(sql, i)
            if pm:
                stmt.placeholders.append(Placeholder(i, pm.end(), pm.group(1)))
                i = pm.end()
            elif sql.startswith("%%", i):
                stmt.percents.append(i)
                i += 2
            else:
                i += 1
        elif c == "\\":
            if stmt.meta is None:
                stmt.meta = i
            i += 1
        elif c.isdigit():
            m = _NUMBER.match(sql, i)
            i = m.end() if m else i + 1
        elif _WORD_START.match(c):
            m = _WORD.match(sql, i)
            assert m is not None
            word = m.group(0)
            lower = word.lower()
            i = m.end()
            nxt = sql[i : i + 2]
            if lower == "e" and nxt[:1] == "'":
                i = _skip_quoted(sql, i, "'", backslash=True)
                continue
            if lower == "u" and nxt in ("&'", '&"'):
                i = _skip_quoted(sql, i + 1, nxt[1], backslash=False)
                if nxt[1] == '"':
                    stmt.words.append(Word('"', depth))
                continue
            stmt.words.append(Word(lower, depth))
            begin_depth = _track_begin(lower, idents, begin_depth, depth)
        else:
            i += 1
    finish(n)
    return statements


def _track_begin(word: str, idents: list[str], begin_depth: int, depth: int) -> int:
    """psqlscan.l: is this CREATE [OR REPLACE] FUNCTION|PROCEDURE, and where are its BEGIN/END?"""
    if len(idents) < 4:
        idents.append(word)
    routine = idents[:2] in (["create", "function"], ["create", "procedure"]) or idents[:4] in (
        ["create", "or", "replace", "function"],
        ["create", "or", "replace", "procedure"],
    )
    if not routine or depth != 0:
        return begin_depth
    if word == "begin":
        return begin_depth + 1
    if word == "case" and begin_depth >= 1:
        return begin_depth + 1
    if word == "end" and begin_depth > 0:
        return begin_depth - 1
    return begin_depth


def _skip_quoted(sql: str, i: int, quote: str, *, backslash: bool) -> int:
    """Skip '…' or "…" starting at i (doubled quotes escape; E'' strings also use backslash)."""
    n = len(sql)
    j = i + 1
    while j < n:
        c = sql[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return n


def _skip_block_comment(sql: str, i: int) -> int:
    """Skip a /* … */ comment starting at i; PostgreSQL's block comments nest."""
    n = len(sql)
    level = 0
    j = i
    while j < n:
        if sql.startswith("/*", j):
            level += 1
            j += 2
        elif sql.startswith("*/", j):
            level -= 1
            j += 2
            if level == 0:
                return j
        else:
            j += 1
    return n


# --------------------------------------------------------------------------- placeholders
#
# pgconnect's rule, the same whether or not -p is given (the SQL's meaning never depends on it):
# outside string literals, quoted identifiers, dollar quotes and comments, ``%(name)s`` is a
# placeholder whose value ``-p name=VALUE`` binds server-side, ``%%`` is one ``%``, and any other
# ``%`` is itself (the modulo operator, pg_trgm's similarity operator). Inside them, nothing is
# replaced: ``'50%%'`` is the four characters 50%%, as psql and the server read it.
#
# psycopg's rule differs in two ways, both from not reading SQL: it rewrites ``%`` only when
# parameters are passed (without them, ``%%`` and ``%(id)s`` reach the server as written), and
# then everywhere, inside literals too (``'50%%'`` becomes 50%).


def unbound(statements: list[Statement], bindings: Mapping[str, str] | None) -> Placeholder | None:
    """The first placeholder that BINDINGS (None: no -p given) has no value for."""
    given = bindings or {}
    for stmt in statements:
        for ph in stmt.placeholders:
            if ph.name not in given:
                return ph
    return None


def used_names(statements: list[Statement]) -> set[str]:
    return {ph.name for stmt in statements for ph in stmt.placeholders}


def meta_command(stmt: Statement) -> str | None:
    """The psql meta-command a statement holds (``\\dt``), or None."""
    if stmt.meta is None:
        return None
    m = _META.match(stmt.sql, stmt.meta)
    return m.group(0) if m else "\\"


def locate(sql: str, offset: int) -> tuple[int, str, int]:
    """(1-based line number, that line's text, 0-based column) of OFFSET in SQL."""
    offset = max(0, min(offset, len(sql)))
    line_start = sql.rfind("\n", 0, offset) + 1
    line_end = sql.find("\n", offset)
    if line_end < 0:
        line_end = len(sql)
    line_no = sql.count("\n", 0, line_start) + 1
    return line_no, sql[line_start:line_end].rstrip("\r"), offset - line_start
