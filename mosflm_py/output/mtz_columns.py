"""Packed columns of MOSFLM's unmerged MTZ: M/ISYM, MPART, FLAG and BGPKRATIOS.

Everything here is vectorised over reflections (numpy), because an unmerged MTZ holds one record
per reflection per image (millions of rows).

References
----------
* CCP4 MTZ unmerged ("multi-record") convention: H K L reduced to the CCP4 asymmetric unit,
  ``M/ISYM = 256*M + ISYM`` with ISYM = 2k-1 (operator k applied) or 2k (operator k then
  Friedel inversion), M = 1 for a partially recorded part.
* Scala/Pointless/Aimless ``observationflags.hh`` (FLAG bits, BGPKRATIOS packing) and
  ``mtz_unmerge_io.cpp`` (how MPART is decoded), P. R. Evans (2006) Acta Cryst. D62, 72-82.
"""

from __future__ import annotations

import enum

import gemmi
import numpy as np

__all__ = [
    "Flag",
    "decode_bgpkratios",
    "decode_misym",
    "decode_mpart",
    "encode_bgpkratios",
    "encode_misym",
    "encode_mpart",
    "hkl_to_asu",
    "hkl_from_asu",
]


class Flag(enum.IntFlag):
    """FLAG column bits (Scala/Pointless ``ObservationFlag``); 0 = good.

    Aimless rejects flagged observations unless told to accept them.
    """

    BGRATIO = 1  # background RMS / Poisson expectation too large
    PKRATIO = 2  # peak-profile misfit too large
    NEGATIVE = 4  # intensity more than 5 sigma below zero
    GRADIENT = 8  # background gradient too high
    OVERLOAD = 16  # overloaded; intensity estimated from the profile
    EDGE = 32  # measurement box partly outside the active area; profile fitted


# --------------------------------------------------------------------------------------------
# BGPKRATIOS
# --------------------------------------------------------------------------------------------


def encode_bgpkratios(
    bgratio: np.ndarray, pkratio: np.ndarray, gradient: np.ndarray
) -> np.ndarray:
    """Pack BGRATIO, PKRATIO and GRADIENT into MOSFLM's BGPKRATIOS value.

    ``bgpk = int(nint(PKRATIO*100)*100 + min(BGRATIO*10, 99)) + min(GRADIENT, 0.99)``
    (mosflm_outputs.md 1.3). Negative ratios are clipped to 0. A row whose three inputs are all
    NaN is written as NaN (missing); otherwise a NaN component counts as 0.

    Returns
    -------
    ndarray of float64
        Packed values (stored as float32 in the MTZ, so the gradient keeps ~2 decimals only
        while PKRATIO < ~10).
    """
    bg = np.asarray(bgratio, dtype=np.float64)
    pk = np.asarray(pkratio, dtype=np.float64)
    gr = np.asarray(gradient, dtype=np.float64)
    missing = np.isnan(bg) & np.isnan(pk) & np.isnan(gr)
    bg0, pk0, gr0 = (np.nan_to_num(x, nan=0.0) for x in (bg, pk, gr))
    integer = np.trunc(
        np.rint(np.clip(pk0, 0.0, None) * 100.0) * 100.0
        + np.minimum(np.clip(bg0, 0.0, None) * 10.0, 99.0)
    )
    packed = integer + np.clip(gr0, 0.0, 0.99)
    return np.where(missing, np.nan, packed)


def decode_bgpkratios(bgpk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_bgpkratios`: (bgratio, pkratio, gradient).

    BGRATIO comes back to 0.1, PKRATIO to 0.01, GRADIENT to the float32 resolution of the
    packed value. NaN stays NaN in all three.
    """
    v = np.asarray(bgpk, dtype=np.float64)
    n = np.floor(v + 1e-6)  # float32 storage can put 1234.0 at 1233.99994
    grad = np.clip(v - n, 0.0, None)
    n_int = np.nan_to_num(n, nan=0.0).astype(np.int64)
    bg = (n_int % 100) / 10.0
    pk = (n_int // 100) / 100.0
    nan = np.isnan(v)
    return np.where(nan, np.nan, bg), np.where(nan, np.nan, pk), np.where(nan, np.nan, grad)


# --------------------------------------------------------------------------------------------
# MPART
# --------------------------------------------------------------------------------------------


def encode_mpart(npart: np.ndarray, ipart: np.ndarray) -> np.ndarray:
    """MPART code of each record from the number of parts and the serial number of this part.

    MOSFLM writes ``100*npart + ipart`` for every part of a partial (201 = part 1 of 2, ...,
    1010 = part 10 of 10; read from the real MOSFLM files in ``../shared/data/real/mosflm_mtz``),
    which Aimless/Pointless decode (``mtz_unmerge_io.cpp``: for a partial, MPART > 200 ->
    Npart = MPART/100, Ipart = MPART%100):

    * full (npart <= 1): 0;
    * npart >= 2 (1 <= ipart <= 99): ``100*npart + ipart`` (>= 201);
    * npart < 0 (unknown) or an ipart out of range: 0 (decodes as "number of parts unknown").

    Parameters
    ----------
    npart : array_like of int
        Number of images the reflection is spread over (1 for a full, -1 if unknown).
    ipart : array_like of int
        1-based serial number of this part within the reflection.
    """
    n = np.asarray(npart, dtype=np.int64)
    i = np.asarray(ipart, dtype=np.int64)
    ok = (n >= 2) & (i >= 1) & (i <= 99)
    return np.where(ok, 100 * n + i, 0).astype(np.int32)


def decode_mpart(mpart: np.ndarray, partial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Npart, Ipart) as Aimless decodes them from MPART and the M flag.

    Fulls (M = 0) and MPART = 10 give (1, 1); partials with an unrecognised code give (-1, 1).
    """
    m = np.asarray(mpart, dtype=np.int64)
    p = np.asarray(partial, dtype=bool)
    npart = np.where(m > 200, m // 100, np.where(m > 20, m // 10, -1))
    ipart = np.where(m > 200, m % 100, np.where(m > 20, m % 10, 1))
    npart = np.where(m == 10, 1, npart)
    npart = np.where(p, npart, 1)
    ipart = np.where(p & (m != 10), ipart, 1)
    return npart.astype(np.int32), ipart.astype(np.int32)


# --------------------------------------------------------------------------------------------
# M/ISYM and the CCP4 asymmetric unit
# --------------------------------------------------------------------------------------------


def encode_misym(isym: np.ndarray, partial: np.ndarray) -> np.ndarray:
    """``M/ISYM = 256*M + ISYM`` with M = 1 for partial parts."""
    return (256 * np.asarray(partial, dtype=np.int32) + np.asarray(isym, dtype=np.int32)).astype(
        np.int32
    )


def decode_misym(misym: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ISYM, partial) from M/ISYM."""
    m = np.asarray(misym, dtype=np.int64)
    return (m % 256).astype(np.int32), (m // 256) == 1


def _space_group(space_group: gemmi.SpaceGroup | str | int) -> gemmi.SpaceGroup:
    if isinstance(space_group, gemmi.SpaceGroup):
        return space_group
    if isinstance(space_group, int):
        sg = gemmi.find_spacegroup_by_number(space_group)
    else:
        sg = gemmi.find_spacegroup_by_name(str(space_group))
    if sg is None:
        raise ValueError(f"unknown space group {space_group!r}")
    return sg


def _rotations(sg: gemmi.SpaceGroup) -> np.ndarray:
    """Integer rotation parts (n_ops, 3, 3) of the symmetry operators, in gemmi's order."""
    ops = sg.operations()
    return np.array([op.rot for op in ops.sym_ops], dtype=np.int64) // gemmi.Op.DEN


def hkl_to_asu(
    hkl: np.ndarray, space_group: gemmi.SpaceGroup | str | int
) -> tuple[np.ndarray, np.ndarray]:
    """CCP4 asymmetric-unit indices and ISYM of observed Miller indices.

    Identical to gemmi's ``ReciprocalAsu(sg).to_asu(h, sg.operations())`` (CCP4 ASU and
    ISYM numbering: operators in gemmi/CCP4 order, the first of op_k, -op_k that lands in the
    asymmetric unit wins; odd ISYM = I+, even = Friedel mate), but vectorised. Each index h is
    given the integer key ``key(h) = h . w`` (w = (s^2, s, 1), s larger than twice the largest
    index), which is linear, so the keys of all symmetry images h . R_k are one matrix product
    ``h . (R_k w)``. The largest key over the images (and their Friedel mates) identifies the
    orbit; gemmi decides the asymmetric-unit member once per distinct orbit; the ISYM of each
    record is the first image whose key equals the key of that member.

    Parameters
    ----------
    hkl : array_like of int, shape (N, 3)
        Observed indices.
    space_group
        gemmi SpaceGroup, Hermann-Mauguin symbol or number. Only its point-group operators
        matter (a Laue-group ASU with Friedel mates separated by ISYM parity).

    Returns
    -------
    hkl_asu : ndarray of int32, shape (N, 3)
    isym : ndarray of int32, shape (N,)
        1 .. 2*n_ops.
    """
    h = np.ascontiguousarray(hkl, dtype=np.int64).reshape(-1, 3)
    sg = _space_group(space_group)
    if h.shape[0] == 0:
        return np.zeros((0, 3), np.int32), np.zeros(0, np.int32)
    rots = _rotations(sg)  # (n_ops, 3, 3)
    bound = int(np.abs(h).max()) * int(np.abs(rots).sum(axis=1).max())  # |h . R_k| bound
    span = 2 * bound + 1
    if span**3 >= 2**62:
        raise ValueError("Miller indices too large for hkl_to_asu")
    w = np.array([span * span, span, 1], dtype=np.int64)
    weights = np.einsum("kij,j->ik", rots, w)  # (3, n_ops): key(h . R_k) = h . (R_k w)
    kplus = h @ weights  # (N, n_ops)
    keys = np.empty((h.shape[0], 2 * rots.shape[0]), dtype=np.int64)
    keys[:, 0::2] = kplus
    keys[:, 1::2] = -kplus
    orbit = keys.max(axis=1)
    _, first, inverse = np.unique(orbit, return_index=True, return_inverse=True)
    asu = gemmi.ReciprocalAsu(sg)
    ops = sg.operations()
    asu_rep = np.array([asu.to_asu(row, ops)[0] for row in h[first].tolist()], dtype=np.int64)
    asu_hkl = asu_rep[inverse.reshape(-1)]
    match = keys == (asu_hkl @ w)[:, None]
    isym = match.argmax(axis=1) + 1
    if not match.any(axis=1).all():  # cannot happen for a consistent operator set
        raise RuntimeError("hkl_to_asu: an index did not map onto its asymmetric-unit member")
    return asu_hkl.astype(np.int32), isym.astype(np.int32)


def hkl_from_asu(
    hkl_asu: np.ndarray, isym: np.ndarray, space_group: gemmi.SpaceGroup | str | int
) -> np.ndarray:
    """Observed indices back from ASU indices and ISYM (inverse of :func:`hkl_to_asu`)."""
    sg = _space_group(space_group)
    rots = _rotations(sg)
    h = np.asarray(hkl_asu, dtype=np.int64).reshape(-1, 3)
    s = np.asarray(isym, dtype=np.int64).reshape(-1)
    if h.shape[0] == 0:
        return np.zeros((0, 3), np.int32)
    if s.min() < 1 or s.max() > 2 * len(rots):
        raise ValueError(f"ISYM out of range 1..{2 * len(rots)}")
    k = (s - 1) // 2
    sign = np.where(s % 2 == 1, 1, -1)
    inv = np.rint(np.linalg.inv(rots.astype(np.float64))).astype(np.int64)  # h = h' . R^-1
    out = np.einsum("ni,nij->nj", h * sign[:, None], inv[k])
    return out.astype(np.int32)
