"""SHOW: the user's settings with their keywords, and separately what the program found."""

from __future__ import annotations

import io

from mosflm_py.actions.control import keyword_names
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
    out = io.StringIO()
    s = Session(out=out)
    s.execute("DISTANCE 100")
    s.set("crystal.mosaic", 0.3)  # as MOSAIC ESTIMATE stores a derived value
    lines = _show(s, out)
    found = lines.index(" Found by the program (not given as keywords):")
    given = [ln.split() for ln in lines[:found]]
    derived = [ln.split() for ln in lines[found + 1 :]]
    assert ["DISTANCE", "detector.distance", "100", "(default", "(not", "set))"] in given
    assert ["MOSAIC", "crystal.mosaic", "0.3", "(default", "(not", "set))", "(derived)"] in derived
    assert not any("crystal.mosaic" in ln for ln in lines[:found])
