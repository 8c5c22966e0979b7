"""Shared pytest fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Test helpers (synthetic captures, tiny models) live beside this file; the tests in the package
# folders below (tests/shared, tests/backend, ...) import them by name.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def tiny_grounding_dino(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with a tiny random Grounding DINO (model + processor), built once per session;
    load it with ``GroundingDinoTeacher(model=str(path))``."""
    from partdistill.bench.random_teachers import build_tiny_grounding_dino

    return build_tiny_grounding_dino(tmp_path_factory.mktemp("tiny_grounding_dino"))


# --- One temporary folder for the whole session ---------------------------------------------------
# What the libraries under test keep between runs goes into one folder made for this session and
# removed at its end, never into the user's home or loose in the machine's temporary folder:
# Blender reads BLENDER_USER_RESOURCES (no user add-ons or startup file) when bpy is first imported,
# and torch's inductor makes its cache folder when transformers imports it. Test modules import bpy
# and torch only after conftest, so setting them here is early enough; subprocesses inherit them.
# The caches under XDG_CACHE_HOME (Blender's and Mesa's compiled shaders, ~3 s of Workbench start-up
# when cold) go into the project's own .cache/tests instead, kept between runs: Blender makes its
# shader-cache folder there as the process exits, after this session's folder is gone, and without
# that folder it would fall back to a loose blender/ in the temporary folder.
import fnmatch  # noqa: E402
import getpass  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="partdistill-tests-"))
os.environ["BLENDER_USER_RESOURCES"] = str(_SESSION_TMP / "blender-user")
_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "tests"
_CACHE.mkdir(parents=True, exist_ok=True)
os.environ["XDG_CACHE_HOME"] = str(_CACHE)
os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(_SESSION_TMP / "torchinductor")

# Names that the project's tests and the libraries they drive would leave in the temporary folder
# (not Blender's own session folder, blender_*: bpy removes it when the process exits, after this).
_OURS = ("partdistill*", "pytest-of-*", "ray*", "torch*", "tmp*", "pymp-*", "blender")
_TEMP_BEFORE = set(os.listdir(tempfile.gettempdir()))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session folder, and fail a run that passed but left something of its own in the
    machine's temporary folder (pytest's own ``tmp_path`` folders go when every test passed:
    ``tmp_path_retention_policy = "failed"``)."""
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)
    temp = Path(tempfile.gettempdir())
    own = temp / f"pytest-of-{getpass.getuser()}"
    if own.is_dir() and all(p.is_symlink() and not p.exists() for p in own.iterdir()):
        shutil.rmtree(own, ignore_errors=True)  # nothing left in it but the dead "pytest-current" link
    if exitstatus != 0:
        return
    left = sorted(n for n in set(os.listdir(temp)) - _TEMP_BEFORE if any(fnmatch.fnmatch(n, p) for p in _OURS))
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nthe tests left these in {temp}: {', '.join(left)}", file=sys.stderr)


@pytest.fixture
def bpy_empty():
    """The ``bpy`` module on an empty scene. bpy is imported once per process; between tests
    ``read_homefile(use_empty=True)`` resets the data and keeps add-ons registered (unlike
    ``read_factory_settings``)."""
    bpy = pytest.importorskip("bpy")
    bpy.ops.wm.read_homefile(use_empty=True)
    return bpy


# --- tiny OWLv2 / CLIPSeg / SAM (random weights, real processors) ---------------------------------


def _tiny_builder(name: str):
    from partdistill.bench import random_teachers

    return getattr(random_teachers, name)


@pytest.fixture(scope="session")
def tiny_owlv2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with a tiny random OWLv2 (model + processor); ``Owlv2Teacher(model=str(path))``."""
    return _tiny_builder("build_tiny_owlv2")(tmp_path_factory.mktemp("tiny_owlv2"))


@pytest.fixture(scope="session")
def tiny_clipseg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with a tiny random CLIPSeg (model + processor); ``ClipSegTeacher(model=str(path))``."""
    return _tiny_builder("build_tiny_clipseg")(tmp_path_factory.mktemp("tiny_clipseg"))


@pytest.fixture(scope="session")
def tiny_sam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with a tiny random SAM (model + processor); ``SamRefiner(model=str(path))``."""
    return _tiny_builder("build_tiny_sam")(tmp_path_factory.mktemp("tiny_sam"))


@pytest.fixture
def hf_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hugging Face offline mode for one test. huggingface_hub reads HF_HUB_OFFLINE once at import:
    its constant is patched as well as the environment."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def torch_single_thread():
    """Run one test with one torch thread, then restore the count. The tiny models' ops take
    microseconds, so thread hand-offs dominate: on this 2-core machine under load the teacher tests
    ran 4x faster with one thread (5 s instead of 20 s)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def chair_object(bpy_empty):
    """The add-on registered and a three-part chair (``bench.shapes.chair(arms=False)``: seat, back,
    leg) as the active, selected mesh object of an empty scene."""
    import partdistill.blender_addon as addon
    from partdistill.bench.shapes import chair

    bpy = bpy_empty
    if not hasattr(bpy.types.Scene, "partdistill"):
        addon.register()
    shape = chair(arms=False)
    mesh = bpy.data.meshes.new("chair")
    mesh.from_pydata(shape.vertices.tolist(), [], shape.polygons)
    obj = bpy.data.objects.new("chair", mesh)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    return obj
