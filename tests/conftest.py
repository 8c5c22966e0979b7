"""Shared pytest fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_grounding_dino(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with a tiny random Grounding DINO (model + processor), built once per session;
    load it with ``GroundingDinoTeacher(model=str(path))``."""
    # tests/ may or may not be a package; import the builder from its folder either way.
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_models import build_tiny_grounding_dino

    return build_tiny_grounding_dino(tmp_path_factory.mktemp("tiny_grounding_dino"))


# --- Blender (bpy) -------------------------------------------------------------------------------
# bpy reads these when it is first imported: an empty user-resource folder (no user add-ons or
# startup file) and a persistent cache so Workbench compiles its shaders only once (~3 s cold).
# Test modules import bpy only after conftest, so setting them here is early enough.
import os  # noqa: E402
import tempfile  # noqa: E402

_BPY_HOME = Path(tempfile.gettempdir()) / "partdistill-pytest-blender"
os.environ.setdefault("BLENDER_USER_RESOURCES", str(_BPY_HOME / "user"))
os.environ.setdefault("XDG_CACHE_HOME", str(_BPY_HOME / "cache"))


@pytest.fixture
def bpy_empty():
    """The ``bpy`` module on an empty scene. bpy is imported once per process; between tests
    ``read_homefile(use_empty=True)`` resets the data and keeps add-ons registered (unlike
    ``read_factory_settings``)."""
    bpy = pytest.importorskip("bpy")
    bpy.ops.wm.read_homefile(use_empty=True)
    return bpy
