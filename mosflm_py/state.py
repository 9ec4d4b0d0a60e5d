"""Every keyword setting, with MOSFLM's defaults, as frozen dataclasses.

``State`` is immutable: a keyword produces a new state with :func:`apply_setting` (dotted path,
e.g. ``"detector.distance"``), which also records the path in ``State.user_set`` so that
header values can be overridden with a WARNING when they disagree, and SHOW can list what the
user changed (:func:`diff_from_default`).

``None`` means "not given: use the image header / automatic value" (beam, distance, wavelength,
pixel size, ...). Lengths in mm, angles in degrees, wavelength in Angstrom. TILT/TWIST in 0.01 deg.
Defaults come from the MOSFLM 6.2.6 / 7.0 logs quoted in ``mosflm_keywords.md`` (section 2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Rect = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Files:
    """Output/input file names (keywords and command-line logical names)."""

    hklout: str | None = None
    hklout_multiple: bool = False
    mtzdirectory: str | None = None
    genfile: str | None = None
    matrix: str | None = None
    newmat: str | None = None
    spotod: str | None = None
    coords: str | None = None
    summary: str | None = None
    logfile: str | None = None
    spotfile: str | None = None
    harvest: bool = False
    ucwd: bool = False
    site: str | None = None
    best: bool = False
    best_files: bool = False


@dataclass(frozen=True, slots=True)
class Names:
    """Titles and MTZ project/crystal/dataset names."""

    title: str | None = None
    pname: str | None = None
    xname: str | None = None
    dname: str | None = None
    ident: str | None = None


@dataclass(frozen=True, slots=True)
class Images:
    """Image-series selection: TEMPLATE, DIRECTORY (several), EXTENSION, current IMAGE."""

    template: str | None = None
    directories: tuple[str, ...] = ()
    extension: str | None = None
    image: int | None = None
    image_phi: tuple[float, float] | None = None
    phi_overrides: tuple[tuple[int, float, float], ...] = ()
    forceread: bool = False


@dataclass(frozen=True, slots=True)
class Distortion:
    """Detector distortion/refinable parameters (DISTORTION, CAMCON)."""

    xtofra: float = 1.0
    yscale: float = 1.0
    tilt: float = 0.0
    twist: float = 0.0
    roff: float = 0.0
    toff: float = 0.0
    rdroff: float = 0.0
    rdtoff: float = 0.0
    ccx: float = 0.0
    ccy: float = 0.0
    ccomega: float = 0.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Detector limits (mm, relative to the beam unless stated), exclusions and backstop."""

    xmin: float | None = None
    xmax: float | None = None
    ymin: float | None = None
    ymax: float | None = None
    rmin: float | None = None
    rmax: float | None = None
    xscan: float | None = None
    yscan: float | None = None
    exclude: tuple[Rect, ...] = ()
    quadrilaterals: tuple[tuple[float, ...], ...] = ()
    backstop_centre: tuple[float, float] | None = None
    backstop_radius: float | None = None
    backstop_auto: bool = False


@dataclass(frozen=True, slots=True)
class Detector:
    """Detector description and geometry; None = take the value from the image header."""

    type: str | None = None
    reverse_phi: bool = False
    omega: float | None = None
    rowreadtime: float | None = None
    rotnspeed: float | None = None
    beam: tuple[float, float] | None = None
    beam_swungout: bool = False
    distance: float | None = None
    two_theta: float | None = None
    pixel: float | None = None
    pixel_fast: float | None = None
    size: tuple[int, int] | None = None
    gain: float | None = None
    overload: float | None = None
    nover: int = 0
    nullpix: float | None = None
    adcoffset: float | None = None
    bias: float = 0.0
    nonlinearity: float = 0.0
    fiducial_box: float = 0.0
    fiducial_threshold: float = 0.0
    distortion: Distortion = Distortion()
    limits: Limits = Limits()


@dataclass(frozen=True, slots=True)
class Beam:
    """Incident beam. None = automatic (synchrotron or laboratory defaults from the wavelength)."""

    wavelength: float | None = None
    polarisation_mode: str | None = None  # SYNCHROTRON, PINHOLE, MONOCHROMATOR
    polarisation: float | None = None
    monochromator_angle: float | None = None
    divergence: tuple[float, float] | None = None
    dispersion: float | None = None
    delcor: float = 0.0


@dataclass(frozen=True, slots=True)
class Resolution:
    """RESOLUTION limits (Angstrom) and excluded shells."""

    dmin: float | None = None
    dmax: float | None = None
    cutoff: float | None = None
    exclude_ice: bool = False
    exclude: tuple[tuple[float, float], ...] = ()
    anisotropic: tuple[float, float, float] | None = None
    check: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Crystal:
    """Crystal model given by keywords (MATRIX file contents live in the session results)."""

    cell: tuple[float, float, float, float, float, float] | None = None
    cell_keep: bool = False
    symmetry: str | None = None
    mosaic: float | None = None
    blocksize: float | None = None
    missets: tuple[float, float, float] | None = None
    lattice: int = 1


@dataclass(frozen=True, slots=True)
class SpotFind:
    """FINDSPOTS parameters (iMosflm GUI defaults)."""

    threshold: float = 5.0
    split: tuple[float, float] = (0.0, 0.0)
    minx: float = 0.5
    maxx: float = 10.0
    miny: float = 0.5
    maxy: float = 10.0
    rmin: float | None = None
    rmax: float | None = None
    xoffset: float = 0.0
    yoffset: float = 0.0
    xmin: float | None = None
    ymin: float | None = None
    minpix: int = 6
    maxpeak: int = 30
    box: tuple[int, int] = (50, 50)
    rmsfactor: float = 3.0
    anisomax: float = 5.0
    autoresln: bool = True
    autoring: bool = True
    local: bool = True
    ice: bool = False
    sumimages: int = 1
    file: str | None = None


@dataclass(frozen=True, slots=True)
class Index:
    """AUTOINDEX parameters."""

    method: str = "DPS"
    refine: bool = False
    threshold: float = 20.0
    hkldev: float = 0.3
    multi: bool = False
    nvect: int = 30
    nvref: int = 30
    maxcell: float | None = None
    unfixdist: bool = False
    exclude_auto: bool = False
    solution: int | None = None
    sdcutoff: float = 2.5
    lattice: int | None = None
    file: str | None = None


@dataclass(frozen=True, slots=True)
class Refinement:
    """Positional (detector) refinement, REFINEMENT keyword; defaults from the 6.2.6 log."""

    fixed: tuple[str, ...] = ("RDROFF", "RDTOFF", "ROFF", "TOFF")
    nref: int = 20
    limit: float = 45.0
    nsig: float = 20.0
    include_partials: bool = False
    partial_fraction: float = 0.5
    include_overloads: bool = False
    fullfrac: float = 0.33
    usebox: bool = True
    cycles: int = 2
    residual: float = 5.0
    imin: tuple[float, float] = (40.0, 10.0)
    gradient: float = 0.03
    bgreject: float = 0.5
    weight: bool = True
    smooth: bool = True
    maxref: int = 200
    sumimages: int = 1
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Postref:
    """POSTREF parameters (6.2.6 defaults)."""

    enabled: bool = True
    fixed: tuple[str, ...] = ()
    fix_all: bool = False
    multi: bool | None = None
    segments: int | None = None
    repeat: int = 1
    nref: int = 20
    sdfac: float = 3.0
    maxresidual: float = 0.55
    maxshift: float = 0.05
    shiftfac: float = 2.5
    mossmooth: int = 10
    mosadd: float = 0.05
    beam: bool = True
    frmin: float | None = None
    frmax: float | None = None
    partition: float = 0.25
    smooth: bool = True


@dataclass(frozen=True, slots=True)
class Profile:
    """PROFILE fitting parameters (6.2.6 defaults)."""

    enabled: bool = True
    xlines: tuple[float, ...] = ()
    ylines: tuple[float, ...] = ()
    optimise: bool = True
    optimise_atall: bool = True
    tolerance: tuple[float, float] = (0.020, 0.030)
    boundary: int = 6
    fixbox: bool = True
    isdr: float = 2.0
    bgsig: float = 99.0
    nref: int = 10
    rmsbg: float = 20.0
    overload: bool = False
    partials: bool = False
    variable: bool = True
    interpolate: bool = True
    changemask: bool = True
    weight: bool = True
    wsum: bool = True
    wdlim1: float = 20.0
    wdlim2: float = 20.0
    ice: bool = False
    ice_width: float = 0.005
    ice_prcut: float = 0.05
    update: bool = True
    print_profiles: bool = True


@dataclass(frozen=True, slots=True)
class Background:
    """BACKGROUND parameters."""

    bgfrac: float = 0.80
    bgsig: float = 3.0
    recover: bool = False
    reclevel: float = 1.0


@dataclass(frozen=True, slots=True)
class Rejection:
    """REJECTION criteria."""

    gradmax: float = 0.03
    minbg: int = 10
    bgratio: float = 3.0
    pkratio: float = 3.5
    pkratio_accept: bool = False


@dataclass(frozen=True, slots=True)
class Integration:
    """Integration control: box, separation, widths, block size, workers."""

    separation: tuple[float, float] | None = None
    separation_close: bool = False
    separation_update: bool = True
    trim: int = 0
    noverlap: int = 1
    raster: tuple[int, int, int, int, int] | None = None
    maxwidth: float = 5.0
    block: int = 10
    chunk: int = 1
    accept_overloads: bool = False
    noprint: bool = False
    nproc: int | None = None


@dataclass(frozen=True, slots=True)
class Strategy:
    """TESTGEN defaults (STRATEGY takes all its options on its own line)."""

    overlap: float = 0.0


@dataclass(frozen=True, slots=True)
class QuickScale:
    """QUICKSCALE AUTO / REPORT and the ``--report`` option: QuickScale after every PROCESS."""

    auto: bool = False
    report: str | None = None


@dataclass(frozen=True, slots=True)
class Misc:
    """GUI and miscellaneous switches."""

    xgui: bool = False
    merge: bool = False
    active: bool = True
    automatch_resolution: float | None = None
    wait: float = 0.0


@dataclass(frozen=True, slots=True)
class State:
    """Everything a keyword can set; defaults are MOSFLM's defaults.

    ``user_set`` holds the dotted paths set explicitly by the user (keywords or command line).
    ``clock`` counts the values the user gave and ``given_at`` holds, per path, the clock when
    it was last given: a value the program found (:mod:`mosflm_py.experiment_model`) records the
    clock too, so a keyword typed after it wins over it and one typed before it does not.
    """

    files: Files = Files()
    names: Names = Names()
    images: Images = Images()
    detector: Detector = Detector()
    beam: Beam = Beam()
    resolution: Resolution = Resolution()
    crystal: Crystal = Crystal()
    spotfind: SpotFind = SpotFind()
    index: Index = Index()
    refinement: Refinement = Refinement()
    postref: Postref = Postref()
    profile: Profile = Profile()
    background: Background = Background()
    rejection: Rejection = Rejection()
    integration: Integration = Integration()
    strategy: Strategy = Strategy()
    quickscale: QuickScale = QuickScale()
    misc: Misc = Misc()
    user_set: frozenset[str] = field(default_factory=frozenset)
    clock: int = 0
    given_at: tuple[tuple[str, int], ...] = ()

    def is_user_set(self, path: str) -> bool:
        """True when the setting at *path* was given by the user."""
        return path in self.user_set

    def when_given(self, path: str) -> int | None:
        """The ``clock`` when the user last gave the setting at *path* (None: never)."""
        for p, at in self.given_at:
            if p == path:
                return at
        return None


_BOOKKEEPING = frozenset({"user_set", "clock", "given_at"})
"""State fields that record who gave what and when, not settings."""


def get_setting(state: Any, path: str) -> Any:
    """Value at dotted *path* (``"detector.distortion.tilt"``)."""
    obj = state
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def has_setting(state: Any, path: str) -> bool:
    """True when dotted *path* names a field of *state*."""
    obj = state
    for part in path.split("."):
        names = {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else ()
        if part not in names:
            return False
        obj = getattr(obj, part)
    return True


def _replace(obj: Any, path: list[str], value: Any) -> Any:
    head, rest = path[0], path[1:]
    if not dataclasses.is_dataclass(obj) or head not in {f.name for f in dataclasses.fields(obj)}:
        raise AttributeError(f"no setting {head!r} in {type(obj).__name__}")
    new = _replace(getattr(obj, head), rest, value) if rest else value
    return dataclasses.replace(obj, **{head: new})


def apply_setting(state: State, path: str, value: Any, *, user: bool = True) -> State:
    """Copy of *state* with dotted *path* replaced by *value* (recorded in ``user_set``)."""
    new = _replace(state, path.split("."), value)
    if user:
        clock = new.clock + 1
        given = tuple(g for g in new.given_at if g[0] != path) + ((path, clock),)
        new = dataclasses.replace(new, user_set=new.user_set | {path}, clock=clock,
                                  given_at=given)
    return new


def iter_settings(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (dotted path, value) for every leaf setting of *obj*."""
    for f in dataclasses.fields(obj):
        if f.name in _BOOKKEEPING:
            continue
        value = getattr(obj, f.name)
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from iter_settings(value, path + ".")
        else:
            yield path, value


def diff_from_default(state: State) -> list[tuple[str, Any, Any]]:
    """Settings whose value differs from MOSFLM's default: (path, value, default)."""
    default = dict(iter_settings(State()))
    return [(p, v, default[p]) for p, v in iter_settings(state) if v != default[p]]
