"""Reading inputs: bundles, mesh files (captured in headless Blender), point clouds, labels.

Capture bundles are read directly, mesh files captured with headless Blender in a child
process (bpy and torch stay in separate processes; a crash in Blender cannot take the engine down),
point clouds captured in this process (numpy), folders expanded, few-shot label files re-indexed
onto the requested parts."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from partdistill.shared.bundle import load_bundle
from partdistill.shared.capture import Capture
from partdistill.shared.errors import ValidationError
from partdistill.shared.mesh_files import check_mesh_file
from partdistill.shared.ply import ply_has_faces
from partdistill.shared.point_capture import capture_point_cloud
from partdistill.shared.point_cloud import POINT_SUFFIXES, read_point_file

MESH_SUFFIXES = (".obj", ".ply", ".stl", ".glb", ".gltf", ".fbx", ".blend", ".off")
# Point clouds: POINT_SUFFIXES always, ``.ply`` without faces, and ``.npz`` files holding ``points`` but no views.
INPUT_SUFFIXES = (*MESH_SUFFIXES, *POINT_SUFFIXES)


def is_point_cloud_file(path: Path) -> bool:
    """Whether ``path`` is a point cloud to capture in-process (not a mesh for Blender, not a bundle)."""
    suffix = path.suffix.lower()
    if suffix in POINT_SUFFIXES:
        return True
    try:
        if suffix == ".ply":
            return not ply_has_faces(path)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return "points" in z.files and "rgb" not in z.files
    except (ValidationError, OSError, ValueError, zipfile.BadZipFile):
        return False  # the reader that follows names the problem
    return False


def capture_point_file(path: Path, *, views: int = 10, resolution: int = 512) -> Capture:
    """Read a point cloud and capture it from the camera ring, in this process (numpy; no Blender)."""
    try:
        return capture_point_cloud(read_point_file(path), n_views=views, resolution=resolution)
    except ValidationError as e:
        raise ValidationError(e.field, f"{path}: {e.problem}") from None


def check_input_file(path: Path) -> None:
    """An input that is missing or a folder is refused by name, before anything opens it."""
    if not path.exists():
        raise ValidationError("input", f"not found: {path}")
    if path.is_dir():
        raise ValidationError(
            "input",
            f"{path} is a folder, not a mesh file or capture bundle "
            f"(`partdistill batch {path}` labels every mesh in a folder)",
        )


def read_input(
    path: Path, *, views: int = 10, resolution: int = 512, quiet: bool = False, engine: str = "auto"
) -> Capture:
    """A capture bundle is read directly; a mesh file is captured with headless Blender in a child
    process (bpy and torch stay in separate processes; a crash in Blender cannot take the engine down)."""
    check_input_file(path)
    suffix = path.suffix.lower()
    if is_point_cloud_file(path):
        return capture_point_file(path, views=views, resolution=resolution)
    if suffix == ".npz":
        return load_bundle(path).check_views_show_object()  # before a teacher is loaded for it
    if suffix not in MESH_SUFFIXES:
        raise ValidationError(
            "input",
            f"unknown input type {path.suffix!r}: expected a capture bundle .npz, a mesh file {MESH_SUFFIXES} "
            f"or a point cloud {POINT_SUFFIXES}",
        )
    with tempfile.TemporaryDirectory(prefix="partdistill-capture-") as tmp:
        bundle = Path(tmp) / "capture.npz"
        capture_in_blender(path, bundle, views=views, resolution=resolution, quiet=quiet, engine=engine)
        return load_bundle(bundle)


def capture_in_blender(
    mesh: Path, bundle: Path, *, views: int, resolution: int, quiet: bool = False, engine: str = "auto"
) -> None:
    check_mesh_file(mesh)  # in seconds, before Blender starts
    cmd = headless_command("capture", str(mesh), str(bundle), views=views, resolution=resolution, engine=engine)
    if not quiet:
        print(f"capturing {mesh} ({views} views, {resolution} px) with headless Blender ...", file=sys.stderr)
    # errors=replace: Blender may echo bytes of a broken file that are not UTF-8
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=blender_env())
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        if "No module named 'bpy'" in (proc.stderr or ""):
            last = "Blender as a Python module (bpy) is not installed: `pip install 'partdistill[blender]'`"
        raise ValidationError("input", f"capturing {mesh} failed: {last.removeprefix('partdistill: error: ')}")


def headless_command(command: str, *arguments: str, views: int, resolution: int, engine: str) -> list[str]:
    """The command line of a headless-Blender capture child (``capture`` or ``capture-many``)."""
    return [
        sys.executable,
        "-m",
        "partdistill.blender_addon.headless",
        command,
        *arguments,
        "--views",
        str(views),
        "--resolution",
        str(resolution),
        "--engine",
        engine,
    ]


def blender_env() -> dict[str, str]:
    """The environment of every headless-Blender child: a persistent shader cache and an empty user folder."""
    env = dict(os.environ)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "partdistill"
    env.setdefault("XDG_CACHE_HOME", str(cache.parent))  # keeps compiled Workbench shaders between runs
    env.setdefault("BLENDER_USER_RESOURCES", str(cache / "blender-user"))
    return env


def detections_file(path: Path) -> Path | None:
    """``<stem>.detections.json`` beside an input (the ``fit`` and ``batch`` convention), if there is one."""
    f = path.with_name(path.stem + ".detections.json")
    return f if f.exists() else None


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given; folders -> their bundles and mesh files (sorted), detections files skipped."""
    out = []
    for p in inputs:
        if p.is_dir():
            out += sorted(
                f
                for f in p.iterdir()
                if f.suffix.lower() in (".npz", *MESH_SUFFIXES, ".xyz", ".pts", ".npy")
                and not f.name.endswith(".labels.npz")
            )
        elif p.exists():
            out.append(p)
        else:
            raise ValidationError("input", f"not found: {p}")
    if not out:
        raise ValidationError("input", "no mesh files or capture bundles among the inputs")
    return out


def read_few_shot_labels(path: Path, cap: Capture, names: tuple[str, ...]) -> np.ndarray:
    """``<stem>.labels.npz`` (the ``labels.npz`` format: face_labels + part_names) -> (F,) int32 labels
    re-indexed onto ``names``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            labels, their = z["face_labels"].astype(np.int32), [str(n) for n in z["part_names"]]
    except (OSError, KeyError, ValueError) as e:
        raise ValidationError("--labels", f"{path}: not a labels file with face_labels and part_names ({e})") from None
    if labels.shape != (cap.mesh.n_faces,):
        raise ValidationError(
            "--labels", f"{path}: {labels.shape[0]} face labels for a mesh of {cap.mesh.n_faces} faces"
        )
    unknown = [n for n in their if n not in names]
    if unknown:
        raise ValidationError("--labels", f"{path}: parts {unknown} are not among --parts")
    remap = np.array([names.index(n) for n in their] + [-1], dtype=np.int32)
    return remap[np.where(labels >= 0, labels, len(their))]
