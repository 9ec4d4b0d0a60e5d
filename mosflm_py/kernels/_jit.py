"""The single numba configuration point (cache on disk, release the GIL, numpy error model)."""

from __future__ import annotations

import functools

import numba

jit = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy")
"""Decorator for all kernels: ``@jit``, or ``@jit(parallel=True)`` for prange over independent
items."""


def set_threads(n: int) -> None:
    """Use at most ``n`` numba threads in this process (worker processes use 1).

    Changing ``NUMBA_NUM_THREADS`` in the environment after numba has started its threads is an
    error, so the run-time limit is set instead.
    """
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
