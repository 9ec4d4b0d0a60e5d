"""Line graphs as PNG images, drawn with Pillow (matplotlib is not a dependency).

A deliberately small renderer for the report's graphs (iMosflm's panes and Aimless's loggraph
plots): one or two y series against x, axes with "nice" ticks, a legend, missing values skipped.
Written here because the project's plotting dependency is Pillow only.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["Series", "line_plot", "nice_ticks"]

COLOURS = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
]

Series = tuple[str, Sequence[float], Sequence[float]]


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About *n* round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


def _label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:g}" if abs(v - round(v)) < 1e-9 else f"{v:.3g}"


def line_plot(
    title: str,
    xlabel: str,
    ylabel: str,
    series: Sequence[Series],
    x_resolution: bool = False,
    size: tuple[int, int] = (560, 340),
    y_min: float | None = None,
    y_max: float | None = None,
) -> bytes:
    """PNG bytes of a line graph.

    Parameters
    ----------
    series
        (label, x, y) triples; NaN points are skipped (the line is broken there).
    x_resolution
        x values are 1/d²; tick labels show d (Å), as Aimless's resolution axes.
    y_min, y_max
        Fixed y range (default: from the data, including 0 when close).
    """
    w, h = size
    img = Image.new("RGB", size, "white")
    dr = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    per_row = 4
    left, right, bottom = 64, 16, 46
    top = 24 + 14 * math.ceil(len(series) / per_row) + 6  # the legend sits above the plot
    xs = np.concatenate([np.asarray(s[1], float) for s in series]) if series else np.zeros(0)
    ys = np.concatenate([np.asarray(s[2], float) for s in series]) if series else np.zeros(0)
    ok = np.isfinite(xs) & np.isfinite(ys)
    dr.text((left, 6), title, fill="black", font=font)
    if not ok.any():
        dr.text((w // 2 - 30, h // 2), "no data", fill="gray", font=font)
        return _png(img)
    x0, x1 = float(xs[ok].min()), float(xs[ok].max())
    if x1 <= x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    lo = float(ys[ok].min()) if y_min is None else y_min
    hi = float(ys[ok].max()) if y_max is None else y_max
    if y_min is None and lo > 0 and lo < 0.3 * hi:
        lo = 0.0
    yt = nice_ticks(lo, hi)
    lo, hi = min(lo, yt[0]), max(hi, yt[-1])
    pw, ph = w - left - right, h - top - bottom

    def px(x):
        return left + (x - x0) / (x1 - x0) * pw

    def py(y):
        return top + ph - (y - lo) / (hi - lo) * ph if hi > lo else top + ph / 2

    dr.rectangle([left, top, left + pw, top + ph], outline=(90, 90, 90))
    for t in yt:
        y = py(t)
        dr.line([left - 4, y, left, y], fill="black")
        dr.line([left + 1, y, left + pw - 1, y], fill=(232, 232, 232))
        dr.text((4, y - 6), _label(t), fill="black", font=font)
    if x_resolution:
        dticks = [
            d
            for d in (
                50,
                20,
                10,
                7,
                5,
                4,
                3,
                2.5,
                2,
                1.8,
                1.6,
                1.5,
                1.4,
                1.3,
                1.2,
                1.1,
                1.0,
                0.9,
                0.8,
                0.7,
                0.6,
            )
            if x0 <= 1 / d**2 <= x1
        ]
        xt = [(1 / d**2, f"{d:g}") for d in dticks]
    else:
        xt = [(t, _label(t)) for t in nice_ticks(x0, x1) if x0 <= t <= x1]
    for t, lab in xt:
        x = px(t)
        dr.line([x, top + ph, x, top + ph + 4], fill="black")
        dr.text((x - 3 * len(lab), top + ph + 6), lab, fill="black", font=font)
    dr.text((left + pw // 2 - 3 * len(xlabel), h - 16), xlabel, fill="black", font=font)
    # y label, rotated
    lab_img = Image.new("RGB", (max(8 * len(ylabel), 10), 12), "white")
    ImageDraw.Draw(lab_img).text((0, 0), ylabel, fill="black", font=font)
    lab_img = lab_img.rotate(90, expand=True)
    img.paste(
        lab_img,
        (46 - lab_img.width if lab_img.width < 46 else 0, top + max(0, (ph - lab_img.height) // 2)),
    )
    for k, (name, sx, sy) in enumerate(series):
        col = COLOURS[k % len(COLOURS)]
        sx = np.asarray(sx, float)
        sy = np.asarray(sy, float)
        pts: list[tuple[float, float]] = []
        for x, y in zip(sx, sy):
            if math.isfinite(x) and math.isfinite(y):
                pts.append((px(x), py(min(max(y, lo), hi))))
            else:
                if len(pts) > 1:
                    dr.line(pts, fill=col, width=2)
                pts = []
        if len(pts) > 1:
            dr.line(pts, fill=col, width=2)
        for x, y in zip(sx, sy):
            if math.isfinite(x) and math.isfinite(y) and len(sx) <= 60:
                cx, cy = px(x), py(min(max(y, lo), hi))
                dr.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=col)
        lx = left + (k % per_row) * ((w - left - right) // per_row)
        ly = 22 + 14 * (k // per_row)
        dr.line([lx, ly + 6, lx + 16, ly + 6], fill=col, width=2)
        dr.text((lx + 20, ly), name, fill=col, font=font)
    return _png(img)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
