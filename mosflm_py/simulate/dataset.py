"""Simulate a whole rotation sweep to image files plus ground truth (:func:`simulate_dataset`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mosflm_py.errors import BadData, BadParameter, ImageError
from mosflm_py.kernels.simulate import detector_counts
from mosflm_py.simulate.detector import (
    background_map,
    backstop_mask,
    dead_pixel_mask,
    detector_frame,
    module_gap_mask,
)
from mosflm_py.simulate.domains import blur, domain_model, render_domains_batch
from mosflm_py.simulate.params import SimulationParams
from mosflm_py.simulate.render import CrystalModel, crystal_model, render, sweep
from mosflm_py.simulate.truth import (
    Observations,
    assign_partials,
    load_truth,
    mosflm_matrix_text,
    observations,
    save_truth,
    summary_text,
)
from mosflm_py.simulate.writers import (
    Hdf5Writer,
    mar345_suffix,
    write_cbf,
    write_mar345,
    write_smv,
)

FORMATS = ("cbf", "smv", "mar345", "hdf5")
BACKSTOP_TRANSMISSION = 0.02
"""Fraction of the photons that get through the backstop shadow."""


@dataclass(frozen=True)
class SimulatedDataset:
    """What :func:`simulate_dataset` wrote.

    Attributes
    ----------
    params : the :class:`SimulationParams` used.  out_dir : folder.  fmt : "cbf" | "smv" |
    "mar345" | "hdf5".
    paths : image files in order (for hdf5: the master file only).  template : MOSFLM template
    (``sim_#####.cbf``, ``sim_###.img``, or the master file name).  truth_path, truth_text_path,
    matrix_path : truth files.  model, obs : crystal model and observations.
    partials : sparse per-image table (obs, image, fraction, counts).  seconds : wall time.
    """

    params: SimulationParams
    out_dir: Path
    fmt: str
    paths: list[Path]
    template: str
    truth_path: Path
    truth_text_path: Path
    matrix_path: Path
    model: CrystalModel = field(repr=False)
    obs: Observations = field(repr=False)
    partials: dict = field(repr=False)
    seconds: float = 0.0

    @property
    def truth(self) -> dict[str, np.ndarray]:
        """Contents of ``truth.npz`` (``obs_*``, ``part_*``, ``all_*``, ``p_*``, U, B, A, M)."""
        return load_truth(self.truth_path)

    @property
    def image_numbers(self) -> list[int]:
        """Image numbers of the sweep."""
        p = self.params
        return list(range(p.first_image, p.first_image + p.n_images))


def static_masks(p: SimulationParams) -> tuple[np.ndarray, np.ndarray]:
    """(invalid, shadow): pixels written as -1 (gaps, dead) and backstop-shadowed pixels."""
    invalid = dead_pixel_mask(p)
    if p.module_gaps:
        invalid |= module_gap_mask(p.nslow, p.nfast)
    return invalid, backstop_mask(p)


def to_detector_counts(expected: np.ndarray, p: SimulationParams, number: int,
                       invalid: np.ndarray, shadow: np.ndarray) -> np.ndarray:
    """Noise, gain, offset, overload and masks: expected photons -> int32 ADU frame.

    Poisson deviates come from a counter-based generator keyed by ``(seed, image number)``
    (:func:`noise_key`), so an image is the same whichever batch or thread makes it.
    """
    lam = np.ascontiguousarray(expected)
    if lam.dtype not in (np.float32, np.float64):
        lam = lam.astype(np.float64)
    if lam.shape != (p.nslow, p.nfast):
        raise BadData(f"Frame shape {lam.shape} does not match the detector.")
    out = np.empty(lam.shape, dtype=np.int32)
    detector_counts(lam, np.ascontiguousarray(shadow, dtype=np.bool_), BACKSTOP_TRANSMISSION,
                    np.ascontiguousarray(invalid, dtype=np.bool_), noise_key(p.seed, number),
                    bool(p.poisson), float(p.gain), float(p.adc_offset), float(p.overload), out,
                    float(p.read_noise))
    return out


def noise_key(seed: int, number: int) -> np.uint64:
    """64-bit key of the noise stream of image ``number`` (splitmix64 of seed and number)."""
    mask = (1 << 64) - 1
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(number) * 0xC2B2AE3D27D4EB4F + 0x632BE59BD9B4E019)
    z &= mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return np.uint64(z ^ (z >> 31))


def _template(fmt: str, name: str, n_last: int, p: SimulationParams | None = None) -> str:
    if fmt == "mar345":
        return f"{name}_{'#' * max(3, len(str(n_last)))}.{mar345_suffix(p)}"
    if fmt == "cbf":
        return f"{name}_{'#' * max(5, len(str(n_last)))}.cbf"
    if fmt == "smv":
        return f"{name}_{'#' * max(3, len(str(n_last)))}.img"
    return f"{name}_master.h5"


def simulate_dataset(
    params: SimulationParams,
    out_dir,
    fmt: str = "cbf",
    name: str = "sim",
    batch: int = 8,
) -> SimulatedDataset:
    """Simulate the sweep of ``params`` into ``out_dir`` and write the truth beside it.

    Parameters
    ----------
    params : SimulationParams
    out_dir : path-like, created if missing.
    fmt : "cbf" (Pilatus miniCBF ``name_#####.cbf``), "smv" (ADSC ``name_###.img``), "mar345"
        (image plate ``name_###.marNNNN``, square frames only) or "hdf5"
        (``name_master.h5`` + ``name_data_000001.h5``).
    name : file-name stem.
    batch : images rendered together (memory ~ ``batch * nslow * nfast * 4`` bytes).

    Returns
    -------
    SimulatedDataset
        Files written, and the truth (also in ``truth.npz``, ``truth.txt``, ``truth.mat``).
    """
    t0 = time.perf_counter()
    if fmt not in FORMATS:
        raise BadParameter(f"Unknown image format '{fmt}' (choose one of {', '.join(FORMATS)}).")
    p = params
    if fmt == "mar345" and (p.nslow != p.nfast or abs(p.pixel_fast - p.pixel_size) > 1e-9):
        raise BadParameter(f"mar345 images are square with square pixels, not {p.nslow} x "
                           f"{p.nfast} pixels of {p.pixel_size} x {p.pixel_fast} mm.")
    p.validate()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"Cannot create output folder {out}: {exc}") from exc
    det = detector_frame(p)
    model = crystal_model(p)
    obs = observations(model, p, det)
    bg = background_map(p)
    invalid, shadow = static_masks(p)
    n_last = p.first_image + p.n_images - 1
    template = _template(fmt, name, n_last, p)
    paths: list[Path] = []
    h5 = Hdf5Writer(out, name, p) if fmt == "hdf5" else None
    part_refl, part_img, part_g, part_counts = [], [], [], []
    batch = max(1, int(batch))
    try:
        dom = None
        if p.model == "domains":
            dom = domain_model(p, model.M @ model.U @ model.B)
        for first in range(0, p.n_images, batch):
            count = min(batch, p.n_images - first)
            if dom is not None:
                spots, acc_g, acc_c = render_domains_batch(model, p, first, count, det, dom)
                expected = blur(spots, p)
                expected += bg.astype(np.float32)
                ri, ii = np.nonzero(acc_g > 0.0)
                part_refl.append(ri.astype(np.int64))
                part_img.append(ii.astype(np.int64) + first)
                part_g.append(acc_g[ri, ii])
                part_counts.append(acc_c[ri, ii])
            else:
                rec = sweep(model, p, first, count, det)
                counts = model.intensity[rec.refl] * rec.pol * rec.g
                expected = render(rec, counts, p, count, base=bg)
                # per (reflection, image) sums for the truth
                key = rec.refl.astype(np.int64) * count + rec.img
                uk, inv = np.unique(key, return_inverse=True)
                part_refl.append(uk // count)
                part_img.append(uk % count + first)
                part_g.append(np.bincount(inv, weights=rec.g, minlength=uk.size))
                part_counts.append(np.bincount(inv, weights=counts, minlength=uk.size))
            for k in range(count):
                number = p.first_image + first + k
                frame = to_detector_counts(expected[k], p, number, invalid, shadow)
                if fmt == "cbf":
                    path = out / template.replace("#" * template.count("#"),
                                                  f"{number:0{template.count('#')}d}")
                    write_cbf(path, frame, p, number)
                    paths.append(path)
                elif fmt in ("smv", "mar345"):
                    path = out / template.replace("#" * template.count("#"),
                                                  f"{number:0{template.count('#')}d}")
                    (write_smv if fmt == "smv" else write_mar345)(path, frame, p, number)
                    paths.append(path)
                else:
                    h5.write(first + k, frame)
    finally:
        if h5 is not None:
            h5.close()
            paths = [h5.master_path]
    partials = assign_partials(
        obs,
        np.concatenate(part_refl), np.concatenate(part_img),
        np.concatenate(part_g), np.concatenate(part_counts), p,
    )
    truth_path = out / "truth.npz"
    save_truth(truth_path, p, model, obs, partials)
    text_path = out / "truth.txt"
    text_path.write_text(summary_text(p, model, obs, partials, template))
    mat_path = out / "truth.mat"
    mat_path.write_text(mosflm_matrix_text(p, model))
    return SimulatedDataset(
        params=p, out_dir=out, fmt=fmt, paths=paths, template=template, truth_path=truth_path,
        truth_text_path=text_path, matrix_path=mat_path, model=model, obs=obs,
        partials=partials, seconds=time.perf_counter() - t0,
    )
