"""Online help: keywords/ and help/ one-to-one, HELP output, HELP CONVENTIONS."""

from __future__ import annotations

import io

import pytest

from mosflm_py.errors import KeywordError
from mosflm_py.helptext import help_file, help_lines
from mosflm_py.registry import default_registry
from mosflm_py.resources import help_dir, keywords_dir
from mosflm_py.session import Session

REG = default_registry()


def test_keywords_and_help_files_one_to_one():
    tomls = {p.stem for p in keywords_dir().glob("*.toml")}
    helps = {p.stem for p in help_dir().glob("*.txt")}
    assert tomls == helps
    assert tomls == {s.name.lower() for s in REG}
    assert len(tomls) >= 90


@pytest.mark.parametrize("spec", list(REG), ids=lambda s: s.name)
def test_help_page_matches_spec(spec):
    text = help_file(spec).read_text()
    assert text.splitlines()[0] == spec.syntax
    for sub in spec.subkeywords:
        assert sub in text, f"{spec.name}: subkeyword {sub} not described"


def test_help_index_groups_by_topic():
    lines = help_lines(REG, None)
    text = "\n".join(lines)
    for heading in ("Images, files and names:", "Autoindexing:", "Session control:"):
        assert heading in text
    assert "CONVENTIONS" in text
    # every keyword listed exactly once
    for spec in REG:
        entries = [ln for ln in lines if ln.startswith("   ") and ln.split()[0] == spec.name]
        assert len(entries) == 1, spec.name


@pytest.mark.parametrize(("word", "first"), [("DIST", "DISTANCE <d>"), ("disto", "DISTORTION"),
                                             ("MOSAICITY", "MOSAIC <eta>"), ("run", "GO")])
def test_help_keyword_by_abbreviation(word, first):
    assert help_lines(REG, word)[0].strip().startswith(first)


def test_help_shows_defaults():
    text = "\n".join(help_lines(REG, "POSTREF"))
    assert "MAXRESIDUAL" in text and "Default: 0.55" in text
    assert "Default: 2.5" in "\n".join(help_lines(REG, "AUTOINDEX"))


def test_help_conventions_topic():
    text = "\n".join(help_lines(REG, "CONVENTIONS"))
    assert "Laboratory frame" in text and "Busing & Levy" in text
    assert help_lines(REG, "conv") == help_lines(REG, "CONVENTIONS")


def test_help_unknown():
    with pytest.raises(KeywordError, match="not a keyword or a help topic"):
        help_lines(REG, "XYZZY")


def test_help_through_session():
    out = io.StringIO()
    s = Session(out=out)
    s.execute("HELP BEAM")
    s.execute("HELP XYZZY")
    text = out.getvalue()
    assert "BEAM SWUNGOUT" in text
    assert " *** Error in line 2 (HELP XYZZY):" in text
    assert s.failures == 1


def test_help_input_topic():
    text = "\n".join(help_lines(REG, "INPUT"))
    assert "Continuation" in text and "MOSFLM => " in text
