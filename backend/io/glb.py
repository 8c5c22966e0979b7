"""A labelled mesh written as binary glTF, one material per part.

One primitive and one material per part (.glb), so any
viewer or DCC tool shows the parts in colour and keeps them separable. Pure numpy, no Blender."""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from partdistill.shared.palette import part_color


def write_glb(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray,
    face_labels: np.ndarray,
    part_names: Sequence[str],
) -> Path:
    """vertices (V, 3) float32, faces (F, 3) int32, face_labels (F,) int32 (-1 unlabelled).
    Coordinates are written as given (Blender's z-up world) converted to glTF's y-up."""
    path = Path(path)
    v = np.ascontiguousarray(vertices, dtype=np.float32)[:, [0, 2, 1]] * np.array([1, 1, -1], np.float32)
    groups = [(i, n) for i, n in enumerate(part_names)] + [(-1, "unlabelled")]
    blob = bytearray()
    views, accessors, primitives, materials = [], [], [], []

    def add_view(data: bytes, target: int) -> int:
        while len(blob) % 4:
            blob.append(0)
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data), "target": target})
        blob.extend(data)
        return len(views) - 1

    pos_view = add_view(v.tobytes(), 34962)
    accessors.append(
        {
            "bufferView": pos_view,
            "componentType": 5126,
            "count": len(v),
            "type": "VEC3",
            "min": v.min(axis=0).tolist(),
            "max": v.max(axis=0).tolist(),
        }
    )
    for label, name in groups:
        tri = np.ascontiguousarray(faces[face_labels == label], dtype=np.uint32)
        if tri.size == 0:
            continue
        acc = len(accessors)
        accessors.append(
            {
                "bufferView": add_view(tri.tobytes(), 34963),
                "componentType": 5125,
                "count": tri.size,
                "type": "SCALAR",
            }
        )
        r, g, b = part_color(label)
        materials.append(
            {
                "name": name,
                "pbrMetallicRoughness": {
                    "baseColorFactor": [r, g, b, 1.0],
                    "metallicFactor": 0.0,
                    "roughnessFactor": 0.8,
                },
                "doubleSided": True,
            }
        )
        primitives.append({"attributes": {"POSITION": 0}, "indices": acc, "material": len(materials) - 1, "mode": 4})
    doc = {
        "asset": {"version": "2.0", "generator": "partdistill"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "segmented"}],
        "meshes": [{"name": "segmented", "primitives": primitives, "extras": {"part_names": list(part_names)}}],
        "materials": materials,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    blob.extend(b"\0" * (-len(blob) % 4))
    out = struct.pack("<III", 0x46546C67, 2, 12 + 8 + len(js) + 8 + len(blob))
    out += struct.pack("<II", len(js), 0x4E4F534A) + js + struct.pack("<II", len(blob), 0x004E4942) + bytes(blob)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out)
    return path


def read_glb_json(path: str | Path) -> dict:
    """The JSON chunk of a .glb (for checks and tests)."""
    data = Path(path).read_bytes()
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != 0x46546C67 or version != 2 or length != len(data):
        raise ValueError(f"{path} is not a glTF 2.0 binary file")
    n, kind = struct.unpack_from("<II", data, 12)
    if kind != 0x4E4F534A:
        raise ValueError(f"{path}: first chunk is not JSON")
    return json.loads(data[20 : 20 + n])
