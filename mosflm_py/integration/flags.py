"""Rejection reasons; the MTZ FLAG bits and BGPKRATIOS packing (mosflm_outputs.md 1.2, 1.3)
are those of :mod:`mosflm_py.output.mtz_columns`."""

from __future__ import annotations

import enum

import numpy as np

from mosflm_py.output.mtz_columns import Flag, decode_bgpkratios, encode_bgpkratios

__all__ = ["Flag", "Reject", "pack_bgpkratios", "unpack_bgpkratios"]


class Reject(enum.IntFlag):
    """Why a reflection is not written at all (internal; 0 = measured)."""

    OVERLAP = 1  # peak overlaps a neighbour's peak (or NOTCLOSE neighbour in the box)
    TOO_FEW_BG = 2  # fewer than NBGMIN background pixels
    NO_PEAK = 4  # no usable peak pixel (outside the image / all inactive)
    PKRATIO = 8  # PKRATIO too large (REJECT PKRATIO ACCEPT keeps these, flagged)
    NO_PROFILE = 16  # overload/edge reflection that could not be profile fitted


def pack_bgpkratios(bgratio: np.ndarray, pkratio: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """BGPKRATIOS = nint(PKRATIO*100)*100 + min(BGRATIO*10, 99) (integer) + min(GRADIENT, 0.99).

    :func:`~mosflm_py.output.mtz_columns.encode_bgpkratios` with NaN components packed as 0.
    """
    return np.nan_to_num(encode_bgpkratios(bgratio, pkratio, gradient), nan=0.0)


def unpack_bgpkratios(bgpk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`pack_bgpkratios`: (bgratio, pkratio, gradient), to 0.1 / 0.01 / 1e-6."""
    return decode_bgpkratios(bgpk)
