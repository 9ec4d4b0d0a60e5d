"""Image input: headers in MOSFLM conventions, frames as ``data[slow, fast]``, templates, series.

Public API::

    from mosflm_py.imageio import ImageHeader, read_header, read_frame, ImageSeries
    from mosflm_py.imageio import template_from_filename, filename, find_numbers
"""

from __future__ import annotations

from mosflm_py.imageio.formats import read_frame, read_header
from mosflm_py.imageio.header import ImageHeader
from mosflm_py.imageio.series import ImageSeries
from mosflm_py.imageio.template import filename, find_numbers, template_from_filename

__all__ = [
    "ImageHeader",
    "ImageSeries",
    "filename",
    "find_numbers",
    "read_frame",
    "read_header",
    "template_from_filename",
]
