"""Mesh files into a fresh bpy session (headless batch use only: it replaces the session's data),
and the import-then-capture-with-a-ring step the ``capture`` / ``capture-many`` commands run."""

from __future__ import annotations

import math
import os
from pathlib import Path

import bpy
from partdistill.shared.capture import Capture
from partdistill.shared.errors import ValidationError

from ..capture import capture_object


def import_mesh_file(path: str | os.PathLike) -> bpy.types.Object:
    """Load a mesh file into a fresh empty session and return one mesh object.

    Formats: .obj .ply .stl .glb .gltf .fbx .blend (mesh objects are appended; hidden ones only
    when nothing else is there). Several mesh objects are joined into one, modifiers applied, named
    after the file. This *replaces the current bpy session's data* (``read_homefile``): it is meant
    for headless batch use. Raises ``ValidationError("input", ...)`` for a missing, unknown or
    unreadable file, or one without faces.
    """
    p = Path(path)
    if not p.is_file():
        raise ValidationError("input", f"no such file: {p}")
    ext = p.suffix.lower()
    importers = {
        ".obj": lambda: bpy.ops.wm.obj_import(filepath=str(p)),
        ".ply": lambda: bpy.ops.wm.ply_import(filepath=str(p)),
        ".stl": lambda: bpy.ops.wm.stl_import(filepath=str(p)),
        ".glb": lambda: bpy.ops.import_scene.gltf(filepath=str(p)),
        ".gltf": lambda: bpy.ops.import_scene.gltf(filepath=str(p)),
        ".fbx": lambda: bpy.ops.import_scene.fbx(filepath=str(p)),
        ".blend": lambda: _append_blend_meshes(p),
    }
    if ext not in importers:
        raise ValidationError(
            "input",
            f"unsupported file type {ext or '(none)'!r} for {p.name}; use one of {', '.join(importers)}",
        )
    check_mesh_file(p)
    bpy.ops.wm.read_homefile(use_empty=True)
    try:
        importers[ext]()
    except (RuntimeError, OSError, ValueError) as e:
        lines = str(e).strip().splitlines()
        first = lines[-1].removeprefix("Error: ") if lines else type(e).__name__
        raise ValidationError("input", f"could not read {p.name}: {first}") from e
    scene = bpy.context.scene
    meshes = [o for o in scene.objects if o.type == "MESH" and len(o.data.polygons) > 0]
    if not meshes:
        raise ValidationError("input", f"{p.name} contains no mesh with faces (is the file broken or empty?)")
    meshes = [o for o in meshes if not o.hide_render] or meshes
    for o in scene.objects:
        o.hide_viewport = o.hide_select = False
        o.hide_set(False)
        o.select_set(o in meshes)
    view_layer = bpy.context.view_layer
    view_layer.objects.active = meshes[0]
    for o in meshes:
        if o.data.users > 1:  # instanced meshes: convert/join need single-user data
            o.data = o.data.copy()
    # Bake modifiers (an armature pose, a mirror, ...) while the objects they use still exist;
    # join would keep only the active object's.
    bpy.ops.object.convert(target="MESH")
    for o in meshes:
        world = o.matrix_world.copy()
        o.parent = None
        o.matrix_world = world
    for o in [o for o in scene.objects if o not in meshes]:
        bpy.data.objects.remove(o)
    if len(meshes) > 1:
        bpy.ops.object.join()
    target = view_layer.objects.active
    target.name = p.stem
    return target


#: File signatures of things that are not meshes, whatever their name says.
_NOT_MESHES = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"%PDF": "a PDF document",
    b"PK\x03\x04": "a zip archive", b"\x1f\x8b": "a gzip archive",
}  # fmt: skip


def check_mesh_file(p: Path) -> None:
    """Refuse, before Blender reads it, a file that is not what its suffix says (Blender's importers
    read garbage as an empty mesh) and an OBJ or ASCII PLY whose vertex coordinates are NaN or infinite
    (Blender's importers turn those into 0 without a word)."""
    with p.open("rb") as fh:
        head = fh.read(512)
    for magic, what in _NOT_MESHES.items():
        if head.startswith(magic):
            raise ValidationError("input", f"{p.name} is {what}, not a {p.suffix.lower()} mesh")
    ext = p.suffix.lower()
    text_format = ext == ".obj" or (ext == ".ply" and b"format ascii" in head)
    if not text_format:
        return
    if b"\x00" in head:
        raise ValidationError("input", f"{p.name} is binary data, not a text {ext} file")
    with p.open("r", encoding="utf-8", errors="replace") as fh:
        body = fh if ext == ".obj" else _ply_vertex_lines(fh)
        for n, line in enumerate(body, 1):
            if ext == ".obj" and not line.startswith("v "):
                continue
            fields = line.split()[1:4] if ext == ".obj" else line.split()[:3]
            try:
                xyz = [float(x) for x in fields]
            except ValueError:
                raise ValidationError("input", f"{p.name}: line {n} is not a vertex: {line.strip()[:60]!r}") from None
            if not all(map(math.isfinite, xyz)):
                where = f"line {n}" if ext == ".obj" else f"vertex {n}"
                raise ValidationError("input", f"{p.name}: {where} has a NaN or infinite coordinate")


def _ply_vertex_lines(fh):
    """The vertex lines of an ASCII PLY (the first ``element vertex N`` lines after ``end_header``)."""
    count = 0
    while line := fh.readline():
        if line.startswith("element vertex"):
            count = int(line.split()[2])
        if line.strip() == "end_header":
            break
    for _ in range(count):
        line = fh.readline()
        if not line:
            return
        yield line


def capture_file(path: str | os.PathLike, **kwargs: object) -> Capture:
    """Import a mesh file (see :func:`import_mesh_file`, which replaces the session's data) and
    capture it with a camera ring. ``kwargs`` go to :func:`capture_object` (``ring`` defaults to
    True); ``meta["object_name"]`` names the object left in the scene for applying results."""
    obj = import_mesh_file(path)
    kwargs.setdefault("ring", True)
    return capture_object(obj, **kwargs)  # type: ignore[arg-type]


def _append_blend_meshes(path: Path) -> None:
    with bpy.data.libraries.load(str(path), link=False) as (src, dst):
        dst.objects = list(src.objects)
    scene = bpy.context.scene
    # Only meshes are linked into the scene; their parents and modifier targets stay appended but
    # unlinked, so transforms and modifiers still evaluate.
    for o in dst.objects:
        if o is not None and o.type == "MESH":
            scene.collection.objects.link(o)
