"""The table format, streamed: rows are drawn as they arrive, memory stays flat.

The look is the one pgconnect always had (a rounded box, bold headers, NULL dim and italic, numbers
right-aligned, control characters shown escaped in bold magenta, rows separated by lines when a
value spans several), drawn here without rich so that a result of any size streams:

- Column widths are fixed from a first batch of rows (as psql's ``FETCH_COUNT`` does): the widest
  line of each column's header and values. When they fit the terminal, that is the table.
- When they do not, text columns wrap at spaces (never inside a word: an md5, a timestamp, a
  number is never folded), rows are then separated by lines; when even the longest words cannot
  fit, every row is shown as a record of ``name value`` lines (psql's expanded display), where a
  value longer than the terminal is written whole and left to the terminal to wrap.
- A later row that does not fit the widths closes the table; a new one opens with widths that
  fit it (the header repeated) or, if none can, the rest is shown as records. Nothing is ever cut
  or folded in the middle of a word, and no border is ever misaligned.

Rows whose values are plain ASCII and fit their columns (the common case) are formatted a batch at
a time with one ``str.format`` per row; anything else goes through the general path per row.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from pgconnect import pgvalues, render
from pgconnect.render import Column, TableStyle, Written
from pgconnect.safetext import UNSAFE, escape_control

FIRST_BATCH = (
    1000  # rows that fix the column widths (the default --max-rows: a capped table is one)
)
BATCH = 1000  # rows formatted and written at a time after that
HEADROOM = 3  # cells added to a number column when more rows follow the first batch

# SGR parameters, as rich wrote them for the styles pgconnect used.
HEADER = "1"  # bold
NULL = "2;3"  # dim italic
ESCAPE = "1;35"  # bold magenta (also inside a bold header)
RULE = "2"  # dim

#: Types whose values are never broken at a space: numbers, dates, times, intervals.
UNBREAKABLE = pgvalues.RIGHT_ALIGNED | pgvalues.DATETIME_TYPES | {pgvalues.INTERVAL}

_SPACE_RUNS = re.compile("( +)")

Piece = tuple[str, str]  # (text, SGR parameters or "")


def cell_width(text: str) -> int:
    """Terminal cells TEXT takes (wide East Asian characters take two, combining marks none)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len  # only for non-ASCII text

    return cell_len(text)


@dataclass
class Cell:
    """One value as lines of styled pieces, with the width of each line."""

    lines: list[list[Piece]]
    widths: list[int]
    base: str  # the style of the whole value, which alignment padding takes too

    @property
    def width(self) -> int:
        return max(self.widths)

    def words(self) -> int:
        """The widest word: the narrowest this cell can be wrapped to."""
        return max((w for line in self.lines for w in _word_widths(line)), default=0)


def make_cell(value: str | None, *, header: bool = False) -> Cell:
    if value is None:
        return Cell([[(render.NULL_TEXT, NULL)]], [len(render.NULL_TEXT)], NULL)
    base = HEADER if header else ""
    if value.isascii() and value.isprintable():  # the common case: one line, nothing to escape
        return Cell([[(value, base)]], [len(value)], base)
    lines: list[list[Piece]] = []
    widths: list[int] = []
    for raw in value.split("\n"):
        pieces: list[Piece] = []
        pos = 0
        for m in UNSAFE.finditer(raw):
            if m.start() > pos:
                pieces.append((raw[pos : m.start()], base))
            pieces.append((escape_control(m.group(0)), ESCAPE))
            pos = m.end()
        if pos < len(raw) or not pieces:
            pieces.append((raw[pos:], base))
        lines.append(pieces)
        widths.append(sum(cell_width(t) for t, _ in pieces))
    return Cell(lines, widths, base)


def _words(line: list[Piece]) -> Iterator[list[Piece] | str]:
    """A line as words (lists of pieces) and the runs of spaces between them (str)."""
    word: list[Piece] = []
    for text, sgr in line:
        if sgr == ESCAPE:  # an escape is never broken
            word.append((text, sgr))
            continue
        for part in _SPACE_RUNS.split(text):
            if not part:
                continue
            if part[0] == " ":
                if word:
                    yield word
                    word = []
                yield part
            else:
                word.append((part, sgr))
    if word:
        yield word


def _word_widths(line: list[Piece]) -> Iterator[int]:
    for item in _words(line):
        if not isinstance(item, str):
            yield sum(cell_width(t) for t, _ in item)


def wrap(cell: Cell, width: int) -> Cell:
    """CELL with every line longer than WIDTH broken at spaces (the spaces at a break dropped).
    A word longer than WIDTH keeps a line of its own, whole."""
    if cell.width <= width:
        return cell
    lines: list[list[Piece]] = []
    widths: list[int] = []
    for line, line_width in zip(cell.lines, cell.widths, strict=True):
        if line_width <= width:
            lines.append(line)
            widths.append(line_width)
            continue
        current: list[Piece] = []
        used = 0
        gap = ""
        for item in _words(line):
            if isinstance(item, str):
                gap = item if current else ""
                continue
            size = sum(cell_width(t) for t, _ in item)
            if current and used + len(gap) + size > width:
                lines.append(current)
                widths.append(used)
                current, used, gap = [], 0, ""
            if gap:
                current.append((gap, cell.base))
                used += len(gap)
            current.extend(item)
            used += size
            gap = ""
        lines.append(current or [("", cell.base)])
        widths.append(used)
    return Cell(lines, widths, cell.base)


def _sgr(pieces: Iterable[Piece]) -> str:
    return "".join(f"\x1b[{s}m{t}\x1b[0m" if s else t for t, s in pieces if t)


def fit(cell: Cell, index: int, width: int, right: bool, color: bool) -> str:
    """Line INDEX of CELL padded to WIDTH (a line past the cell's end is blank)."""
    if index >= len(cell.lines):
        return " " * width
    pieces = cell.lines[index]
    pad = width - cell.widths[index]
    if not color:
        text = "".join(t for t, _ in pieces)
        if pad <= 0:
            return text
        return " " * pad + text if right else text + " " * pad
    if pad > 0:
        pieces = list(pieces)
        spaces = " " * pad
        # The padding is part of the value's text (rich pads inside the value's style).
        if right:
            if pieces[0][1] == cell.base:
                pieces[0] = (spaces + pieces[0][0], cell.base)
            else:
                pieces.insert(0, (spaces, cell.base))
        elif pieces[-1][1] == cell.base:
            pieces[-1] = (pieces[-1][0] + spaces, cell.base)
        else:
            pieces.append((spaces, cell.base))
    return _sgr(pieces)


# --------------------------------------------------------------------------- layout


def plan(
    header: Sequence[Cell],
    rows: Sequence[Sequence[Cell]],
    breakable: Sequence[bool],
    width: int,
    floor: Sequence[int] | None = None,
) -> tuple[list[int], bool] | None:
    """Column widths for a table of HEADER and ROWS on WIDTH terminal cells, and whether
    they wrap anything; None when only records can show them (no word can be folded)."""
    n = len(header)
    natural = [
        max(
            [
                header[i].width,
                1,
                *(row[i].width for row in rows),
                *(floor[i : i + 1] if floor else []),
            ]
        )
        for i in range(n)
    ]
    if 1 + sum(w + 3 for w in natural) <= width:
        return natural, False
    minimum = [
        max([header[i].words(), 1, *(row[i].words() for row in rows)])
        if breakable[i]
        else natural[i]
        for i in range(n)
    ]
    available = width - 1 - 3 * n
    if sum(minimum) > available:
        return None
    widths = list(natural)
    excess = sum(widths) - available
    while excess > 0:
        # Narrow the widest column that can still give, down to the next widest at most.
        shrinkable = [k for k in range(n) if widths[k] > minimum[k]]
        i = max(shrinkable, key=lambda k: widths[k])
        others = max((widths[k] for k in shrinkable if k != i), default=0)
        target = max(minimum[i], others, widths[i] - excess)
        if target >= widths[i]:
            target = widths[i] - 1
        excess -= widths[i] - target
        widths[i] = target
    return widths, True


# --------------------------------------------------------------------------- the writer


class TableWriter:
    """Writes one result set as a table (or records) to a binary stream, as rows arrive."""

    def __init__(self, columns: Sequence[Column], style: TableStyle, target: IO[bytes]) -> None:
        self.columns = columns
        self.style = style
        self.width = max(20, style.width)
        self.color = style.color
        self.target = target
        self.right = [c.type_oid in pgvalues.RIGHT_ALIGNED for c in columns]
        self.breakable = [c.type_oid not in UNBREAKABLE for c in columns]
        self.header = [make_cell(c.name, header=True) for c in columns]
        self.widths: list[int] | None = None  # None: records
        self.lines = False  # a line between rows
        self.open = False  # a table is open (its bottom border not yet written)
        self.shown = 0  # rows written so far
        self._format: str = ""
        self._names: list[list[str]] | None = None  # the header as record names, drawn
        self._name_width = 0

    # ----------------------------------------------------------------- output

    def _emit(self, lines: list[str]) -> None:
        if lines:
            self.target.write(("\n".join(lines) + "\n").encode())

    def _border(self, left: str, mid: str, right: str) -> str:
        assert self.widths is not None
        return left + mid.join("─" * (w + 2) for w in self.widths) + right

    def _open(self, widths: list[int], lines: bool) -> list[str]:
        self.widths = widths
        self.lines = lines
        self.open = True
        self._format = (
            "│ "
            + " │ ".join(
                "{:" + (">" if r else "<") + str(w) + "}"
                for r, w in zip(self.right, widths, strict=True)
            )
            + " │"
        )
        return [
            self._border("╭", "┬", "╮"),
            *self._row_lines(self.header, header=True),
            self._border("├", "┼", "┤"),
        ]

    def _close(self) -> list[str]:
        if not self.open:
            return []
        self.open = False
        return [self._border("╰", "┴", "╯")]

    def _row_lines(self, cells: Sequence[Cell], *, header: bool = False) -> list[str]:
        assert self.widths is not None
        height = max(len(c.lines) for c in cells)
        if not header:
            return [
                "│"
                + "│".join(
                    " " + fit(c, i, w, r, self.color) + " "
                    for c, w, r in zip(cells, self.widths, self.right, strict=True)
                )
                + "│"
                for i in range(height)
            ]
        # Header cells sit at the bottom of the header row, and are bold padding included.
        pad = _sgr([(" ", HEADER)]) if self.color else " "
        lines = []
        for i in range(height):
            parts = []
            for c, w, r in zip(cells, self.widths, self.right, strict=True):
                k = i - (height - len(c.lines))
                if k < 0:
                    parts.append(_sgr([(" " * (w + 2), HEADER)]) if self.color else " " * (w + 2))
                else:
                    parts.append(pad + fit(c, k, w, r, self.color) + pad)
            lines.append("│" + "│".join(parts) + "│")
        return lines

    def _record(self, number: int, cells: Sequence[Cell]) -> list[str]:
        title = f"record {number}"
        rule = "─" * max(0, self.width - len(title) - 1)
        out = [f"{title} " + (_sgr([(rule, RULE)]) if self.color else rule)]
        if self._names is None:
            # Names wrap at spaces at a third of the terminal (as before), never inside a word.
            limit = max(max(10, self.width // 3), *(h.words() for h in self.header))
            names = [wrap(h, limit) for h in self.header]
            self._name_width = max((h.width for h in names), default=0)
            self._names = [
                [fit(h, i, self._name_width, False, self.color) for i in range(len(h.lines))]
                for h in names
            ]
        name_width = self._name_width
        room = max(1, self.width - name_width - 1)
        values = [wrap(c, room) if b else c for c, b in zip(cells, self.breakable, strict=True)]
        value_width = max((v.width for v in values if v.width <= room), default=0)
        blank = " " * name_width
        for name, value in zip(self._names, values, strict=True):
            for i in range(max(len(name), len(value.lines))):
                left = name[i] if i < len(name) else blank
                out.append(left + " " + fit(value, i, value_width, False, self.color))
        return out

    # ----------------------------------------------------------------- rows

    def _fast(self, batch: Sequence[Sequence[str | None]]) -> list[str] | None:
        """Lines for BATCH if every value is plain ASCII that fits its column; else None."""
        assert self.widths is not None
        nulls = False
        for i, column in enumerate(zip(*batch, strict=True)):
            values: Sequence[str] = column  # NULLs are taken out below
            if None in column:
                nulls = True
                if self.widths[i] < len(render.NULL_TEXT):
                    return None
                values = [v for v in column if v is not None]
                if not values:
                    continue
            joined = "".join(values)
            # Printable ASCII (0x20-0x7e): one cell a character, nothing to escape, no newline.
            if not (joined.isascii() and joined.isprintable()):
                return None
            if max(map(len, values)) > self.widths[i]:
                return None
        line = self._format.format
        if not nulls:
            out = [line(*row) for row in batch]
        elif not self.color:
            null = render.NULL_TEXT
            out = [
                line(*row) if None not in row else line(*[null if v is None else v for v in row])
                for row in batch
            ]
        else:
            out = [
                line(*row) if None not in row else self._row_lines([make_cell(v) for v in row])[0]
                for row in batch
            ]
        if self.lines:
            separator = self._border("├", "┼", "┤")
            joined_lines: list[str] = []
            for text in out:
                if self.shown or joined_lines:
                    joined_lines.append(separator)
                joined_lines.append(text)
            out = joined_lines
        self.shown += len(batch)
        return out

    def _slow(self, batch: Sequence[Sequence[str | None]]) -> list[str]:
        """Lines for BATCH, row by row: wrap where needed, re-plan when a row cannot fit."""
        out: list[str] = []
        rows = [[make_cell(v) for v in row] for row in batch]
        for k, cells in enumerate(rows):
            if self.widths is None:
                self.shown += 1
                out += self._record(self.shown, cells)
                continue
            fitted = self._fit_row(cells)
            if fitted is None:
                # Re-plan with this row and the rest of the batch: a new table (header repeated)
                # whose columns fit them, or records from here on.
                out += self._close()
                before = self.widths
                layout = plan(self.header, rows[k:], self.breakable, self.width, before)
                if layout is not None:
                    layout = (self._headroom(layout[0], before), layout[1])
                if layout is None:
                    self.widths = None
                    self.shown += 1
                    out += self._record(self.shown, cells)
                    continue
                out += self._open(*layout)
                fitted = self._fit_row(cells)
                assert fitted is not None
            if len(fitted[0].lines) > 1 or any(len(c.lines) > 1 for c in fitted):
                self.lines = True
            if self.lines and self.shown and out[-1:] != [self._border("├", "┼", "┤")]:
                out.append(self._border("├", "┼", "┤"))
            out += self._row_lines(fitted)
            self.shown += 1
        return out

    def _headroom(self, widths: list[int], before: Sequence[int] | None = None) -> list[int]:
        """When more rows follow, number columns (those that grew, when re-planning after
        BEFORE) get HEADROOM more cells where the terminal has room: ids of 1..1000 grow to
        10000 and beyond, and a column that must widen later means a new table."""
        out = list(widths)
        for i, right in enumerate(self.right):
            if before is not None and out[i] <= before[i]:
                continue
            if right and 1 + sum(w + 3 for w in out) + HEADROOM <= self.width:
                out[i] += HEADROOM
        return out

    def _fit_row(self, cells: list[Cell]) -> list[Cell] | None:
        assert self.widths is not None
        fitted = []
        for cell, width, breakable in zip(cells, self.widths, self.breakable, strict=True):
            if cell.width > width:
                if not breakable or cell.words() > width:
                    return None
                cell = wrap(cell, width)
            fitted.append(cell)
        return fitted

    def _first(self, batch: Sequence[Sequence[str | None]], *, more: bool) -> list[str]:
        rows = [[make_cell(v) for v in row] for row in batch]
        layout = plan(self.header, rows, self.breakable, self.width)
        if layout is not None and more:
            layout = (self._headroom(layout[0]), layout[1])
        if layout is None:
            out: list[str] = []
            for cells in rows:
                self.shown += 1
                out += self._record(self.shown, cells)
            return out
        widths, wrapped = layout
        multi_line = any(len(c.lines) > 1 for row in rows for c in row)
        out = self._open(widths, multi_line or wrapped)
        # Rows were made already: draw them through the general path (it wraps where needed).
        for cells in rows:
            fitted = self._fit_row(cells)
            assert fitted is not None
            if self.lines and self.shown:
                out.append(self._border("├", "┼", "┤"))
            out += self._row_lines(fitted)
            self.shown += 1
        return out

    def write(self, rows: Iterable[Sequence[str | None]]) -> Written:
        limit = self.style.max_rows
        it = iter(rows)
        total = 0
        try:
            size = FIRST_BATCH if limit is None else min(FIRST_BATCH, limit)
            first = _take(it, size + 1)  # one more: do more rows follow?
            more = len(first) > size  # (past --max-rows they are only counted)
            if more:
                it = itertools.chain(first[size:], it)
                first = first[:size]
            total += len(first)
            if not self.columns:  # (rich printed an empty line)
                self.shown = len(first)
                self._emit([""])
            else:
                shown_later = more and (limit is None or limit > size)
                self._emit(self._first(first, more=shown_later))
                self.target.flush()
                while limit is None or self.shown < limit:
                    size = BATCH if limit is None else min(BATCH, limit - self.shown)
                    batch = _take(it, size)
                    if not batch:
                        break
                    total += len(batch)
                    fast = self._fast(batch) if self.widths is not None else None
                    self._emit(fast if fast is not None else self._slow(batch))
                    self.target.flush()
                self._emit(self._close())
                self.target.flush()
        except Exception as exc:
            # An error mid-stream (the server's): end the table so the terminal is left tidy.
            if not isinstance(exc, OSError):
                self._emit(self._close())
                self.target.flush()
            raise
        for _ in it:  # past --max-rows: counted, not shown
            total += 1
        return Written(total, self.shown)


def _take(it: Iterator[Sequence[str | None]], size: int) -> list[Sequence[str | None]]:
    return list(itertools.islice(it, size))


def write_table(
    columns: Sequence[Column],
    rows: Iterable[Sequence[str | None]],
    style: TableStyle,
    target: IO[bytes],
) -> Written:
    """Write ROWS as a table to TARGET as they arrive; how many there were and were shown."""
    return TableWriter(columns, style, target).write(rows)
