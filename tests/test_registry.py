"""Keyword registry: documented keywords present, CCP4 matching, generic parser, spec sanity."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mosflm_py.errors import KeywordError
from mosflm_py.lexer import tokenize
from mosflm_py.registry import default_registry, resolve_hook
from mosflm_py.state import State, has_setting

REG = default_registry()
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "mosflm_keywords.md"

# Every keyword of mosflm_keywords.md section 2 (tables 2.1-2.10, the GUI ones and the
# section 3 examples), plus the mosflm-py extensions NPROC and SHOW.
DOCUMENTED = """
TEMPLATE DIRECTORY EXTENSION IDENT IMAGE HEAD HEADER HKLOUT MTZDIRECTORY GENFILE MATRIX NEWMAT
SPOTOD COORDS SUMMARY TITLE PNAME XNAME DNAME HARVEST UCWD SITE
DETECTOR SCANNER BEAM DISTANCE TWOTHETA WAVELENGTH PIXEL SIZE LIMITS BACKSTOP NULLPIX OVERLOAD
GAIN ADCOFFSET BIAS NONLINEARITY DISTORTION CAMCON FIDUCIAL SEPARATION RASTER POLARISATION
SYNCHROTRON DIVERGENCE DISPERSION
CELL SYMMETRY MISSETS MISSET MOSAIC MOSAICITY RESOLUTION RESOL LATTICE
FINDSPOTS PICK AUTOINDEX VALIDATE TARGET SUBMAT REFINEMENT POSTREF
PROCESS GO RUN MAXWIDTH CHUNK PROFILE BACKGROUND REJECTION REJECT ACCEPT INCLUDE NOPRINT
STRATEGY TESTGEN BEST
XGUI PREDICT_SPOTS CREATE_GREY_IMAGE STATS WAIT FORCEREAD ACTIVE NOACTIVE NOREFINE MERGE AUTOMATCH
FITCIRCLE LOAD RETURN CLOSE HELP EXIT END NPROC SHOW STATUS
""".split()


@pytest.mark.parametrize("word", DOCUMENTED)
def test_every_documented_keyword_is_accepted(word):
    spec = REG.lookup(word)
    assert word == spec.name or word in spec.synonyms


def test_reference_tables_covered():
    """Each first-column keyword of the reference's section 2.1-2.3 tables resolves."""
    if not REFERENCE.is_file():
        pytest.skip("reference document not available")
    text = REFERENCE.read_text()
    section2 = text[text.index("## 2. Keywords by topic"):text.index("### 2.4")]
    words = set()
    for row in re.findall(r"^\| ([A-Z][A-Z_ ,/()]*?) \|", section2, flags=re.M):
        words.update(w for w in re.split(r"[ ,/()]+", row) if w.isupper() and len(w) > 2)
    words -= {"SWUNGOUT"}
    assert len(words) > 45
    for w in sorted(words):
        REG.lookup(w)


@pytest.mark.parametrize(
    ("word", "name"),
    [
        ("DIST", "DISTANCE"), ("dist", "DISTANCE"), ("DISTA", "DISTANCE"),
        ("DISTANCES", "DISTANCE"), ("DISTO", "DISTORTION"), ("DISTORT", "DISTORTION"),
        ("MOSAICITY", "MOSAIC"), ("MOSA", "MOSAIC"), ("RESOL", "RESOLUTION"),
        ("RESO", "RESOLUTION"), ("RUN", "GO"), ("END", "EXIT"), ("SCANNER", "DETECTOR"),
        ("SCAN", "DETECTOR"), ("HEAD", "HEADER"), ("MISSET", "MISSETS"), ("MISS", "MISSETS"),
        ("AUTO", "AUTOINDEX"), ("autoindex", "AUTOINDEX"), ("AUTOM", "AUTOMATCH"),
        ("TEMP", "TEMPLATE"), ("SYMM", "SYMMETRY"), ("SEPA", "SEPARATION"),
        ("POLARIZATION", "POLARISATION"), ("REJECT", "REJECTION"), ("BACKS", "BACKSTOP"),
        ("BACKG", "BACKGROUND"), ("GO", "GO"), ("POSTREFINEMENT", "POSTREF"),
        ("WAVE", "WAVELENGTH"), ("WAIT", "WAIT"), ("REFINE", "REFINEMENT"),
    ],
)
def test_abbreviations(word, name):
    assert REG.lookup(word).name == name


@pytest.mark.parametrize("word", ["DIS", "XYZZY", "GOO", "BACK", "STAT"])
def test_unknown_or_ambiguous(word):
    with pytest.raises(KeywordError) as err:
        REG.lookup(word)
    assert word in str(err.value)
    assert ("ambiguous" in str(err.value)) == (word in ("BACK", "STAT"))


def parse(line):
    return REG.parse(tokenize(line), line)


def test_generic_parser_positional_and_subkeywords():
    r = parse("AUTOINDEX DPS REFINE IMAGE 1 PHI 0 TO 1 IMAGE 30 THRESH 10 MAXCELL 300")
    assert r.keyword == "AUTOINDEX" and r.has("DPS") and r.has("REFINE")
    images = r.all("IMAGE")
    assert [i.get("n") for i in images] == [1, 30]
    assert images[0].sub("PHI").values == {"start": 0.0, "end": 1.0}
    assert images[1].sub("PHI") is None
    assert r.sub("THRESHOLD").get("value") == 10.0
    assert r.sub("MAXCELL").get("value") == 300.0
    assert r.handler == "mosflm_py.actions.autoindex:run"


def test_process_forms():
    r = parse("PROCESS 1 TO 60 BLOCK 5 ADD 100")
    assert (r.get("first"), r.get("last")) == (1, 60)
    assert r.sub("BLOCK").get("n") == 5
    assert parse("PROCESS 1 60").get("last") == 60


def test_action_subkeyword_makes_record_an_action():
    assert parse("MOSAIC ESTIMATE").is_action
    assert not parse("MOSAIC 0.4").is_action
    assert parse("MOSAIC 0.4").get("eta") == 0.4
    assert parse("FINDSPOTS FIND 1").handler == "mosflm_py.actions.findspots:run"
    assert not parse("FINDSPOTS THRESHOLD 3").is_action


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("DISTANCE", "expected <d> (a number between 1 and 20000) (mm)"),
        ("DISTANCE abc", "found 'abc'"),
        ("DISTANCE -1", "out of range"),
        ("BEAM 1", "expected <y>"),
        ("BEAM 1 2 3", "expected SWUNGOUT"),
        ("SIZE 10.5 3", "a whole number"),
        ("AUTOINDEX IMAGE x", "AUTOINDEX IMAGE: expected <n>"),
        ("AUTOINDEX BOGUS", "unknown subkeyword BOGUS"),
        ("AUTOINDEX HKLDEV 0.9", "between 0 and 0.5"),
        ("POLARISATION SYNCHROTRON 1.5", "between 0 and 1"),
        ("RASTER 17 19 13", "expected <nrx>"),
        ("HARVEST MAYBE", "ON or OFF"),
        ("MISSETS 1 2", "3 values"),
    ],
)
def test_bad_values_name_what_was_expected(line, fragment):
    with pytest.raises(KeywordError) as err:
        parse(line)
    assert fragment in str(err.value)


def test_null_field_takes_default():
    r = parse("DISPERSION 0.002,,")
    assert r.get("dispersion") == 0.002 and "delcor" not in r.values


def test_every_target_exists_in_state():
    state = State()
    targets = []

    def walk_subs(subs):
        for s in subs.values():
            if s.target:
                targets.append(s.target)
            for form in s.forms:
                targets.extend(a.target for a in form if a.target)
            walk_subs(s.subkeywords)

    for spec in REG:
        if spec.target:
            targets.append(spec.target)
        for form in spec.forms:
            targets.extend(a.target for a in form if a.target)
        walk_subs(spec.subkeywords)
    assert len(targets) > 150
    missing = [t for t in targets if not has_setting(state, t)]
    assert missing == []


HOOK = re.compile(r"^mosflm_py(\.[a-z_][a-z0-9_]*)+:[a-z_][a-z0-9_]*$")


def test_handlers_and_hooks_are_well_formed():
    hooks = []
    for spec in REG:
        if spec.kind in ("action", "control"):
            assert spec.handler, spec.name
        for h in (spec.handler, spec.parser, spec.apply, spec.effect):
            if h:
                hooks.append(h)
        hooks.extend(s.handler for s in spec.subkeywords.values() if s.handler)
        assert spec.syntax.upper().startswith(spec.name), spec.name
        assert spec.summary.strip() and spec.topic
    for h in hooks:
        assert HOOK.match(h), h
    # hooks that live in this part of the package must import
    local = [h for h in hooks if h.split(":")[0] in (
        "mosflm_py.setters", "mosflm_py.actions.control", "mosflm_py.actions.images")]
    assert len(local) > 30
    for h in local:
        assert callable(resolve_hook(h)), h


def test_names_and_synonyms_unique_and_upper():
    seen = set()
    for spec in REG:
        for alias in (spec.name, *spec.synonyms):
            assert alias == alias.upper() and alias not in seen
            seen.add(alias)
