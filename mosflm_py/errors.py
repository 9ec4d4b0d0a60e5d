"""Exceptions with user-facing messages.

Every error a user can cause derives from :class:`MosflmError`; the session prints its message as
`` *** <message>`` and carries on (interactive) or carries on and exits non-zero (piped input).
"""

from __future__ import annotations


class MosflmError(Exception):
    """Base class: ``str(err)`` is a complete, user-facing message."""


class KeywordError(MosflmError):
    """Unknown keyword, wrong number/type of arguments, out-of-range value."""


class NotImplementedYet(MosflmError):
    """An accepted keyword whose action is not implemented yet (never a silent no-op)."""


class ImageError(MosflmError):
    """Missing, unreadable or corrupt image, or a template that matches nothing."""


class GeometryError(MosflmError):
    """Impossible or inconsistent geometry (e.g. zero distance, beam off the detector)."""


class IndexingError(MosflmError):
    """Autoindexing failed; the message carries MOSFLM's advice."""


class RefinementError(MosflmError):
    """Refinement failed or diverged (residual too large, too few reflections)."""


class TooFewReflections(RefinementError):
    """Too few usable reflections to refine: nothing was tried, so nothing failed."""


class IntegrationError(MosflmError):
    """Integration could not proceed."""
