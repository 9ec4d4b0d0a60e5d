"""mosflm-py: a Python re-implementation of MOSFLM (rotation-method diffraction image processing).

Importing the package does no work: numba, gemmi and fabio are imported by the modules that
need them.
"""

__version__ = "0.1.0"
