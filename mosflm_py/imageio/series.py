"""A rotation series of images: template + directory + image numbers, headers cached lazily.

``ImageSeries.from_filename`` finds the whole series from one file (as iMosflm does when an image
is opened); an HDF5 master file is one series whose image number ``n`` is frame ``n``.
Per-image phi ranges come from the first header plus ``(n - first) * width`` when the first and
last headers agree with that model, so integration never re-parses headers in its hot loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import ImageError
from mosflm_py.imageio import hdf5
from mosflm_py.imageio.formats import read_frame, read_header
from mosflm_py.imageio.header import ImageHeader
from mosflm_py.imageio.rawfile import read_prefix
from mosflm_py.imageio.template import (
    _split_extension,
    filename,
    find_numbers,
    template_from_filename,
)

_PHI_TOL = 1e-3  # deg: agreement needed between header phi and start + n * width


def _contiguity_warnings(numbers: list[int]) -> list[str]:
    out = []
    for a, b in zip(numbers, numbers[1:]):
        if b != a + 1:
            gap = f"{a + 1}" if b == a + 2 else f"{a + 1}-{b - 1}"
            out.append(f"images {gap} are missing from the series (gap between {a} and {b})")
    return out


@dataclass
class ImageSeries:
    """Images ``numbers`` of ``template`` in ``directory`` (or frames of an HDF5 master file).

    Attributes
    ----------
    template : str
        File-name template with ``#`` digits (no directory), or the master file name for HDF5.
    directory : str
        Directory holding the images.
    numbers : list of int
        Sorted image numbers present.
    hdf5_master : bool
        True when the series is the frames of one HDF5 master file.
    warnings : list of str
        Gaps in the numbering and inconsistent headers, for the session to print.
    """

    template: str
    directory: str
    numbers: list[int]
    hdf5_master: bool = False
    warnings: list[str] = field(default_factory=list)
    _headers: dict[int, ImageHeader] = field(default_factory=dict, repr=False)
    _phi_model: tuple[float, float, int] | None = field(default=None, repr=False)
    _phi_checked: bool = field(default=False, repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_template(
        cls,
        template: str,
        directories: list[str] | str | None = None,
        extension: str | None = None,
    ) -> ImageSeries:
        """Series of all images matching ``template`` in the first directory that has any.

        Raises
        ------
        ImageError
            No file matches.
        """
        if isinstance(directories, str):
            directories = [directories]
        tdir, tbase = os.path.split(template)
        if "#" not in tbase:
            path = template if not directories else os.path.join(directories[0], template)
            return cls.from_filename(path)
        if extension:
            tbase = _split_extension(tbase)[0] + "." + extension.lstrip(".")
        search = [os.path.join(d, tdir) if tdir and not os.path.isabs(tdir) else (tdir or d)
                  for d in (directories or [tdir or "."])]
        for d in search:
            numbers = find_numbers(tbase, [d])
            if numbers:
                return cls(tbase, d, numbers, warnings=_contiguity_warnings(numbers))
        where = ", ".join(search)
        raise ImageError(f"no images match template {tbase} in directory {where}")

    @classmethod
    def from_filename(cls, path: str) -> ImageSeries:
        """The whole series that image ``path`` belongs to (single-image series if unnumbered)."""
        path = str(path)
        prefix = read_prefix(path, 16)
        directory, base = os.path.split(os.path.abspath(path))
        if hdf5.is_hdf5(prefix):
            n = hdf5.nframes(path)
            return cls(base, directory, list(range(1, n + 1)), hdf5_master=True)
        try:
            tmpl, _ = template_from_filename(base)
        except ImageError:
            return cls(base, directory, [1], hdf5_master=False)
        return cls.from_template(tmpl, [directory])

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.numbers)

    @property
    def first(self) -> int:
        return self.numbers[0]

    @property
    def last(self) -> int:
        return self.numbers[-1]

    def _check(self, n: int) -> None:
        if n not in self._number_set:
            raise ImageError(
                f"image {n} is not in the series {self.template} "
                f"(images {self.first} to {self.last})"
            )

    @property
    def _number_set(self) -> set[int]:
        s = getattr(self, "_numset_cache", None)
        if s is None or len(s) != len(self.numbers):
            s = set(self.numbers)
            object.__setattr__(self, "_numset_cache", s)
        return s

    def path(self, n: int) -> str:
        """File holding image ``n``."""
        if self.hdf5_master or "#" not in self.template:
            return os.path.join(self.directory, self.template)
        return os.path.join(self.directory, filename(self.template, n))

    def header(self, n: int) -> ImageHeader:
        """Header of image ``n`` (parsed once, then cached)."""
        self._check(n)
        h = self._headers.get(n)
        if h is None:
            h = read_header(self.path(n), n if self.hdf5_master else None)
            if n != self.first:
                self._same_kind(n, h)
            self._headers[n] = h
        return h

    def _same_kind(self, n: int, h: ImageHeader) -> None:
        """Every image of a series must have the size and format of the first one."""
        h0 = self.header(self.first)
        if (h.nslow, h.nfast) != (h0.nslow, h0.nfast) or h.format != h0.format:
            raise ImageError(
                f"image {n} ({self.path(n)}) is a {h.format} image of {h.nslow} x {h.nfast} "
                f"pixels but image {self.first} of the series is a {h0.format} image of "
                f"{h0.nslow} x {h0.nfast} pixels: every image of a series must have the same "
                "size and format"
            )

    def frame(self, n: int) -> np.ndarray:
        """Pixels of image ``n`` as ``data[slow, fast]`` (native dtype).

        Raises
        ------
        ImageError
            Unreadable image, pixel data whose shape is not the series' image size, or a
            header-only placeholder image (too small to hold data).
        """
        self._check(n)
        placeholder = self.header(n).no_pixels
        if placeholder:
            raise ImageError(placeholder)
        data = read_frame(self.path(n), n if self.hdf5_master else None)
        h0 = self.header(self.first)
        if data.shape != (h0.nslow, h0.nfast):
            size = " x ".join(str(k) for k in data.shape)
            raise ImageError(
                f"image {n} ({self.path(n)}) holds {size} pixels but the series' images are "
                f"{h0.nslow} x {h0.nfast} pixels (image {self.first}): every image of a series "
                "must have the same size"
            )
        return data

    def _build_phi_model(self) -> None:
        self._phi_checked = True
        h0 = self.header(self.first)
        if h0.phi_start is None or h0.osc_width is None:
            return
        width = h0.osc_width
        model = (h0.phi_start, width, self.first)
        if self.last != self.first:
            hl = self.header(self.last)
            expect = h0.phi_start + (self.last - self.first) * width
            if hl.phi_start is None or abs(hl.phi_start - expect) > _PHI_TOL * max(
                1, self.last - self.first
            ) or hl.osc_width is None or abs(hl.osc_width - width) > _PHI_TOL:
                self.warnings.append(
                    f"phi of image {self.last} ({hl.phi_start}) does not follow image "
                    f"{self.first} ({h0.phi_start}) + n x {width}: reading every header"
                )
                return
        self._phi_model = model

    def phi_range(self, n: int) -> tuple[float, float]:
        """(phi_start, phi_end) of image ``n`` in degrees.

        Raises
        ------
        ImageError
            The header has no rotation angles.
        """
        self._check(n)
        if n in self._headers or not self._phi_checked:
            if not self._phi_checked:
                self._build_phi_model()
        if self._phi_model is not None and n not in self._headers:
            start, width, first = self._phi_model
            s = start + (n - first) * width
            return s, s + width
        h = self.header(n)
        if h.phi_start is None or h.phi_end is None:
            raise ImageError(f"image {self.path(n)} has no phi in its header: give PHI on IMAGE")
        return h.phi_start, h.phi_end
