"""MOSFLM filename templates: ``name_###.ext`` with ``#`` standing for the image-number digits."""

from __future__ import annotations

import glob
import os
import re

from mosflm_py.errors import ImageError

_COMPRESSION = (".gz", ".bz2", ".Z", ".xz")
_SPECIAL_SUFFIXES = ("_master.h5", "_master.nxs", ".nxs", ".h5")


def _split_extension(name: str) -> tuple[str, str]:
    """('stem', '.ext[.gz]') with the image extension plus any compression suffix."""
    comp = ""
    for c in _COMPRESSION:
        if name.endswith(c):
            comp, name = c, name[: -len(c)]
            break
    for suf in _SPECIAL_SUFFIXES:
        if name.endswith(suf):
            return name[: -len(suf)], suf + comp
    stem, ext = os.path.splitext(name)
    if ext and not re.fullmatch(r"\.\d+", ext):
        return stem, ext + comp
    return name, comp


def template_from_filename(name: str) -> tuple[str, int]:
    """Template and image number from a file name.

    The number is the last run of digits before the extension (``.cbf``, ``.img``, ``.cbf.gz``,
    ``.img.bz2``, ``_master.h5``); when the extension itself is numeric (Bruker ``.0026``) the
    number is that extension.

    Examples
    --------
    >>> template_from_filename("/d/l-cyst_04_00001.cbf")
    ('/d/l-cyst_04_#####.cbf', 1)
    >>> template_from_filename("x_1_E1_001.img.bz2")
    ('x_1_E1_###.img.bz2', 1)

    Raises
    ------
    ImageError
        No digits to number the image.
    """
    directory, base = os.path.split(name)
    stem, ext = _split_extension(base)
    m = re.search(r"(\d+)$", stem)
    if m is None and ext.endswith("_master.h5"):
        return name, 1
    if m is None:
        raise ImageError(
            f"cannot make a template from {name}: no image number before its extension"
        )
    digits = m.group(1)
    tmpl = stem[: m.start()] + "#" * len(digits) + ext
    return os.path.join(directory, tmpl) if directory else tmpl, int(digits)


def _split_template(template: str) -> tuple[str, int, str]:
    m = list(re.finditer(r"#+", template))
    if not m:
        raise ImageError(f"template {template} has no # characters for the image number")
    last = m[-1]
    return template[: last.start()], last.end() - last.start(), template[last.end() :]


def filename(template: str, n: int) -> str:
    """File name of image ``n``: the ``#`` run replaced by ``n`` zero-padded to its width."""
    pre, width, post = _split_template(template)
    if n < 0 or len(str(n)) > width:
        raise ImageError(f"image number {n} does not fit template {template}")
    return f"{pre}{n:0{width}d}{post}"


def find_numbers(
    template: str, directories: list[str] | str | None = None, extension: str | None = None
) -> list[int]:
    """Image numbers present on disk for ``template`` (sorted, unique).

    Parameters
    ----------
    template : str
        Template (may contain a directory part).
    directories : list of str, optional
        Directories searched (DIRECTORY keyword); the first one with matches is used. Default: the
        template's own directory or the current directory.
    extension : str, optional
        Replaces the template's extension (EXTENSION keyword), e.g. ``"img"``.
    """
    if extension:
        stem, _ = _split_extension(template)
        template = stem + "." + extension.lstrip(".")
    if isinstance(directories, str):
        directories = [directories]
    tdir, tbase = os.path.split(template)
    dirs = list(directories) if directories else [tdir or "."]
    pre, width, post = _split_template(tbase)
    pattern = re.compile(re.escape(pre) + r"(\d{" + str(width) + "})" + re.escape(post) + r"$")
    for d in dirs:
        d = os.path.join(d, tdir) if tdir and not os.path.isabs(tdir) and directories else d
        if tdir and os.path.isabs(tdir):
            d = tdir
        globbed = glob.glob(os.path.join(glob.escape(d), glob.escape(pre) + "[0-9]" * width
                                         + glob.escape(post)))
        nums = sorted(
            {int(m.group(1)) for g in globbed if (m := pattern.match(os.path.basename(g)))}
        )
        if nums:
            return nums
    return []
