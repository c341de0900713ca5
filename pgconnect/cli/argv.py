"""A parser for the plain argument lists of one command, so a hot command can skip Typer.

Importing Typer and building a Click command from a signature costs ~20 ms per run, a sixth of
``pgconnect query``'s start-up (it adds up in shell loops; benchmarks/README.md, P1). ``parse`` reads the arguments people and
scripts actually type — known options as ``--name value``, ``--name=value``, ``-n value`` or
``-nvalue``, flags, at most the declared positionals — and returns ``None`` for anything else
(``--help``, ``--``, an unknown option, a value that does not convert, a value that looks like an
option, one positional too many). ``None`` sends the arguments to Typer, which parses them as
always and words every error. tests/test_fast_argv.py checks that each option table matches its
Typer declaration and that every list this parser accepts, Typer reads the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, NamedTuple


class Option(NamedTuple):
    """One option: its parameter name, its spellings, and how its value converts.

    ``convert`` is None for a flag; it raises ValueError (or returns None) for a value it refuses,
    exactly where Typer's type would refuse it too or where this parser would rather not decide.
    """

    dest: str
    names: tuple[str, ...]
    convert: Callable[[str], Any] | None = None
    multiple: bool = False
    default: Any = None  # when the option is not given (a flag: False)


#: One option as the generated table writes it: (dest, names, kind, multiple, default), where
#: kind is flag, str, int, float, or enum:<cs|ci>:<module>:<class> (a choice of that Enum's values,
#: case-sensitive or not), and default is the value when the option is not given.
Row = tuple[str, tuple[str, ...], str, bool, Any]


def _enum_converter(kind: str) -> Callable[[str], Any]:
    _, case, module, name = kind.split(":")

    def convert(value: str) -> Enum | None:
        enum: type[Enum] = getattr(sys.modules[module], name)  # loaded: it declares the command
        if case == "cs":
            return next((e for e in enum if e.value == value), None)
        # Typer's case-insensitive choice; non-ASCII spellings (which Unicode case folding may
        # map onto a choice) are left to it.
        if not value.isascii():
            return None
        return next((e for e in enum if e.value == value.lower()), None)

    return convert


_SCALARS: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float}


def options(rows: Sequence[Row]) -> tuple[Option, ...]:
    """The Options of a generated table (call it after the command's Enums are defined)."""
    out = []
    for dest, names, kind, multiple, default in rows:
        convert = None if kind == "flag" else _SCALARS.get(kind) or _enum_converter(kind)
        if kind.startswith("enum:") and default is not None and convert is not None:
            default = convert(default)  # the module declaring the Enum has declared it by now
        out.append(Option(dest, names, convert, multiple, default))
    return tuple(out)


def parse(
    args: Sequence[str], options: Sequence[Option], positionals: Sequence[str]
) -> dict[str, Any] | None:
    """The parameters ``args`` name, as keyword arguments of the command, or None (→ Typer)."""
    by_name = {name: opt for opt in options for name in opt.names}
    values: dict[str, Any] = {
        opt.dest: False if opt.convert is None else opt.default for opt in options
    }
    values.update({name: None for name in positionals})
    free = list(positionals)
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token == "-" or not token.startswith("-"):
            if not free:
                return None
            values[free.pop(0)] = token
            continue
        if token.startswith("--"):
            name, eq, attached = token.partition("=")
            has_value = bool(eq)
        else:
            name, attached = token[:2], token[2:]
            has_value = bool(attached)
        opt = by_name.get(name)
        if opt is None:
            return None
        if opt.convert is None:
            if has_value:
                return None
            values[opt.dest] = True
            continue
        if not has_value:
            if i >= len(args) or (args[i].startswith("-") and args[i] != "-"):
                return None
            attached = args[i]
            i += 1
        try:
            value = opt.convert(attached)
        except ValueError:
            return None
        if value is None:
            return None
        if opt.multiple:
            values[opt.dest] = [*(values[opt.dest] or []), value]
        else:
            values[opt.dest] = value
    return values
