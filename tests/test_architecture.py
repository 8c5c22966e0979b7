"""The tree's own rules that import-linter does not check: small modules with names that say what
they hold."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("shared", "backend", "blender_addon")
EVALUATION = ("bench",)
MAX_LINES = 420  # "about 400": a module past this wants splitting by concern
GRAB_BAG_NAMES = {"utils", "util", "helpers", "helper", "misc", "common"}


def _modules(tops=PRODUCT):
    for top in tops:
        yield from sorted((ROOT / top).rglob("*.py"))


def test_no_module_is_over_about_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these by concern: {long}"


def test_no_grab_bag_module_names():
    bad = [str(p.relative_to(ROOT)) for p in _modules(PRODUCT + EVALUATION) if p.stem in GRAB_BAG_NAMES]
    assert not bad, f"name modules after the one concept they hold: {bad}"
