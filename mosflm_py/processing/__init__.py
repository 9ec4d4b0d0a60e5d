"""PROCESS: block-wise integration of a sweep (per-image refinement, profiles, records).

- :mod:`plan` — images, φ ranges and blocks of a PROCESS run;
- :mod:`parts` — which images a reflection is spread over (fraction, MPART bookkeeping);
- :mod:`block` — one block of images: refine, form standard profiles, integrate (a worker job);
- :mod:`runner` — blocks in worker processes, in order, bounded memory, results identical to serial;
- :mod:`records` — per-image statistics and MTZ records.
"""
