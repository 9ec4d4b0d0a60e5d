"""docs/bounds.md (issue 14 bounds review) and the bounds in keywords/*.toml stay one.

Each row names a keyword argument (``file:SUBKEYWORD.arg``), our bound (``lo <= name <= hi``,
``<`` for an open end) and MOSFLM's documented default or example, which must be accepted.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from conftest import REPO, run_script

TABLE = REPO / "docs" / "bounds.md"
BOUND = re.compile(r"^(\S+) (<=|<) (\w+) (<=|<) (\S+)$")


def _rows() -> list[list[str]]:
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and ".toml:" in cells[1]:
            rows.append(cells)
    return rows


def _arg(path: str) -> dict:
    file, _, chain = path.partition(":")
    spec = tomllib.loads((REPO / "keywords" / file).read_text(encoding="utf-8"))
    *subs, name = chain.split(".")
    for sub in subs:
        spec = spec["subkeywords"][sub]
    matches = [a for a in spec["args"] if a["name"] == name]
    assert len(matches) == 1, f"{path}: argument {name} not found"
    return matches[0]


def test_the_table_covers_the_keywords_of_the_review():
    names = {row[0] for row in _rows()}
    for kw in ("RESOLUTION", "DISTANCE", "WAVELENGTH", "MOSAIC", "RASTER", "SEPARATION",
               "PROFILE TOLERANCE", "REFINEMENT RESIDUAL", "POSTREF MAXRESIDUAL", "NPROC"):
        assert kw in names


@pytest.mark.parametrize("row", _rows(), ids=lambda r: r[1])
def test_bound_in_the_table_is_the_bound_in_the_toml(row):
    _, path, bound, _, default, _ = row
    m = BOUND.match(bound)
    assert m, f"bad bound {bound!r}"
    lo, lo_op, name, hi_op, hi = m.groups()
    arg = _arg(path)
    assert arg["name"] == name
    assert float(arg["min"]) == float(lo)
    assert float(arg["max"]) == float(hi)
    assert bool(arg.get("min_exclusive", False)) == (lo_op == "<")
    assert bool(arg.get("max_exclusive", False)) == (hi_op == "<")
    # MOSFLM's documented default / example must be accepted
    value = float(default)
    assert value > float(lo) if lo_op == "<" else value >= float(lo)
    assert value < float(hi) if hi_op == "<" else value <= float(hi)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("RESOLUTION EXCLUDE {k}.1 {k}.2", "RESOLUTION EXCLUDE: at most 10 resolution shells"),
        ('DIRECTORY "d{k}"', "DIRECTORY: at most 10 directories can be given"),
    ],
)
def test_documented_count_limits(tmp_path, line, message):
    """MOSFLM's two documented count limits (mosflm_keywords.md): 10 accepted, the 11th not."""
    for k in range(11):
        (tmp_path / f"d{k}").mkdir()
    lines = [line.format(k=k + 2) for k in range(11)]
    rc, out = run_script("\n".join([*lines[:10], "EXIT"]) + "\n", tmp_path)
    assert rc == 0, out
    rc, out = run_script("\n".join([*lines, "EXIT"]) + "\n", tmp_path)
    assert rc == 1
    assert "*** Error in line 11" in out and message in out, out
