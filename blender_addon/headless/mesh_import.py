"""Mesh files imported into a fresh bpy session, then captured with a ring.

Headless batch use only: importing replaces the session's data. Here too is the
import-then-capture-with-a-ring step the ``capture`` / ``capture-many`` commands run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import bpy
from partdistill.shared.capture import Capture
from partdistill.shared.errors import ValidationError
from partdistill.shared.mesh_files import check_mesh_file
from partdistill.shared.off import read_off

from ..capture import capture_object


def import_mesh_file(path: str | os.PathLike) -> bpy.types.Object:
    """Load a mesh file into a fresh empty session and return one mesh object (see :func:`import_mesh`)."""
    return import_mesh(path)[0]


def import_mesh(path: str | os.PathLike) -> tuple[bpy.types.Object, list[str]]:
    """Load a mesh file into a fresh empty session; return one mesh object and warnings (one line
    each) about what the import could not keep.

    Formats: .obj .ply .stl .glb .gltf .fbx .blend .off (mesh objects are appended; hidden ones only
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
        ".off": lambda: _add_off_mesh(p),
    }
    if ext not in importers:
        raise ValidationError(
            "input",
            f"unsupported file type {ext or '(none)'!r} for {p.name}; use one of {', '.join(importers)}",
        )
    facts = check_mesh_file(p)
    bpy.ops.wm.read_homefile(use_empty=True)
    with tempfile.TemporaryDirectory(prefix="partdistill-import-") as tmp:
        if facts.forward_faces:  # Blender's OBJ reader drops faces that use vertices defined further down
            p = vertices_first(p, Path(tmp) / p.name)
        try:
            importers[ext]()
        except (RuntimeError, OSError, ValueError) as e:
            lines = str(e).strip().splitlines()
            first = lines[-1].removeprefix("Error: ") if lines else type(e).__name__
            raise ValidationError("input", f"could not read {Path(path).name}: {first}") from e
    p = Path(path)
    scene = bpy.context.scene
    meshes = [o for o in scene.objects if o.type == "MESH" and len(o.data.polygons) > 0]
    if not meshes:
        raise ValidationError("input", f"{p.name} contains no mesh with faces (is the file broken or empty?)")
    kept = sum(len(o.data.polygons) for o in meshes)
    warnings = []
    if facts.faces is not None and kept < facts.faces:
        warnings.append(
            f"{p.name}: the import kept {kept:,} of the file's {facts.faces:,} faces "
            f"({facts.faces - kept:,} degenerate or invalid faces dropped)"
        )
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
    return target, warnings


def _add_off_mesh(p: Path) -> None:
    """An OFF file (no importer in Blender) as one mesh object of the scene."""
    off = read_off(p)
    mesh = bpy.data.meshes.new(p.stem)
    mesh.from_pydata(off.vertices.tolist(), [], off.polygons)
    mesh.validate()  # drops degenerate faces, which the import's face count then reports
    bpy.context.scene.collection.objects.link(bpy.data.objects.new(p.stem, mesh))


def capture_file(path: str | os.PathLike, **kwargs: object) -> Capture:
    """Import a mesh file (see :func:`import_mesh_file`, which replaces the session's data) and
    capture it with a camera ring. ``kwargs`` go to :func:`capture_object` (``ring`` defaults to
    True); ``meta["object_name"]`` names the object left in the scene for applying results."""
    obj, warnings = import_mesh(path)
    kwargs.setdefault("ring", True)
    capture = capture_object(obj, **kwargs)  # type: ignore[arg-type]
    capture.warnings[:0] = warnings
    return capture


def vertices_first(src: Path, dst: Path) -> Path:
    """Write ``src`` (an OBJ) to ``dst`` with every ``v``/``vt``/``vn`` line moved ahead of the rest
    (relative indices made absolute, ``mtllib`` paths made absolute): the same mesh, in the order
    Blender's reader needs. Returns ``dst``."""
    counts = {"v": 0, "vt": 0, "vn": 0}
    data, rest = [], []
    with src.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            word = line.split(maxsplit=1)[0] if line.strip() else ""
            if word in counts:
                counts[word] += 1
                data.append(line)
            elif word in ("f", "l", "p"):
                rest.append(word + " " + " ".join(_absolute(t, counts) for t in line.split()[1:]) + "\n")
            elif word == "mtllib":
                libs = line.split()[1:]
                rest.append("mtllib " + " ".join(str((src.parent / lib).resolve()) for lib in libs) + "\n")
            else:
                rest.append(line)
    dst.write_text("".join(data) + "".join(rest), encoding="utf-8")
    return dst


def _absolute(token: str, counts: dict[str, int]) -> str:
    """One ``v/vt/vn`` reference with negative (relative) indices resolved against the counts so far."""
    parts = token.split("/")
    for k, (kind, ref) in enumerate(zip(("v", "vt", "vn"), parts, strict=False)):
        if ref.startswith("-") and ref[1:].isdigit():
            parts[k] = str(counts[kind] + 1 + int(ref))
    return "/".join(parts)


def _append_blend_meshes(path: Path) -> None:
    with bpy.data.libraries.load(str(path), link=False) as (src, dst):
        dst.objects = list(src.objects)
    scene = bpy.context.scene
    # Only meshes are linked into the scene; their parents and modifier targets stay appended but
    # unlinked, so transforms and modifiers still evaluate.
    for o in dst.objects:
        if o is not None and o.type == "MESH":
            scene.collection.objects.link(o)
