"""Small PNG line plots (axes, ticks, several curves, solid or dashed, legend) drawn with Pillow.

Used for the STRATEGY and TESTGEN graphs and for the QUICKSCALE report's graphs
(:mod:`mosflm_py.scaling.report`).  Pillow is already a dependency (the detector pictures,
:mod:`mosflm_py.output.picture`); a plotting library is not, and these graphs need only lines.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mosflm_py.atomic import atomic_path

__all__ = ["Curve", "png_bytes", "render_line_plot", "resolution_ticks", "write_line_plot"]

COLOURS = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


@dataclass(frozen=True)
class Curve:
    """One curve: x and y values, legend label, colour index, dashed or solid, markers.

    Points where x or y is not finite (NaN: missing) are skipped and the line is broken there.
    """

    x: Sequence[float]
    y: Sequence[float]
    label: str = ""
    colour: int = 0
    dashed: bool = False
    markers: bool = False


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


# d spacings (A) labelled on a 1/d^2 axis, as Aimless's resolution axes
_D_TICKS = (50, 20, 10, 7, 5, 4, 3, 2.5, 2, 1.8, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 1.0)
_D_TICKS += (0.9, 0.8, 0.7, 0.6)


def resolution_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """(1/d², label d) x-axis ticks for an axis of 1/d² (Å⁻²) from ``lo`` to ``hi``."""
    return [(1 / d**2, f"{d:g}") for d in _D_TICKS if lo <= 1 / d**2 <= hi]


def _runs(c: Curve) -> list[list[tuple[float, float]]]:
    """The curve's finite points, split into runs at missing values."""
    runs: list[list[tuple[float, float]]] = [[]]
    for a, b in zip(c.x, c.y):
        if np.isfinite(a) and np.isfinite(b):
            runs[-1].append((float(a), float(b)))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _dashed(
    draw: ImageDraw.ImageDraw,
    pts: list[tuple[float, float]],
    colour,
    width: int,
    dash: float = 9.0,
    gap: float = 6.0,
) -> None:
    on, left = True, dash
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
        seg = math.hypot(x1 - x0, y1 - y0)
        pos = 0.0
        while seg - pos > 1e-9:
            step = min(left, seg - pos)
            t0, t1 = pos / seg, (pos + step) / seg
            if on:
                draw.line(
                    [
                        (x0 + (x1 - x0) * t0, y0 + (y1 - y0) * t0),
                        (x0 + (x1 - x0) * t1, y0 + (y1 - y0) * t1),
                    ],
                    fill=colour,
                    width=width,
                )
            pos += step
            left -= step
            if left <= 1e-9:
                on = not on
                left = dash if on else gap


def render_line_plot(
    curves: Sequence[Curve],
    title: str,
    xlabel: str,
    ylabel: str,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float | None, float | None] | None = None,
    size: tuple[int, int] = (900, 600),
    legend: str = "upper right",
    x_ticks: Callable[[float, float], list[tuple[float, str]]] | None = None,
) -> Image.Image:
    """Draw ``curves`` on white with axes, ticks, labels and a legend; returns the image.

    Parameters
    ----------
    xlim, ylim
        Axis ranges (default: from the finite data); either end of ``ylim`` may be None (from
        the data).  Points outside the y range are drawn at its edge.
    legend
        "upper right" or "lower right" (on a white box inside the axes), or "above" (rows of
        four entries between the title and the axes, for graphs with many curves).
    x_ticks
        ``f(lo, hi) -> [(x, label), ...]`` for x ticks other than round numbers, e.g.
        :func:`resolution_ticks` for a 1/d² axis labelled in d.
    """
    w, h = size
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font, small = _font(16), _font(13)
    labelled = [c for c in curves if c.label]
    per_row = 4
    left, right, top, bottom = 80, 30, 50, 70
    if legend == "above" and labelled:
        top = 40 + 18 * math.ceil(len(labelled) / per_row)
    runs = [_runs(c) for c in curves]
    xs = [p[0] for rs in runs for r in rs for p in r]
    ys = [p[1] for rs in runs for r in rs for p in r]
    x0, x1 = xlim if xlim else ((min(xs), max(xs)) if xs else (0.0, 1.0))
    ylo, yhi = ylim if ylim else (None, None)
    y0 = ylo if ylo is not None else (min(ys) if ys else 0.0)
    y1 = yhi if yhi is not None else (max(ys) if ys else 1.0)
    if x1 <= x0:
        x0, x1 = x0 - 0.5, x0 + 0.5
    if y1 <= y0:
        y1 = y0 + 1.0

    def px(x: float, y: float) -> tuple[float, float]:
        y = min(max(y, y0), y1)
        return (
            left + (x - x0) / (x1 - x0) * (w - left - right),
            h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom),
        )

    draw.rectangle([left, top, w - right, h - bottom], outline=(0, 0, 0), width=1)
    xt = x_ticks(x0, x1) if x_ticks else [(t, f"{t:g}") for t in _nice_ticks(x0, x1, 8)]
    for t, lab in xt:
        x, _ = px(t, y0)
        draw.line([(x, h - bottom), (x, top)], fill=(225, 225, 225))
        draw.line([(x, h - bottom), (x, h - bottom + 5)], fill=(0, 0, 0))
        draw.text((x, h - bottom + 8), lab, fill=(0, 0, 0), font=small, anchor="ma")
    for t in _nice_ticks(y0, y1, 6):
        _, y = px(x0, t)
        draw.line([(left, y), (w - right, y)], fill=(225, 225, 225))
        draw.line([(left - 5, y), (left, y)], fill=(0, 0, 0))
        draw.text((left - 8, y), f"{t:g}", fill=(0, 0, 0), font=small, anchor="rm")
    draw.text((w / 2, 15), title, fill=(0, 0, 0), font=font, anchor="ma")
    draw.text((w / 2, h - 25), xlabel, fill=(0, 0, 0), font=font, anchor="ma")
    label_img = Image.new("RGB", (h - top - bottom, 22), (255, 255, 255))
    ImageDraw.Draw(label_img).text(
        ((h - top - bottom) / 2, 2), ylabel, fill=(0, 0, 0), font=font, anchor="ma"
    )
    img.paste(label_img.rotate(90, expand=True), (8, top))
    if not xs:
        draw.text(
            ((left + w - right) / 2, (top + h - bottom) / 2),
            "no data",
            fill=(128, 128, 128),
            font=font,
            anchor="mm",
        )
    for c, rs in zip(curves, runs):
        colour = COLOURS[c.colour % len(COLOURS)]
        for r in rs:
            pts = [px(a, b) for a, b in r]
            if len(pts) > 1:
                if c.dashed:
                    _dashed(draw, pts, colour, 2)
                else:
                    draw.line(pts, fill=colour, width=2)
            if c.markers or len(pts) == 1:
                for x, y in pts:
                    draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=colour, fill=colour)
    if legend == "above":
        for k, c in enumerate(labelled):
            colour = COLOURS[c.colour % len(COLOURS)]
            lx = left + (k % per_row) * ((w - left - right) // per_row)
            ly = 34 + 18 * (k // per_row)
            _legend_entry(draw, c, colour, lx, ly, small)
        return img
    box_h = 18 * len(labelled) + 8
    lx = w - right - 240
    ly = top + 8 if legend == "upper right" else h - bottom - box_h - 8
    if labelled:
        draw.rectangle(
            [lx - 6, ly - 4, w - right - 6, ly + box_h - 6],
            fill=(255, 255, 255),
            outline=(180, 180, 180),
        )
    for c in labelled:
        _legend_entry(draw, c, COLOURS[c.colour % len(COLOURS)], lx, ly, small)
        ly += 18
    return img


def _legend_entry(draw: ImageDraw.ImageDraw, c: Curve, colour, lx: float, ly: float, font) -> None:
    if c.dashed:
        _dashed(draw, [(lx, ly + 7), (lx + 30, ly + 7)], colour, 2, 6, 4)
    else:
        draw.line([(lx, ly + 7), (lx + 30, ly + 7)], fill=colour, width=2)
    draw.text((lx + 36, ly), c.label, fill=(0, 0, 0), font=font)


def png_bytes(image: Image.Image) -> bytes:
    """The plot as PNG file contents (for embedding, e.g. in an HTML report)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_line_plot(path: str | os.PathLike[str], image: Image.Image) -> tuple[int, int]:
    """Write the plot as PNG atomically; returns (width, height) in pixels."""
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG")
    return image.size
