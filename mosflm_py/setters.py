"""How keyword records change the settings: the generic target rule and the special cases.

:func:`apply_record` is used by the session for every setting (and action) line. Keywords whose
meaning is not a plain "store this value" name a hook here in their TOML (``apply = ...``), with
the signature ``hook(state, record) -> State``. Effects after the update (printing, reading
files) live in the action modules (``effect = ...``).
"""

from __future__ import annotations

from typing import Any

from mosflm_py.errors import KeywordError, MosflmError, NotImplementedYet
from mosflm_py.geometry.detector_layout import layout_omega
from mosflm_py.integration.box import Raster
from mosflm_py.registry import Record, SubSpec, SubValue, resolve_hook
from mosflm_py.state import State, apply_setting, get_setting


def apply_record(state: State, record: Record) -> State:
    """New state after *record*: the spec's ``apply`` hook, else :func:`apply_targets`."""
    if record.spec.apply:
        return resolve_hook(record.spec.apply)(state, record)
    return apply_targets(state, record)


def apply_targets(state: State, record: Record, skip: frozenset[str] = frozenset()) -> State:
    """Generic rule: store every given value that has a ``target``.

    The keyword-level ``target`` receives the positional values (one value, or a tuple); each
    positional argument with its own ``target`` receives its value; each subkeyword with a
    ``target`` receives its constant ``value`` (a flag), its single argument or the tuple of its
    arguments (``append = true`` appends to the tuple already there); nested subkeywords
    likewise. Subkeywords named in *skip* are left to the caller.
    """
    spec = record.spec
    args = spec.forms[record.form]
    if spec.target and record.values:
        vals = tuple(record.values[a.name] for a in args if a.name in record.values)
        state = apply_setting(state, spec.target, vals[0] if len(vals) == 1 else vals)
    for a in args:
        if a.target and a.name in record.values:
            state = apply_setting(state, a.target, record.values[a.name])
        elif a.target and a.type == "onoff" and a.default is not None:  # bare HARVEST, XGUI
            state = apply_setting(state, a.target, a.default)
    for sv in record.subs:
        if sv.name not in skip:
            state = _apply_sub(state, spec.subkeywords[sv.name], sv)
    return state


def _apply_sub(state: State, sub: SubSpec, sv: SubValue) -> State:
    args = sub.forms[sv.form]
    if sub.target:
        vals = tuple(sv.values[a.name] for a in args if a.name in sv.values)
        value: Any = sub.value if not vals else (vals[0] if len(vals) == 1 else vals)
        if sub.append:
            value = (*get_setting(state, sub.target), value)
        state = apply_setting(state, sub.target, value)
    for a in args:
        if a.target and a.name in sv.values:
            state = apply_setting(state, a.target, sv.values[a.name])
    for inner in sv.subs:
        state = _apply_sub(state, sub.subkeywords[inner.name], inner)
    return state


# ---------------------------------------------------------------------------------------------
# Special cases
# ---------------------------------------------------------------------------------------------


def directory(state: State, record: Record) -> State:
    """DIRECTORY: add a directory to the search list (at most 10, no duplicates)."""
    path = record.get("path")
    dirs = tuple(d for d in state.images.directories if d != path)
    if len(dirs) >= 10:
        raise KeywordError("DIRECTORY: at most 10 directories can be given")
    return apply_setting(state, "images.directories", (*dirs, path))


def ucwd(state: State, record: Record) -> State:
    """UCWD: harvest files in the current directory."""
    return apply_setting(state, "files.ucwd", True)


def beam(state: State, record: Record) -> State:
    """BEAM x y | BEAM SWUNGOUT x y."""
    sw = record.sub("SWUNGOUT")
    if sw is not None:
        state = apply_setting(state, "detector.beam", (sw.get("x"), sw.get("y")))
        return apply_setting(state, "detector.beam_swungout", True)
    if "x" not in record.values:
        raise KeywordError("BEAM: expected <x> <y> (two numbers, mm) or SWUNGOUT <x> <y>")
    state = apply_setting(state, "detector.beam", (record.values["x"], record.values["y"]))
    return apply_setting(state, "detector.beam_swungout", False)


def limits(state: State, record: Record) -> State:
    """LIMITS: plain values, EXCLUDE/QUADRILATERAL (appended), REMOVE [ALL]."""
    if record.has("REMOVE"):
        state = apply_setting(state, "detector.limits.exclude", ())
        state = apply_setting(state, "detector.limits.quadrilaterals", ())
    for ex in record.all("EXCLUDE"):
        x1, x2, y1, y2 = (ex.get(k) for k in ("x1", "x2", "y1", "y2"))
        rect = (min(x1, x2), max(x1, x2), min(y1, y2), max(y1, y2))
        rects = (*state.detector.limits.exclude, rect)
        state = apply_setting(state, "detector.limits.exclude", rects)
    for q in record.all("QUADRILATERAL"):
        quads = state.detector.limits.quadrilaterals
        state = apply_setting(state, "detector.limits.quadrilaterals", (*quads, q.get("corners")))
    if not record.subs:
        raise KeywordError("LIMITS: expected XMIN, XMAX, YMIN, YMAX, RMIN, RMAX, XSCAN, YSCAN, "
                           "EXCLUDE, QUADRILATERAL or REMOVE")
    return apply_targets(state, record, skip=frozenset({"EXCLUDE", "QUADRILATERAL", "REMOVE"}))


def separation(state: State, record: Record) -> State:
    """SEPARATION sx [sy] plus flags."""
    if "sx" in record.values:
        sx = record.values["sx"]
        state = apply_setting(state, "integration.separation", (sx, record.values.get("sy", sx)))
    elif not record.subs:
        raise KeywordError("SEPARATION: expected <sx> <sy> (mm) or CLOSE, NOTCLOSE, UPDATE, "
                           "NOUPDATE, TRIM, NOVERLAP")
    return apply_targets(state, record)


def polarisation(state: State, record: Record) -> State:
    """POLARISATION SYNCHROTRON p | PINHOLE | MONOCHROMATOR 2theta."""
    if not record.subs:
        raise KeywordError("POLARISATION: expected SYNCHROTRON <p>, PINHOLE or "
                           "MONOCHROMATOR <angle>")
    sv = record.subs[-1]
    state = apply_setting(state, "beam.polarisation_mode", sv.name)
    if sv.name == "SYNCHROTRON":
        return apply_setting(state, "beam.polarisation", sv.get("p", 0.95))
    if sv.name == "PINHOLE":
        return apply_setting(state, "beam.polarisation", 0.0)
    state = apply_setting(state, "beam.polarisation", None)
    return apply_setting(state, "beam.monochromator_angle", sv.get("twotheta"))


def synchrotron(state: State, record: Record) -> State:
    """SYNCHROTRON POLARISATION p (older spelling)."""
    sv = record.sub("POLARISATION")
    if sv is None:
        raise KeywordError("SYNCHROTRON: expected POLARISATION <p>")
    state = apply_setting(state, "beam.polarisation_mode", "SYNCHROTRON")
    return apply_setting(state, "beam.polarisation", sv.get("p"))


def divergence(state: State, record: Record) -> State:
    """DIVERGENCE divh [divv] (divv defaults to divh)."""
    h = record.values["divh"]
    return apply_setting(state, "beam.divergence", (h, record.values.get("divv", h)))


def cell(state: State, record: Record) -> State:
    """CELL a b c alpha beta gamma (missing values follow the usual defaults) | CELL KEEP ..."""
    keep = record.sub("KEEP")
    if keep is not None:
        state = apply_setting(state, "crystal.cell", _check_cell(keep.get("cell")))
        return apply_setting(state, "crystal.cell_keep", True)
    v = record.values
    if "a" not in v:
        raise KeywordError("CELL: expected <a> <b> <c> <alpha> <beta> <gamma> (A, deg)")
    a = v["a"]
    b = v.get("b", a)
    c = v.get("c", b)
    values = (a, b, c, v.get("alpha", 90.0), v.get("beta", 90.0), v.get("gamma", 90.0))
    state = apply_setting(state, "crystal.cell", _check_cell(values))
    return apply_setting(state, "crystal.cell_keep", False)


def _check_cell(values: tuple[float, ...]) -> tuple[float, ...]:
    a, b, c, al, be, ga = values
    if min(a, b, c) <= 0:
        raise KeywordError("CELL: cell edges must be positive")
    if not (al + be + ga < 360 and al < be + ga and be < al + ga and ga < al + be):
        raise KeywordError(f"CELL: the angles {al:g} {be:g} {ga:g} do not form a valid cell")
    return tuple(float(x) for x in values)


def raster(state: State, record: Record) -> State:
    """RASTER NXS NYS NC NRX NRY: refused at input when the box has even sizes or leaves no
    peak (the same checks the integration makes, :class:`~mosflm_py.integration.box.Raster`)."""
    v = record.values
    try:
        Raster(v["nxs"], v["nys"], v["nc"], v["nrx"], v["nry"])
    except MosflmError as err:
        raise KeywordError(f"{err} (NXS and NYS odd, NRX at most (NXS-1)/2, NRY at most "
                           "(NYS-1)/2)") from None
    return apply_targets(state, record)


def symmetry(state: State, record: Record) -> State:
    """SYMMETRY number|symbol (checked with gemmi when available)."""
    text = str(record.get("spacegroup")).strip()
    if not text:
        raise KeywordError("SYMMETRY: expected a space-group number or symbol")
    import gemmi  # slow to import: only when SYMMETRY is given

    key = text.replace(" ", "")
    sg = gemmi.find_spacegroup_by_number(int(key)) if key.isdigit() else (
        gemmi.find_spacegroup_by_name(text) or gemmi.find_spacegroup_by_name(key))
    if sg is None:
        raise KeywordError(f"SYMMETRY: {text} is not a space group known to CCP4 "
                           "(give a number such as 19 or a symbol such as P212121)")
    return apply_setting(state, "crystal.symmetry", sg.hm)


def resolution(state: State, record: Record) -> State:
    """RESOLUTION dmin [dmax], LOW, EXCLUDE ICE|NONE|d1 d2 (at most 10 shells) ..."""
    v = record.values
    if "dmin" in v and "dmax" in v and v["dmin"] > v["dmax"]:  # given in either order
        v = {"dmin": v["dmax"], "dmax": v["dmin"]}
    for k in ("dmin", "dmax"):
        if k in v:
            state = apply_setting(state, f"resolution.{k}", v[k])
    for ex in record.all("EXCLUDE"):
        if ex.get("ice"):
            state = apply_setting(state, "resolution.exclude_ice", True)
        elif ex.get("none"):
            state = apply_setting(state, "resolution.exclude_ice", False)
            state = apply_setting(state, "resolution.exclude", ())
        else:
            d1, d2 = sorted((ex.get("d1"), ex.get("d2")))
            shells = state.resolution.exclude
            if len(shells) >= 10:
                raise KeywordError("RESOLUTION EXCLUDE: at most 10 resolution shells")
            state = apply_setting(state, "resolution.exclude", (*shells, (d2, d1)))
    if not v and not record.subs:
        raise KeywordError("RESOLUTION: expected <dmin> [<dmax>] (A) or a subkeyword "
                           "(LOW, EXCLUDE, CUTOFF, ANISOTROPIC, CHECK)")
    state = _apply_subs_only(state, record, skip={"EXCLUDE"})
    dmin, dmax = state.resolution.dmin, state.resolution.dmax
    if dmin is not None and dmax is not None and dmin >= dmax:
        raise KeywordError(f"RESOLUTION: the high-resolution limit ({dmin:g} A) must be smaller "
                           f"than the low-resolution limit ({dmax:g} A)")
    return state


def _apply_subs_only(state: State, record: Record, skip: set[str]) -> State:
    for sv in record.subs:
        if sv.name not in skip:
            state = _apply_sub(state, record.spec.subkeywords[sv.name], sv)
    return state


def findspots(state: State, record: Record) -> State:
    """FINDSPOTS: plain targets; SPLIT sy defaults to sx, BOX by to bx."""
    state = apply_targets(state, record, skip=frozenset({"SPLIT", "BOX"}))
    for name, path in (("SPLIT", "spotfind.split"), ("BOX", "spotfind.box")):
        sv = record.sub(name)
        if sv is not None:
            vals = list(sv.values.values())
            state = apply_setting(state, path, (vals[0], vals[1] if len(vals) > 1 else vals[0]))
    return state


_DETECTOR_PARAMS = ("XCEN", "YCEN", "XTOFRA", "YSCALE", "TILT", "TWIST", "ROFF", "TOFF",
                    "RDTOFF", "RDROFF", "CCOMEGA", "DISTANCE")


def _fix_free(fixed: tuple[str, ...], fix: list[str], free: list[str],
              universe: tuple[str, ...]) -> tuple[str, ...]:
    out = list(fixed)
    for p in fix:
        out.extend(universe if p == "ALL" else (p,))
    for p in free:
        drop = universe if p == "ALL" else (p,)
        out = [x for x in out if x not in drop]
    return tuple(dict.fromkeys(out))


def refinement(state: State, record: Record) -> State:
    """REFINEMENT: FIX/FREE lists, INCLUDE/EXCLUDE PARTIALS/OVERLOADS, plain targets."""
    fix = [p for sv in record.all("FIX") for p in sv.get("params", ())]
    free = [p for sv in record.all("FREE") for p in sv.get("params", ())]
    if fix or free:
        fixed = _fix_free(state.refinement.fixed, fix, free, _DETECTOR_PARAMS)
        state = apply_setting(state, "refinement.fixed", fixed)
    for sv in record.all("INCLUDE"):
        state = _include(state, sv.get("what"), sv.get("fraction"))
    for sv in record.all("EXCLUDE"):
        key = "include_partials" if sv.get("what") == "PARTIALS" else "include_overloads"
        state = apply_setting(state, f"refinement.{key}", False)
    return apply_targets(state, record, skip=frozenset({"FIX", "FREE", "INCLUDE", "EXCLUDE"}))


def _include(state: State, what: str, fraction: float | None = None) -> State:
    if what == "PARTIALS":
        state = apply_setting(state, "refinement.include_partials", True)
        if fraction is not None:
            state = apply_setting(state, "refinement.partial_fraction", fraction)
        return state
    return apply_setting(state, "refinement.include_overloads", True)


def include(state: State, record: Record) -> State:
    """INCLUDE PARTIALS|OVERLOADS."""
    return _include(state, record.get("what"))


_POSTREF_PARAMS = ("A", "B", "C", "ALPHA", "BETA", "GAMMA", "MOSAIC", "PHIX", "PHIY", "PHIZ",
                   "BEAM")


def postref(state: State, record: Record) -> State:
    """POSTREF: FIX/UNFIX (FIX ALL), BEAM 0/1, plain targets."""
    for sv in record.subs:
        if sv.name in ("FIX", "UNFIX"):
            params = list(sv.get("params", ()))
            if sv.name == "FIX":
                fixed = _fix_free(state.postref.fixed, params, [], _POSTREF_PARAMS)
                if "ALL" in params:
                    state = apply_setting(state, "postref.fix_all", True)
            else:
                fixed = _fix_free(state.postref.fixed, [], params, _POSTREF_PARAMS)
                if "ALL" in params or fixed != _POSTREF_PARAMS:
                    state = apply_setting(state, "postref.fix_all", False)
            state = apply_setting(state, "postref.fixed", fixed)
        elif sv.name == "BEAM":
            state = apply_setting(state, "postref.beam", bool(sv.get("flag")))
    return apply_targets(state, record, skip=frozenset({"FIX", "UNFIX", "BEAM"}))


def profile(state: State, record: Record) -> State:
    """PROFILE: TOLERANCE tmin [tmax], ICE [width], plain targets; NOFIXBOX is refused (not
    implemented yet: every detector region's standard profile shares one box size)."""
    if record.sub("NOFIXBOX") is not None:
        raise NotImplementedYet(
            "PROFILE NOFIXBOX is not implemented yet in mosflm-py: the measurement box keeps "
            "its size (FIXBOX); give a larger box with RASTER if the spots need one")
    tol = record.sub("TOLERANCE")
    if tol is not None:
        tmin = tol.get("tmin")
        tmax = tol.get("tmax", max(tmin, state.profile.tolerance[1]))
        state = apply_setting(state, "profile.tolerance", (tmin, tmax))
    ice = record.sub("ICE")
    if ice is not None:
        state = apply_setting(state, "profile.ice", True)
        if ice.get("width") is not None:
            state = apply_setting(state, "profile.ice_width", ice.get("width"))
    return apply_targets(state, record, skip=frozenset({"TOLERANCE"}))


def accept(state: State, record: Record) -> State:
    """ACCEPT [OVERLOADS]."""
    return apply_setting(state, "integration.accept_overloads", True)


def noprint(state: State, record: Record) -> State:
    """NOPRINT."""
    return apply_setting(state, "integration.noprint", True)


def forceread(state: State, record: Record) -> State:
    """FORCEREAD."""
    return apply_setting(state, "images.forceread", True)


def active(state: State, record: Record) -> State:
    """ACTIVE."""
    return apply_setting(state, "misc.active", True)


def noactive(state: State, record: Record) -> State:
    """NOACTIVE."""
    return apply_setting(state, "misc.active", False)


def norefine(state: State, record: Record) -> State:
    """NOREFINE [OFF]: positional refinement off (NOREFINE OFF: on again)."""
    return apply_setting(state, "refinement.enabled", record.get("off") in ("OFF",))


def site_effect(session: Any, record: Record) -> None:
    """SITE: recorded; site files of detector defaults are not read by mosflm-py."""
    session.report.information(f"SITE {record.get('name')} recorded. mosflm-py takes detector "
                               "defaults from the image headers; site files are not read.")


def detector(state: State, record: Record) -> State:
    """DETECTOR: type and flags as stored values; ROTATION / ORIGIN / FAST as the OMEGA of the
    layout (:func:`mosflm_py.geometry.detector_layout.layout_omega`); RECTANGULAR is the model's
    own shape, CIRCULAR is refused."""
    layout = frozenset({"ROTATION", "ORIGIN", "FAST", "RECTANGULAR", "CIRCULAR"})
    if record.has("CIRCULAR"):
        raise NotImplementedYet("DETECTOR CIRCULAR: only rectangular detectors are implemented "
                                "yet (give RECTANGULAR or leave the shape out)")
    rot, org, fast = record.sub("ROTATION"), record.sub("ORIGIN"), record.sub("FAST")
    omega = layout_omega(rot.get("direction") if rot else None, rot.get("sense") if rot else None,
                         org.get("corner") if org else None,
                         fast.get("direction") if fast else None)
    state = apply_targets(state, record, skip=layout)
    if omega is not None:
        if record.has("OMEGA"):
            raise KeywordError("DETECTOR: give either OMEGA or ORIGIN/FAST, not both (ORIGIN and "
                               "FAST set the in-plane angle OMEGA)")
        state = apply_setting(state, "detector.omega", omega)
    return state
