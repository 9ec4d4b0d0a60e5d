"""Session: transcripts, settings, queued jobs and the handler protocol, bad input, images."""

from __future__ import annotations

import io
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mosflm_py.errors import ImageError, MosflmError
from mosflm_py.lexer import tokenize
from mosflm_py.registry import default_registry, load_registry
from mosflm_py.session import Outcome, Session


def run(script: str, **kw) -> tuple[Session, str]:
    out = io.StringIO()
    s = Session(out=out, **kw)
    s.run_lines(script.splitlines())
    s.finish()
    return s, out.getvalue()


# ------------------------------------------------------------------------ transcripts
TRANSCRIPT_IN = """\
! parameters from autoindex run
TEMPLATE "lyso_1_#####.cbf.gz"
beam 108.7, 102.0
dist 169.65
DISTORTION TILT -18 TWIST -27 -
   YSCALE 0.9995
bogus 1
SEPARATION 0.51 0.71 CLOSE
EXIT
DISTANCE 1
"""

TRANSCRIPT_OUT = """\
 ===> ! parameters from autoindex run
 ===> TEMPLATE "lyso_1_#####.cbf.gz"
 ===> beam 108.7, 102.0
 ===> dist 169.65
 ===> DISTORTION TILT -18 TWIST -27 -
 ===>    YSCALE 0.9995
 ===> bogus 1
 *** Error in line 7 (bogus 1):
     unknown keyword bogus; type HELP for the list of keywords
 ===> SEPARATION 0.51 0.71 CLOSE
 ===> EXIT
 Normal termination of mosflm-py.
 mosflm-py: 1 input error(s) or failure(s); see the *** messages above.
"""


def test_batch_transcript():
    s, text = run(TRANSCRIPT_IN)
    assert text == TRANSCRIPT_OUT
    st = s.state
    assert st.detector.beam == (108.7, 102.0)
    assert st.detector.distance == 169.65
    d = st.detector.distortion
    assert (d.tilt, d.twist, d.yscale) == (-18.0, -27.0, 0.9995)
    assert st.integration.separation == (0.51, 0.71) and st.integration.separation_close
    assert st.images.template == "lyso_1_#####.cbf.gz"
    assert s.finish() == 1  # an error makes a piped run exit non-zero


def test_xia2_can_rebuild_the_commands_from_the_log():
    """xia2's get_mosflm_commands() takes lines with '===>' or 'MOSFLM =>': no duplicates."""
    _, text = run("beam 1 2\nGO\n")
    cmds = [ln.replace("===>", "").strip() for ln in text.splitlines() if "===>" in ln]
    cmds += [ln.replace("MOSFLM =>", "").strip() for ln in text.splitlines() if "MOSFLM =>" in ln]
    assert cmds == ["beam 1 2", "GO"]


def test_interactive_logs_typed_lines_after_the_prompt():
    out, log = io.StringIO(), io.StringIO()
    s = Session(out=out, interactive=True, log=log)
    s.execute("DISTANCE 100")
    s.execute("DISTANCE x")
    assert " ===> " not in out.getvalue()
    assert log.getvalue().startswith("MOSFLM => DISTANCE 100\nMOSFLM => DISTANCE x\n")
    assert " *** DISTANCE: expected <d>" in out.getvalue()  # no line number when typed
    assert s.failures == 1 and s.state.detector.distance == 100.0


def test_exit_end_and_eof():
    s = Session(out=io.StringIO())
    assert s.execute("dist 100") is Outcome.CONTINUE
    assert s.execute("end") is Outcome.EXIT
    s, _ = run("DISTANCE 100\n")  # EOF without EXIT is fine
    assert s.failures == 0 and s.finish() == 0


def test_settings_take_effect_immediately_and_show_diff():
    s, text = run("RESOLUTION 50 2.0\nRESOLUTION EXCLUDE ICE\nRESOL EXCLUDE 3.9 3.6\n"
                  "MOSAICITY 0.35\nSYMM 19\nCELL 78 78 37\nSHOW\n")
    r = s.state.resolution
    assert (r.dmin, r.dmax, r.exclude_ice, r.exclude) == (2.0, 50.0, True, ((3.9, 3.6),))
    assert s.state.crystal.mosaic == 0.35
    assert s.state.crystal.symmetry == "P 21 21 21"
    assert s.state.crystal.cell == (78.0, 78.0, 37.0, 90.0, 90.0, 90.0)
    assert "crystal.mosaic" in text and "0.35" in text and "(default (not set))" in text
    assert "profile.tolerance" not in text  # unchanged settings are not shown
    s, _ = run("RESOLUTION EXCLUDE NONE\n")
    assert s.state.resolution.exclude == ()


def test_user_set_records_keyword_values():
    s, _ = run("DISTANCE 100\n")
    assert s.state.is_user_set("detector.distance")
    assert s.state.when_given("detector.distance") == s.state.clock == 1
    s.execute("DISTANCE 120")
    assert s.state.when_given("detector.distance") == 2 and s.state.detector.distance == 120
    assert s.state.when_given("crystal.mosaic") is None


@pytest.mark.parametrize(
    ("line", "check"),
    [
        ("POSTREF FIX ALL", lambda st: st.postref.fix_all and "A" in st.postref.fixed),
        ("POSTREF SEGMENT 3 MAXRESID 5.0", lambda st: (st.postref.segments,
                                                       st.postref.maxresidual) == (3, 5.0)),
        ("POSTREF MULTI SEGMENTS 1", lambda st: st.postref.multi and st.postref.segments == 1),
        ("REFINEMENT RESIDUAL 15 FIX YSCALE", lambda st: st.refinement.residual == 15.0
         and "YSCALE" in st.refinement.fixed),
        ("REFINE INCLUDE PARTIALS 0.4", lambda st: st.refinement.include_partials
         and st.refinement.partial_fraction == 0.4),
        ("PROFILE TOLERANCE 0.03 0.05 NOOPT ATALL", lambda st: st.profile.tolerance == (0.03, 0.05)
         and not st.profile.optimise and not st.profile.optimise_atall),
        ("LIMITS XMAX 200 RMIN 5 EXCLUDE 10 0 20 30", lambda st: st.detector.limits.xmax == 200.0
         and st.detector.limits.exclude == ((0.0, 10.0, 20.0, 30.0),)),
        ("DETECTOR PILATUS REVERSEPHI OMEGA 90", lambda st: (st.detector.type,
                                                            st.detector.reverse_phi,
                                                            st.detector.omega)
         == ("PILATUS", True, 90.0)),
        ("SCANNER ADSC", lambda st: st.detector.type == "ADSC"),
        ("BEAM SWUNGOUT 100 110", lambda st: st.detector.beam == (100.0, 110.0)
         and st.detector.beam_swungout),
        ("POLARISATION PINHOLE", lambda st: st.beam.polarisation == 0.0),
        ("SYNCH POLAR 0.9", lambda st: st.beam.polarisation == 0.9),
        ("DIVERGENCE 0.1", lambda st: st.beam.divergence == (0.1, 0.1)),
        ("FINDSPOTS THRESHOLD 3 MINPIX 4 SPLIT 1.5 BOX 20", lambda st: (
            st.spotfind.threshold, st.spotfind.minpix, st.spotfind.split, st.spotfind.box)
         == (3.0, 4, (1.5, 1.5), (20, 20))),
        ("REJECT PKRATIO 4.0 ACCEPT", lambda st: st.rejection.pkratio == 4.0
         and st.rejection.pkratio_accept),
        ("NPROC 3", lambda st: st.integration.nproc == 3),
        ("HKLOUT x.mtz MULTIPLE", lambda st: st.files.hklout == "x.mtz"
         and st.files.hklout_multiple),
        ("TITLE my   title here", lambda st: st.names.title == "my title here"),
        ("MISSET 0.1 -0.2 0.3", lambda st: st.crystal.missets == (0.1, -0.2, 0.3)),
        ("HARVEST", lambda st: st.files.harvest),
        ("NOREFINE", lambda st: not st.refinement.enabled),
        ("TEMPLATE /data/x/lyso_###.img", lambda st: st.images.template == "lyso_###.img"
         and st.images.directories == ("/data/x",)),
        ("IMAGE 5 PHI 10 TO 11", lambda st: st.images.phi_overrides == ((5, 10.0, 11.0),)),
    ],
)
def test_setting_semantics(line, check, monkeypatch):
    from mosflm_py.actions import images

    monkeypatch.setattr(images, "on_image", lambda session, record: None)
    s = Session(out=io.StringIO())
    s.execute(line)
    assert s.failures == 0
    assert check(s.state)


# ------------------------------------------------------------------------ jobs and handlers
@pytest.fixture
def fake_actions(monkeypatch):
    """Fake action modules recording the calls (autoindex succeeds or fails on request)."""
    calls: list = []
    auto = types.ModuleType("mosflm_py.actions.autoindex")
    mosaic = types.ModuleType("mosflm_py.actions.mosaic")

    def auto_run(session, job):
        calls.append(("AUTOINDEX", [i.get("n") for r in job.records for i in r.all("IMAGE")],
                      session.state.files.newmat))
        if getattr(session, "fake_fail", False):
            raise MosflmError("indexing failed: too few spots")
        session.results.mosaic = 0.25  # a result the next job reads

    def estimate(session, job):
        calls.append(("MOSAIC", job.keyword, session.results.mosaic))
        if getattr(session, "fake_crash", False):
            raise ZeroDivisionError("boom")

    auto.run, mosaic.estimate = auto_run, estimate
    monkeypatch.setitem(sys.modules, "mosflm_py.actions.autoindex", auto)
    monkeypatch.setitem(sys.modules, "mosflm_py.actions.mosaic", mosaic)
    return calls


def test_autoindex_lines_accumulate_and_go_runs_jobs_in_order(fake_actions):
    s, text = run("NEWMAT index.mat\nAUTOINDEX DPS REFINE IMAGE 1\n"
                  "autoindex dps refine image 180\nMOSAIC ESTIMATE\nGO\nGO\n")
    assert fake_actions == [("AUTOINDEX", [1, 180], "index.mat"),
                            ("MOSAIC", "MOSAIC ESTIMATE", 0.25)]
    assert "GO/RUN has nothing to do" in text
    assert s.failures == 0 and not s.pending


def test_failed_job_abandons_the_rest(fake_actions):
    out = io.StringIO()
    s = Session(out=out)
    s.fake_fail = True
    s.run_lines(["AUTOINDEX IMAGE 1", "MOSAIC ESTIMATE", "RUN"])
    assert [c[0] for c in fake_actions] == ["AUTOINDEX"]
    text = out.getvalue()
    assert " *** indexing failed: too few spots" in text
    assert "MOSAIC ESTIMATE was not run" in text
    assert s.failures == 1


def test_internal_error_is_one_message(fake_actions):
    s = Session(out=(out := io.StringIO()))
    s.fake_crash = True
    s.run_lines(["MOSAIC ESTIMATE", "GO", "DISTANCE 100"])
    text = out.getvalue()
    assert "Traceback" not in text
    assert " *** Internal error in mosflm-py while running MOSAIC ESTIMATE " \
           "(ZeroDivisionError: boom)." in text
    assert "report this bug" in text
    assert s.failures == 1 and s.state.detector.distance == 100.0  # the session goes on


def test_unimplemented_action_is_a_clear_error(tmp_path):
    (tmp_path / "go.toml").write_text(
        'name = "GO"\nkind = "control"\nsyntax = "GO"\nsummary = "go"\n'
        'handler = "mosflm_py.actions.control:go"\n')
    (tmp_path / "frob.toml").write_text(
        'name = "FROBNICATE"\nkind = "action"\nsyntax = "FROBNICATE"\nsummary = "x"\n'
        'implemented = false\nhandler = "mosflm_py.actions.no_such_module_xyz:run"\n')
    (tmp_path / "twiddle.toml").write_text(
        'name = "TWIDDLE"\nkind = "action"\nsyntax = "TWIDDLE"\nsummary = "x"\n'
        'handler = "mosflm_py.actions.control:no_such_function"\n')
    out = io.StringIO()
    s = Session(out=out, registry=load_registry(tmp_path))
    s.run_lines(["FROB", "GO", "TWIDDLE", "GO"])
    text = out.getvalue()
    assert " *** FROBNICATE is not implemented yet in mosflm-py" in text
    # a declared-implemented handler that does not exist is a bug, reported as one
    assert "TWIDDLE is not implemented" not in text
    assert "Internal error in mosflm-py while running TWIDDLE" in text
    assert s.failures == 2


def test_actions_never_run_warn_at_the_end(fake_actions):
    s, text = run("AUTOINDEX IMAGE 1\n")
    assert "AUTOINDEX was given but never run" in text and fake_actions == []


# ------------------------------------------------------------------------ bad input, includes
def test_include_file_and_unreadable_include(tmp_path):
    inc = tmp_path / "startup.com"
    inc.write_text("DISTANCE 150\nbogus\nBEAM 1 2\n")
    s, text = run(f"@{inc}\n@{tmp_path / 'missing.com'}\nWAVELENGTH 1.0\n")
    text = " ".join(text.split())
    assert s.state.detector.distance == 150.0 and s.state.detector.beam == (1.0, 2.0)
    assert f"Error in line 2 of {inc} (bogus)" in text
    assert f"Error in line 2 (@{tmp_path / 'missing.com'}):" in text
    assert "cannot read the command file" in text and "No such file" in text
    assert s.failures == 2 and s.state.beam.wavelength == 1.0


def test_unterminated_quote_and_failed_line_changes_nothing():
    s, text = run('DIRECTORY "/abc\nDISTANCE 100\nRASTER 1 2\n')
    assert "is never closed" in text and "Error in line 1" in text
    assert s.state.images.directories == () and s.state.detector.distance == 100.0
    assert s.state.integration.raster is None and s.failures == 2


# ------------------------------------------------------------------------ usage contract
CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "reference" / "usage_contract.md"

SCRIPTS = [
    'TEMPLATE "lyso_1_#####.cbf.gz"\nDIRECTORY "/data/lyso/images"\nIMAGE 1\nHEADER\nEXIT',
    'TEMPLATE "mono_1_###.img.gz"\nDIRECTORY "/data/mono"\nNEWMAT index.mat\n'
    "AUTOINDEX DPS REFINE IMAGE 1 IMAGE 30\nMOSAIC ESTIMATE\nGO\nEXIT",
    'TEMPLATE "lyso_1_#####.cbf.gz"\nDIRECTORY "/data/lyso/images"\nNEWMAT refined.mat\n'
    "AUTOINDEX DPS REFINE IMAGE 1 IMAGE 40\nMOSAIC ESTIMATE\nGO\nPOSTREF SEGMENT 2\nPROCESS 1 3\n"
    "GO\nPROCESS 38 40\nGO\nEXIT",
    'TEMPLATE "ortho_1_#####.cbf.gz"\nDIRECTORY "/data/ortho/images"\nMATRIX refined.mat\n'
    "SYMMETRY P212121\nMOSAIC 0.2\nHKLOUT ortho.mtz\nPNAME proj\nDNAME native\nPROCESS 1 60\n"
    "GO\nEXIT",
    # xia2 / MOSFLM 6.2.6 style and CrystFEL's sequence
    "harvest on\npname TS03\nxname 12287\ndname INFL\nucwd\nbeam 108.97 105.30\n"
    "distance 169.65\nsymmetry 75\nmosaic 0.49\nraster 17 19 13 6 6\ndistortion tilt -18\n"
    "distortion twist -27\ndistortion yscale 0.9995\nseparation 0.51 0.71\nseparation close\n"
    "postref fix all\npostref multi segments 1\nprocess 1 60\nrun\n",
    "DETECTOR ROTATION HORIZONTAL ANTICLOCK\nSYMM P1\nDISTANCE 67.8\nBEAM 0.0 0.0\n"
    "WAVELENGTH 1.3\nNEWMAT f.mat\nIMAGE f.img phi 0 0\n"
    "AUTOINDEX DPS FILE f.spt IMAGE 1 MAXCELL 1000 REFINE\nGO\nexit",
    "AUTOINDEX DPS REFINE IMAGE 1 PHI 0 TO 1 IMAGE 2 PHI 1 TO 2\nRESOLUTION 2.0\n"
    "FINDSPOTS FIND 1\nSTRATEGY AUTO ANOMALOUS\nTESTGEN START 0 END 90 ANGLE 1\nPREDICT_SPOTS\n"
    "CREATE_GREY_IMAGE TYPE jpg 0 100\nXGUI ON\nWAIT 0\nGO\n",
]


def contract_scripts():
    scripts = list(SCRIPTS)
    if CONTRACT.is_file():
        text = CONTRACT.read_text()
        scripts += [b.strip() for b in text.split("```")[1::2]]
    return scripts


@pytest.mark.parametrize("script", contract_scripts(), ids=lambda s: s.split("\n")[0][:30])
def test_usage_contract_scripts_parse_completely(script):
    reg = default_registry()
    for line in script.splitlines():
        toks = tokenize(line)
        if toks:
            reg.parse(toks, line)  # raises KeywordError on any parse problem


# ------------------------------------------------------------------------ images (fake library)
@dataclass(frozen=True)
class FakeHeader:
    path: str
    nslow: int = 100
    nfast: int = 120
    pixel_slow: float | None = 0.1
    pixel_fast: float | None = 0.1
    wavelength: float | None = 0.9795
    distance: float | None = 170.0
    beam_x: float | None = 5.0
    beam_y: float | None = 6.0
    phi_start: float | None = 0.0
    phi_end: float | None = 1.0
    two_theta: float | None = 0.0
    gain: float | None = None
    overload: float | None = 65535.0
    nullpix: float | None = None
    detector_omega: float | None = None
    reverse_phi: bool = False
    detector_type: str = "ADSC"
    warnings: tuple = ()

    def describe(self):
        return [f" Image file: {self.path}", f" distance {self.distance}"]


@dataclass
class FakeSeries:
    template: str
    directory: str
    numbers: list = field(default_factory=lambda: [1, 2, 3])
    wavelength: float = 0.9795
    warnings: list = field(default_factory=list)

    @classmethod
    def from_template(cls, template, directories, extension=None):
        if "missing" in template:
            raise ImageError(f"no images match template {template} in directory "
                             f"{', '.join(directories)}")
        return cls(template, directories[0])

    @classmethod
    def from_filename(cls, path):
        return cls("img_###.cbf", str(Path(path).parent))

    def path(self, n):
        return f"{self.directory}/img_{n:03d}.cbf"

    def header(self, n):
        if n not in self.numbers:
            raise ImageError(f"image {n} is not in the series")
        return FakeHeader(self.path(n), phi_start=n - 1.0, phi_end=float(n),
                          wavelength=self.wavelength)


@pytest.fixture
def fake_images(monkeypatch):
    from mosflm_py.actions import images

    monkeypatch.setattr(images, "_series_class", lambda: FakeSeries)
    return images


def test_image_header_and_warning_block(fake_images):
    s, text = run('TEMPLATE "x_###.img"\nDIRECTORY /d\nDISTANCE 169.65\nIMAGE 2\nHEADER\n'
                  "HEADER BRIEF\nIMAGE 7\n")
    assert "Sector 1: template x_###.img  directory /d" in text
    assert "Number of images 3, image numbers 1 to 3" in text
    warning = ("***** WARNING ***** Input crystal to detector distance ( 169.65mm) does NOT "
               "agree with value in the image header ( 170.00mm) The input distance will be used.")
    # the line as the real MOSFLM log prints it (mosflm-integration.log), matched whole
    assert re.search(r"^ Input crystal to detector distance \(\s*([\d.]+)mm\) does NOT agree "
                     r"with value in the image header \(\s*([\d.]+)mm\)\n The input distance "
                     r"will be used\.$", text, re.M)
    assert warning in " ".join(text.split())
    assert text.count("***** WARNING *****") == 1  # printed once
    assert "distance 169.65 mm" in text  # the effective value is the keyword's
    assert "Image 7 is not in the series x_###.img (images 1 to 3)." in text
    assert s.failures == 1 and s.state.images.image == 2


def test_effective_geometry_merges_header_and_keywords(fake_images):
    s, _ = run('TEMPLATE "x_###.img"\nBEAM 4.5 6.5\nIMAGE 2 PHI 30 TO 31\nGAIN 0.5\n')
    g = s.geometry(2)
    det, beam = g.detector, g.beam
    assert (det.beam_x, det.beam_y) == (4.5, 6.5)
    assert (g.phi_start, g.phi_end) == (30.0, 31.0)
    assert det.distance == 170.0 and beam.wavelength == 0.9795 and g.gain == 0.5
    assert (det.nslow, det.nfast, det.pixel_slow, det.pixel_fast) == (100, 120, 0.1, 0.1)
    assert beam.polarisation == 0.95 and beam.divergence == (0.1, 0.02)
    assert beam.dispersion == 0.0015
    g3 = s.geometry(3)
    assert (g3.phi_start, g3.phi_end) == (2.0, 3.0) and g3.nullpix == 0.0
    s.execute("POLARISATION MONOCHROMATOR 26.6")
    assert s.geometry(3).beam.polarisation == 0.0
    s.execute("WAVELENGTH 1.5418")  # laboratory CuKalpha: unpolarised
    s.execute("POLARISATION SYNCHROTRON 0.9")
    assert s.geometry(3).beam.polarisation == 0.9 and s.geometry(3).beam.wavelength == 1.5418


def test_missing_images_one_clear_message(fake_images):
    s, text = run('TEMPLATE "missing_###.img"\nDIRECTORY /nowhere\nIMAGE 1\nHEADER\n')
    assert sum(ln.startswith(" *** ") for ln in text.splitlines()) == 2
    assert "no images match template missing_###.img in directory /nowhere" in text
    assert "Traceback" not in text


def test_no_template_given(fake_images):
    s, text = run("HEADER\n")
    assert "No images have been given" in text and s.failures == 1


def test_new_template_is_a_new_sector(fake_images, tmp_path):
    f = tmp_path / "img_001.cbf"
    f.write_text("x")
    s, text = run(f'TEMPLATE "a_###.img"\nIMAGE 1\nTEMPLATE "b_###.img"\nIMAGE 1\nIMAGE {f}\n')
    assert [x.template for x in s.results.sectors] == ["a_###.img", "b_###.img", "img_###.cbf"]
    assert s.images().template == "img_###.cbf" and s.state.images.image == 1
    assert s.state.images.directories == (str(tmp_path),)


def test_matrix_file_is_read(tmp_path):
    np = pytest.importorskip("numpy")
    mf = pytest.importorskip("mosflm_py.geometry.matrix_file")
    path = tmp_path / "index.mat"
    text = mf.format_matrix_file(np.eye(3) * 0.02, np.zeros(3), np.eye(3),
                                 (50.0, 50.0, 50.0, 90.0, 90.0, 90.0))
    path.write_text(text)
    s, out = run(f"MATRIX {path}\nMATRIX {tmp_path / 'nope.mat'}\n")
    assert s.results.matrix is not None and s.results.matrix.cell[0] == 50.0
    assert "does not exist" in out and s.failures == 1
    assert s.state.files.matrix == str(path)  # the failed line did not change the setting


@pytest.mark.realdata
def test_real_cbf_series_header(real_data):
    folder = real_data / "l_cysteine_sweep04"
    s, text = run(f'TEMPLATE "l-cyst_04_#####.cbf"\nDIRECTORY {folder}\nWAVELENGTH 0.7\n'
                  "IMAGE 3\nHEADER\n")
    assert s.failures == 0
    assert "Number of images 15, image numbers 1 to 15" in text
    assert "Input wavelength (0.70000A) does NOT agree with value in the image header " \
           "(0.68890A) The input wavelength will be used." in " ".join(text.split())
    g = s.geometry(3)
    assert g.beam.wavelength == 0.7 and g.detector_type == "PILATUS"
    assert g.detector.distance == pytest.approx(160.0, abs=0.01)
    assert g.detector.pixel_slow == pytest.approx(0.172, abs=1e-6)
    assert (g.detector.nslow, g.detector.nfast) == (1679, 1475)
    assert g.phi_start == pytest.approx(0.2, abs=1e-6) and g.osc_width == pytest.approx(0.1)
