"""CCP4 tokenising rules (mosflm_keywords.md section 1)."""

from __future__ import annotations

import pytest

from mosflm_py.lexer import (
    LineJoiner,
    UnterminatedQuote,
    include_path,
    is_real,
    parse_int,
    parse_real,
    strip_comment,
    tokenize,
)


def texts(line):
    return [t.text for t in tokenize(line)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("BEAM 108.7 102.0", ["BEAM", "108.7", "102.0"]),
        ("BEAM\t108.7,102.0", ["BEAM", "108.7", "102.0"]),
        ("beam=108.7 , 102.0", ["beam", "108.7", "102.0"]),
        ("CELL 50,,60", ["CELL", "50", "", "60"]),  # null field between two commas
        ("CELL 50 , , 60", ["CELL", "50", "", "60"]),
        ("A=,B", ["A", "", "B"]),
        ("  ", []),
        ("", []),
        ("! only a comment", []),
        ("# only a comment", []),
        ("DISTANCE 170 ! trailing comment", ["DISTANCE", "170"]),
        ("DISTANCE 170 # trailing comment", ["DISTANCE", "170"]),
        ("TEMPLATE x_###.img", ["TEMPLATE", "x_###.img"]),  # '#' inside a token is kept
        ('TEMPLATE "a b_###.img" ! c', ["TEMPLATE", "a b_###.img"]),
        ("DIRECTORY '/data/with space/x'", ["DIRECTORY", "/data/with space/x"]),
        ('TITLE "it\'s ! not a comment"', ["TITLE", "it's ! not a comment"]),
        ("TEMPLATE 'x,y=z'", ["TEMPLATE", "x,y=z"]),
    ],
)
def test_tokenize(line, expected):
    assert texts(line) == expected


def test_quoted_flag_and_empty_quoted_string():
    toks = tokenize('TITLE "" x')
    assert toks[1].text == "" and toks[1].quoted and not toks[1].empty
    assert tokenize("A,,B")[1].empty


def test_unterminated_quote():
    with pytest.raises(UnterminatedQuote, match="never closed"):
        tokenize('TEMPLATE "abc')


def test_strip_comment_respects_quotes():
    assert strip_comment('A "x!y" ! z') == 'A "x!y" '
    assert strip_comment("A x#y # z") == "A x#y "


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1.0), ("1.", 1.0), (".5", 0.5), ("-2.5E-3", -2.5e-3), ("1.5D0", 1.5),
     ("+3e2", 300.0), ("1.5d+1", 15.0)],
)
def test_fortran_reals(text, value):
    assert is_real(text)
    assert parse_real(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text", ["abc", "1.2.3", "", "e5", "1e", "--1", "0x10", "nan", "inf"])
def test_not_reals(text):
    assert not is_real(text)
    with pytest.raises(ValueError):
        parse_real(text)


def test_parse_int():
    assert parse_int("10") == 10
    assert parse_int("-3") == -3
    assert parse_int("10.") == 10
    assert parse_int("1E2") == 100
    with pytest.raises(ValueError):
        parse_int("1.5")
    with pytest.raises(ValueError):
        parse_int("x")


@pytest.mark.parametrize("mark", ["-", "&", "\\"])
def test_continuation(mark):
    j = LineJoiner()
    assert j.feed(f"AUTOINDEX DPS {mark}") is None
    assert j.pending
    assert j.feed(f"  REFINE IMAGE 1 {mark} ! comment on a continued line") is None
    tokens, text = j.feed("IMAGE 30")
    assert [t.text for t in tokens] == ["AUTOINDEX", "DPS", "REFINE", "IMAGE", "1", "IMAGE", "30"]
    assert text == "AUTOINDEX DPS REFINE IMAGE 1 IMAGE 30"
    assert not j.pending


def test_negative_number_is_not_continuation():
    j = LineJoiner()
    tokens, _ = j.feed("DISTORTION TILT -18")
    assert [t.text for t in tokens] == ["DISTORTION", "TILT", "-18"]
    tokens, _ = j.feed('TITLE "-"')  # a quoted '-' is a value
    assert tokens[-1].text == "-"


def test_include_path():
    assert include_path(tokenize("@startup.com")) == "startup.com"
    assert include_path(tokenize("@ startup.com")) == "startup.com"
    assert include_path(tokenize("@")) == ""
    assert include_path(tokenize("BEAM 1 2")) is None
    assert include_path(tokenize('"@x"')) is None
