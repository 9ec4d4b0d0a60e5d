"""Rotation-image simulator with ground truth (independent of the processing code).

``simulate_dataset(default_params(), out_dir)`` writes a small Pilatus-like sweep plus
``truth.npz``/``truth.txt``/``truth.mat``; see :mod:`mosflm_py.simulate.truth` for the intensity
definition and ``python -m mosflm_py.simulate --help`` for the command line.
"""

from __future__ import annotations

from mosflm_py.simulate.dataset import SimulatedDataset, simulate_dataset
from mosflm_py.simulate.params import SimulationParams, default_params
from mosflm_py.simulate.truth import load_truth

__all__ = [
    "SimulatedDataset",
    "SimulationParams",
    "default_params",
    "load_truth",
    "simulate_dataset",
]
