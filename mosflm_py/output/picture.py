"""PNG picture of a detector image with found spots and predicted reflections (iMosflm style).

The image is drawn as iMosflm does: inverted grey scale (dark spots on white), rows = slow
direction, columns = fast direction (fabio's ``data[slow, fast]`` order), with

* predicted reflections as small boxes: blue = fully recorded, yellow = partial, red = spatially
  overlapped, green = too wide in phi (the iMosflm colour code, Battye et al. 2011,
  Acta Cryst. D67, 271-281);
* found spots as magenta crosses;
* the direct-beam position as an orange cross in a circle;
* resolution rings (teal) labelled in Angstrom;
* a colour key in the top-left corner.

Large detectors are reduced by an integer factor to at most ``max_size`` pixels on the longer
side; each output pixel takes the maximum of its block so that sharp spots stay visible.
Everything here takes plain arrays in detector pixel coordinates (slow, fast).
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mosflm_py.atomic import atomic_path

__all__ = [
    "BEAM_COLOUR",
    "PREDICTION_COLOURS",
    "RING_COLOUR",
    "SPOT_COLOUR",
    "PredictionClass",
    "contrast_limits",
    "picture_scale",
    "render_picture",
    "to_picture_xy",
    "write_picture",
]


class PredictionClass(enum.IntEnum):
    """Class of a predicted reflection, as coloured by iMosflm."""

    FULL = 0
    PARTIAL = 1
    OVERLAP = 2
    TOO_WIDE = 3


PREDICTION_COLOURS: dict[PredictionClass, tuple[int, int, int]] = {
    PredictionClass.FULL: (0, 0, 255),  # blue
    PredictionClass.PARTIAL: (235, 190, 0),  # yellow, darkened to be visible on white
    PredictionClass.OVERLAP: (255, 0, 0),  # red
    PredictionClass.TOO_WIDE: (0, 170, 0),  # green
}
SPOT_COLOUR = (210, 0, 210)  # magenta crosses
BEAM_COLOUR = (255, 120, 0)  # orange
RING_COLOUR = (0, 130, 130)  # teal
_LABEL_NAMES = {
    PredictionClass.FULL: "full",
    PredictionClass.PARTIAL: "partial",
    PredictionClass.OVERLAP: "overlapped",
    PredictionClass.TOO_WIDE: "too wide",
}


def picture_scale(shape: tuple[int, int], max_size: int = 1600) -> int:
    """Integer reduction factor so that the picture is at most *max_size* pixels on a side."""
    if max_size < 16:
        raise ValueError("max_size must be at least 16 pixels")
    return max(1, math.ceil(max(shape) / max_size))


def to_picture_xy(px: np.ndarray, scale: int) -> np.ndarray:
    """Picture (x, y) coordinates of detector pixel coordinates (slow, fast).

    x runs along the fast direction (columns), y along the slow direction (rows); a detector
    position p (continuous pixel coordinates) lands in picture pixel ``floor(p / scale)``.
    """
    p = np.asarray(px, dtype=np.float64).reshape(-1, 2)
    return np.stack([p[:, 1] / scale, p[:, 0] / scale], axis=1)


def contrast_limits(
    frame: np.ndarray, low_percentile: float = 50.0, high_percentile: float = 99.5
) -> tuple[float, float]:
    """Grey-scale limits (counts) from percentiles of the valid pixels.

    The low limit is the median (the background shows as white), the high limit a high
    percentile (spots saturate to black). Negative or non-finite pixels (gaps, masked) are
    ignored; a sub-sample of at most ~512 x 512 pixels is used.
    """
    data = np.asarray(frame)
    sample = data[:: max(1, data.shape[0] // 512), :: max(1, data.shape[1] // 512)]
    valid = sample[np.isfinite(sample) & (sample >= 0)]
    if valid.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(valid, [low_percentile, high_percentile])
    if hi <= lo:
        hi = lo + max(1.0, float(valid.max()) - lo)
    return float(lo), float(hi)


def _reduce(frame: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Block maximum (and a mask of blocks with any invalid pixel) for an integer *scale*."""
    data = np.asarray(frame, dtype=np.float32)
    invalid = ~np.isfinite(data) | (data < 0)
    data = np.where(invalid, -np.inf, data)
    if scale == 1:
        return data, invalid
    ny, nx = -(-data.shape[0] // scale), -(-data.shape[1] // scale)
    padded = np.full((ny * scale, nx * scale), -np.inf, dtype=np.float32)
    padded[: data.shape[0], : data.shape[1]] = data
    blocks = padded.reshape(ny, scale, nx, scale).max(axis=(1, 3))
    return blocks, ~np.isfinite(blocks)


def _grey(frame: np.ndarray, scale: int) -> np.ndarray:
    reduced, invalid = _reduce(frame, scale)
    lo, hi = contrast_limits(reduced)  # limits of what is shown (block maxima)
    level = np.clip((reduced - lo) / (hi - lo), 0.0, 1.0)
    grey = (255.0 * (1.0 - level) + 0.5).astype(np.uint8)
    grey[invalid] = 200  # gaps and masked pixels: light grey
    return np.repeat(grey[:, :, None], 3, axis=2)


def _stamp(rgb: np.ndarray, xy: np.ndarray, offsets: np.ndarray, colour: Sequence[int]) -> None:
    """Set the pixels at xy + offsets (integer picture coordinates) to *colour*, vectorised."""
    if xy.size == 0:
        return
    centre = np.floor(xy).astype(np.int64)
    pts = (centre[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
    h, w = rgb.shape[:2]
    ok = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    pts = pts[ok]
    rgb[pts[:, 1], pts[:, 0]] = colour


def _box_offsets(half: int) -> np.ndarray:
    r = np.arange(-half, half + 1)
    top = np.stack([r, np.full_like(r, -half)], axis=1)
    bottom = np.stack([r, np.full_like(r, half)], axis=1)
    left = np.stack([np.full_like(r, -half), r], axis=1)
    right = np.stack([np.full_like(r, half), r], axis=1)
    return np.unique(np.concatenate([top, bottom, left, right]), axis=0)


def _cross_offsets(half: int) -> np.ndarray:
    r = np.arange(-half, half + 1)
    return np.unique(np.concatenate([np.stack([r, r], 1), np.stack([r, -r], 1)]), axis=0)


def _font(size: int) -> tuple[ImageFont.ImageFont | ImageFont.FreeTypeFont, bool]:
    """A legible font and whether it has the Angstrom sign (DejaVu Sans if installed)."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size), True
    except OSError:
        pass
    try:
        return ImageFont.load_default(size=size), False
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default(), False


def render_picture(
    frame: np.ndarray,
    *,
    spots_px: np.ndarray | None = None,
    predictions_px: np.ndarray | None = None,
    prediction_class: np.ndarray | None = None,
    beam_px: tuple[float, float] | None = None,
    ring_radii_px: Sequence[float] = (),
    ring_labels: Sequence[str] = (),
    max_size: int = 1600,
    title: str = "",
) -> Image.Image:
    """Render a detector image with overlays (see the module docstring for the colours).

    Parameters
    ----------
    frame : ndarray, shape (n_slow, n_fast)
        Detector image in counts; negative or non-finite pixels are shown light grey.
    spots_px : ndarray, shape (N, 2), optional
        Found spot centroids (slow, fast), continuous pixel coordinates.
    predictions_px : ndarray, shape (M, 2), optional
        Predicted positions (slow, fast).
    prediction_class : ndarray of int, shape (M,), optional
        :class:`PredictionClass` codes (default: all FULL).
    beam_px : (slow, fast), optional
        Direct-beam position.
    ring_radii_px : sequence of float
        Resolution-ring radii about the beam, detector pixels.
    ring_labels : sequence of str
        One label per ring, e.g. ``"3.00 Å"``.
    max_size : int
        Longest side of the picture, pixels.
    title : str
        Text written at the bottom-left.

    Returns
    -------
    PIL.Image.Image
        RGB image of size ``(ceil(n_fast / s), ceil(n_slow / s))``, s = :func:`picture_scale`.
    """
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise ValueError(f"frame must be 2-D, got shape {frame.shape}")
    scale = picture_scale(frame.shape, max_size)
    rgb = _grey(frame, scale)
    height, width = rgb.shape[:2]
    marker = max(3, min(width, height) // 300)

    if predictions_px is not None and len(predictions_px):
        xy = to_picture_xy(predictions_px, scale)
        cls = (np.zeros(len(xy), np.int64) if prediction_class is None
               else np.asarray(prediction_class, np.int64).reshape(-1))  # fmt: skip
        if cls.shape[0] != xy.shape[0]:
            raise ValueError("one prediction_class code per predicted position is needed")
        box = _box_offsets(marker)
        for code in PredictionClass:  # draw fulls first so that problems stay on top
            _stamp(rgb, xy[cls == code], box, PREDICTION_COLOURS[code])
    if spots_px is not None and len(spots_px):
        _stamp(rgb, to_picture_xy(spots_px, scale), _cross_offsets(max(2, marker - 1)), SPOT_COLOUR)

    image = Image.fromarray(rgb, mode="RGB")
    draw = ImageDraw.Draw(image)
    font_size = max(12, min(width, height) // 60)
    font, has_angstrom = _font(font_size)
    if not has_angstrom:
        ring_labels = [label.replace("Å", "A") for label in ring_labels]
    line = max(1, font_size // 10)
    if beam_px is not None:
        (bx, by), r = to_picture_xy(np.array([beam_px]), scale)[0], 2 * marker + 2
        if ring_radii_px:
            for k, radius in enumerate(ring_radii_px):
                rr = radius / scale
                draw.ellipse([bx - rr, by - rr, bx + rr, by + rr], outline=RING_COLOUR, width=line)
                if k < len(ring_labels):
                    angle = math.radians(-35.0)
                    tx, ty = bx + rr * math.cos(angle), by + rr * math.sin(angle)
                    draw.text((tx + 3, ty - font_size - 2), ring_labels[k], fill=RING_COLOUR,
                              font=font, stroke_width=2, stroke_fill=(255, 255, 255))  # fmt: skip
        draw.ellipse([bx - r, by - r, bx + r, by + r], outline=BEAM_COLOUR, width=line + 1)
        draw.line([bx - 2 * r, by, bx + 2 * r, by], fill=BEAM_COLOUR, width=line + 1)
        draw.line([bx, by - 2 * r, bx, by + 2 * r], fill=BEAM_COLOUR, width=line + 1)

    # colour key
    entries = [(_LABEL_NAMES[c], PREDICTION_COLOURS[c]) for c in PredictionClass]
    entries += [("found spot", SPOT_COLOUR), ("beam", BEAM_COLOUR)]
    pad, y = font_size // 2, font_size // 2
    key_w = int(font_size * 7.5)
    draw.rectangle([0, 0, key_w, y + len(entries) * (font_size + 4) + pad], fill=(255, 255, 255),
                   outline=(0, 0, 0))  # fmt: skip
    for name, colour in entries:
        draw.rectangle([pad, y + 2, pad + font_size - 4, y + font_size - 2], outline=colour,
                       width=max(2, line))  # fmt: skip
        draw.text((pad + font_size + 2, y), name, fill=(0, 0, 0), font=font)
        y += font_size + 4
    if title:
        draw.text((pad, height - font_size - pad), title, fill=(0, 0, 0), font=font,
                  stroke_width=2, stroke_fill=(255, 255, 255))  # fmt: skip
    return image


def write_picture(path: str | os.PathLike[str], image: Image.Image) -> tuple[int, int]:
    """Write a picture from :func:`render_picture` as PNG, atomically.

    Returns
    -------
    (width, height) of the picture in pixels.
    """
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG")
    return image.size
