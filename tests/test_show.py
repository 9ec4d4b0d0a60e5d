"""SHOW: the user's settings with their keywords, and separately what the program found."""

from __future__ import annotations

import io

from mosflm_py.actions.control import keyword_names
from mosflm_py.experiment_model import Found, merge_crystal
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.registry import default_registry
from mosflm_py.session import Session


def _show(session: Session, out: io.StringIO) -> list[str]:
    start = len(out.getvalue())
    session.execute("SHOW")
    return out.getvalue()[start:].splitlines()


def test_keyword_names_cover_targets():
    names = keyword_names(default_registry())
    assert names["detector.distance"] == "DISTANCE"
    assert names["detector.beam"] == "BEAM"
    assert names["crystal.mosaic"] == "MOSAIC"


def test_show_separates_given_settings_from_found_values():
    """SHOW: the settings given, then each value found beside the user's setting of the same
    keyword, the step that found it and which one the next step uses."""
    out = io.StringIO()
    s = Session(out=out)
    s.execute("DISTANCE 100")
    s.execute("MOSAIC 0.3")
    clock = s.state.clock
    # as AUTOINDEX and MOSAIC ESTIMATE store them (values found after the keywords)
    s.results.distance = Found(99.5, "AUTOINDEX", clock)
    s.results.beam = Found((101.25, 99.75), "AUTOINDEX", clock)
    crystal = Crystal(
        cell=(78.0, 78.0, 37.0, 90.0, 90.0, 90.0), space_group="P 43 21 2", mosaic=0.45
    )
    s.results.crystal = merge_crystal(
        None, crystal, "MOSAIC ESTIMATE", clock, ("cell", "space_group", "mosaic")
    )
    s.execute("BEAM 100 100")  # typed after AUTOINDEX: the user's beam is used
    lines = _show(s, out)
    head = lines.index(" Found by the program, beside your settings:")
    given = [ln.split() for ln in lines[:head]]
    assert ["DISTANCE", "detector.distance", "100", "(default", "(not", "set))"] in given
    assert ["MOSAIC", "crystal.mosaic", "0.3", "(default", "(not", "set))"] in given
    table = [ln.split() for ln in lines[head + 1 :]]
    assert table[0] == ["Keyword", "Your", "setting", "Found", "By", "In", "use"]
    rows = {
        r[0]: r for r in table[1:] if r[0] in ("BEAM", "DISTANCE", "MOSAIC", "CELL", "SYMMETRY")
    }
    assert rows["BEAM"] == ["BEAM", "100", "100", "101.25", "99.75", "AUTOINDEX", "yours"]
    assert rows["DISTANCE"] == ["DISTANCE", "100", "99.50", "AUTOINDEX", "found"]
    assert rows["MOSAIC"] == ["MOSAIC", "0.3", "0.45", "MOSAIC", "ESTIMATE", "found"]
    assert rows["CELL"][1:3] == ["(not", "given)"] and rows["CELL"][-1] == "found"
    assert rows["SYMMETRY"][-1] == "found"
    assert any(
        ln.startswith(" Current crystal: cell 78.00 78.00 37.00") and "mosaic 0.45" in ln
        for ln in lines
    )
    # nothing found was written into the settings
    assert s.state.detector.distance == 100 and s.state.crystal.mosaic == 0.3
    assert s.state.crystal.cell is None


def test_show_without_results_has_no_found_table():
    out = io.StringIO()
    s = Session(out=out)
    s.execute("DISTANCE 100")
    lines = _show(s, out)
    assert not any("Found by the program" in ln for ln in lines)
