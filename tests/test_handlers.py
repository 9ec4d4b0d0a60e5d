"""Every hook a keyword declares resolves; keywords declared not implemented say so (issue 11.5).

A typo in a handler name used to be reported to the user as "not implemented yet"; now only
keywords whose ``keywords/*.toml`` says ``implemented = false`` answer that, and this test
imports every other hook, so a wrong name fails the suite.
"""

from __future__ import annotations

import tomllib

import pytest
from conftest import run_script

from mosflm_py.helptext import keyword_page
from mosflm_py.registry import default_registry, resolve_hook
from mosflm_py.resources import keywords_dir

REG = default_registry()


def _specs() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(keywords_dir().glob("*.toml")):
        with open(path, "rb") as fh:
            out.append((path.name, tomllib.load(fh)))
    return out


def _hooks(d: dict) -> list[str]:
    hooks = [d[k] for k in ("handler", "parser", "apply", "effect") if d.get(k)]
    hooks += list(d.get("checks", []))
    for sub in d.get("subkeywords", {}).values():
        hooks += [sub[k] for k in ("handler", "parser", "apply", "effect") if sub.get(k)]
        hooks += list(sub.get("checks", []))
    return hooks


IMPLEMENTED = [(n, h) for n, d in _specs() if d.get("implemented", True) for h in _hooks(d)]
NOT_IMPLEMENTED = [d["name"].upper() for _, d in _specs() if not d.get("implemented", True)]


@pytest.mark.parametrize(("toml", "hook"), IMPLEMENTED)
def test_every_declared_hook_resolves(toml, hook):
    assert callable(resolve_hook(hook)), (toml, hook)


def test_the_not_implemented_keywords_are_few_and_known():
    assert set(NOT_IMPLEMENTED) == {"BEST", "CLOSE", "CREATE_GREY_IMAGE", "FITCIRCLE", "STATS",
                                    "VALIDATE"}


@pytest.mark.parametrize("name", NOT_IMPLEMENTED)
def test_not_implemented_keyword_says_so_at_go_and_in_help(name, tmp_path):
    spec = REG.lookup(name)
    assert any("not implemented yet" in line for line in keyword_page(spec))
    line = {"FITCIRCLE": "FITCIRCLE 3 0 0 1 0 0 1"}.get(name, name)
    rc, out = run_script(f"{line}\nGO\n", tmp_path)
    assert rc != 0
    assert f"{name} is not implemented yet in mosflm-py" in out
    assert "Internal error" not in out and "Traceback" not in out
