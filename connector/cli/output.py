"""Tables for people and for pipes: plain aligned text (or TSV) that never cuts a value.

Written by hand rather than with rich's tables: a plan of thousands of actions prints in about the time its JSON
takes, and a piped table keeps every character. On a terminal only the last column (a reason, a note) wraps onto
continuation lines, so every other value stays whole and aligned at any width.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

GAP = "  "


@dataclass(frozen=True)
class Column:
    title: str
    right: bool = False
    """Right-aligned (amounts, counts)."""


def on_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def terminal_width() -> int | None:
    """The terminal's width, or None when stdout is not a terminal (then nothing is wrapped)."""
    return shutil.get_terminal_size().columns if on_terminal() else None


def render(columns: Sequence[Column], rows: Sequence[Sequence[str]], *, tsv: bool = False,
           width: int | None = None) -> Iterator[str]:
    """The lines of a table: a header, then one line per row (plus continuation lines of a wrapped last column)."""
    if tsv:
        yield "\t".join(c.title for c in columns)
        for row in rows:
            yield "\t".join(_tsv_cell(cell) for cell in row)
        return
    widths = [len(c.title) for c in columns]
    for row in rows:
        for index, cell in enumerate(row):
            if len(cell) > widths[index]:
                widths[index] = len(cell)
    last = len(columns) - 1
    lead = sum(widths[:last]) + len(GAP) * last
    if width is not None and lead + len(GAP) + 20 > width:
        yield from _stacked(columns, rows, width)
        return
    wrap_at = width - lead if width is not None else None
    pads = [(str.rjust if c.right else str.ljust) for c in columns]

    def line(cells: Sequence[str]) -> Iterator[str]:
        text = cells[last]
        parts = [text]
        if wrap_at and len(text) > wrap_at:
            parts = textwrap.wrap(text, wrap_at, break_on_hyphens=False) or [text]
        head = GAP.join(pads[i](cells[i], widths[i]) for i in range(last))
        yield f"{head}{GAP}{parts[0]}".rstrip() if last else parts[0]
        for part in parts[1:]:
            yield f"{' ' * (lead + len(GAP))}{part}" if last else part

    yield from line([c.title for c in columns])
    for row in rows:
        yield from line(row)


def _stacked(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> Iterator[str]:
    """A terminal too narrow for the columns side by side: each row's values in column order, wrapped between
    values (never inside one), continuation lines indented; the first line names the columns in that order."""
    yield from _wrap_between([c.title for c in columns], width, indent="")
    for row in rows:
        yield from _wrap_between([cell or "-" for cell in row], width, indent="    ")


def _wrap_between(cells: Sequence[str], width: int, *, indent: str) -> Iterator[str]:
    line = ""
    for cell in cells:
        candidate = f"{line}{GAP}{cell}" if line else cell
        if line and len(candidate) > width:
            yield line
            line = f"{indent}{cell}"
        else:
            line = candidate
    if line:
        yield line


def _tsv_cell(cell: str) -> str:
    return cell.replace("\t", " ").replace("\n", " ")


def echo_lines(lines: Iterable[str], stream: TextIO | None = None) -> None:
    """Write many lines at once (one write per thousand lines, not one per line)."""
    stream = stream or sys.stdout
    batch: list[str] = []
    for text in lines:
        batch.append(text)
        if len(batch) >= 1000:
            stream.write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        stream.write("\n".join(batch) + "\n")
    stream.flush()
