"""Small results the table format must keep showing exactly as the rich renderer showed them.

``tests/golden/table_rich.json`` holds what rich printed for each case (generated once, by the rich
renderer, before the table format became a streaming writer of its own); ``test_table_stream.py``
compares the streaming writer with it byte for byte. Each case is (columns as (name, type OID),
rows, terminal width, colour).
"""

from __future__ import annotations

from pgconnect import render

I4, TXT, NUM, TSTZ, F8, BOOL, JSONB = (
    render.INT4,
    25,
    render.NUMERIC,
    render.TIMESTAMPTZ,
    render.FLOAT8,
    render.BOOL,
    render.JSONB,
)

Case = tuple[list[tuple[str, int]], list[list[str | None]], int, bool]

MD5 = [
    "c4ca4238a0b923820dcc509a6f75849b",
    "c81e728d9d4c2f636f067f89cc14862c",
    "eccbc87e4b5ce2fe28308fd9f2a7baf3",
]
STAMPS = ["2026-12-01 19:16:11.123456+00", "2026-12-01 19:16:12+00", None]

CASES: dict[str, Case] = {
    "one-value": ([("d", TXT)], [["ok"]], 80, False),
    "int-and-md5": (
        [("g", I4), ("md5", TXT)],
        [[str(i + 1), MD5[i]] for i in range(3)],
        200,
        False,
    ),
    "bench-shape": (
        [("g", I4), ("md5", TXT), ("now", TSTZ), ("?column?", NUM)],
        [[str(i + 1), MD5[i], STAMPS[0], f"{(i + 1) * 1.5}"] for i in range(3)],
        200,
        False,
    ),
    "bench-shape-color": (
        [("g", I4), ("md5", TXT), ("now", TSTZ), ("?column?", NUM)],
        [[str(i + 1), MD5[i], STAMPS[i], None if i == 1 else f"{(i + 1) * 1.5}"] for i in range(3)],
        120,
        True,
    ),
    "no-rows": ([("a", I4), ("longer_name", TXT)], [], 80, False),
    "no-rows-color": ([("a", I4), ("b", TXT)], [], 80, True),
    "nulls-and-numbers": (
        [("n", NUM), ("t", TXT), ("f", F8), ("b", BOOL)],
        [["1.5", None, "NaN", "t"], ["100", "x", "-Infinity", None], [None, "", "1e+300", "f"]],
        80,
        False,
    ),
    "header-wider-than-values": (
        [("a_rather_long_column_name", I4), ("another_long_header", TXT)],
        [["1", "x"], ["22", "yy"]],
        80,
        False,
    ),
    "empty-strings": ([("e", TXT), ("f", TXT)], [["", ""], ["", "a"]], 80, False),
    "spaces-kept": (
        [("s", TXT)],
        [["  leading"], ["trailing  "], ["in  the   middle"], [" "]],
        80,
        False,
    ),
    "multi-line": (
        [("id", I4), ("note", TXT)],
        [["1", "first line\nsecond line"], ["2", "single"], ["3", "a\n\nc\n"]],
        80,
        False,
    ),
    "multi-line-color": (
        [("id", I4), ("note", TXT)],
        [["1", "first\nsecond"], ["2", None]],
        80,
        True,
    ),
    "controls-escaped": (
        [("v", TXT)],
        [["a\tb"], ["\x1b[31mred\x1b[0m"], ["\u202eevil"], ["bell\x07"], ["del\x7f"], ["\r"]],
        80,
        False,
    ),
    "controls-escaped-color": (
        [("v", TXT), ("w", TXT)],
        [["a\tb", "plain"], ["\x1b[2J", None]],
        80,
        True,
    ),
    "markup-is-text": (
        [("[red]name[/]", TXT)],
        [["[bold]x[/]"], ["[link=http://x]y[/link]"], [":smile:"]],
        80,
        False,
    ),
    "unicode-widths": (
        [("名前", TXT), ("café", TXT), ("n", I4)],
        [["日本語", "naïve", "1"], ["ab", "e\u0301t\u00e9", "22"], ["한국어 텍스트", "ß", "333"]],
        80,
        False,
    ),
    "twenty-short-columns": (
        [(f"c{i}", I4) for i in range(20)],
        [[str(i * j) for i in range(20)] for j in range(3)],
        150,
        False,
    ),
    "records-when-too-wide": (
        [(f"column_{i}", I4) for i in range(12)],
        [[str(1000 + i) for i in range(12)], [str(2000 + i) for i in range(12)]],
        40,
        False,
    ),
    "records-color": (
        [(f"column_{i}", TXT) for i in range(8)],
        [[f"v{i}" if i != 3 else None for i in range(8)]],
        40,
        True,
    ),
    "exact-fit": ([("a", TXT), ("b", TXT)], [["x" * 10, "y" * 12]], 1 + 13 + 15, False),
    "json-and-timestamps": (
        [("j", JSONB), ("t", TSTZ)],
        [['{"a": 1, "b": [1, 2]}', STAMPS[0]], ["[]", STAMPS[1]]],
        100,
        False,
    ),
    "trailing-spaces": ([("s", TXT), ("n", I4)], [["ab   ", "1"], ["c", "2"]], 80, False),
    "only-spaces": ([("s", TXT)], [["     "], ["x"]], 80, False),
    "header-with-control": ([("a\tb", TXT), ("c", I4)], [["x", "1"]], 80, False),
    "header-with-control-color": ([("a\tb", TXT), ("c", I4)], [["x", "1"]], 80, True),
    "all-null-column": ([("a", I4), ("b", TXT)], [[None, None], ["1", None]], 80, False),
    "records-multi-line": (
        [(f"col{i}", TXT) for i in range(6)],
        [["one", "two\nlines", None, "x", "y", "z"]],
        30,
        False,
    ),
    "long-value-fits": ([("v", TXT)], [["word " * 30]], 200, False),
    "single-column-numbers": (
        [("g", I4)],
        [[str(g)] for g in (1, 10, 100, 1000)],
        80,
        False,
    ),
}


def columns(case: Case) -> list[render.Column]:
    return [render.Column(name, oid) for name, oid in case[0]]
