"""Output files: unmerged MTZ (:mod:`.mtz`, :mod:`.mtz_columns`, and the streaming writer
:mod:`.mtz_stream` whose memory is bounded by one chunk of records), SUMMARY loggraph tables
(:mod:`.summary`, :mod:`.loggraph`) and the prediction picture (:mod:`.picture`).

All writers are atomic (:mod:`mosflm_py.atomic`): a failure never leaves a half-written file.
"""
