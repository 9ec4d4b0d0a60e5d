"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("MOSFLM_PY_DATA", REPO.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of real images (``../shared/data/real``); skips the test when absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not found at {REAL_DATA}")
    return REAL_DATA


def run_script(script: str, cwd: Path, argv: list[str] | None = None) -> tuple[int, str]:
    """Pipe a keyword script into mosflm-py in folder ``cwd``; (exit status, terminal output)."""
    import io

    from mosflm_py.cli import main as mosflm_main

    out = io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        rc = mosflm_main(["--nolog", *(argv or [])], stdin=io.StringIO(script), stdout=out)
    finally:
        os.chdir(old)
    return rc, out.getvalue()
