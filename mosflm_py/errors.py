"""Exceptions with user-facing messages.

Every error a user can cause derives from :class:`MosflmError`; the session prints its message as
`` *** <message>`` with the input line that caused it and carries on (interactive) or carries on
and exits non-zero (piped input).

The keyword layer (registry, setters, session, actions) raises :class:`KeywordError`. Algorithms
raise their own errors, which know nothing of keywords: :class:`BadParameter`, :class:`BadData`,
:class:`NoSolution` (:class:`IndexingError`), :class:`RefinementError` (:class:`Diverged`,
:class:`TooFewReflections`), :class:`IntegrationError`, all :class:`AlgorithmError`.
"""

from __future__ import annotations


class MosflmError(Exception):
    """Base class: ``str(err)`` is a complete, user-facing message."""


class KeywordError(MosflmError):
    """Unknown keyword, wrong number/type of arguments, out-of-range value."""


class NotImplementedYet(MosflmError):
    """An accepted keyword whose action is not implemented yet (never a silent no-op)."""


class AlgorithmError(MosflmError):
    """An algorithm could not do its work; raised below the session, which adds the line."""


class BadParameter(AlgorithmError, KeywordError):
    """A parameter value the algorithm cannot use (out of range, unknown choice).

    Also a :class:`KeywordError` for callers written before algorithms had their own errors.
    """


class BadData(AlgorithmError, KeywordError):
    """Input data the algorithm cannot use (inconsistent shapes or lengths, empty input).

    Also a :class:`KeywordError` for callers written before algorithms had their own errors.
    """


class NoSolution(AlgorithmError):
    """A search found no acceptable answer (no lattice, no spots, no matching reflections)."""


class ImageError(MosflmError):
    """Missing, unreadable or corrupt image, or a template that matches nothing."""


class GeometryError(MosflmError):
    """Impossible or inconsistent geometry (e.g. zero distance, beam off the detector)."""


class IndexingError(NoSolution):
    """Autoindexing failed; the message carries MOSFLM's advice."""


class RefinementError(AlgorithmError):
    """Refinement failed or diverged (residual too large, too few reflections)."""


class Diverged(RefinementError):
    """An iterative fit moved away from the solution (growing residual, shifts out of bounds)."""


class TooFewReflections(RefinementError):
    """Too few usable reflections to refine: nothing was tried, so nothing failed."""


class IntegrationError(AlgorithmError):
    """Integration could not proceed."""


class LogFileError(OSError):
    """A write to the log file failed (disk full); ``filename`` is the log's name.

    Not a :class:`MosflmError`: it ends the run (the command line reports it with one `` *** ``
    line on the terminal), since a run whose log cannot be written cannot report anything.
    """
