"""Rotation-image simulator with ground truth (independent of the processing code).

``simulate_dataset(default_params(), out_dir)`` writes a small Pilatus-like sweep plus
``truth.npz``/``truth.txt``/``truth.mat``; see :mod:`mosflm_py.simulate.truth` for the intensity
definition and ``python -m mosflm_py.simulate --help`` for the command line.
``nanobragg_like_params()`` (CLI ``--nanobragg``) selects the nanoBragg-like crystal of
:mod:`mosflm_py.simulate.domains` (discrete mosaic domains, finite domain size, rotation
sub-steps), whose spot shapes and rocking curves the processing code does not model.
"""

from __future__ import annotations

from mosflm_py.simulate.dataset import SimulatedDataset, simulate_dataset
from mosflm_py.simulate.params import SimulationParams, default_params, nanobragg_like_params
from mosflm_py.simulate.truth import load_truth

__all__ = [
    "SimulatedDataset",
    "SimulationParams",
    "default_params",
    "load_truth",
    "nanobragg_like_params",
    "simulate_dataset",
]
