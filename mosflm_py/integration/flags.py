"""MTZ FLAG bits, rejection reasons and BGPKRATIOS packing (mosflm_outputs.md 1.2, 1.3)."""

from __future__ import annotations

import enum

import numpy as np


class Flag(enum.IntFlag):
    """FLAG column bits (Scala/Pointless ObservationFlag)."""

    BGRATIO = 1
    PKRATIO = 2
    NEGATIVE = 4
    GRADIENT = 8
    OVERLOAD = 16
    EDGE = 32


class Reject(enum.IntFlag):
    """Why a reflection is not written at all (internal; 0 = measured)."""

    OVERLAP = 1  # peak overlaps a neighbour's peak (or NOTCLOSE neighbour in the box)
    TOO_FEW_BG = 2  # fewer than NBGMIN background pixels
    NO_PEAK = 4  # no usable peak pixel (outside the image / all inactive)
    PKRATIO = 8  # PKRATIO too large (REJECT PKRATIO ACCEPT keeps these, flagged)
    NO_PROFILE = 16  # overload/edge reflection that could not be profile fitted


def pack_bgpkratios(bgratio: np.ndarray, pkratio: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """BGPKRATIOS = nint(PKRATIO*100)*100 + min(BGRATIO*10, 99) (integer) + min(GRADIENT, 0.99).

    NaN components are packed as 0.
    """
    bg = np.nan_to_num(np.asarray(bgratio, np.float64), nan=0.0)
    pk = np.nan_to_num(np.asarray(pkratio, np.float64), nan=0.0)
    gr = np.nan_to_num(np.asarray(gradient, np.float64), nan=0.0)
    integer = np.trunc(np.rint(np.clip(pk, 0, None) * 100.0) * 100.0
                       + np.minimum(np.clip(bg, 0, None) * 10.0, 99.0))
    return integer + np.clip(gr, 0.0, 0.99)


def unpack_bgpkratios(bgpk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`pack_bgpkratios`: (bgratio, pkratio, gradient), to 0.1 / 0.01 / 1e-6."""
    bgpk = np.asarray(bgpk, np.float64)
    n = np.floor(bgpk + 1e-9)
    grad = bgpk - n
    n = n.astype(np.int64)
    return (n % 100) / 10.0, (n // 100) / 100.0, grad
