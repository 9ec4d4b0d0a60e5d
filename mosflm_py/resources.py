"""Where the keyword specifications and help texts live (wheel or source checkout).

The only module that knows the data layout: ``keywords/*.toml``, ``help/*.txt`` and
``help/topics/*.txt``. Looked up in order: ``mosflm_py/_data/`` (a built wheel),
the repository checkout next to the package (editable install), ``<prefix>/share/mosflm-py/``.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_root() -> Path:
    """Folder that holds ``keywords/`` and ``help/``."""
    candidates = [
        _PACKAGE / "_data",
        _PACKAGE.parent,
        Path(sys.prefix) / "share" / "mosflm-py",
    ]
    for root in candidates:
        if (root / "keywords").is_dir() and any((root / "keywords").glob("*.toml")):
            return root
    return _PACKAGE.parent


def keywords_dir() -> Path:
    """Folder of the keyword specifications (``*.toml``)."""
    return data_root() / "keywords"


def help_dir() -> Path:
    """Folder of the per-keyword help texts (``*.txt``)."""
    return data_root() / "help"


def topics_dir() -> Path:
    """Folder of the help topics (``conventions.txt`` ...)."""
    return help_dir() / "topics"
