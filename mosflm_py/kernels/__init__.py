"""numba kernels: the only place numba is imported.

Each kernel takes ndarrays and scalars only; its validating wrapper lives in the domain package,
and a plain-numpy reference of it lives in ``tests/reference/``.
"""
