"""The single numba configuration point (cache on disk, release the GIL, numpy error model)."""

from __future__ import annotations

import functools

import numba

jit = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy")
"""Decorator for all kernels: ``@jit`` or ``@jit(parallel=True)`` (prange over independent items)."""
