"""Synthetic unmerged data with known truth for the QuickScale tests and benchmark.

True intensities are drawn per unique reflection of a chosen *true* space group (Wilson
statistics: exponential, with an overall B); observations of symmetry-equivalent indices at
random rotation angles are multiplied by a known smooth scale g(φ, s) = k(φ) exp(2 B(φ) s²) and
given Poisson-like noise. Some observations are split into 2-3 partial parts on consecutive
images (fractions summing to 1, MPART encoded as MOSFLM writes it); a known number of partial
sets lose a part (incomplete). The file is written in the lattice's lowest-symmetry setting
(P 1 2 1 / P 1 ... as MOSFLM writes the indexed lattice) with mosflm-py's MTZ writer.
"""

from __future__ import annotations

from dataclasses import dataclass

import gemmi
import numpy as np

from mosflm_py.output.mtz import BatchHeader, MtzMeta, MtzRecords, write_unmerged_mtz
from mosflm_py.output.mtz_columns import encode_mpart

OSC = 1.0  # degrees per image


def true_scale(phi: np.ndarray) -> np.ndarray:
    """k(φ): the true scale without the B term."""
    return 1.0 + 0.25 * np.sin(np.radians(phi) * 3.0)


def true_b(phi: np.ndarray) -> np.ndarray:
    """B(φ) (Å²): a linear decay."""
    return -0.05 * np.asarray(phi, float)


@dataclass
class Synthetic:
    path: str
    n_images: int
    n_incomplete: int  # incomplete partial sets in the file (what sum_partials must reject)
    n_dropped: int  # partial sets that lost a part (a lost middle part leaves two pieces)
    n_sets_partial: int
    n_observations: int
    true_laue: str
    truth_hkl: np.ndarray | None = None  # unique reflections (true space group's ASU)
    truth_i: np.ndarray | None = None  # their true intensities


def diffraction_phis(hkl: np.ndarray, cell, wavelength: float = 1.0) -> tuple:
    """Both rotation angles (deg, in [0, 360)) at which each h diffracts with U = I, the
    beam along +X and the rotation axis +Z (MOSFLM frame): (R(φ) B h)_x = −λ|B h|²/2."""
    from mosflm_py.geometry.crystal import b_matrix

    x = np.asarray(hkl, float) @ b_matrix(tuple(cell)).T
    rho = np.hypot(x[:, 0], x[:, 1])
    alpha = np.arctan2(x[:, 1], x[:, 0])
    c = -wavelength * np.sum(x * x, axis=1) / (2 * np.maximum(rho, 1e-12))
    ok = np.abs(c) < 1.0
    t = np.arccos(np.clip(c, -1.0, 1.0))
    return ok, np.degrees(t - alpha) % 360.0, np.degrees(-t - alpha) % 360.0


def make_unmerged(
    path: str,
    true_sg: str = "P 4",
    file_sg: str = "P 1",
    cell=(60.0, 60.0, 80.0, 90.0, 90.0, 90.0),
    d_min: float = 2.0,
    n_images: int = 90,
    mult: float = 3.0,
    n_incomplete: int = 40,
    seed: int = 7,
    i_scale: float = 2000.0,
    geometry: bool = False,
    absorption=None,
) -> Synthetic:
    """Write a synthetic unmerged MTZ; returns what it holds.

    With *geometry*, every reflection of the sphere is observed where it diffracts (U = I,
    beam +X, axis +Z, λ = 1 Å, as written in the batch headers), else at random angles.
    *absorption*: f(s0c, s1c) -> multiplicative factor of each observation (unit beam
    directions in the crystal frame), applied on top of the smooth scale.
    """
    rng = np.random.default_rng(seed)
    uc = gemmi.UnitCell(*cell)
    sg = gemmi.SpaceGroup(true_sg)
    uniq = np.asarray(gemmi.make_miller_array(uc, sg, d_min, 0.0), dtype=np.int64)
    d = np.array([uc.calculate_d(h.tolist()) for h in uniq])
    s2 = 1.0 / (4 * d * d)
    itrue = rng.exponential(1.0, len(uniq)) * i_scale * np.exp(-2 * 20.0 * s2)
    if geometry:
        from mosflm_py.output.mtz_columns import hkl_to_asu

        p1 = np.asarray(gemmi.make_miller_array(uc, gemmi.SpaceGroup("P 1"), d_min, 0.0))
        allh = np.r_[p1, -p1].astype(np.int64)
        ok, pa, pb = diffraction_phis(allh, cell)
        hkl = np.r_[allh[ok], allh[ok]]
        phi = np.r_[pa[ok], pb[ok]]
        inside = phi < n_images * OSC
        hkl, phi = hkl[inside], phi[inside]
        asu, _ = hkl_to_asu(hkl, sg)
        lookup = {tuple(h): i for i, h in enumerate(uniq.tolist())}
        ui = np.array([lookup.get(tuple(h), -1) for h in asu.tolist()], dtype=np.int64)
        hkl, phi, ui = hkl[ui >= 0], phi[ui >= 0], ui[ui >= 0]
        nobs = len(ui)
    else:
        nobs = int(len(uniq) * mult)
        ui = rng.integers(0, len(uniq), nobs)
        ops = np.array([np.array(o.rot) // gemmi.Op.DEN for o in sg.operations().sym_ops])
        k = rng.integers(0, len(ops), nobs)
        sign = rng.choice([-1, 1], nobs)
        hkl = np.einsum("ni,nij->nj", uniq[ui] * sign[:, None], ops[k])
        # a reflection (original indices) is measured once in the sweep, as in a real wedge
        _, first_seen = np.unique(hkl, axis=0, return_index=True)
        once = np.sort(first_seen)
        hkl, ui = hkl[once], ui[once]
        nobs = len(ui)
        phi = rng.uniform(0.0, n_images * OSC, nobs)
    g = true_scale(phi) * np.exp(2 * true_b(phi) * s2[ui])
    if absorption is not None:
        from mosflm_py.scaling.absorption import crystal_frame_directions

        s0c, s1c, _ = crystal_frame_directions(
            hkl, phi, np.eye(3), cell, np.array([0, 0, 1.0]), np.array([1.0, 0, 0]), 1.0
        )
        g = g * absorption(s0c, s1c)
    mean = g * itrue[ui]
    sig = np.sqrt(mean + 20.0)
    inten = mean + rng.normal(0, 1, nobs) * sig
    # partials: observations within 0.5 image of an image edge become 2-3 parts
    img = np.floor(phi / OSC).astype(int)
    frac_in = phi / OSC - img
    rows = {k: [] for k in ("hkl", "batch", "I", "sig", "frac", "rot", "mpart", "partial")}
    n_sets = 0
    n_broken = 0  # incomplete sets as the file shows them (a missing middle part leaves two)
    incomplete_left = n_incomplete
    for i in range(nobs):
        split = (frac_in[i] < 0.25 and img[i] > 0) or (frac_in[i] > 0.75 and img[i] < n_images - 1)
        if not split:
            parts = [(img[i], 1.0)]
        else:
            n_sets += 1
            first = img[i] - 1 if frac_in[i] < 0.25 else img[i]
            npart = 3 if (i % 5 == 0 and first + 2 < n_images) else 2
            f = rng.dirichlet(np.full(npart, 4.0))
            parts = [(first + j, f[j]) for j in range(npart)]
        full = len(parts) == 1
        drop = -1
        if not full and incomplete_left > 0 and i % 7 == 0:
            # a part of at least 0.1 goes missing: the rest fails the 0.95 fraction test
            big = [j for j, (_, f) in enumerate(parts) if f >= 0.1]
            drop = int(big[int(rng.integers(0, len(big)))])
            incomplete_left -= 1
            n_broken += 2 if 0 < drop < len(parts) - 1 else 1
        for j, (b, f) in enumerate(parts):
            if j == drop:
                continue
            # the parts' variances add up to the full's: var_j = f var
            rows["hkl"].append(hkl[i])
            rows["batch"].append(b + 1)
            rows["I"].append(mean[i] * f + rng.normal(0, 1) * sig[i] * np.sqrt(f))
            rows["sig"].append(sig[i] * np.sqrt(f))
            rows["frac"].append(f)
            rows["rot"].append(phi[i])
            rows["mpart"].append(0 if full else int(encode_mpart(len(parts), j + 1)))
            rows["partial"].append(not full)
        if full:
            rows["I"][-1] = inten[i]
    n = len(rows["I"])
    rec = MtzRecords(
        hkl=np.array(rows["hkl"]),
        batch=np.array(rows["batch"]),
        I=np.array(rows["I"]),
        sigI=np.array(rows["sig"]),
        Ipr=np.array(rows["I"]),
        sigIpr=np.array(rows["sig"]),
        fraction=np.array(rows["frac"]),
        xdet=np.full(n, 100.0),
        ydet=np.full(n, 100.0),
        rot=np.array(rows["rot"]),
        width=np.full(n, 0.5),
        lp=np.ones(n),
        partial=np.array(rows["partial"]),
        mpart=np.array(rows["mpart"]),
    )
    batches = [
        BatchHeader(
            number=b + 1,
            phi_start=b * OSC,
            phi_end=(b + 1) * OSC,
            cell=cell,
            U=np.eye(3),
            missets_start=(0, 0, 0),
            missets_end=(0, 0, 0),
            mosaic=0.3,
            wavelength=1.0,
            distance=200.0,
            detector_limits=(0, 2000, 0, 2000),
            two_theta=0.0,
            divergence=(0.0, 0.0),
            dispersion=0.0,
            reverse_phi=False,
            title="",
        )
        for b in range(n_images)
    ]
    meta = MtzMeta(cell=cell, wavelength=1.0, space_group=file_sg, title="synthetic")
    write_unmerged_mtz(path, rec, batches, meta)
    return Synthetic(
        path,
        n_images,
        n_broken,
        n_incomplete - incomplete_left,
        n_sets,
        nobs,
        sg.laue_str(),
        uniq,
        itrue,
    )
