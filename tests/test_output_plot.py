"""The one PNG line-plot renderer (STRATEGY/TESTGEN graphs and the QUICKSCALE report)."""

import io

import numpy as np
from PIL import Image

from mosflm_py.output.plot import Curve, png_bytes, render_line_plot, resolution_ticks


def _blue(img, x0, x1, y):
    """Blue (curve colour 0) pixels in columns x0..x1 around row y."""
    a = np.asarray(img, int)[y - 4 : y + 5, x0:x1]
    return int(((a[..., 2] > 150) & (a[..., 0] < 80)).sum())


def test_missing_value_breaks_the_line_and_png_bytes_round_trip():
    # x 0..2 on a 900-wide plot with margins 80/30: x=0.5 is at column 277, x=1.5 at 632
    kw = dict(xlim=(0.0, 2.0), ylim=(0.0, 2.0), legend="lower right")
    whole = render_line_plot([Curve([0, 1, 2], [1, 1, 1])], "t", "x", "y", **kw)
    gap = render_line_plot([Curve([0, 1, 2], [1, np.nan, 1])], "t", "x", "y", **kw)
    y = round(600 - 70 - 0.5 * (600 - 50 - 70))
    assert _blue(whole, 260, 300, y) > 30 and _blue(whole, 610, 650, y) > 30
    assert _blue(gap, 260, 300, y) == 0 and _blue(gap, 610, 650, y) == 0
    data = png_bytes(gap)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (900, 600)


def test_resolution_ticks_label_d_on_a_one_over_d_squared_axis():
    ticks = resolution_ticks(1 / 10**2, 1 / 2**2)
    assert [lab for _, lab in ticks] == ["10", "7", "5", "4", "3", "2.5", "2"]
    assert all(abs(x - 1 / float(lab) ** 2) < 1e-12 for x, lab in ticks)
