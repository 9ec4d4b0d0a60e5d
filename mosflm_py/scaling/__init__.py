"""From an unmerged MTZ to a dataset: partials summed, Laue group, scaling, merging statistics.

The built-in counterpart of iMosflm's QuickSymm (POINTLESS) and QuickScale (POINTLESS + AIMLESS):
pure functions on plain data (no session, nothing printed); the QUICKSYMM / QUICKSCALE action
handlers in :mod:`mosflm_py.actions.quickscale` format their results.
"""
