"""The experiment model apart from the user's settings (issue 11, item 1).

* :func:`effective` is MOSFLM's one precedence rule between a keyword and a value found: a
  keyword typed after the value was found wins, otherwise the value found, otherwise the
  keyword given before (or MOSFLM's default), otherwise the header / default.
* No step writes what it found into the settings: a snapshot of ``session.state`` taken just
  before the GO that runs AUTOINDEX, MOSAIC ESTIMATE, cell refinement (POSTREF SEGMENT) and
  PROCESS equals the one after (one simulated sweep, the steps run in order, module-scoped).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

from mosflm_py.actions.common import current_crystal
from mosflm_py.experiment_model import (
    ExperimentModel,
    Found,
    Origin,
    crystal_in_use,
    effective,
    effective_settings,
    keyword_wins,
    merge_crystal,
)
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.session import Session
from mosflm_py.state import State, apply_setting

# ------------------------------------------------------------------------ the precedence rule


@pytest.mark.parametrize(
    ("user", "given_at", "found", "default", "want", "wins"),
    [
        (None, None, None, 7.0, 7.0, False),  # nothing given or found: header / default
        (5.0, 3, None, 7.0, 5.0, True),  # keyword, nothing found: the keyword
        (None, None, Found(6.0, "AUTOINDEX", 4), 7.0, 6.0, False),  # found, no keyword
        (5.0, 3, Found(6.0, "AUTOINDEX", 4), 7.0, 6.0, False),  # keyword before the step
        (5.0, 4, Found(6.0, "AUTOINDEX", 4), 7.0, 6.0, False),  # keyword read before its GO
        (5.0, 5, Found(6.0, "AUTOINDEX", 4), 7.0, 5.0, True),  # keyword typed afterwards
        (6, None, Found(3, "AUTOINDEX", 0), None, 3, False),  # MOSFLM default (MINPIX 6)
        (6, None, None, None, 6, True),  # MOSFLM default, nothing found
    ],
)
def test_effective_precedence(user, given_at, found, default, want, wins):
    assert effective(user, given_at, found, default) == want
    assert keyword_wins(user, given_at, found) is wins


def test_state_clock_orders_the_keywords():
    st = State()
    st = apply_setting(st, "detector.distance", 100.0)
    st = apply_setting(st, "detector.beam", (1.0, 2.0))
    st = apply_setting(st, "detector.distance", 110.0)  # given again: its time moves on
    assert st.clock == 3
    assert st.when_given("detector.beam") == 2 and st.when_given("detector.distance") == 3
    assert st.when_given("crystal.mosaic") is None
    # a program value does not advance the clock nor count as given
    assert apply_setting(st, "crystal.mosaic", 0.3, user=False).clock == 3


def test_effective_settings_apply_found_values_by_time():
    st = apply_setting(State(), "detector.beam", (100.0, 100.0))  # clock 1
    model = ExperimentModel(
        beam=Found((100.4, 99.8), "AUTOINDEX", 1), raster=Found((13, 15, 9, 4, 4), "FINDSPOTS", 1)
    )
    eff = effective_settings(st, model)
    assert eff.detector.beam == (100.4, 99.8)  # found after BEAM was typed
    assert eff.integration.raster == (13, 15, 9, 4, 4)
    assert eff.detector.distance is None  # nothing found: the header's
    assert eff.user_set == st.user_set  # which keywords were given does not change
    st2 = apply_setting(st, "detector.beam", (101.0, 102.0))  # typed after AUTOINDEX
    assert effective_settings(st2, model).detector.beam == (101.0, 102.0)
    assert st.detector.beam == (100.0, 100.0)  # the settings themselves untouched


def _crystal(**kw) -> Crystal:
    return Crystal(cell=(50.0, 60.0, 70.0, 90.0, 90.0, 90.0), space_group="P 2 2 2", **kw)


def test_crystal_keywords_by_time():
    known = merge_crystal(
        None,
        _crystal(mosaic=0.0),
        "AUTOINDEX",
        2,
        ("cell", "orientation", "space_group", "missets"),
    )
    assert "mosaic" not in known.origins  # not determined by indexing
    st = apply_setting(State(), "crystal.mosaic", 0.5)  # clock 1, before AUTOINDEX
    st = apply_setting(st, "crystal.cell", (51.0, 61.0, 71.0, 90.0, 90.0, 90.0))  # clock 2
    cr = crystal_in_use(known, st, str)
    assert cr.mosaic == 0.5  # the keyword: nothing found replaced it
    assert cr.cell == (50.0, 60.0, 70.0, 90.0, 90.0, 90.0)  # CELL before (at) AUTOINDEX
    est = merge_crystal(known, _crystal(mosaic=0.8), "MOSAIC ESTIMATE", 2, ("mosaic",))
    assert est.origins["cell"] == Origin("AUTOINDEX", 2)  # kept
    assert crystal_in_use(est, st, str).mosaic == 0.8  # the estimate after MOSAIC 0.5
    st = apply_setting(st, "crystal.mosaic", 0.4)  # typed after the estimate
    st = apply_setting(st, "crystal.symmetry", "P 21 21 21")
    cr = crystal_in_use(est, st, str)
    assert (cr.mosaic, cr.space_group) == (0.4, "P 21 21 21")


def test_matrix_file_crystal_yields_to_every_keyword():
    """A MATRIX file is the user's input: CELL given before or after it replaces its cell."""
    from_file = merge_crystal(None, _crystal(), "MATRIX file", -1, ())
    st = apply_setting(State(), "crystal.cell", (52.4, 52.4, 71.0, 90.0, 90.0, 90.0))
    assert crystal_in_use(from_file, st, str).cell == (52.4, 52.4, 71.0, 90.0, 90.0, 90.0)


# ------------------------------------------------------------------------ steps on a sweep
N_IMAGES = 12


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    from mosflm_py.simulate import default_params, simulate_dataset

    folder = tmp_path_factory.mktemp("model_sim")
    params = default_params(
        nslow=512,
        nfast=512,
        beam_x=45.1,
        beam_y=42.3,
        distance=100.0,
        cell=(41.3, 47.9, 58.2, 90.0, 90.0, 90.0),
        n_images=N_IMAGES,
        resolution=1.8,
        seed=7,
    )
    simulate_dataset(params, folder, fmt="cbf", name="sim")
    return folder


@pytest.fixture(scope="module")
def steps(sweep):
    """Each step run in one session; the settings before and after each."""
    old = os.getcwd()
    os.chdir(sweep)
    out = io.StringIO()
    s = Session(out=out)
    snaps: dict[str, list[tuple[State, State]]] = {}
    try:
        s.run_lines(
            [
                'TEMPLATE "sim_#####.cbf"',
                f'DIRECTORY "{sweep}"',
                "BEAM 45.3 42.1",
                "NPROC 1",
                "HKLOUT model.mtz",
            ]
        )

        def step(name: str, *lines: str) -> None:
            for line in lines:  # the settings just before each GO and just after it
                before = s.state
                s.execute(line)
                assert s.failures == 0, out.getvalue()[-3000:]
                if line == "GO":
                    snaps.setdefault(name, []).append((before, s.state))

        step("AUTOINDEX", "AUTOINDEX DPS IMAGE 1 IMAGE 12", "GO")
        step("MOSAIC ESTIMATE", "MOSAIC ESTIMATE 1", "GO")
        step("POSTREF", "POSTREF SEGMENT 2", "PROCESS 1 3", "GO", "PROCESS 10 12", "GO")
        step("PROCESS", "POSTREF NOSEGMENT", "PROCESS 1 12 BLOCK 6", "GO")
    finally:
        os.chdir(old)
    return s, snaps, out.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["AUTOINDEX", "MOSAIC ESTIMATE", "POSTREF", "PROCESS"])
def test_settings_unchanged_by_the_step(steps, name):
    for before, after in steps[1][name]:
        assert after == before


@pytest.mark.slow
def test_steps_keep_what_they_found_in_the_model(steps):
    s, _, log = steps
    r = s.results
    assert r.beam.source == "AUTOINDEX" and r.raster.source == "FINDSPOTS"
    assert np.hypot(r.beam.value[0] - 45.1, r.beam.value[1] - 42.3) < 0.1  # refined (truth)
    assert s.state.detector.beam == (45.3, 42.1)  # as the user typed it
    assert s.effective.detector.beam == r.beam.value  # the next step uses the refined beam
    org = r.crystal.origins
    assert org["cell"].source == "cell refinement" and org["orientation"].source
    assert org["mosaic"].source in ("MOSAIC ESTIMATE", "cell refinement")
    assert s.state.crystal.cell is None and s.state.crystal.mosaic is None
    assert "Cell refinement is complete" in log
    assert r.integration is not None  # PROCESS integrated (not a third cell refinement)
    # a keyword typed now overrides what was found, and is what the next step sees
    s.execute("BEAM 45.0 42.0")
    s.execute("MOSAIC 0.55")
    assert s.effective.detector.beam == (45.0, 42.0)
    assert s.geometry(1).detector.beam_x == 45.0
    assert current_crystal(s).mosaic == 0.55
    assert r.beam.value != (45.0, 42.0)  # the found value is kept, for SHOW


def test_no_handler_writes_into_the_settings():
    """Handlers store what they find in the experiment model: the only settings they write are
    the user's own image input (a TEMPLATE / IMAGE file name split into TEMPLATE, DIRECTORY and
    IMAGE); ``Session.set`` has no way to store a value as not given by the user."""
    actions = Path(__file__).resolve().parents[1] / "mosflm_py" / "actions"
    writes = [
        (p.name, m.group(1))
        for p in sorted(actions.glob("*.py"))
        for m in re.finditer(r"session\.set\(\s*\"([\w.]+)\"", p.read_text())
    ]
    assert writes and all(path.startswith("images.") for _, path in writes), writes
    assert {name for name, _ in writes} == {"images.py"}
    text = "".join(p.read_text() for p in actions.glob("*.py"))
    assert "apply_setting(session.state" not in text and "session.state =" not in text
