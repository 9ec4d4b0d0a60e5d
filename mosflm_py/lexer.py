"""CCP4-style tokenising of MOSFLM keyword input.

The rules follow the CCP4 library parser (``ccp4_parser.c``) as MOSFLM uses it:

* token delimiters are space, tab, comma, ``=`` and CR; comma and ``=`` are also *null delimiters*:
  two of them in a row (only blanks in between) give an empty field (``CELL 50,,60`` has an empty
  second value, which the keyword parser treats as "default");
* ``'...'`` and ``"..."`` quote a token (spaces kept), e.g. ``DIRECTORY "/data/my images"``;
* an unquoted ``!`` or ``#`` **at the start of a token** starts a trailing comment. (A ``#``
  inside a token is kept, so an unquoted ``TEMPLATE x_###.img`` still works; this is a mosflm-py
  leniency.) A line that is only a comment yields no tokens;
* a line whose last token is ``-``, ``&`` or ``\\`` continues on the next line;
* a first token starting with ``@`` means "read input from that file" (handled by the session);
* numbers are Fortran reals: ``1``, ``1.``, ``.5``, ``1.5E-3``, ``1.5D0``.

Everything here is pure: strings in, tokens out.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

CONTINUATION_MARKS = frozenset({"-", "&", "\\"})
_NULL_DELIMITERS = ",="
_BLANKS = " \t\r\n\f\v"
_COMMENT_CHARS = "!#"

_FORTRAN_REAL = re.compile(
    r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?$",
)
_FORTRAN_INT = re.compile(r"^[+-]?\d+$")


class Token(NamedTuple):
    """One input field: its text (quotes removed) and whether it was quoted."""

    text: str
    quoted: bool = False

    @property
    def upper(self) -> str:
        """The text in upper case (keywords are case-insensitive)."""
        return self.text.upper()

    @property
    def empty(self) -> bool:
        """True for a null field produced by two adjacent comma/``=`` delimiters."""
        return not self.text and not self.quoted


class UnterminatedQuote(ValueError):
    """A quoted string that is not closed before the end of the line."""


def strip_comment(line: str) -> str:
    """Return *line* without a trailing ``!``/``#`` comment (quotes respected).

    Parameters
    ----------
    line : str
        One physical input line.

    Returns
    -------
    str
        The line up to (not including) the first unquoted ``!`` or ``#`` that starts a token.
    """
    quote = ""
    at_token_start = True
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"" and at_token_start:
            quote = ch
            at_token_start = False
            continue
        if ch in _COMMENT_CHARS and at_token_start:
            return line[:i]
        at_token_start = ch in _BLANKS or ch in _NULL_DELIMITERS
    return line


def tokenize(line: str) -> list[Token]:
    """Split one (comment-free or not) line into CCP4 tokens.

    Parameters
    ----------
    line : str
        Input text; a trailing comment is removed first.

    Returns
    -------
    list of Token
        Tokens in order; empty-text tokens stand for null fields (``a,,b``).

    Raises
    ------
    UnterminatedQuote
        When a quote is opened and not closed.

    Examples
    --------
    >>> [t.text for t in tokenize('CELL 50,,60 ! comment')]
    ['CELL', '50', '', '60']
    >>> [t.text for t in tokenize('DIRECTORY "/a b/c"')]
    ['DIRECTORY', '/a b/c']
    """
    line = strip_comment(line)
    tokens: list[Token] = []
    i, n = 0, len(line)
    # True right after a null delimiter with no token since: a second one yields an empty field.
    after_null = False
    while i < n:
        ch = line[i]
        if ch in _BLANKS:
            i += 1
            continue
        if ch in _NULL_DELIMITERS:
            if after_null:
                tokens.append(Token("", False))
            after_null = True
            i += 1
            continue
        after_null = False
        if ch in "'\"":
            end = line.find(ch, i + 1)
            if end < 0:
                raise UnterminatedQuote(f"the quote {ch} opened in column {i + 1} is never closed")
            tokens.append(Token(line[i + 1 : end], True))
            i = end + 1
            continue
        j = i
        while j < n and line[j] not in _BLANKS and line[j] not in _NULL_DELIMITERS:
            j += 1
        tokens.append(Token(line[i:j], False))
        i = j
    return tokens


def is_continued(tokens: list[Token]) -> bool:
    """True when the last token is an unquoted continuation mark (``-``, ``&``, ``\\``)."""
    return bool(tokens) and not tokens[-1].quoted and tokens[-1].text in CONTINUATION_MARKS


def include_path(tokens: list[Token]) -> str | None:
    """The file named by an ``@file`` record, or None when the record is not an include."""
    if tokens and not tokens[0].quoted and tokens[0].text.startswith("@"):
        rest = tokens[0].text[1:]
        if rest:
            return rest
        return tokens[1].text if len(tokens) > 1 else ""
    return None


def is_real(text: str) -> bool:
    """True when *text* is a Fortran-style real (or integer) number."""
    return bool(_FORTRAN_REAL.match(text.strip()))


def parse_real(text: str) -> float:
    """Convert a Fortran-style real (``1.5D0``, ``.5``, ``2.``) to float.

    Raises
    ------
    ValueError
        When *text* is not a number.
    """
    t = text.strip()
    if not _FORTRAN_REAL.match(t):
        raise ValueError(f"'{text}' is not a number")
    return float(t.replace("d", "e").replace("D", "e"))


def parse_int(text: str) -> int:
    """Convert an integer field; a real with no fractional part (``10.``, ``1E2``) is accepted.

    Raises
    ------
    ValueError
        When *text* is not an integer.
    """
    t = text.strip()
    if _FORTRAN_INT.match(t):
        return int(t)
    value = parse_real(t)
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"'{text}' is not a whole number")
    return int(value)


class LineJoiner:
    """Assemble logical records from physical lines (CCP4 continuation with ``-``, ``&``, ``\\``).

    ``feed(line)`` returns the completed record's tokens and its text, or None while a continued
    record is still open.
    """

    def __init__(self) -> None:
        self._tokens: list[Token] = []
        self._text: list[str] = []

    @property
    def pending(self) -> bool:
        """True while a continued record waits for its next line."""
        return bool(self._text)

    @property
    def pending_text(self) -> str:
        """The text of the continued record collected so far."""
        return " ".join(self._text)

    def feed(self, line: str) -> tuple[list[Token], str] | None:
        """Add one physical line; return (tokens, joined text) when a record is complete."""
        tokens = tokenize(line)
        if is_continued(tokens):
            self._tokens.extend(tokens[:-1])
            self._text.append(strip_comment(line).strip()[:-1].rstrip())
            return None
        all_tokens = self._tokens + tokens
        text = " ".join([*self._text, strip_comment(line).strip()]).strip()
        self._tokens, self._text = [], []
        return all_tokens, text

    def reset(self) -> None:
        """Drop an unfinished continued record."""
        self._tokens, self._text = [], []
