"""Headless capture's inputs: bad arguments, mesh files of every format (and broken, unknown or
missing ones), the Workbench probe, and the timings the headless capture prints."""

from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

from bpy_scenes import add_camera, colour_cube  # noqa: E402
from partdistill.blender_addon import capture as cap_mod  # noqa: E402
from partdistill.blender_addon.capture import render as cap_render  # noqa: E402
from partdistill.blender_addon.headless.mesh_import import capture_file  # noqa: E402
from partdistill.shared.errors import ValidationError  # noqa: E402

pytestmark = pytest.mark.bpy


def test_bad_arguments(bpy_empty):
    cube = colour_cube()
    cam = add_camera((4.0, -5.0, 3.5))
    with pytest.raises(ValidationError, match="object"):
        cap_mod.capture_object(cam)
    with pytest.raises(ValidationError, match="cameras"):
        cap_mod.capture_object(cube, cameras=[cube])
    with pytest.raises(ValidationError, match="cameras"):
        cap_mod.capture_object(cube, cameras=[cam], ring=True)
    with pytest.raises(ValidationError, match="cameras"):
        cap_mod.capture_object(cube, cameras=[])
    with pytest.raises(ValidationError, match="engine"):
        cap_mod.capture_object(cube, engine="eevee")
    bpy.data.objects.remove(cam)
    with pytest.raises(ValidationError, match="ring=False"):
        cap_mod.capture_object(cube, ring=False)


# --------------------------------------------------------------------------- files

OBJ_TWO_PARTS = """\
o first
v -1 -1 0
v 1 -1 0
v 1 1 0
v -1 1 0
f 1 2 3 4
o second
v -1 -1 1
v 1 -1 1
v 0 1 1
f 5 6 7
"""


def test_capture_file_formats(bpy_empty, tmp_path):
    obj_path = tmp_path / "two_parts.obj"
    obj_path.write_text(OBJ_TWO_PARTS)
    c = capture_file(obj_path, n_views=2, resolution=24)
    assert c.meta["object_name"] == "two_parts"
    assert c.mesh.n_faces == 3 and c.meta["n_polygons"] == 2
    assert c.n_views == 2

    # Round-trip the same scene through the other formats Blender can write.
    obj = bpy.data.objects["two_parts"]
    for o in bpy.data.objects:
        o.select_set(o == obj)
    exports = {
        ".ply": lambda p: bpy.ops.wm.ply_export(filepath=str(p), export_selected_objects=True),
        ".stl": lambda p: bpy.ops.wm.stl_export(filepath=str(p), export_selected_objects=True),
        ".glb": lambda p: bpy.ops.export_scene.gltf(filepath=str(p), use_selection=True),
        ".fbx": lambda p: bpy.ops.export_scene.fbx(filepath=str(p), use_selection=True),
        ".blend": lambda p: bpy.ops.wm.save_as_mainfile(filepath=str(p), copy=True),
    }
    for ext, export in exports.items():
        export(tmp_path / f"model{ext}")
    # OFF, which Blender has no exporter for: its quad and its triangle as the file's polygons
    verts, polygons = [tuple(v.co) for v in obj.data.vertices], [list(p.vertices) for p in obj.data.polygons]
    lines = [f"{x} {y} {z}" for x, y, z in verts] + [" ".join(map(str, [len(q), *q])) for q in polygons]
    (tmp_path / "model.off").write_text(f"OFF\n{len(verts)} {len(polygons)} 0\n" + "\n".join(lines) + "\n")
    for ext in [*exports, ".off"]:
        c = capture_file(tmp_path / f"model{ext}", n_views=1, resolution=16)
        assert c.mesh.n_faces == 3, ext
        assert bpy.data.objects[c.meta["object_name"]].type == "MESH"
        assert len([o for o in bpy.context.scene.objects if o.type == "MESH"]) == 1


@pytest.mark.parametrize("ext", [".obj", ".ply", ".stl", ".glb", ".gltf", ".fbx", ".blend", ".off"])
def test_capture_file_rejects_broken_files(bpy_empty, tmp_path, ext):
    path = tmp_path / f"broken{ext}"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ValidationError, match="^input: .*broken"):
        capture_file(path)


def test_capture_file_rejects_unknown_and_missing(bpy_empty, tmp_path):
    with pytest.raises(ValidationError, match="unsupported file type '.xyz'"):
        (tmp_path / "a.xyz").write_text("1 2 3")
        capture_file(tmp_path / "a.xyz")
    with pytest.raises(ValidationError, match="no such file"):
        capture_file(tmp_path / "missing.obj")


def test_workbench_probe_says_no_when_the_child_cannot_run(monkeypatch):
    if bpy.app.binary_path:
        pytest.skip("inside the Blender executable the probe runs that, not sys.executable")
    monkeypatch.setattr(cap_render.sys, "executable", "/nonexistent/python")
    assert cap_render._probe_workbench() is (not bpy.app.background)


def test_headless_capture_prints_its_timings_render_and_face_ids_apart(tmp_path):
    import json
    import subprocess
    import sys

    from partdistill.bench.shapes import chair

    obj = chair(arms=False).write_obj(tmp_path / "chair.obj")
    cmd = [
        sys.executable,
        "-m",
        "partdistill.blender_addon.headless",
        "capture",
        str(obj),
        str(tmp_path / "c.npz"),
        "--views",
        "2",
        "--resolution",
        "64",
        "--timings",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    t = json.loads(out)
    assert {"setup_s", "render_s", "raster_s", "raycast_s", "read_s"} <= set(t)
    assert t["render_s"] > 0 and t["raster_s"] > 0 and t["raycast_s"] == 0  # the default engine: the rasteriser
    out = subprocess.run([*cmd, "--engine", "workbench"], capture_output=True, text=True, check=True).stdout
    t = json.loads(out.strip().splitlines()[-1])
    assert t["render_s"] > 0 and t["raycast_s"] > 0 and t["raster_s"] == 0
