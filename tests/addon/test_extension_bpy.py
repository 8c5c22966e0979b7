"""The Blender extension zip: the add-on package (no headless/), the partdistill.shared wheel listed
in the manifest, and, installed the way Blender installs an extension's wheels, it imports and
registers without the development install; its manifest is what Blender >= 4.2 expects."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bpy")

ROOT = Path(__file__).resolve().parents[2]

ADDON_MODULES = {
    "__init__.py",
    "apply.py",
    "job.py",
    "operators.py",
    "preferences.py",
    "properties.py",
    "results.py",
    "ui.py",
    "capture/__init__.py",
    "capture/cameras.py",
    "capture/face_ids.py",
    "capture/render.py",
    "capture/session.py",
}

# Run in a fresh interpreter. It first hides the development install (the setuptools editable finder
# and any sys.path entry into the repository) and checks that partdistill.shared is then out of
# reach; then it installs the extension's wheels with Blender's own wheel manager (extracted into a
# site-packages folder appended to sys.path, as Blender does when it installs an extension) and
# registers the extracted add-on.
STANDALONE = """
import os, sys, tomllib
from pathlib import Path

root, ext_dir = Path(sys.argv[1]), Path(sys.argv[2])


def into_repo(entry):  # the sources, not the environment's site-packages (a .venv may live in the repo)
    path = Path(os.path.realpath(entry or os.getcwd()))
    env = Path(os.path.realpath(sys.prefix))
    return (path == root or root in path.parents) and not (path == env or env in path.parents)


sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in getattr(f, "__name__", type(f).__name__)]
sys.path_hooks[:] = [h for h in sys.path_hooks if "Editable" not in getattr(h, "__qualname__", "")]
sys.path[:] = [p for p in sys.path if "__editable__" not in p and not into_repo(p)]
sys.path_importer_cache.clear()
assert not [m for m in sys.modules if m.split(".")[0] == "partdistill"]
try:
    import partdistill.shared
except ModuleNotFoundError:
    pass
else:
    raise AssertionError(f"the development install is still visible: {partdistill.shared.__file__}")

import bpy  # noqa: I001 (first: it puts Blender's script modules such as addon_utils on sys.path)
import addon_utils

manifest = tomllib.loads((ext_dir / "partdistill_ext" / "blender_manifest.toml").read_text())
wheels = [str(ext_dir / "partdistill_ext" / w) for w in manifest["wheels"]]
local_dir = ext_dir / ".local"


def fail(ex):
    raise ex


addon_utils._extension_sync_wheels(local_dir=str(local_dir), wheel_list=[("partdistill", wheels)], debug=False,
                                   error_fn=fail)
site = local_dir / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
assert str(site) in sys.path, sys.path
site = Path(os.path.realpath(site))
sys.path.insert(0, str(ext_dir))

import partdistill_ext

partdistill_ext.register()
assert bpy.types.Scene.bl_rna.properties.get("partdistill") is not None
assert hasattr(bpy.context.scene, "partdistill") and bpy.context.scene.partdistill.parts
assert bpy.types.AddonPreferences.bl_rna is not None and hasattr(bpy.types, "PARTDISTILL_OT_start_local_backend")
import partdistill.shared

assert site in Path(os.path.realpath(partdistill.shared.__file__)).parents, partdistill.shared.__file__
loaded = {m: getattr(sys.modules[m], "__file__", None) for m in sys.modules if m.split(".")[0] == "partdistill"}
assert "partdistill.shared.client" in loaded, sorted(loaded)
from_site = {m for m, f in loaded.items() if f and site in Path(os.path.realpath(f)).parents}
outside = {m: f for m, f in loaded.items() if not m.startswith("partdistill.shared") or m not in from_site}
assert set(outside) == {"partdistill"}, outside  # the namespace package itself has no file
partdistill_ext.unregister()
assert bpy.types.Scene.bl_rna.properties.get("partdistill") is None
print("ok")
"""


def build_zip(out: Path) -> Path:
    """The extension zip built by scripts/build_extension.py into ``out`` (no PyPI wheels)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_extension.py"), "--out", str(out), "--no-wheels"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(proc.stdout.split()[-1])


def test_extension_zip_registers_standalone_with_the_shared_wheel(tmp_path):
    zpath = build_zip(tmp_path)
    with zipfile.ZipFile(zpath) as z:
        names = set(z.namelist())
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
        z.extractall(tmp_path / "ext" / "partdistill_ext")
    assert ADDON_MODULES <= names, ADDON_MODULES - names
    assert not [n for n in names if n.startswith(("headless/", "shared/")) or "__pycache__" in n]
    shared_wheels = [n for n in names if re.fullmatch(r"wheels/partdistill_shared-[^-]+-py3-none-any\.whl", n)]
    assert len(shared_wheels) == 1, sorted(names)
    # --no-wheels skips only the PyPI downloads: the shared wheel is always bundled and listed.
    assert manifest["wheels"] == [f"./{shared_wheels[0]}"]
    with zipfile.ZipFile(tmp_path / "ext" / "partdistill_ext" / shared_wheels[0]) as whl:
        contents = set(whl.namelist())
    assert "partdistill/shared/client.py" in contents and "partdistill/__init__.py" not in contents
    assert manifest["id"] == "partdistill" and manifest["type"] == "add-on"
    assert tuple(int(x) for x in manifest["blender_version_min"].split(".")) >= (4, 2, 0)
    assert "network" in manifest["permissions"]
    run = subprocess.run(
        [sys.executable, "-c", STANDALONE, str(ROOT), str(tmp_path / "ext")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]


def test_blenders_own_extension_validator_accepts_the_zip(tmp_path):
    import bpy

    zpath = build_zip(tmp_path)
    scripts = Path(bpy.utils.resource_path("LOCAL")) / "scripts"
    validator = next(scripts.glob("addons_core/bl_pkg/cli/blender_ext.py"))
    res = subprocess.run([sys.executable, str(validator), "validate", str(zpath)], capture_output=True, text=True)
    assert res.returncode == 0 and "FATAL" not in res.stdout + res.stderr, res.stdout + res.stderr


# The installed extension driven through bpy.ops, as an artist's clicks would: Segment against a
# loopback backend (a `partdistill serve` process of the development install), Vertex Groups, Split
# into Objects and Clear; argv: root, extension folder, backend address, detections file.
DRIVE = (
    STANDALONE[: STANDALONE.index("partdistill_ext.register()")]
    + """
partdistill_ext.register()
from partdistill_ext import preferences

address, detections = sys.argv[3], sys.argv[4]
bpy.ops.mesh.primitive_cube_add()
obj = bpy.context.active_object
preferences.preferences(bpy.context).backend = address
s = bpy.context.scene.partdistill
s.parts, s.detections, s.n_views, s.resolution, s.epochs = "upper, lower", detections, 2, 64, 20
assert bpy.ops.partdistill.segment() == {"FINISHED"}
assert "partdistill_part" in obj.data.attributes and "partdistill_confidence" in obj.data.attributes
assert bpy.ops.partdistill.vertex_groups() == {"FINISHED"} and len(obj.vertex_groups) == 2
bpy.context.view_layer.objects.active = obj
assert bpy.ops.partdistill.split() == {"FINISHED"}
bpy.context.view_layer.objects.active = obj
assert bpy.ops.partdistill.clear() == {"FINISHED"}
assert "partdistill_part" not in obj.data.attributes and len(obj.vertex_groups) == 0
partdistill_ext.unregister()
print("ok")
"""
)


def test_the_installed_extension_segments_splits_and_clears_through_bpy_ops(tmp_path):
    import os
    import socket

    from partdistill.shared.client import BackendClient
    from partdistill.shared.detections import Detection, Detections

    with zipfile.ZipFile(build_zip(tmp_path)) as z:
        z.extractall(tmp_path / "ext" / "partdistill_ext")
    upper = Detection(0, 0.9, np.array([0, 0, 64, 32], np.float32))
    lower = Detection(1, 0.9, np.array([0, 32, 64, 64], np.float32))
    det = tmp_path / "cube.detections.json"
    Detections(("upper", "lower"), [[upper, lower], [upper, lower]], (64, 64)).save_json(det)
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sk.getsockname()[1]}"
    server = subprocess.Popen(
        [sys.executable, "-m", "partdistill.backend.cli", "serve", "--bind", address],
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        BackendClient(address, timeout_s=120).ping()
        run = subprocess.run(
            [sys.executable, "-c", DRIVE, str(ROOT), str(tmp_path / "ext"), address, str(det)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]
    finally:
        server.terminate()
        server.wait(20)
