"""Keyword specifications (``keywords/*.toml``), CCP4 keyword matching and the generic parser.

A keyword file declares::

    name     = "BEAM"                      # canonical name
    synonyms = ["BEAM_CENTRE"]             # other accepted spellings (optional)
    kind     = "setting"                   # setting | action | control
    topic    = "detector"                  # HELP groups keywords by topic
    syntax   = "BEAM <x> <y> | BEAM SWUNGOUT <x> <y>"
    summary  = "Direct-beam position (mm, X = slow, Y = fast)."
    handler  = "mosflm_py.actions.x:run"   # actions/controls (and sub-actions)
    parser   = "module:function"           # optional hook for a special grammar
    apply    = "module:function"           # optional hook replacing the generic state update
    effect   = "module:function"           # optional hook run after the state update
    accumulate = true                      # actions: consecutive lines join one job (AUTOINDEX)
    writes = ["files.hklout", "PLOT.file"] # actions: output files (settings, or SUB.arg of the
                                           # action line) checked writable before GO runs them
    checks = ["module:function"]           # actions: consistency checks run before GO runs them
    implemented = false                    # MOSFLM keyword not built yet: GO says so, HELP too
    priority = 1                           # wins ties between abbreviations (DIST -> DISTANCE)

    [[args]]                               # positional values, in order
    name = "x"; type = "float"; unit = "mm"; target = "detector.beam"; optional = false

    [subkeywords.SWUNGOUT]                 # subkeyword/value groups, any order, 4-char matching
    args = [{ name = "x", type = "float" }, { name = "y", type = "float" }]
    target = "detector.beam_swungout"      # one arg -> value, several -> tuple, none -> `value`
    value = true                           # constant stored for a flag subkeyword
    repeat = true                          # may occur several times (values collected)
    append = true                          # value is appended to the tuple at target
    handler = "module:function"            # this subkeyword turns the line into an action
    forms = [[...], [...]]                 # alternative argument lists, first that fits wins
    [subkeywords.IMAGE.subkeywords.PHI]    # nested subkeywords bound to the preceding one

Argument types: ``int``, ``float`` (Fortran reals), ``str`` (any token), ``word`` (a token that is
not one of the keyword's subkeywords), ``text`` (the rest of the line), ``choice`` (one of
``choices``, 4-char matching), ``onoff`` (ON/OFF/YES/NO/TRUE/FALSE -> bool). ``count = n`` makes a
tuple of n values; ``repeat = true`` on the last argument collects all following values;
``literal = "TO"`` is an optional/required fixed word (not stored). ``min``/``max`` are inclusive
limits, ``min_exclusive = true`` makes ``min`` strict (``max_exclusive`` likewise); whole numbers
are always limited to a 32-bit INTEGER and real numbers must be finite. ``greater_than = "a"`` /
``not_less_than = "a"`` order an argument after argument ``a`` of the same group (``PROCESS 5 1``,
``IMAGE 1 PHI 10 TO 0``). Type ``path`` is a file name: not empty, no NUL character. The same
bounds check values read from image headers (:mod:`mosflm_py.imageio.sanity`).

The parser turns a token list into a :class:`Record`; a user mistake raises
:class:`~mosflm_py.errors.KeywordError` whose message says what was expected.
"""

from __future__ import annotations

import importlib
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mosflm_py.errors import KeywordError
from mosflm_py.lexer import Token, parse_int, parse_real
from mosflm_py.resources import keywords_dir

Kind = Literal["setting", "action", "control"]
ARG_TYPES = frozenset({"int", "float", "str", "path", "word", "text", "choice", "onoff"})
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # whole numbers must fit a Fortran INTEGER
_ON = {"ON": True, "YES": True, "TRUE": True, "OFF": False, "NO": False, "FALSE": False}


class KeywordClash(ValueError):
    """Two keyword files claim the same name or synonym (a developer error)."""


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One typed value (positional argument or argument of a subkeyword)."""

    name: str
    type: str = "float"
    optional: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    greater_than: str | None = None
    not_less_than: str | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    help: str = ""
    target: str | None = None
    literal: str | None = None
    count: int = 1
    repeat: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ArgSpec:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "choices" in known:
            known["choices"] = tuple(str(c).upper() for c in known["choices"])
        spec = cls(**known)
        if spec.literal is None and spec.type not in ARG_TYPES:
            raise ValueError(f"argument {spec.name}: unknown type {spec.type!r}")
        if unknown := set(d) - set(cls.__dataclass_fields__):
            raise ValueError(f"argument {spec.name}: unknown fields {sorted(unknown)}")
        return spec

    def describe(self) -> str:
        """Short human description used in error messages (e.g. ``x (a number, mm)``)."""
        if self.literal:
            return f"the word {self.literal}"
        what = {
            "int": "a whole number",
            "float": "a number",
            "str": "a name",
            "path": "a file name",
            "word": "a name",
            "text": "text",
            "onoff": "ON or OFF",
            "choice": "one of " + ", ".join(self.choices),
        }[self.type]
        unit = f" ({self.unit})" if self.unit else ""
        return f"<{self.name}> ({what}{self.range_text()}){unit}"

    def limits(self) -> tuple[float | None, float | None]:
        """Declared (min, max); whole numbers are always limited to a 32-bit INTEGER."""
        lo, hi = self.min, self.max
        if self.type == "int":
            lo = INT32_MIN if lo is None else max(lo, INT32_MIN)
            hi = INT32_MAX if hi is None else min(hi, INT32_MAX)
        return lo, hi

    def range_text(self) -> str:
        """The allowed range in words (`` between 0 and 10``, `` > 0``), empty if unbounded."""
        lo, hi = self.limits()
        if lo is not None and hi is not None:
            if self.min_exclusive or self.max_exclusive:
                return (f" {'>' if self.min_exclusive else '>='} {_fmt(lo)} and "
                        f"{'<' if self.max_exclusive else '<='} {_fmt(hi)}")
            return f" between {_fmt(lo)} and {_fmt(hi)}"
        if lo is not None:
            return f" {'>' if self.min_exclusive else '>='} {_fmt(lo)}"
        if hi is not None:
            return f" {'<' if self.max_exclusive else '<='} {_fmt(hi)}"
        return ""

    def check(self, value: Any) -> str | None:
        """Why a converted *value* is not allowed (None when it is): not finite, out of range."""
        if self.type not in ("int", "float") or value is None:
            return None
        if self.type == "float" and not math.isfinite(value):
            return "is not a finite number"
        lo, hi = self.limits()
        if lo is not None and (value <= lo if self.min_exclusive else value < lo):
            return "is out of range"
        if hi is not None and (value >= hi if self.max_exclusive else value > hi):
            return "is out of range"
        return None


@dataclass(frozen=True, slots=True)
class SubSpec:
    """A subkeyword: its name, alternative argument lists, state target or action handler."""

    name: str
    synonyms: tuple[str, ...] = ()
    forms: tuple[tuple[ArgSpec, ...], ...] = ((),)
    subkeywords: Mapping[str, SubSpec] = field(default_factory=dict)
    target: str | None = None
    value: Any = True
    repeat: bool = False
    append: bool = False
    handler: str | None = None
    default: str = ""
    help: str = ""
    writes: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> SubSpec:
        if unknown := set(d) - {*cls.__dataclass_fields__, "args"} - {"name"}:
            raise ValueError(f"subkeyword {name}: unknown fields {sorted(unknown)}")
        if "forms" in d:
            forms = tuple(tuple(ArgSpec.from_dict(a) for a in form) for form in d["forms"])
        else:
            forms = (tuple(ArgSpec.from_dict(a) for a in d.get("args", [])),)
        subs = _subs_from(d)
        return cls(
            name=name,
            synonyms=tuple(s.upper() for s in d.get("synonyms", [])),
            forms=forms,
            subkeywords=subs,
            target=d.get("target"),
            value=d.get("value", True),
            repeat=bool(d.get("repeat", False)),
            append=bool(d.get("append", False)),
            handler=d.get("handler"),
            default=str(d.get("default", "")),
            help=d.get("help", ""),
            writes=tuple(d.get("writes", ())),
        )

    @property
    def args(self) -> tuple[ArgSpec, ...]:
        """The first (usual) argument list."""
        return self.forms[0]


@dataclass(frozen=True, slots=True)
class KeywordSpec:
    """A keyword as declared in ``keywords/<name>.toml``."""

    name: str
    kind: Kind
    syntax: str
    summary: str
    topic: str = "misc"
    synonyms: tuple[str, ...] = ()
    forms: tuple[tuple[ArgSpec, ...], ...] = ((),)
    subkeywords: Mapping[str, SubSpec] = field(default_factory=dict)
    target: str | None = None
    handler: str | None = None
    parser: str | None = None
    apply: str | None = None
    effect: str | None = None
    accumulate: bool = False
    priority: int = 0
    writes: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    implemented: bool = True
    source: str = ""

    @property
    def args(self) -> tuple[ArgSpec, ...]:
        """The first (usual) positional argument list."""
        return self.forms[0]

    @classmethod
    def from_toml(cls, d: Mapping[str, Any], source: str = "") -> KeywordSpec:
        allowed = {*cls.__dataclass_fields__, "args"} - {"source"}
        if unknown := set(d) - allowed:
            raise ValueError(f"{source}: unknown fields {sorted(unknown)}")
        if "forms" in d:
            forms = tuple(tuple(ArgSpec.from_dict(a) for a in form) for form in d["forms"])
        else:
            forms = (tuple(ArgSpec.from_dict(a) for a in d.get("args", [])),)
        subs = _subs_from(d)
        kind = d["kind"]
        if kind not in ("setting", "action", "control"):
            raise ValueError(f"{source}: kind must be setting, action or control, not {kind!r}")
        return cls(
            name=d["name"].upper(),
            kind=kind,
            syntax=d["syntax"],
            summary=d["summary"],
            topic=d.get("topic", "misc"),
            synonyms=tuple(s.upper() for s in d.get("synonyms", [])),
            forms=forms,
            subkeywords=subs,
            target=d.get("target"),
            handler=d.get("handler"),
            parser=d.get("parser"),
            apply=d.get("apply"),
            effect=d.get("effect"),
            accumulate=bool(d.get("accumulate", False)),
            priority=int(d.get("priority", 0)),
            writes=tuple(d.get("writes", ())),
            checks=tuple(d.get("checks", ())),
            implemented=bool(d.get("implemented", True)),
            source=source,
        )


@dataclass(frozen=True, slots=True)
class SubValue:
    """One occurrence of a subkeyword in a record, with its converted values."""

    name: str
    values: Mapping[str, Any]
    subs: tuple[SubValue, ...] = ()
    form: int = 0

    def get(self, name: str, default: Any = None) -> Any:
        """Value of argument *name* (or *default*)."""
        return self.values.get(name, default)

    def sub(self, name: str) -> SubValue | None:
        """Last nested subkeyword called *name* (canonical), or None."""
        for s in reversed(self.subs):
            if s.name == name:
                return s
        return None


@dataclass(frozen=True, slots=True)
class Record:
    """A parsed keyword line: the spec, its positional values and its subkeywords in order.

    ``values`` holds only the positional arguments the user actually gave; :meth:`get` falls back
    on the declared default. ``text``/``lineno``/``source`` locate the input line.
    """

    spec: KeywordSpec
    values: Mapping[str, Any]
    subs: tuple[SubValue, ...] = ()
    text: str = ""
    lineno: int | None = None
    source: str | None = None
    form: int = 0

    @property
    def keyword(self) -> str:
        """Canonical keyword name."""
        return self.spec.name

    def get(self, name: str, default: Any = None) -> Any:
        """A positional value, else the spec default, else *default*."""
        if name in self.values:
            return self.values[name]
        for arg in self.spec.forms[self.form]:
            if arg.name == name and arg.default is not None:
                return arg.default
        return default

    def has(self, sub: str) -> bool:
        """True when subkeyword *sub* (canonical name) occurs."""
        return any(s.name == sub for s in self.subs)

    def sub(self, name: str) -> SubValue | None:
        """Last occurrence of subkeyword *name*, or None."""
        for s in reversed(self.subs):
            if s.name == name:
                return s
        return None

    def all(self, name: str) -> list[SubValue]:
        """Every occurrence of subkeyword *name*, in input order."""
        return [s for s in self.subs if s.name == name]

    @property
    def handler(self) -> str | None:
        """The action handler this record triggers (a subkeyword's handler wins)."""
        for s in self.subs:
            sub_spec = self.spec.subkeywords.get(s.name)
            if sub_spec is not None and sub_spec.handler:
                return sub_spec.handler
        return self.spec.handler if self.spec.kind != "setting" else None

    @property
    def writes(self) -> tuple[str, ...]:
        """State paths of the output files the action of this record writes (``writes``)."""
        out = list(self.spec.writes)
        for s in self.subs:
            sub_spec = self.spec.subkeywords.get(s.name)
            if sub_spec is not None:
                out.extend(sub_spec.writes)
        return tuple(dict.fromkeys(out))

    @property
    def is_action(self) -> bool:
        """True when this record queues a job (action keyword or action subkeyword)."""
        if self.spec.kind == "action":
            return True
        return self.spec.kind == "setting" and self.handler is not None


def _subs_from(d: Mapping[str, Any]) -> dict[str, SubSpec]:
    return {k.upper(): SubSpec.from_dict(k.upper(), v) for k, v in d.get("subkeywords", {}).items()}


def _fmt(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e12:
        return str(int(x))
    return f"{x:g}"


# ----------------------------------------------------------------------------------------------
# Matching
# ----------------------------------------------------------------------------------------------


def match_name(word: str, entries: Mapping[str, Any], what: str = "keyword",
               priority: Mapping[int, int] | None = None) -> tuple[str, Any]:
    """Resolve *word* against *entries* (upper-case alias -> object) by the CCP4 rules.

    Exact match first; else the aliases that *word* abbreviates (at least 4 characters, or the
    whole alias when shorter); else, as CCP4 does, aliases sharing the first 4 characters, the
    longest common prefix winning. Several distinct objects are resolved by ``priority``
    (``id(obj) -> int``), otherwise the word is ambiguous.

    Returns
    -------
    (alias, object)

    Raises
    ------
    LookupError
        With a user-facing message (unknown or ambiguous).
    """
    w = word.upper()
    if w in entries:
        return w, entries[w]
    cands = [(a, o) for a, o in entries.items() if a.startswith(w) and len(w) >= min(4, len(a))]
    if not cands and len(w) >= 4:
        best = 0
        for a, o in entries.items():
            if len(a) >= 4 and a[:4] == w[:4]:
                k = _common_prefix(a, w)
                if k > best:
                    best, cands = k, [(a, o)]
                elif k == best:
                    cands.append((a, o))
    distinct: dict[int, tuple[str, Any]] = {}
    for a, o in cands:
        distinct.setdefault(id(o), (a, o))
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    if not distinct:
        raise LookupError(f"unknown {what} {word}")
    if priority:
        ranked = sorted(distinct.items(), key=lambda kv: -priority.get(kv[0], 0))
        if priority.get(ranked[0][0], 0) > priority.get(ranked[1][0], 0):
            return ranked[0][1]
    names = sorted({_canonical(o, a) for a, o in distinct.values()})
    raise LookupError(f"{word} is ambiguous: it could be {' or '.join(names)}")


def _canonical(obj: Any, alias: str) -> str:
    return getattr(obj, "name", alias)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _sub_entries(subs: Mapping[str, SubSpec]) -> dict[str, SubSpec]:
    entries: dict[str, SubSpec] = {}
    for s in subs.values():
        entries[s.name] = s
        for syn in s.synonyms:
            entries[syn] = s
    return entries


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------


class Registry:
    """All keyword specs, indexed by name and synonyms; CCP4 matching via :meth:`lookup`."""

    def __init__(self, specs: Iterable[KeywordSpec]):
        self.specs: dict[str, KeywordSpec] = {}
        self._entries: dict[str, KeywordSpec] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise KeywordClash(f"{spec.source}: {spec.name} is declared twice")
            self.specs[spec.name] = spec
            for alias in (spec.name, *spec.synonyms):
                if (other := self._entries.setdefault(alias, spec)) is not spec:
                    raise KeywordClash(f"{spec.source}: {alias} already belongs to {other.name}")
        self._priority = {id(s): s.priority for s in self.specs.values()}

    def __iter__(self):
        return iter(self.specs.values())

    def __len__(self) -> int:
        return len(self.specs)

    def __contains__(self, name: str) -> bool:
        return name.upper() in self.specs

    def aliases(self) -> list[str]:
        """Every accepted full spelling (names and synonyms), sorted."""
        return sorted(self._entries)

    def lookup(self, word: str) -> KeywordSpec:
        """The keyword spec *word* names (CCP4 4-character rule, DISTANCE/DISTORTION resolved).

        Raises
        ------
        KeywordError
            Unknown or ambiguous keyword.
        """
        try:
            return match_name(word, self._entries, "keyword", self._priority)[1]
        except LookupError as err:
            raise KeywordError(f"{err}; type HELP for the list of keywords") from None

    def parse(self, tokens: list[Token], text: str = "", lineno: int | None = None,
              source: str | None = None) -> Record:
        """Parse one record (first token = keyword) into a typed, validated :class:`Record`."""
        if not tokens:
            raise KeywordError("empty input record")
        spec = self.lookup(tokens[0].text)
        if spec.parser:
            hook = resolve_hook(spec.parser)
            record = hook(spec, tokens[1:])
        else:
            record = parse_tokens(spec, tokens[1:])
        return Record(record.spec, record.values, record.subs, text, lineno, source, record.form)


def load_registry(directory: Path | None = None) -> Registry:
    """Load every ``*.toml`` in *directory* (default: the package's ``keywords/`` folder)."""
    if directory is None:
        directory = keywords_dir()
    specs = []
    for path in sorted(Path(directory).glob("*.toml")):
        with open(path, "rb") as fh:
            specs.append(KeywordSpec.from_toml(tomllib.load(fh), source=path.name))
    return Registry(specs)


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The registry of the installed keyword files (loaded once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_registry()
    return _DEFAULT


def resolve_hook(spec: str) -> Any:
    """Import ``"package.module:function"`` and return the function.

    Raises
    ------
    ImportError, AttributeError
        When the module or function does not exist.
    """
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


# ----------------------------------------------------------------------------------------------
# Generic parser
# ----------------------------------------------------------------------------------------------


def convert(arg: ArgSpec, tok: Token, where: str) -> Any:
    """Convert and range-check one token for *arg*; KeywordError names *where* and the need."""
    text = tok.text
    try:
        if arg.type == "int":
            value: Any = parse_int(text)
        elif arg.type == "float":
            value = parse_real(text)
        elif arg.type == "onoff":
            value = _ON[text.upper()]
        elif arg.type == "choice":
            value = match_name(text, {c: c for c in arg.choices}, "choice")[1]
        else:
            value = text
    except (ValueError, KeyError, LookupError, OverflowError):
        raise KeywordError(f"{where}: expected {arg.describe()}, found '{text}'") from None
    if "\0" in text:
        raise KeywordError(f"{where}: the value for <{arg.name}> contains a NUL character")
    if arg.type == "path" and not text.strip():
        raise KeywordError(f"{where}: expected {arg.describe()}, found an empty name")
    if why := arg.check(value):
        raise KeywordError(f"{where}: value {text} {why}; expected {arg.describe()}")
    return value


def _fits(arg: ArgSpec, tok: Token, subs: Mapping[str, SubSpec]) -> bool:
    """Could *tok* be a value for *arg* (used to decide whether an optional arg is present)?"""
    if tok.empty:
        return True
    if arg.literal:
        return tok.upper == arg.literal.upper()
    t = tok.text
    try:
        if arg.type == "int":
            parse_int(t)
        elif arg.type == "float":
            parse_real(t)
        elif arg.type == "onoff":
            return t.upper() in _ON
        elif arg.type == "choice":
            match_name(t, {c: c for c in arg.choices}, "choice")
        elif arg.type == "word":
            if tok.quoted:
                return True
            try:
                match_name(t, _sub_entries(subs), "subkeyword")
                return False
            except LookupError:
                return True
        return True
    except (ValueError, LookupError):
        return False


def _parse_args(args: tuple[ArgSpec, ...], tokens: list[Token], i: int, where: str,
                subs: Mapping[str, SubSpec]) -> tuple[dict[str, Any], int]:
    """Consume values for *args* from tokens[i:]; return (given values, new index)."""
    values: dict[str, Any] = {}
    for arg in args:
        if arg.type == "text" and not arg.literal:
            if i < len(tokens):
                values[arg.name] = " ".join(t.text for t in tokens[i:])
                i = len(tokens)
            elif not arg.optional:
                raise KeywordError(f"{where}: expected {arg.describe()}")
            continue
        if arg.repeat:
            got = []
            while i < len(tokens) and not tokens[i].empty and _fits(arg, tokens[i], subs):
                got.append(convert(arg, tokens[i], where))
                i += 1
            if not got and not arg.optional:
                raise KeywordError(f"{where}: expected one or more {arg.describe()}")
            if got:
                values[arg.name] = tuple(got)
            continue
        got_n = []
        for k in range(arg.count):
            if i >= len(tokens) or not _fits(arg, tokens[i], subs):
                if arg.optional and k == 0:
                    break
                found = f", found '{tokens[i].text}'" if i < len(tokens) else ""
                need = f" ({arg.count} values)" if arg.count > 1 else ""
                raise KeywordError(f"{where}: expected {arg.describe()}{need}{found}")
            tok = tokens[i]
            i += 1
            if arg.literal:
                break
            got_n.append(None if tok.empty else convert(arg, tok, where))
        if arg.literal or not got_n:
            continue
        if None in got_n and not arg.optional and arg.default is None:
            raise KeywordError(f"{where}: expected {arg.describe()}, found an empty value")
        value = got_n[0] if arg.count == 1 else tuple(got_n)
        if value is not None:
            values[arg.name] = value
    _check_relations(args, values, where)
    return values, i


def _check_relations(args: tuple[ArgSpec, ...], values: Mapping[str, Any], where: str) -> None:
    """``greater_than``/``not_less_than``: an argument ordered after another one of the group."""
    for arg in args:
        other = arg.greater_than or arg.not_less_than
        if other is None or arg.name not in values or other not in values:
            continue
        v, w = values[arg.name], values[other]
        if (v <= w) if arg.greater_than else (v < w):
            rel = "greater than" if arg.greater_than else "at least"
            raise KeywordError(f"{where}: <{arg.name}> ({v:g}) must be {rel} <{other}> ({w:g})")


def _parse_forms(forms: tuple[tuple[ArgSpec, ...], ...], tokens: list[Token], i: int, where: str,
                 subs: Mapping[str, SubSpec]) -> tuple[dict[str, Any], int, int]:
    first_error: KeywordError | None = None
    for n, form in enumerate(forms):
        try:
            values, j = _parse_args(form, tokens, i, where, subs)
        except KeywordError as err:
            first_error = first_error or err
            continue
        return values, j, n
    assert first_error is not None
    raise first_error


def _parse_subs(subs: Mapping[str, SubSpec], tokens: list[Token], i: int, where: str,
                nested: bool) -> tuple[list[SubValue], int]:
    entries = _sub_entries(subs)
    out: list[SubValue] = []
    while i < len(tokens):
        tok = tokens[i]
        if tok.empty:
            i += 1
            continue
        try:
            _, sub = match_name(tok.text, entries, "subkeyword")
        except LookupError as err:
            if nested:
                break
            expected = ", ".join(sorted(subs)) if subs else "nothing more"
            raise KeywordError(f"{where}: {err}; expected {expected}") from None
        sub_where = f"{where} {sub.name}"
        values, i, form = _parse_forms(sub.forms, tokens, i + 1, sub_where, subs)
        inner: list[SubValue] = []
        if sub.subkeywords:
            inner, i = _parse_subs(sub.subkeywords, tokens, i, sub_where, nested=True)
        out.append(SubValue(sub.name, values, tuple(inner), form))
    return out, i


def parse_tokens(spec: KeywordSpec, tokens: list[Token]) -> Record:
    """Generic parser: positional arguments, then subkeywords with their values, in any order.

    Parameters
    ----------
    spec : KeywordSpec
    tokens : list of Token
        The tokens after the keyword itself.

    Returns
    -------
    Record
        Without text/line information (the caller adds it).

    Raises
    ------
    KeywordError
        Wrong number or type of values, out-of-range value, unknown subkeyword.
    """
    first_error: KeywordError | None = None
    for form, args in enumerate(spec.forms):
        try:
            values, i = _parse_args(args, tokens, 0, spec.name, spec.subkeywords)
            if i < len(tokens) and not tokens[i].empty:
                _check_leftover(spec, args, values, tokens[i])
            subs, i = _parse_subs(spec.subkeywords, tokens, i, spec.name, nested=False)
        except KeywordError as err:
            first_error = first_error or err
            continue
        return Record(spec, values, tuple(subs), form=form)
    assert first_error is not None
    raise first_error


def _check_leftover(spec: KeywordSpec, args: tuple[ArgSpec, ...], values: Mapping[str, Any],
                    tok: Token) -> None:
    """A token left after the positional values that is no subkeyword: say what was expected."""
    try:
        match_name(tok.text, _sub_entries(spec.subkeywords), "subkeyword")
        return
    except LookupError:
        pass
    for arg in args:
        if arg.literal or arg.name in values:
            continue
        raise KeywordError(f"{spec.name}: expected {arg.describe()}, found '{tok.text}'")
    if not spec.subkeywords:
        raise KeywordError(f"{spec.name}: unexpected '{tok.text}' (syntax: {spec.syntax})")
