"""CCP4 loggraph tables: writer and reader.

Grammar (as read by xloggraph, ccp4i/CCP4i2, iotbx ``data_plots`` and xia2's
``parse_ccp4_loggraph``)::

    $TABLE: <table title>:
    $GRAPHS :<graph 1 title>:<scale>:<x col>,<y col>[,<y col>...]:
            :<graph 2 title>:<scale>:<cols>: $$
    <column header 1> <column header 2> ... $$
    <optional free text> $$
    <data rows, whitespace separated>
    $$

Exactly four ``$$`` per table; graph column numbers are 1-based; ``<scale>`` is ``A``
(automatic), ``N`` (automatic, y from zero) or ``xmin|xmaxxymin|ymax``; headers contain no blanks;
missing values are written ``******``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["MISSING", "Graph", "LoggraphTable", "ParsedTable", "parse_loggraph"]

MISSING = "******"


@dataclass(frozen=True)
class Graph:
    """One graph of a table: title, scale and 1-based column numbers (x first)."""

    title: str
    columns: tuple[int, ...]
    scale: str = "A"

    def spec(self) -> str:
        cols = ",".join(str(c) for c in self.columns)
        return f":{self.title}:{self.scale}:{cols}:"


Value = float | int | str | None


@dataclass(frozen=True)
class LoggraphTable:
    """A loggraph table.

    Attributes
    ----------
    title : str
        Table title (no ``:`` or ``$``).
    graphs : sequence of Graph
    columns : sequence of str
        Column headers; blanks are replaced by ``_`` on output.
    rows : sequence of sequence
        Data rows; ``None``/NaN become ``******``.
    formats : sequence of str, optional
        Python format spec per column (e.g. ``"8.2f"``); default: ints ``d``, floats ``.4g``.
    comment : str
        Text of the comment block (usually empty).
    """

    title: str
    graphs: Sequence[Graph]
    columns: Sequence[str]
    rows: Sequence[Sequence[Value]]
    formats: Sequence[str] | None = None
    comment: str = ""

    def __post_init__(self) -> None:
        if any(ch in self.title for ch in ":$"):
            raise ValueError(f"loggraph table title may not contain ':' or '$': {self.title!r}")
        n = len(self.columns)
        for g in self.graphs:
            if not g.columns or min(g.columns) < 1 or max(g.columns) > n:
                raise ValueError(f"graph {g.title!r} refers to columns outside 1..{n}")
            if any(ch in g.title for ch in ":$"):
                raise ValueError(f"graph title may not contain ':' or '$': {g.title!r}")
        if self.formats is not None and len(self.formats) != n:
            raise ValueError("one format per column is needed")
        for k, row in enumerate(self.rows):
            if len(row) != n:
                raise ValueError(f"row {k} has {len(row)} values for {n} columns")

    def _cell(self, value: Value, col: int) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            text = MISSING
        elif isinstance(value, str):
            text = value.replace(" ", "_") or MISSING
        elif self.formats is not None:
            text = format(value, self.formats[col])
        elif isinstance(value, int | bool):
            text = str(int(value))
        else:
            text = format(float(value), ".4g")
        width = max(len(_header(self.columns[col])), 6)
        return text.strip().rjust(width)

    def format(self) -> str:
        """The table as loggraph text (ends with a newline)."""
        lines = [f"$TABLE: {self.title}:"]
        if self.graphs:
            specs = [g.spec() for g in self.graphs]
            lines.append("$GRAPHS " + specs[0])
            lines += ["        " + s for s in specs[1:]]
            lines[-1] += " $$"
        else:
            lines.append("$GRAPHS $$")
        widths = [max(len(_header(c)), 6) for c in self.columns]
        lines.append(" ".join(_header(c).rjust(w) for c, w in zip(self.columns, widths)) + " $$")
        lines.append(f"{self.comment} $$" if self.comment else "$$")
        for row in self.rows:
            lines.append(" ".join(self._cell(v, k) for k, v in enumerate(row)))
        lines.append("$$")
        return "\n".join(lines) + "\n"


def _header(name: str) -> str:
    return "_".join(name.split()) or "_"


@dataclass(frozen=True)
class ParsedTable:
    """A table read back by :func:`parse_loggraph` (missing values are NaN)."""

    title: str
    graphs: list[Graph]
    columns: list[str]
    rows: list[list[float | str]] = field(default_factory=list)
    comment: str = ""

    def column(self, name: str) -> list[float | str]:
        k = self.columns.index(name)
        return [row[k] for row in self.rows]


_GRAPH = re.compile(r":([^:]*):([^:]*):([\d,\s]+):")


def _value(tok: str) -> float | str:
    if set(tok) == {"*"}:
        return math.nan
    try:
        return float(tok)
    except ValueError:
        return tok


def parse_loggraph(text: str) -> list[ParsedTable]:
    """All loggraph tables of a log or SUMMARY text, in order.

    Raises
    ------
    ValueError
        If a table does not have its four ``$$`` markers.
    """
    tables: list[ParsedTable] = []
    pos = 0
    while (start := text.find("$TABLE", pos)) >= 0:
        head_end = text.index("\n", start)
        title = text[start:head_end].split(":", 1)[1].rstrip().rstrip(":").strip()
        parts: list[str] = []
        cursor = head_end
        for _ in range(4):
            nxt = text.find("$$", cursor)
            if nxt < 0:
                raise ValueError(f"loggraph table {title!r} is missing '$$' markers")
            parts.append(text[cursor:nxt])
            cursor = nxt + 2
        graph_text = parts[0].replace("$GRAPHS", "", 1)
        graphs = [
            Graph(m.group(1).strip(), tuple(int(c) for c in m.group(3).split(",") if c.strip()),
                  m.group(2).strip())
            for m in _GRAPH.finditer(graph_text)
        ]  # fmt: skip
        columns = parts[1].split()
        rows = [[_value(t) for t in line.split()] for line in parts[3].splitlines() if line.strip()]
        tables.append(ParsedTable(title, graphs, columns, rows, parts[2].strip()))
        pos = cursor
    return tables
