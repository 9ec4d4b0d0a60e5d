"""The image header as MOSFLM sees it: geometry and detector constants in MOSFLM conventions.

Every format adapter (see :mod:`mosflm_py.imageio.adapters`, :mod:`mosflm_py.imageio.cbf`,
:mod:`mosflm_py.imageio.hdf5`) maps its native header onto :class:`ImageHeader`. Values follow
``help/topics/conventions.txt``: lengths in mm, wavelength in Angstrom, angles in degrees, beam
centre in MOSFLM detector coordinates (``beam_x`` along the slow direction, ``beam_y`` along the
fast direction, origin at the outer corner of the first pixel, no half-pixel shift).

``detector_omega`` is the in-plane rotation of the detector axes from the default orientation of
conventions.txt (fast = +Z lab, slow = -Y lab), as a right-handed rotation about the beam (+X lab):
fast = (0, -sin w, cos w) and slow = (0, -cos w, -sin w) in the lab frame. A spindle along the
slow axis (e.g. vertical-spindle Pilatus beamlines) gives ``detector_omega = 90``.

``reverse_phi`` means the header's phi angles turn the crystal about -Z (left-handed about the
spindle). When the header has a negative oscillation width, the adapters keep the physical
rotation right-handed about the reported axis by negating the angles: ``phi_start`` and
``phi_end`` are then ``-start`` and ``-(start + width)`` and ``reverse_phi`` is True, so
``phi_end > phi_start`` always holds for a rotation image. The header's own numbers stay in
``raw``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

DETECTOR_TYPES = (
    "PILATUS",
    "EIGER",
    "ADSC",
    "MARCCD",
    "MAR345",
    "RAXIS",
    "SATURN",
    "BRUKER",
    "OXFORD",
    "NONIUS",
    "EDF",
    "TIMEPIX",
    "SMV",
    "UNKNOWN",
)


@dataclass(frozen=True)
class ImageHeader:
    """Header of one image (one frame of a multi-frame file).

    Attributes
    ----------
    path : str
        File the frame comes from (the master file for HDF5).
    frame : int or None
        1-based frame number within a multi-frame file; None for single-image files.
    format : str
        fabio class name (``"CbfImage"``, ``"DtrekImage"``, ...) or ``"HDF5"``.
    detector_type : str
        One of :data:`DETECTOR_TYPES`.
    nslow, nfast : int
        Image size in pixels (rows, columns of ``data[slow, fast]``).
    pixel_slow, pixel_fast : float or None
        Pixel size (mm).
    wavelength : float or None
        Angstrom.
    distance : float or None
        Crystal to detector distance along the detector normal (mm).
    beam_x, beam_y : float or None
        Direct-beam position (mm) in MOSFLM coordinates: x along slow, y along fast. With
        two-theta != 0 this is the foot of the detector normal through the crystal.
    phi_start, phi_end : float or None
        Spindle angles at the start and end of the exposure (deg); equal for a still.
    two_theta : float or None
        Detector swing angle about the spindle (deg).
    gain : float or None
        ADU per photon.
    overload : float or None
        Saturation value (counts); pixels at or above it are overloaded.
    nullpix : float or None
        Pixels at or below this value are not active (e.g. -1 for Pilatus gaps/dead pixels).
    adcoffset : float or None
        Pedestal added to every pixel by the detector electronics (ADU; ADSC/SMV
        ``IMAGE_PEDESTAL``), subtracted before dividing by the gain (MOSFLM ADCOFFSET).
    detector_omega : float or None
        In-plane detector rotation (deg), see the module docstring.
    reverse_phi : bool
        Spindle turns the other way (see the module docstring).
    serial : str or None
        Detector serial number or model string.
    exposure : float or None
        Exposure time (s).
    raw : dict
        Header items as strings (native keys).
    warnings : tuple of str
        Things the adapter noticed (unit guesses, inconsistent items) for the session to print.
    rejected : dict
        Header values that were physically impossible (attribute -> message); the attribute
        itself is None (see :mod:`mosflm_py.imageio.sanity`).
    no_pixels : str or None
        For an image too small to hold data (a header-only placeholder such as CrystFEL's 1 x 1
        SMV image), the message that refuses every use of its pixels; None for a real image.
    """

    path: str
    frame: int | None
    format: str
    detector_type: str
    nslow: int
    nfast: int
    pixel_slow: float | None = None
    pixel_fast: float | None = None
    wavelength: float | None = None
    distance: float | None = None
    beam_x: float | None = None
    beam_y: float | None = None
    phi_start: float | None = None
    phi_end: float | None = None
    two_theta: float | None = None
    gain: float | None = None
    overload: float | None = None
    nullpix: float | None = None
    adcoffset: float | None = None
    detector_omega: float | None = None
    reverse_phi: bool = False
    serial: str | None = None
    exposure: float | None = None
    raw: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    warnings: tuple[str, ...] = ()
    rejected: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    no_pixels: str | None = None

    @property
    def osc_width(self) -> float | None:
        """Oscillation width ``phi_end - phi_start`` (deg), None when unknown."""
        if self.phi_start is None or self.phi_end is None:
            return None
        return self.phi_end - self.phi_start

    @property
    def beam_px(self) -> tuple[float, float] | None:
        """Beam position in pixels (slow, fast), None when unknown."""
        if None in (self.beam_x, self.beam_y, self.pixel_slow, self.pixel_fast):
            return None
        return self.beam_x / self.pixel_slow, self.beam_y / self.pixel_fast  # type: ignore[operator]

    def with_values(self, **changes: Any) -> ImageHeader:
        """Copy with some fields changed (``dataclasses.replace``)."""
        return replace(self, **changes)

    def describe(self) -> list[str]:
        """Lines summarising the header for printing (no trailing newlines)."""

        def fmt(v: float | None, spec: str, unit: str = "") -> str:
            return "unknown" if v is None else f"{v:{spec}}{unit}"

        name = self.path if self.frame is None else f"{self.path} (frame {self.frame})"
        lines = [
            f" Image file: {name}",
            f" Format: {self.format}   detector type: {self.detector_type}"
            + (f"   serial: {self.serial}" if self.serial else ""),
            f" Image consists of {self.nslow} stripes each of {self.nfast} pixels"
            f"   pixel size {fmt(self.pixel_slow, '.5f')} x {fmt(self.pixel_fast, '.5f')} mm",
            f" Wavelength {fmt(self.wavelength, '.5f', ' A')}"
            f"   distance {fmt(self.distance, '.2f', ' mm')}"
            f"   two-theta {fmt(self.two_theta, '.2f', ' deg')}",
            f" Beam (X, Y) = ({fmt(self.beam_x, '.2f')}, {fmt(self.beam_y, '.2f')}) mm",
            f" Phi start {fmt(self.phi_start, '.3f')}  end {fmt(self.phi_end, '.3f')}"
            f"  width {fmt(self.osc_width, '.3f')} deg"
            + ("   (REVERSEPHI)" if self.reverse_phi else ""),
        ]
        if self.no_pixels:
            lines += [" A header-only placeholder image (too small to hold data):",
                      " only AUTOINDEX from a spot file (AUTOINDEX ... FILE) can use it"]
        extras = []
        if self.detector_omega is not None and abs(self.detector_omega) > 1e-6:
            extras.append(f"detector omega {self.detector_omega:.2f} deg")
        if self.gain is not None:
            extras.append(f"gain {self.gain:g}")
        if self.overload is not None:
            extras.append(f"overload cutoff {self.overload:g}")
        if self.nullpix is not None:
            extras.append(f"nullpix {self.nullpix:g}")
        if self.adcoffset:
            extras.append(f"adcoffset {self.adcoffset:g}")
        if self.exposure is not None:
            extras.append(f"exposure {self.exposure:g} s")
        if extras:
            lines.append(" " + ", ".join(extras))
        gon, scan = self.raw.get("goniometer"), self.raw.get("scan_axis")
        if gon or scan:
            axis = self.raw.get("imgcif_rotation_axis")
            lines.append(
                " Goniometer: " + (gon or "no axis settings in the header")
                + (f"   scan axis {scan}" if scan else "")
                + (f" (imgCIF vector {axis})" if axis else "")
            )
        lines.extend(f" Warning: {w}" for w in self.warnings)
        return lines
