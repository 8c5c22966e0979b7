"""The Blender extension zip: it carries shared/ inside, imports and registers without the
partdistill package, and its manifest is what Blender >= 4.2 expects."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("bpy")

ROOT = Path(__file__).resolve().parents[2]


def test_extension_zip_registers_standalone_with_its_own_copy_of_shared(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_extension.py"), "--out", str(tmp_path), "--no-wheels"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    zpath = Path(proc.stdout.split()[-1])
    with zipfile.ZipFile(zpath) as z:
        names = set(z.namelist())
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
        z.extractall(tmp_path / "ext" / "partdistill_ext")
    assert {"__init__.py", "operators.py", "capture.py", "shared/protocol.py", "shared/client.py"} <= names
    assert "headless.py" not in names
    assert manifest["id"] == "partdistill" and manifest["type"] == "add-on"
    assert tuple(int(x) for x in manifest["blender_version_min"].split(".")) >= (4, 2, 0)
    assert "network" in manifest["permissions"]
    # a fresh interpreter that can see only the extracted add-on (as Blender's extension loader would)
    code = f"""
import sys
sys.path.insert(0, {str(tmp_path / "ext")!r})
import bpy
import partdistill_ext
partdistill_ext.register()
from partdistill_ext import _shared
assert _shared._BASE == "partdistill_ext.shared", _shared._BASE
assert bpy.types.Scene.bl_rna.properties.get("partdistill") is not None
assert hasattr(bpy.context.scene, "partdistill") and bpy.context.scene.partdistill.backend.startswith("tcp://")
partdistill_ext.unregister()
leaked = [m for m in sys.modules if m.startswith("partdistill.")]
assert not leaked, leaked
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]
