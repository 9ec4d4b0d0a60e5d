"""Property-based fuzzing (Hypothesis): hostile input never gives a traceback or a lost file.

What is driven, and what must hold (issue 14):

* the lexer on any text: tokens or :class:`~mosflm_py.lexer.UnterminatedQuote`, nothing else;
* every keyword's parser and state update on generated token lists (values in and out of range,
  infinities, NaN, huge whole numbers, empty fields, junk): a record or a
  :class:`~mosflm_py.errors.KeywordError`, and an accepted number is finite and inside the
  bounds declared in ``keywords/*.toml``;
* a session fed random lines (also GO): no ``Traceback`` and no ``Internal error`` in the output;
* the header and pixel readers on truncated and bit-flipped CBF/SMV/MAR/HDF5 files written by the
  simulator, and on headers whose numbers were replaced by hostile ones: a header and a frame, or
  an :class:`~mosflm_py.errors.ImageError` naming the file; an accepted header is physically
  possible;
* whole short sessions (MATRIX + PROCESS on a tiny simulated sweep, with random extra lines):
  no traceback, no internal error, and the MTZ is either the old file or a complete one.

The example budget is small and fixed in CI (the whole module runs in well under two minutes on
two cores); set ``MOSFLM_FUZZ_EXAMPLES`` (e.g. 2000) for a long run.
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mosflm_py.errors import ImageError, KeywordError, MosflmError  # noqa: E402
from mosflm_py.lexer import LineJoiner, Token, UnterminatedQuote, parse_int, parse_real  # noqa: E402
from mosflm_py.registry import ArgSpec, default_registry  # noqa: E402
from mosflm_py.setters import apply_record  # noqa: E402
from mosflm_py.state import State  # noqa: E402

EXAMPLES = int(os.environ.get("MOSFLM_FUZZ_EXAMPLES", "0"))


def budget(ci: int) -> settings:
    """Hypothesis settings: *ci* examples in CI, MOSFLM_FUZZ_EXAMPLES when set."""
    return settings(max_examples=EXAMPLES or ci, deadline=None, derandomize=not EXAMPLES,
                    suppress_health_check=list(HealthCheck), database=None)


REG = default_registry()
HOSTILE_NUMBERS = ["1E999", "-1E999", "nan", "inf", "0", "-0", "1e-9", "-1", "99999999999",
                   "2147483647", "2147483648", "-2147483649", "1D308", ".", "1.5.2", "+", "",
                   "1e-320", "0x10", "٣"]
JUNK = ["", ",", "=", "-", "&", "\\", "!", "#", "'", '"', "@", "\x00", "TO", "ALL", "ON", "OFF",
        "\t", "é", "∞"]


def number_text(kind: str) -> st.SearchStrategy[str]:
    """Text of a number (finite, infinite, NaN, huge) or something that only looks like one."""
    floats = st.floats(allow_nan=True, allow_infinity=True).map(lambda x: f"{x!r}")
    ints = st.integers(-(2**45), 2**45).map(str)
    small = st.floats(-1e4, 1e4, allow_nan=False).map(lambda x: f"{x:.6g}")
    return st.one_of(st.sampled_from(HOSTILE_NUMBERS), small, floats,
                     ints if kind == "int" else ints.map(lambda s: s + ".5"))


def value_text(arg: ArgSpec) -> st.SearchStrategy[str]:
    if arg.literal:
        return st.just(arg.literal)
    if arg.type in ("int", "float"):
        return number_text(arg.type)
    if arg.type == "choice":
        return st.one_of(st.sampled_from(arg.choices or ("X",)), st.text(max_size=6))
    if arg.type == "onoff":
        return st.sampled_from(["ON", "OFF", "YES", "NO", "MAYBE", ""])
    return st.one_of(st.text(max_size=12), st.sampled_from(["", "/", "/nonexistent/dir/x",
                                                            "a\x00b", "~nosuchuser/x"]))


def tokens_for(spec) -> st.SearchStrategy[list[Token]]:
    """Token lists shaped like input for *spec*: its values, its subkeywords and junk."""
    pieces: list[st.SearchStrategy[list[str]]] = []
    for form in spec.forms:
        pieces.append(st.tuples(*[value_text(a) for a in form]).map(list) if form
                      else st.just([]))
    for sub in spec.subkeywords.values():
        for form in sub.forms:
            vals = [value_text(a) for a in form]
            pieces.append(st.tuples(st.just(sub.name), *vals).map(list))
            for inner in sub.subkeywords.values():
                inner_vals = [value_text(a) for a in inner.forms[0]]
                pieces.append(st.tuples(st.just(sub.name), st.just("1"), st.just(inner.name),
                                        *inner_vals).map(list))
    pieces.append(st.lists(st.sampled_from(JUNK), max_size=3))
    words = st.lists(st.one_of(pieces), max_size=4).map(lambda ls: [w for p in ls for w in p])
    return words.map(lambda ws: [Token(w, False) for w in ws])


def _declared(spec, record) -> list[tuple[ArgSpec, object]]:
    """(argument spec, accepted value) pairs of a parsed record, nested subkeywords included."""
    out = []
    for a in spec.forms[record.form]:
        if a.name in record.values:
            out.append((a, record.values[a.name]))

    def walk(subs, sub_specs):
        for sv in subs:
            sspec = sub_specs[sv.name]
            for a in sspec.forms[sv.form]:
                if a.name in sv.values:
                    out.append((a, sv.values[a.name]))
            walk(sv.subs, sspec.subkeywords)

    walk(record.subs, spec.subkeywords)
    return out


# ---------------------------------------------------------------------------------------------
# lexer and parsers
# ---------------------------------------------------------------------------------------------


@budget(300)
@given(st.lists(st.text(max_size=60), max_size=5))
def test_lexer_never_raises_anything_else(lines):
    joiner = LineJoiner()
    for line in lines:
        try:
            out = joiner.feed(line)
        except UnterminatedQuote:
            joiner.reset()
            continue
        if out is not None:
            tokens, text = out
            assert all(isinstance(t, Token) for t in tokens)
            assert isinstance(text, str)


@budget(300)
@given(st.one_of(st.text(max_size=30), number_text("float"), number_text("int")))
def test_numbers_parse_or_raise_value_error(text):
    for conv in (parse_real, parse_int):
        try:
            value = conv(text)
        except ValueError:
            continue
        assert isinstance(value, (int, float))
        if conv is parse_int:
            assert isinstance(value, int)


@pytest.mark.parametrize("name", sorted(REG.specs))
def test_every_keyword_parser_accepts_or_explains(name):
    spec = REG.specs[name]

    @budget(25)
    @given(tokens_for(spec))
    def check(tokens):
        try:
            record = REG.parse([Token(name), *tokens], name)
        except KeywordError as err:
            assert str(err).strip(), "an error needs a message"
            return
        for arg, value in _declared(spec, record):
            for v in value if isinstance(value, tuple) else (value,):
                if v is None or arg.type not in ("int", "float"):
                    continue
                assert math.isfinite(v), (arg.name, v)
                assert arg.check(v) is None, (arg.name, v, arg.range_text())
        if spec.kind != "control":
            try:
                apply_record(State(), record)
            except MosflmError:
                pass

    check()


SESSION_KEYWORDS = sorted(n for n, s in REG.specs.items()
                          if n not in ("WAIT", "EXIT", "END", "XGUI"))


@st.composite
def session_lines(draw) -> list[str]:
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        name = draw(st.sampled_from(SESSION_KEYWORDS))
        toks = draw(tokens_for(REG.specs[name]))
        lines.append(" ".join([name, *(t.text if t.text.strip() and "," not in t.text
                                          else (t.text or ",") for t in toks)]))
        if draw(st.booleans()):
            lines.append("GO")
    return lines


@budget(60)
@given(session_lines())
def test_session_lines_never_crash(tmp_path_factory, lines):
    from mosflm_py.session import Session

    folder = tmp_path_factory.mktemp("fuzz_session")
    old = os.getcwd()
    os.chdir(folder)
    try:
        out = io.StringIO()
        s = Session(out=out)
        s.run_lines(lines)
        s.finish()
    finally:
        os.chdir(old)
    text = out.getvalue()
    assert "Traceback" not in text, text
    assert "Internal error" not in text, text


# ---------------------------------------------------------------------------------------------
# image files
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_files(tmp_path_factory) -> dict[str, list[Path]]:
    """One small simulated sweep per format (CBF, SMV, mar345, HDF5); the real mar345 example
    joins the simulated ones when ../shared is there."""
    import bz2

    from conftest import REAL_DATA

    from mosflm_py.simulate import default_params, simulate_dataset

    folder = tmp_path_factory.mktemp("fuzz_images")
    p = default_params(nslow=128, nfast=128, beam_x=11.0, beam_y=10.5, distance=60.0,
                       cell=(41.3, 47.9, 58.2, 90.0, 90.0, 90.0), n_images=2, resolution=3.0,
                       seed=3)
    files: dict[str, list[Path]] = {}
    for fmt in ("cbf", "smv", "mar345", "hdf5"):
        simulate_dataset(p, folder / fmt, fmt=fmt, name="f")
        files[fmt] = sorted(x for x in (folder / fmt).iterdir() if x.name.startswith("f_"))
    # a hot pixel above 16 bits: the mar345 overflow records are fuzzed too
    from mosflm_py.imageio.formats import read_frame
    from mosflm_py.simulate.writers import write_mar345

    hot = read_frame(str(files["mar345"][0])).astype(np.int32)
    hot[40, 50] = 300000
    write_mar345(files["mar345"][0], hot, p, 1)
    mar_bz2 = REAL_DATA / "format_singles_fabio" / "example.mar2300.bz2"
    if mar_bz2.is_file():
        mar = folder / "example.mar2300"
        mar.write_bytes(bz2.decompress(mar_bz2.read_bytes()))
        files["mar345"].append(mar)
    return files


def _mutate(raw: bytes, kind: str, where: float, value: int, number: str) -> bytes:
    pos = int(where * max(len(raw) - 1, 0))
    if kind == "truncate":
        return raw[:pos]
    if kind == "flip":
        b = bytearray(raw)
        if b:
            b[pos] ^= (value % 255) + 1
        return bytes(b)
    if kind == "zero_tail":
        return raw[:pos] + bytes(len(raw) - pos)
    # replace one number in the text header by a hostile one
    head = raw[:4096]
    numbers = list(re.finditer(rb"-?\d+\.?\d*(?:[eE][-+]?\d+)?", head))
    if not numbers:
        return raw
    m = numbers[value % len(numbers)]
    return raw[:m.start()] + number.encode() + raw[m.end():]


MUTATIONS = st.tuples(st.sampled_from(["truncate", "flip", "flip", "zero_tail", "number"]),
                      st.floats(0, 1), st.integers(0, 10**6), st.sampled_from(HOSTILE_NUMBERS))


@pytest.mark.parametrize("fmt", ["cbf", "smv", "mar345", "hdf5"])
def test_header_readers_on_corrupt_files(image_files, tmp_path_factory, fmt):
    from mosflm_py.imageio.formats import read_frame, read_header
    from mosflm_py.imageio.sanity import HEADER_CHECKS, _arg

    originals = image_files[fmt]
    work = tmp_path_factory.mktemp(f"mut_{fmt}")

    @budget(25)
    @given(st.integers(0, len(originals) - 1), MUTATIONS)
    def check(which, mutation):
        src = originals[which]
        for f in originals:  # a master needs its data file beside it
            shutil.copy(f, work / f.name)
        target = work / src.name
        target.write_bytes(_mutate(src.read_bytes(), *mutation))
        frame = 1 if fmt == "hdf5" else None
        path = str(work / originals[0].name) if fmt == "hdf5" else str(target)
        try:
            hdr = read_header(path, frame)
            data = read_frame(path, frame)
        except ImageError as err:
            assert str(err).strip()
            return
        assert data.ndim == 2 and data.size > 0
        for attr, keyword, sub, argname, _ in HEADER_CHECKS:
            value = getattr(hdr, attr)
            if value is not None:
                assert _arg(keyword, sub, argname).check(value) is None, (attr, value)

    check()


# ---------------------------------------------------------------------------------------------
# whole sessions
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    from mosflm_py.simulate import default_params, simulate_dataset

    folder = tmp_path_factory.mktemp("fuzz_sweep")
    p = default_params(nslow=192, nfast=192, beam_x=16.3, beam_y=15.1, distance=60.0,
                       cell=(41.3, 47.9, 58.2, 90.0, 90.0, 90.0), n_images=2, resolution=2.5,
                       seed=5)
    simulate_dataset(p, folder, fmt="cbf", name="s")
    return folder


EXTRA_LINES = ["DISTANCE 1e-9", "TWOTHETA 180", "SIZE 1 1", "MOSAIC 1E999", "GAIN 1E999",
               "DIVERGENCE ,,,,", "NULLPIX 1E999", "PROCESS ,,,,", "SYMMETRY 230", "SYMMETRY 19",
               "HKLOUT /nonexistent/x.mtz", "SUMMARY .", "RASTER 99999 99999 99999 1 1",
               "PROCESS 1 2 ADD 2147483646", "RESOLUTION 0.01", "RESOLUTION 3 2",
               "BEAM 1e9 1e9", "WAVELENGTH 0", "PIXEL 0", "IMAGE 1 PHI 10 TO 0",
               "DISTANCE 60 -", "NPROC 1E999", "CELL 41.3 47.9 58.2 90 90 90", "MOSAIC 0.3",
               # accepted but extreme values: where numerical failures hide (the first three
               # leave nothing to integrate: PROCESS must fail and keep the old MTZ)
               "MOSAIC 10", "NULLPIX 1000", "RESOLUTION 50",
               "MOSAIC 0", "DIVERGENCE 2 2", "DISPERSION 0.2", "RASTER 71 71 71 35 35",
               "SEPARATION 100 100", "RESOLUTION 0.06", "DISTANCE 20000", "WAVELENGTH 0.01",
               "WAVELENGTH 10", "PIXEL 10", "GAIN 1000", "BEAM 0 0", "MAXWIDTH 1",
               "PROFILE TOLERANCE 1 1", "POSTREF FIX ALL", "POSTREF SEGMENT 1",
               "PROCESS 1 2 BLOCK 1", "REFINEMENT RESIDUAL 0", "REFINEMENT RESIDUAL 0.01"]


@budget(6)
@given(st.lists(st.sampled_from(EXTRA_LINES), max_size=3), st.booleans())
def test_whole_sessions_keep_old_or_write_complete_mtz(sweep, tmp_path_factory, extra, before):
    import gemmi
    from conftest import run_script

    folder = tmp_path_factory.mktemp("fuzz_run")
    for f in sweep.iterdir():
        os.symlink(f, folder / f.name)
    (folder / "out.mtz").write_bytes(b"old file")
    base = ['TEMPLATE "s_#####.cbf"', "MATRIX truth.mat", "SYMMETRY P212121", "MOSAIC 0.3",
            "HKLOUT out.mtz", "NPROC 1"]
    lines = (extra + base) if before else (base + extra)
    rc, log = run_script("\n".join([*lines, "PROCESS 1 2", "GO", "EXIT"]) + "\n", folder)
    assert "Traceback" not in log and "Internal error" not in log, log
    data = (folder / "out.mtz").read_bytes()
    if data != b"old file":
        mtz = gemmi.read_mtz_file(str(folder / "out.mtz"))
        assert mtz.nreflections > 0
    if any(x in extra for x in ("DISTANCE 1e-9", "MOSAIC 1E999", "SIZE 1 1", "PROCESS ,,,,")):
        assert rc != 0, log
    assert not list(folder.glob(".*.tmp")), "temporary files left"
