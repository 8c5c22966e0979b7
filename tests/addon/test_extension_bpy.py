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

import pytest

pytest.importorskip("bpy")

ROOT = Path(__file__).resolve().parents[2]

ADDON_MODULES = {
    "__init__.py",
    "apply.py",
    "job.py",
    "operators.py",
    "properties.py",
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


def test_extension_zip_registers_standalone_with_the_shared_wheel(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_extension.py"), "--out", str(tmp_path), "--no-wheels"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    zpath = Path(proc.stdout.split()[-1])
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
        [sys.executable, "-c", STANDALONE, str(ROOT), str(tmp_path / "ext")], capture_output=True, text=True,
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]


def test_blenders_own_extension_validator_accepts_the_zip(tmp_path):
    import bpy

    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_extension.py"), "--out", str(tmp_path), "--no-wheels"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    zpath = Path(proc.stdout.split()[-1])
    scripts = Path(bpy.utils.resource_path("LOCAL")) / "scripts"
    validator = next(scripts.glob("addons_core/bl_pkg/cli/blender_ext.py"))
    res = subprocess.run([sys.executable, str(validator), "validate", str(zpath)], capture_output=True, text=True)
    assert res.returncode == 0 and "FATAL" not in res.stdout + res.stderr, res.stdout + res.stderr
