"""The docs a newcomer reads: a short README that links to the rest, every link pointing at a file and a
heading that exist, every topic the long README once covered with a home, no history in them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: History has no place in the code or the docs: issue numbers, the paper called "the seed", files
#: outside the repository, commit hashes.
HISTORY = (
    r"\bissue \d+|\bthe seed\b|DESIGN §|DESIGN\.md|\.\./shared/seed|\bcommit [0-9a-f]{7,40}\b|\b[0-9a-f]{7,40} commit"
    r"|\((?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\)"  # a commit hash in parentheses
)
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")

#: Every topic of the former single README, and the page that now holds it (a heading there).
HOMES = {
    "docs/cli.md": [
        "Segmenting your own meshes",
        "Pre-alignment: one student per category",
        "Batch labelling of whole collections",
        "The Python API (backend)",
    ],
    "docs/server.md": [
        "Security: keys, clients, models",
        "Scaling out: the jobs on a Ray cluster",
        "Pre-alignment over large collections: torchrun",
        "Under load and hostile input",
    ],
    "docs/blender.md": ["The Blender add-on", "Headless Blender (bpy) from Python"],
    "docs/formats.md": [
        "Outputs of a labelling run",
        "Capture bundle (`.npz`)",
        "Detections (`.json`)",
        "Wire protocol (ZeroMQ)",
    ],
    "docs/architecture.md": ["How it works"],
    "docs/benchmark.md": ["Running the benchmarks", "Measured on this machine (2-core CPU, no GPU)"],
    "CONTRIBUTING.md": ["Tests", "Pins"],
}


def slug(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rule)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def headings(path: Path) -> list[str]:
    out, fenced = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            out.append(line.lstrip("#").strip())
    return out


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_points_at_a_file_and_a_heading_that_exist(doc):
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        assert dest.exists(), f"{doc.name}: {target} points at nothing"
        if anchor and dest.suffix == ".md":
            assert anchor in {slug(h) for h in headings(dest)}, f"{doc.name}: no heading for #{anchor} in {dest.name}"


@pytest.mark.parametrize("page", sorted(HOMES))
def test_every_topic_of_the_old_readme_has_a_home(page):
    assert set(HOMES[page]) <= set(headings(ROOT / page))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_docs_describe_what_is_not_its_history(doc):
    text = doc.read_text()
    assert not re.search(HISTORY, text, re.I), re.search(HISTORY, text, re.I).group(0)


SOURCES = sorted(
    p
    for folder in ("backend", "shared", "blender_addon", "bench", "tests", "scripts", ".ci")
    for p in (ROOT / folder).rglob("*")
    if p.is_file() and p.suffix in (".py", ".sh", ".toml", "") and "__pycache__" not in p.parts
) + [ROOT / "pyproject.toml"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_code_describes_what_is_not_its_history(source):
    if source == Path(__file__).resolve():
        return  # the rule itself
    text = source.read_text(errors="replace")
    found = re.search(HISTORY, text, re.I)
    assert found is None, found.group(0)


MODULES = sorted(p for folder in ("backend", "shared", "blender_addon", "bench") for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_opens_with_one_line_on_its_role(module):
    import ast

    doc = ast.get_docstring(ast.parse(module.read_text()), clean=False)
    assert doc, "no module docstring"
    lines = doc.strip("\n").splitlines()
    assert len(lines) == 1 or not lines[1].strip(), f"the first line is not a summary of its own: {lines[0]!r}"
