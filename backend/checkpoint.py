"""A trained student saved to and loaded from a folder.

On disk: ``model.safetensors`` (weights) + ``partdistill.json`` (metadata: part
names, student config, text encoder, partdistill version, training figures). Loading never needs a
teacher. A category student fitted from several seeds is one ``StudentMixture``: its config says
how many members (``"members"``), its weights are the members' under ``members.<i>.``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from partdistill.shared.atomic import replace_together, temporary_name
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import MAX_CATEGORY_STUDENTS

from .students.edge_point_net import EdgePointNet
from .students.mixture import StudentMixture

FORMAT = "partdistill-student"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
META = "partdistill.json"


@dataclass
class Checkpoint:
    student: EdgePointNet | StudentMixture
    part_names: tuple[str, ...]
    text_encoder: str = ""
    n_points: int = 4096
    meta: dict = field(default_factory=dict)


def save_checkpoint(folder: str | Path, ckpt: Checkpoint) -> Path:
    from safetensors.torch import save_file

    from . import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in ckpt.student.state_dict().items()}
    temp = {WEIGHTS: temporary_name(folder / WEIGHTS), META: temporary_name(folder / META)}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "partdistill_version": __version__,
        "part_names": list(ckpt.part_names),
        "student": {"class": "EdgePointNet", **ckpt.student.config},
        "text_encoder": ckpt.text_encoder,
        "n_points": ckpt.n_points,
        **ckpt.meta,
    }
    try:  # both files appear together, replacing an earlier checkpoint whole
        save_file(state, str(temp[WEIGHTS]), metadata={"format": FORMAT})
        temp[META].write_text(json.dumps(meta, indent=1))
        replace_together(folder, temp)
    finally:
        for tmp in temp.values():
            tmp.unlink(missing_ok=True)
    return folder


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    meta_path, weights = folder / META, folder / WEIGHTS
    if not meta_path.is_file() or not weights.is_file():
        raise ValidationError("model", f"{folder} is not a partdistill checkpoint (needs {META} and {WEIGHTS})")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise ValidationError("model", f"{meta_path} is not valid JSON: {e}") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ValidationError("model", f"{meta_path}: unknown checkpoint format {meta.get('format')!r}")
    cfg = dict(meta["student"])
    if cfg.pop("class", None) != "EdgePointNet":
        raise ValidationError("model", "unknown student class")
    members = cfg.pop("members", 1)
    if not isinstance(members, int) or not 1 <= members <= MAX_CATEGORY_STUDENTS:
        raise ValidationError("model", f"{meta_path}: 'members' must be an integer in [1, {MAX_CATEGORY_STUDENTS}]")
    try:
        student = EdgePointNet(**cfg) if members == 1 else StudentMixture([EdgePointNet(**cfg) for _ in range(members)])
    except TypeError as e:
        raise ValidationError("model", f"{meta_path}: unknown student settings ({e})") from None
    try:
        state = load_file(str(weights))
        student.load_state_dict(state)
    except (SafetensorError, RuntimeError, OSError) as e:
        raise ValidationError("model", f"cannot load {weights}: {e}") from None
    extra = {k: v for k, v in meta.items() if k not in ("part_names", "student", "text_encoder", "n_points")}
    return Checkpoint(
        student.to(device).eval(), tuple(meta["part_names"]), meta.get("text_encoder", ""), int(meta["n_points"]), extra
    )
