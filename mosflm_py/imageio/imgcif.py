"""Geometry from imgCIF axis categories (full CBF headers) in MOSFLM conventions.

The imgCIF laboratory frame (Bernstein & Hammersley, *International Tables* Vol. G, 2005, ch. 3.7;
imgCIF dictionary, category AXIS) has X along the principal goniometer axis, Z towards the source
and Y completing a right-handed set. Every axis has a vector, an offset and a parent
(``depends_on``); a point given in an axis' frame is carried to the parent frame by
``p -> R(vector, angle) p + offset`` for a rotation and ``p -> p + offset + displacement * vector``
for a translation (as CBFlib's ``cbf_calculate_position``). The axis settings of one frame come from
``_diffrn_scan_frame_axis`` (falling back to the scan start in ``_diffrn_scan_axis``).

The result is mapped to the MOSFLM frame of ``help/topics/conventions.txt``: X along the beam,
Z along the scan axis (projected perpendicular to the beam), Y = Z x X. See
:mod:`mosflm_py.imageio.header` for ``detector_omega`` and ``reverse_phi``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import ImageError


@dataclass(frozen=True)
class Axis:
    """One row of the imgCIF ``_axis`` category."""

    id: str
    type: str
    equipment: str
    depends_on: str | None
    vector: np.ndarray
    offset: np.ndarray


@dataclass(frozen=True)
class AxisGeometry:
    """Geometry derived from imgCIF axes (MOSFLM conventions, mm and degrees)."""

    distance: float
    beam_x: float
    beam_y: float
    two_theta: float
    detector_omega: float
    reverse_frame: bool
    phi_start: float | None
    phi_width: float | None
    pixel_slow: float
    pixel_fast: float
    scan_axis: str | None
    rotation_axis_cif: tuple[float, float, float]
    warnings: tuple[str, ...]
    goniometer: tuple[tuple[str, float], ...] = ()
    """Goniometer rotation axes and their settings (deg) at the start of the image; all but
    the scan axis are fixed and only set the direction of the rotation axis (an omega scan with
    chi != 0 is a single rotation about the omega axis as the settings place it)."""


def _num(s: str | None, default: float = 0.0) -> float:
    if s is None or s in (".", "?", ""):
        return default
    try:
        return float(s)
    except ValueError:
        return default


def _rows(block, category: str, tags: list[str]) -> list[dict[str, str]]:
    """Rows of an imgCIF loop (or single-valued category) as dicts; optional tags start with '?'."""
    import gemmi

    try:
        table = block.find(category, tags)
    except (RuntimeError, ValueError):
        return []
    names = [t.lstrip("?") for t in tags]
    out = []
    for row in table:
        d = {}
        for i, n in enumerate(names):
            if row.has(i):
                d[n] = gemmi.cif.as_string(row[i])
        out.append(d)
    return out


def parse_cif_text(text: str):
    """Parse the text part of a CBF header into a gemmi CIF block (raises ImageError)."""
    import gemmi

    try:
        doc = gemmi.cif.read_string(text)
        return doc.sole_block()
    except (RuntimeError, ValueError) as exc:
        raise ImageError(f"cannot parse the imgCIF header: {exc}") from exc


def _rotation(v: np.ndarray, angle_deg: float) -> np.ndarray:
    """Right-handed rotation matrix about unit vector ``v`` by ``angle_deg`` (Rodrigues)."""
    a = math.radians(angle_deg)
    x, y, z = v
    c, s, C = math.cos(a), math.sin(a), 1.0 - math.cos(a)
    return np.array(
        [
            [c + x * x * C, x * y * C - z * s, x * z * C + y * s],
            [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
            [z * x * C - y * s, z * y * C + x * s, c + z * z * C],
        ]
    )


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n == 0.0:
        raise ImageError("imgCIF axis with a zero vector")
    return v / n


def read_axes(block) -> dict[str, Axis]:
    """The ``_axis`` category as a dict id -> :class:`Axis` (empty when absent)."""
    rows = _rows(
        block,
        "_axis.",
        ["id", "?type", "?equipment", "?depends_on", "vector[1]", "vector[2]", "vector[3]",
         "?offset[1]", "?offset[2]", "?offset[3]"],
    )
    axes = {}
    for r in rows:
        dep = r.get("depends_on")
        axes[r["id"]] = Axis(
            id=r["id"],
            type=r.get("type", "general").lower(),
            equipment=r.get("equipment", "").lower(),
            depends_on=None if dep in (None, ".", "?", "") else dep,
            vector=np.array([_num(r[f"vector[{i}]"]) for i in (1, 2, 3)]),
            offset=np.array([_num(r.get(f"offset[{i}]")) for i in (1, 2, 3)]),
        )
    return axes


def _settings(block) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
    """Per-axis (angle, displacement) of the first frame, and per-axis scan increments."""
    settings: dict[str, tuple[float, float]] = {}
    incr: dict[str, tuple[float, float]] = {}
    for r in _rows(
        block,
        "_diffrn_scan_axis.",
        ["axis_id", "?angle_start", "?angle_increment", "?displacement_start",
         "?displacement_increment"],
    ):
        settings[r["axis_id"]] = (_num(r.get("angle_start")), _num(r.get("displacement_start")))
        incr[r["axis_id"]] = (
            _num(r.get("angle_increment")),
            _num(r.get("displacement_increment")),
        )
    for r in _rows(
        block, "_diffrn_scan_frame_axis.", ["axis_id", "?angle", "?displacement"]
    ):
        settings[r["axis_id"]] = (_num(r.get("angle")), _num(r.get("displacement")))
    return settings, incr


class _Chain:
    """Evaluate positions and directions through an axis dependency chain."""

    def __init__(self, axes: dict[str, Axis], settings: dict[str, tuple[float, float]]):
        self.axes = axes
        self.settings = settings

    def _walk(self, axis_id: str | None):
        seen = set()
        while axis_id is not None:
            if axis_id in seen or axis_id not in self.axes:
                if axis_id in seen:
                    raise ImageError(f"imgCIF axis dependency loop at {axis_id}")
                return
            seen.add(axis_id)
            yield self.axes[axis_id]
            axis_id = self.axes[axis_id].depends_on

    def position(self, axis_id: str, p: np.ndarray, overrides: dict[str, float]) -> np.ndarray:
        """Carry point ``p`` (in the frame of ``axis_id``, after its motion) to the lab."""
        p = np.asarray(p, dtype=float)
        for ax in self._walk(axis_id):
            angle, disp = self.settings.get(ax.id, (0.0, 0.0))
            if ax.id in overrides:
                disp = overrides[ax.id]
            if ax.type == "rotation":
                p = _rotation(_unit(ax.vector), angle) @ p + ax.offset
            elif ax.type == "translation":
                p = p + ax.offset + disp * ax.vector
        return p

    def direction(self, axis_id: str) -> np.ndarray:
        """Lab direction of an axis vector (rotated by its parents' current angles)."""
        ax = self.axes[axis_id]
        v = _unit(ax.vector)
        for parent in self._walk(ax.depends_on):
            if parent.type == "rotation":
                angle = self.settings.get(parent.id, (0.0, 0.0))[0]
                v = _rotation(_unit(parent.vector), angle) @ v
        return v


def _array_axes(block, axes: dict[str, Axis]) -> tuple[str, str, float, float, float, float]:
    """(fast axis id, slow axis id, fast sign, slow sign, pixel_fast mm, pixel_slow mm)."""
    lists = _rows(
        block,
        "_array_structure_list.",
        ["index", "?precedence", "?direction", "axis_set_id"],
    )
    if len(lists) != 2:
        raise ImageError("imgCIF header does not describe a 2-D array (_array_structure_list)")
    lists.sort(key=lambda r: _num(r.get("precedence"), _num(r.get("index"))))
    set_axes = {
        r["axis_set_id"]: r
        for r in _rows(
            block,
            "_array_structure_list_axis.",
            ["axis_set_id", "axis_id", "?displacement_increment"],
        )
    }
    out = []
    for r in lists:
        sa = set_axes.get(r["axis_set_id"], {"axis_id": r["axis_set_id"]})
        axis_id = sa["axis_id"]
        if axis_id not in axes:
            raise ImageError(f"imgCIF array axis {axis_id} is not in the _axis category")
        sign = -1.0 if r.get("direction", "increasing").lower().startswith("decr") else 1.0
        out.append((axis_id, sign, abs(_num(sa.get("displacement_increment")))))
    sizes = {
        _num(r["index"]): _num(r["size"]) * 1000.0
        for r in _rows(block, "_array_element_size.", ["index", "size"])
    }
    (fid, fs, fpx), (sid, ss, spx) = out
    fpx = fpx or sizes.get(1.0, 0.0)
    spx = spx or sizes.get(2.0, 0.0)
    return fid, sid, fs, ss, fpx, spx


def _choose_scan_axis(
    axes: dict[str, Axis], incr: dict[str, tuple[float, float]], hint: str | None
) -> str | None:
    gonio = [a for a in axes.values() if a.type == "rotation" and a.equipment == "goniometer"]
    if not gonio:
        return None
    moving = [a.id for a in gonio if abs(incr.get(a.id, (0.0, 0.0))[0]) > 0.0]
    if moving:
        return moving[0]
    if hint:
        h = hint.strip().upper()
        for a in gonio:
            if a.id.upper() == h or a.id.upper().endswith("_" + h):
                return a.id
    roots = [a.id for a in gonio if a.depends_on is None]
    return roots[0] if roots else gonio[0].id


def _wrap(angle: float) -> float:
    """Wrap to (-180, 180]."""
    a = math.fmod(angle, 360.0)
    if a <= -180.0:
        a += 360.0
    elif a > 180.0:
        a -= 360.0
    return a


def geometry_from_block(block, axis_hint: str | None = None) -> AxisGeometry | None:
    """Detector and scan geometry from an imgCIF block; None when it has no ``_axis`` category.

    Parameters
    ----------
    block : gemmi.cif.Block
        The parsed CBF header.
    axis_hint : str, optional
        Name of the oscillation axis from another part of the header (used for stills).
    """
    axes = read_axes(block)
    if not axes:
        return None
    settings, incr = _settings(block)
    chain = _Chain(axes, settings)
    warnings: list[str] = []
    fid, sid, fsign, ssign, pfast, pslow = _array_axes(block, axes)
    # innermost element axis: the one the other array axis does not depend on
    inner = fid if axes[sid].depends_on == fid and axes[fid].depends_on != sid else sid
    if axes[fid].depends_on == sid:
        inner = fid
    elif axes[sid].depends_on == fid:
        inner = sid
    origin = chain.position(inner, np.zeros(3), {fid: 0.0, sid: 0.0})
    fast = fsign * chain.direction(fid)
    slow = ssign * chain.direction(sid)

    source = axes.get("SOURCE")
    beam = -_unit(source.vector) if source is not None else np.array([0.0, 0.0, -1.0])
    scan_id = _choose_scan_axis(axes, incr, axis_hint)
    if scan_id is None:
        rot = np.array([1.0, 0.0, 0.0])
        warnings.append("no goniometer axis in the imgCIF header: spindle assumed along imgCIF X")
    else:
        rot = chain.direction(scan_id)
    rot_perp = rot - float(rot @ beam) * beam
    if np.linalg.norm(rot_perp) < 1e-6:
        raise ImageError("imgCIF rotation axis is parallel to the beam")
    if abs(float(_unit(rot) @ beam)) > 1e-3:
        tilt = math.degrees(math.asin(min(1.0, abs(float(_unit(rot) @ beam)))))
        warnings.append(f"rotation axis is {tilt:.2f} deg off perpendicular to the beam")

    def frame_geometry(z_sign: float):
        Z = z_sign * _unit(rot_perp)
        X = beam
        Y = np.cross(Z, X)
        M = np.vstack([X, Y, Z])
        f, s, o = M @ fast, M @ slow, M @ origin
        n = np.cross(f, s)
        mirrored = float(n @ o) < 0.0
        if mirrored:
            n = -n
        dist = float(n @ o)
        foot = dist * n
        bx = float((foot - o) @ s)
        by = float((foot - o) @ f)
        tt = math.degrees(math.atan2(n[1], n[0]))
        # un-swing about Z to get the in-plane rotation
        R = _rotation(np.array([0.0, 0.0, 1.0]), -tt)
        fu = R @ f
        w = math.degrees(math.atan2(-fu[1], fu[2]))
        return dist, bx, by, tt, _wrap(w), mirrored

    dist, bx, by, tt, w, mirrored = frame_geometry(1.0)
    reverse_frame = False
    if math.cos(math.radians(w)) < -1e-6 or (
        abs(math.cos(math.radians(w))) <= 1e-6 and math.sin(math.radians(w)) < 0
    ):
        dist, bx, by, tt, w, mirrored = frame_geometry(-1.0)
        reverse_frame = True
    if mirrored:
        warnings.append(
            "detector axes are mirrored (fast x slow points towards the crystal); "
            "this cannot be described by DETECTOR OMEGA"
        )
    if dist <= 0.0:
        raise ImageError("imgCIF detector geometry gives a non-positive distance")

    phi_start = phi_width = None
    if scan_id is not None:
        phi_start = settings.get(scan_id, (0.0, 0.0))[0]
        phi_width = incr.get(scan_id, (0.0, 0.0))[0]
    return AxisGeometry(
        distance=dist,
        beam_x=bx,
        beam_y=by,
        two_theta=0.0 if abs(tt) < 1e-9 else tt,
        detector_omega=0.0 if abs(w) < 1e-9 else w,
        reverse_frame=reverse_frame,
        phi_start=phi_start,
        phi_width=phi_width,
        pixel_slow=pslow,
        pixel_fast=pfast,
        scan_axis=scan_id,
        rotation_axis_cif=tuple(float(x) for x in _unit(rot)),
        warnings=tuple(warnings),
        goniometer=tuple(
            (a.id, float(settings.get(a.id, (0.0, 0.0))[0]))
            for a in axes.values()
            if a.type == "rotation" and a.equipment == "goniometer"
        ),
    )
