"""Where a field of a scenario file is written: its line, found in the TOML text.

``tomllib`` gives values, not positions, so the line of a field is found by reading the
text the way scenario files are written: ``[[scenario]]`` tables, each with
``[[scenario.events]]`` / ``[[scenario.expect]]`` tables or inline arrays of inline
tables (one item per line), and ``key = value`` lines. When a field cannot be placed
exactly, the line of the nearest enclosing table is given.
"""

from __future__ import annotations

import re

__all__ = ["line_of"]

Path = tuple[str | int, ...]


def _header(line: str) -> str | None:
    found = re.match(r"\s*\[\[\s*([A-Za-z0-9_.\- ]+?)\s*\]\]", line)
    if found:
        return found[1].replace(" ", "")
    found = re.match(r"\s*\[\s*([A-Za-z0-9_.\- ]+?)\s*\]", line)
    return found[1].replace(" ", "") if found else None


def _key_line(lines: list[str], begin: int, end: int, key: str) -> int | None:
    pattern = re.compile(rf"\s*\"?{re.escape(key)}\"?\s*=")
    for number in range(begin, end):
        if pattern.match(lines[number]):
            return number
    return None


def _tables(lines: list[str], begin: int, end: int, name: str) -> list[int]:
    return [n for n in range(begin, end) if _header(lines[n]) == name]


def _block_end(lines: list[str], begin: int, end: int) -> int:
    """The line after table ``begin``'s last line: the next header, or ``end``."""
    for number in range(begin + 1, end):
        if _header(lines[number]) is not None:
            return number
    return end


def line_of(text: str, path: Path) -> int | None:
    """The 1-based line of the field at ``path`` (``("scenario", 2, "events", 0, "at")``)."""
    lines = text.splitlines()
    begin, end, prefix, rest = 0, len(lines), "", list(path)
    first_table = next((n for n, line in enumerate(lines) if _header(line)), len(lines))
    best: int | None = None
    if rest and rest[0] == "scenario" and len(rest) > 1 and isinstance(rest[1], int):
        tables = _tables(lines, 0, len(lines), "scenario")
        if rest[1] >= len(tables):
            return None
        begin = tables[rest[1]]
        later = [n for n in _tables(lines, 0, len(lines), "scenario") if n > begin]
        end = later[0] if later else len(lines)
        best, prefix, rest = begin, "scenario.", rest[2:]
    else:
        end = first_table
    if not rest:
        return None if best is None else best + 1
    key = str(rest[0])
    tables = _tables(lines, begin, end, prefix + key)
    if tables:
        if len(rest) > 1 and isinstance(rest[1], int) and rest[1] < len(tables):
            start = tables[rest[1]]
            stop = _block_end(lines, start, end)
            if len(rest) > 2:
                found = _key_line(lines, start + 1, stop, str(rest[2]))
                return (found if found is not None else start) + 1
            return start + 1
        return tables[0] + 1
    own_end = _block_end(lines, begin, end) if best is not None else end
    found = _key_line(lines, begin + (1 if best is not None else 0), own_end, key)
    if found is None:
        return None if best is None else best + 1
    if len(rest) > 1 and isinstance(rest[1], int):
        items = [n for n in range(found, own_end) if "{" in lines[n]]
        if rest[1] < len(items):
            return items[rest[1]] + 1
    return found + 1
