"""Geometry: the one place that owns MOSFLM's conventions.

Laboratory frame: X along the beam, Z along the rotation axis, Y = Z x X (see
``help/topics/conventions.txt``).  Modules:

- :mod:`rotation` — rotation matrices and missetting angles;
- :mod:`crystal` — Busing–Levy B, U, the MOSFLM A = λ·U·B matrix, :class:`Crystal`;
- :mod:`beam`, :mod:`detector`, :mod:`goniometer`, :mod:`experiment` — the models;
- :mod:`reciprocal` — detector positions ↔ reciprocal-lattice vectors;
- :mod:`prediction` — closed-form rotation prediction, rocking widths and partiality;
- :mod:`matrix_file` — MATRIX / NEWMAT files.
"""
