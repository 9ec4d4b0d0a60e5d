"""The package's import structure (issue 11): no import circles, no hidden imports.

The figures come from ``scripts/architecture_report.py`` (run it for the full report).
"""

from __future__ import annotations

import importlib.util
import io
import sys
import types
from pathlib import Path

import pytest

from mosflm_py.errors import BadData, BadParameter, Diverged, IndexingError, NoSolution
from mosflm_py.session import Session

REPO = Path(__file__).resolve().parents[1]


def _report_module():
    name = "architecture_report"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


report = _report_module()


def test_report_finds_a_circle(tmp_path):
    """The measurement can fail: a two-module circle through a function-level import is found."""
    pkg = tmp_path / "mosflm_py"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from mosflm_py.b import g\n\ndef f():\n    return g()\n")
    (pkg / "b.py").write_text("def g():\n    from mosflm_py import a\n    return a\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mosflm_py.a\n"
    )
    graph = report.import_graph(tmp_path)
    assert report.import_circles(graph) == [["mosflm_py.a", "mosflm_py.b"]]
    assert report.import_circles(report.import_graph(tmp_path, include_function_level=False)) == []
    lazy = report.function_level_imports(tmp_path)
    assert [(s.importer, s.target) for s in lazy] == [("mosflm_py.b", "mosflm_py.a")]


def test_no_import_circles():
    """No circles among mosflm_py modules, counting function-level and TYPE_CHECKING imports."""
    graph = report.import_graph(include_type_checking=True)
    assert report.import_circles(graph) == []


def test_no_hidden_imports():
    """Imports inside functions only for the listed optional/heavy packages (and cli.py)."""
    hidden = [
        f"{s.path}:{s.line} imports {s.target}"
        for s in report.function_level_imports()
        if not report.is_allowed_lazy(s)
    ]
    assert hidden == []


def test_algorithms_raise_their_own_errors():
    """``KeywordError`` is raised by the keyword layer only (registry, setters, session, ...)."""
    assert report.keyword_errors_in_algorithms() == {}


@pytest.mark.parametrize("error", [BadParameter, BadData, NoSolution, Diverged, IndexingError])
def test_session_names_the_line_of_an_algorithm_error(monkeypatch, error):
    """An algorithm's error at GO is one `` *** `` message naming the job's input line."""
    fake = types.ModuleType("mosflm_py.actions.mosaic")

    def estimate(session, job):
        raise error("the spots do not fit (test)")

    fake.estimate = estimate
    monkeypatch.setitem(sys.modules, "mosflm_py.actions.mosaic", fake)
    out = io.StringIO()
    session = Session(out=out)
    session.run_lines(["DISTANCE 100", "MOSAIC ESTIMATE", "GO"])
    session.finish()
    text = out.getvalue()
    assert session.failures == 1
    assert " *** the spots do not fit (test)" in text
    assert "(job MOSAIC ESTIMATE given in input line 2)" in text
    assert "Traceback" not in text
