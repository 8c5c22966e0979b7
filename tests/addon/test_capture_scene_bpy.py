"""Headless capture leaves the user's Blender scene exactly as it was: after a capture, after a
failed view, and with the object in edit mode."""

from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

from bpy_scenes import add_camera, colour_cube  # noqa: E402
from partdistill.blender_addon import capture as cap_mod  # noqa: E402

pytestmark = pytest.mark.bpy


def scene_snapshot() -> dict:
    scene = bpy.context.scene
    r = scene.render
    data = {
        name: sorted(i.name for i in getattr(bpy.data, name))
        for name in (
            "objects",
            "meshes",
            "cameras",
            "images",
            "materials",
            "scenes",
            "worlds",
            "lights",
            "collections",
            "node_groups",
            "shape_keys",
            "textures",
            "actions",
            "libraries",
        )
    }
    objects = {
        o.name: (
            o.hide_render,
            o.hide_viewport,
            o.hide_get(),
            o.select_get(),
            tuple(c.name for c in o.users_collection),
            tuple(tuple(row) for row in o.matrix_world),
            o.display_type,
            tuple((m.name, m.show_render, m.show_viewport, getattr(m, "render_levels", None)) for m in o.modifiers),
        )
        for o in bpy.data.objects
    }
    meshes = {
        me.name: (
            tuple(sorted(a.name for a in me.attributes)),
            me.attributes.active_index,
            len(me.polygons),
            tuple(m.name if m else None for m in me.materials),
            tuple(me.vertices[0].co),
        )
        for me in bpy.data.meshes
    }
    render = (
        r.engine,
        r.resolution_x,
        r.resolution_y,
        r.resolution_percentage,
        r.filepath,
        r.film_transparent,
        r.image_settings.file_format,
        r.dither_intensity,
        scene.view_settings.view_transform,
        scene.display.shading.light,
        scene.display.render_aa,
        scene.frame_current,
        scene.camera.name if scene.camera else None,
        scene.world.name if scene.world else None,
    )
    active = bpy.context.view_layer.objects.active
    slots = {im.name: (len(im.render_slots), im.render_slots.active_index) for im in bpy.data.images}
    return dict(data=data, objects=objects, meshes=meshes, render=render, active=active and active.name, slots=slots)


def test_users_scene_is_left_as_it_was(bpy_empty, tmp_path):
    scene = bpy.context.scene
    cube = colour_cube()
    cube.shape_key_add(name="Basis")
    key = cube.shape_key_add(name="Key 1")
    key.data[0].co = (-1.5, -1.5, -1.5)
    cube.modifiers.new("bevel", "BEVEL")
    sub = cube.modifiers.new("subsurf", "SUBSURF")
    sub.levels, sub.render_levels = 1, 2
    cube.hide_render = True  # hidden for render: still captured, and still hidden afterwards
    bpy.ops.mesh.primitive_monkey_add(location=(0, 0, 3))
    other = bpy.context.object
    other.select_set(True)
    cam = add_camera((5.0, -5.0, 4.0))
    scene.camera = cam
    world = bpy.data.worlds.new("user world")
    scene.world = world
    r = scene.render
    r.engine = "CYCLES"
    r.resolution_x, r.resolution_y, r.resolution_percentage = 40, 30, 50
    r.filepath = str(tmp_path / "user_render_")
    r.film_transparent = False
    scene.frame_current = 7
    scene.view_settings.view_transform = "AgX"
    # A user render already in the Render Result: the capture renders into a slot of its own.
    r.engine = "BLENDER_WORKBENCH"
    r.filepath = str(tmp_path / "user.png")
    bpy.ops.render.render(write_still=True)
    r.engine = "CYCLES"
    bpy.context.view_layer.objects.active = other
    before = scene_snapshot()

    calls = []
    c1 = cap_mod.capture_object(cube, ring=True, n_views=3, resolution=32, progress=lambda *a: calls.append(a))
    assert calls == [(1, 3, "view 1/3"), (2, 3, "view 2/3"), (3, 3, "view 3/3")]
    assert (c1.face_id >= 0).mean() > 0.2
    after_ring = scene_snapshot()
    c2 = cap_mod.capture_object(cube, resolution=32)  # the scene's camera, scene aspect 4:3
    assert c2.rgb.shape == (1, 24, 32, 3)
    assert c2.meta["camera_names"] == ["cam"]
    after_scene_cams = scene_snapshot()
    rr = bpy.data.images["Render Result"]
    assert before["slots"]["Render Result"][1] == rr.render_slots.active_index
    for snap in (after_ring, after_scene_cams):
        snap["slots"] = before["slots"]  # one extra runtime render slot at most; compared above
        assert snap == before
    assert not any(a.name.startswith("_partdistill") for a in cube.data.attributes)


def test_no_leftovers_when_a_view_fails(bpy_empty):
    cube = colour_cube()
    before = scene_snapshot()

    def stop(done, total, message):
        raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        cap_mod.capture_object(cube, ring=True, n_views=2, resolution=16, progress=stop)
    assert scene_snapshot() == before


def test_object_in_edit_mode(bpy_empty):
    cube = colour_cube()
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        c = cap_mod.capture_object(cube, ring=True, n_views=1, resolution=24)
        assert c.mesh.n_faces == 12
        assert cube.mode == "EDIT"
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
