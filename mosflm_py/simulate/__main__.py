"""Command line: ``python -m mosflm_py.simulate OUTDIR [--format cbf] [--images N] ...``."""

from __future__ import annotations

import argparse
import sys

from mosflm_py.errors import MosflmError
from mosflm_py.simulate.dataset import FORMATS, simulate_dataset
from mosflm_py.simulate.params import default_params, nanobragg_like_params


def build_parser() -> argparse.ArgumentParser:
    """Argument parser (options override :func:`default_params`)."""
    ap = argparse.ArgumentParser(
        prog="python -m mosflm_py.simulate",
        description="Simulate a rotation sweep with ground truth (truth.npz/.txt/.mat).",
    )
    ap.add_argument("out_dir", help="output folder (created)")
    ap.add_argument("--format", dest="fmt", choices=FORMATS, default="cbf")
    ap.add_argument("--name", default="sim", help="file-name stem (default sim)")
    ap.add_argument("--images", type=int, help="number of images")
    ap.add_argument("--osc", type=float, help="oscillation width per image (deg)")
    ap.add_argument("--phi-start", type=float, help="phi at the start of the first image (deg)")
    ap.add_argument("--cell", type=float, nargs=6, metavar=("A", "B", "C", "AL", "BE", "GA"))
    ap.add_argument("--spacegroup", help="space-group symbol, e.g. 'P 43 21 2'")
    ap.add_argument("--missets", type=float, nargs=3, metavar=("PHIX", "PHIY", "PHIZ"))
    ap.add_argument("--mosaic", type=float, help="mosaic spread, full width (deg)")
    ap.add_argument("--wavelength", type=float)
    ap.add_argument("--distance", type=float, help="mm")
    ap.add_argument("--beam", type=float, nargs=2, metavar=("X", "Y"), help="mm (slow, fast)")
    ap.add_argument("--size", type=int, nargs=2, metavar=("NSLOW", "NFAST"))
    ap.add_argument("--pixel", type=float, help="pixel size (mm)")
    ap.add_argument("--resolution", type=float, help="d_min (A)")
    ap.add_argument("--mean-intensity", type=float)
    ap.add_argument("--background", type=float, help="constant background photons/pixel")
    ap.add_argument("--no-noise", action="store_true", help="no Poisson noise")
    ap.add_argument("--gaps", action="store_true", help="Pilatus module gaps (-1)")
    ap.add_argument("--backstop", type=float, help="backstop radius (mm)")
    ap.add_argument("--reverse-phi", action="store_true")
    ap.add_argument("--seed", type=int)
    nb = ap.add_argument_group(
        "nanoBragg-like crystal (mosflm_py.simulate.domains)",
        "--nanobragg starts from nanobragg_like_params(): discrete mosaic domains (--mosaic is "
        "then the spherical-cap maximum rotation), Gaussian domains of Na x Nb x Nc cells, "
        "rotation sub-steps, point-spread blur.  The other options of this group imply it.",
    )
    nb.add_argument("--nanobragg", action="store_true", help="use the 'domains' crystal model")
    nb.add_argument("--domains", type=int, help="number of mosaic domains")
    nb.add_argument("--domain-size", type=int, nargs=3, metavar=("NA", "NB", "NC"),
                    help="Gaussian domain size in unit cells")
    nb.add_argument("--phi-steps", type=int, help="rotation sub-steps per image")
    nb.add_argument("--oversample", type=int, help="sub-pixels per pixel edge")
    ap.add_argument("--psf", type=float, help="detector point-spread sigma (px)")
    ap.add_argument("--gain", type=float, help="ADU per photon (CCD-like: 2)")
    ap.add_argument("--pedestal", type=float, help="ADU added to every pixel (CCD-like: 40)")
    ap.add_argument("--read-noise", type=float, help="Gaussian read noise, ADU rms")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run the simulator from the command line; prints what was written."""
    a = build_parser().parse_args(argv)
    ch = {}
    simple = {"images": "n_images", "osc": "osc_width", "phi_start": "phi_start",
              "spacegroup": "space_group", "mosaic": "mosaic", "wavelength": "wavelength",
              "distance": "distance", "pixel": "pixel_size", "resolution": "resolution",
              "mean_intensity": "mean_intensity", "background": "background",
              "backstop": "backstop_radius", "seed": "seed", "domains": "mosaic_domains",
              "phi_steps": "phi_steps", "oversample": "oversample", "psf": "psf_sigma",
              "gain": "gain", "pedestal": "adc_offset", "read_noise": "read_noise"}
    for arg, fld in simple.items():
        if getattr(a, arg) is not None:
            ch[fld] = getattr(a, arg)
    if a.cell:
        ch["cell"] = tuple(a.cell)
    if a.missets:
        ch["missets"] = tuple(a.missets)
    if a.beam:
        ch["beam_x"], ch["beam_y"] = a.beam
    if a.size:
        ch["nslow"], ch["nfast"] = a.size
    if a.no_noise:
        ch["poisson"] = False
    if a.gaps:
        ch["module_gaps"] = True
    if a.reverse_phi:
        ch["reverse_phi"] = True
    if a.domain_size:
        ch["domain_size"] = tuple(a.domain_size)
    domain_options = (a.domains, a.domain_size, a.phi_steps, a.oversample)
    nano = a.nanobragg or any(v is not None for v in domain_options)  # they imply the model
    make = nanobragg_like_params if nano else default_params
    try:
        ds = simulate_dataset(make(**ch), a.out_dir, fmt=a.fmt, name=a.name)
    except MosflmError as exc:
        print(f" *** {exc}", file=sys.stderr)
        return 1
    p = ds.params
    print(f"Wrote {len(ds.paths)} file(s) in {ds.out_dir}: template {ds.template}, "
          f"{p.n_images} images of {p.osc_width} deg from phi {p.phi_start}")
    print(f"  {ds.model.hkl.shape[0]} reflections, {len(ds.obs)} observations; "
          f"{ds.seconds:.2f} s ({p.n_images / ds.seconds:.1f} images/s)")
    print(f"  truth: {ds.truth_path}, {ds.truth_text_path}, {ds.matrix_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
