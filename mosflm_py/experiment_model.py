"""The experiment as the program knows it now, kept apart from the user's settings.

A run has two records of the experiment:

* the **settings** (:class:`mosflm_py.state.State`): what the user typed, keyword by keyword,
  never changed by a result;
* the **experiment model** (:class:`ExperimentModel`, ``session.results``): what the program
  found - image sectors, spots, the indexing result, the current crystal with its mosaic spread,
  the refined beam position and distance, the measurement box (RASTER), SEPARATION, the spot
  finder's MINPIX on pixel detectors, refinement and integration results.

Every value the program found carries where it came from (the step) and when (the settings'
``clock`` at that moment: :class:`Found`, :class:`Origin`).  A later step uses
:func:`effective` for each value, MOSFLM's precedence: a keyword the user typed *after* the value
was found wins; otherwise the value found; otherwise the user's keyword given earlier (or its
default); otherwise the image header or MOSFLM's default.  So after AUTOINDEX the refined beam
and distance are used by the next step, a BEAM keyword typed afterwards overrides them, and
MOSAIC typed after MOSAIC ESTIMATE overrides the estimate.

:func:`effective_settings` applies the rule to the settings the program can find (BEAM,
DISTANCE, RASTER, SEPARATION, MINPIX) and returns the settings a step should work with;
:func:`crystal_in_use` applies it to the crystal (CELL, SYMMETRY, MOSAIC, MISSETS, BLOCKSIZE).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from mosflm_py.geometry.crystal import Crystal
from mosflm_py.state import State, apply_setting, get_setting

if TYPE_CHECKING:
    from mosflm_py.geometry.matrix_file import MatrixFile
    from mosflm_py.imageio.series import ImageSeries
    from mosflm_py.indexing.autoindex import IndexingResult
    from mosflm_py.mosaic.estimate import MosaicEstimate
    from mosflm_py.refinement.cellref import CellRefinementResult
    from mosflm_py.scaling.pipeline import QuickScaleResult, QuickSymmResult
    from mosflm_py.spotfinding.types import SpotList
    from mosflm_py.strategy.plan import StrategyResult

T = TypeVar("T")

MATRIX_SERIAL = -1
"""Clock of a crystal read from a MATRIX file: the file is the user's input, so every crystal
keyword (CELL, SYMMETRY, MOSAIC, MISSETS) given at any time replaces the file's value."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value the program holds came from: the step and the settings' clock then."""

    source: str
    serial: int


@dataclass(frozen=True, slots=True)
class Found(Generic[T]):
    """A value the program found (``source``: the step, e.g. ``"AUTOINDEX"``) at clock
    ``serial`` (:attr:`mosflm_py.state.State.clock` when it was found)."""

    value: T
    source: str
    serial: int


def keyword_wins(user: Any, given_at: int | None, found: Found[Any] | None) -> bool:
    """True when the setting's value *user* is used rather than the value *found*.

    MOSFLM's precedence: a keyword typed after the value was found (``given_at >
    found.serial``) wins; a value found wins over a keyword typed before it and over a default;
    without a value found, the setting (keyword or MOSFLM's default) is used when not None.
    """
    if found is not None and (given_at is None or given_at <= found.serial):
        return False
    return user is not None


def effective(
    user: T | None, given_at: int | None, found: Found[T] | None, default: T | None = None
) -> T | None:
    """The value a step uses: MOSFLM's precedence between a keyword and a value found.

    Parameters
    ----------
    user : the setting's value (the user's keyword, or MOSFLM's default when not given).
    given_at : settings clock when the user last gave the keyword (None: never given).
    found : the value the program found, with its clock (None: nothing found).
    default : used when neither gives a value (the image header, or MOSFLM's default).

    Returns
    -------
    ``user`` when the keyword was given after the value was found (``given_at > found.serial``);
    else ``found.value``; else ``user`` when not None; else ``default``
    (:func:`keyword_wins`).
    """
    if keyword_wins(user, given_at, found):
        return user
    if found is not None:
        return found.value
    return default


FOUND_SETTINGS = {
    "beam": "detector.beam",
    "distance": "detector.distance",
    "tilt": "detector.distortion.tilt",
    "twist": "detector.distortion.twist",
    "raster": "integration.raster",
    "separation": "integration.separation",
    "minpix": "spotfind.minpix",
    "search_rmax": "spotfind.rmax",
}
"""Experiment-model field -> the setting (state path) whose keyword it stands in for."""

CRYSTAL_PARTS = {
    "cell": "crystal.cell",
    "space_group": "crystal.symmetry",
    "missets": "crystal.missets",
    "mosaic": "crystal.mosaic",
    "blocksize": "crystal.blocksize",
    "orientation": None,
}
"""Parts of the crystal with their own origin -> the setting that can replace them."""


@dataclass(frozen=True)
class KnownCrystal:
    """The current crystal and where each of its parts came from.

    ``crystal`` holds the values found (cell, U, missets, space group, mosaic spread, mosaic
    block width); ``origins`` maps each part of :data:`CRYSTAL_PARTS` to its :class:`Origin`
    (a part without one was not determined: a mosaic spread of 0 before MOSAIC ESTIMATE).
    """

    crystal: Crystal
    origins: dict[str, Origin] = field(default_factory=dict)

    def found(self, part: str) -> Found[Any] | None:
        """The value of *part* as a :class:`Found` (None when not determined)."""
        origin = self.origins.get(part)
        if origin is None:
            return None
        c = self.crystal
        value = {
            "cell": c.cell,
            "space_group": c.space_group,
            "missets": c.missets,
            "mosaic": c.mosaic,
            "blocksize": c.domain_width,
            "orientation": c.U,
        }[part]
        return Found(value, origin.source, origin.serial)


def merge_crystal(
    previous: KnownCrystal | None,
    crystal: Crystal,
    source: str,
    serial: int,
    parts: tuple[str, ...],
    base: Origin | None = None,
) -> KnownCrystal:
    """The crystal after step *source* found *parts* of *crystal* at clock *serial*.

    A part not in *parts* keeps the previous crystal's value and origin; without a previous
    crystal it is taken from *crystal* with origin *base* (default: *source* at
    :data:`MATRIX_SERIAL`, i.e. any keyword replaces it); a mosaic spread or block width of 0
    has no origin (not determined).
    """
    base = base if base is not None else Origin(source, MATRIX_SERIAL)
    origins: dict[str, Origin] = {}
    values = {}
    attrs = {
        "cell": "cell",
        "space_group": "space_group",
        "missets": "missets",
        "mosaic": "mosaic",
        "blocksize": "domain_width",
        "orientation": "U",
    }
    for part, attr in attrs.items():
        if part in parts:
            origins[part] = Origin(source, serial)
            values[attr] = getattr(crystal, attr)
        elif previous is not None:
            if part in previous.origins:
                origins[part] = previous.origins[part]
            values[attr] = getattr(previous.crystal, attr)
        else:
            values[attr] = getattr(crystal, attr)
            if part not in ("mosaic", "blocksize") or values[attr] > 0:
                origins[part] = base
    return KnownCrystal(dataclasses.replace(crystal, **values), origins)


def crystal_in_use(known: KnownCrystal, settings: State, space_group: Any) -> Crystal:
    """The crystal a step uses: *known* with the crystal keywords applied by :func:`effective`.

    ``space_group`` turns a SYMMETRY value into a Hermann-Mauguin symbol; MOSAIC ... BLOCKSIZE
    (µm) becomes the block width 1/t (1/Å).
    """
    st = settings.crystal
    cr = known.crystal

    def wins(part: str, path: str) -> bool:
        return keyword_wins(
            get_setting(settings, path), settings.when_given(path), known.found(part)
        )

    changes: dict[str, Any] = {}
    if wins("cell", "crystal.cell"):
        changes["cell"] = tuple(float(c) for c in st.cell)
    if wins("space_group", "crystal.symmetry"):
        changes["space_group"] = space_group(st.symmetry)
    if wins("mosaic", "crystal.mosaic"):
        changes["mosaic"] = float(st.mosaic)
    if wins("missets", "crystal.missets"):
        changes["missets"] = tuple(float(m) for m in st.missets)
    if wins("blocksize", "crystal.blocksize"):
        changes["domain_width"] = domain_width_from_blocksize(st.blocksize)
    return cr.replace(**changes) if changes else cr


def domain_width_from_blocksize(blocksize_um: float) -> float:
    """MOSAIC ... BLOCKSIZE (µm, as iMosflm) → reciprocal-space width 1/t (1/Å); 0 for t <= 0."""
    return 1.0 / (float(blocksize_um) * 1.0e4) if blocksize_um > 0 else 0.0


def blocksize_from_domain_width(width: float) -> float:
    """Inverse of :func:`domain_width_from_blocksize` (µm)."""
    return 1.0 / (float(width) * 1.0e4)


@dataclass(frozen=True)
class IntegrationRun:
    """What the last PROCESS integrated: records written, the MTZ file, per image the
    statistics and the refined model ``(stats, refinement)``, the profile blocks and the time."""

    n_records: int
    mtz: str
    images: list[tuple[Any, Any]] = field(default_factory=list)
    profiles: list[Any] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class ExperimentModel:
    """What the program knows about the experiment now (``session.results``).

    Geometry found (each a :class:`Found` or None): ``beam`` (X, Y mm, refined by AUTOINDEX),
    ``distance`` (mm, AUTOINDEX), ``tilt`` and ``twist`` (DISTORTION TILT/TWIST, 0.01°,
    refined by AUTOINDEX with the distance), ``raster`` (RASTER NXS NYS NC NRX NRY from the
    spot size),
    ``separation`` (mm, from the spot size), ``minpix`` (FINDSPOTS MINPIX on pixel detectors),
    ``search_rmax`` (FINDSPOTS RMAX: the whole detector, when AUTOINDEX finds sparse images).
    ``crystal``: the current :class:`KnownCrystal` (None before AUTOINDEX; a MATRIX file read
    is kept in ``matrix`` and used while there is none).

    Results of the steps: ``sectors`` (image series), ``spots`` (SpotList per image),
    ``indexing`` (IndexingResult), ``mosaic`` (MosaicEstimate), ``refinement`` (cell refinement
    result), ``predictions`` (PREDICT_SPOTS), ``integration`` (PROCESS summary), ``quicksymm``,
    ``quickscale``, ``strategy``, ``testgen``.  Bookkeeping of the steps: ``series_key``
    (TEMPLATE, DIRECTORY, EXTENSION of the current series), ``spot_cache`` (per image: key,
    spots, report), ``spot_files`` (spot files read), ``spot_files_written``,
    ``cellref_segments`` (POSTREF SEGMENT images collected), ``strategy_segments``.
    """

    sectors: list[ImageSeries] = field(default_factory=list)
    matrix: MatrixFile | None = None
    spots: dict[int, SpotList] = field(default_factory=dict)
    indexing: IndexingResult | None = None
    refinement: CellRefinementResult | None = None
    mosaic: MosaicEstimate | None = None
    predictions: Any = None  # actions.predict.ImagePrediction (PREDICT_SPOTS)
    integration: IntegrationRun | None = None
    quicksymm: QuickSymmResult | None = None
    quickscale: QuickScaleResult | None = None
    strategy: StrategyResult | None = None
    testgen: Any = None  # TESTGEN's table (strategy.tables)
    crystal: KnownCrystal | None = None
    beam: Found[tuple[float, float]] | None = None
    distance: Found[float] | None = None
    tilt: Found[float] | None = None
    twist: Found[float] | None = None
    raster: Found[tuple[int, int, int, int, int]] | None = None
    separation: Found[tuple[float, float]] | None = None
    minpix: Found[int] | None = None
    search_rmax: Found[float] | None = None
    series_key: tuple[Any, ...] | None = None
    spot_cache: dict[int, Any] = field(default_factory=dict)
    spot_files: dict[str, Any] = field(default_factory=dict)
    spot_files_written: set[str] = field(default_factory=set)
    cellref_segments: list[list[int]] = field(default_factory=list)
    strategy_segments: list[Any] = field(default_factory=list)

    def found_settings(self) -> dict[str, Found[Any]]:
        """The settings the program found: state path -> :class:`Found`."""
        out = {}
        for name, path in FOUND_SETTINGS.items():
            value = getattr(self, name)
            if value is not None:
                out[path] = value
        return out


def effective_settings(settings: State, model: ExperimentModel) -> State:
    """The settings a step works with: the user's, with the values found applied by
    :func:`effective` (a keyword typed after a value was found keeps its value).

    ``user_set``, ``clock`` and ``given_at`` are the user's: they still tell which keywords
    were given.
    """
    out = settings
    for path, found in model.found_settings().items():
        user = get_setting(settings, path)
        value = effective(user, settings.when_given(path), found)
        if value != user:
            out = apply_setting(out, path, value, user=False)
    return out


__all__ = [
    "CRYSTAL_PARTS",
    "FOUND_SETTINGS",
    "MATRIX_SERIAL",
    "ExperimentModel",
    "Found",
    "IntegrationRun",
    "KnownCrystal",
    "Origin",
    "keyword_wins",
    "blocksize_from_domain_width",
    "crystal_in_use",
    "domain_width_from_blocksize",
    "effective",
    "effective_settings",
    "merge_crystal",
]
