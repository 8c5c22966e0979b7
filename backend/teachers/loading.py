"""Loading a teacher's model from a hub id or a local folder, and the one error it raises.

The folder is a ``save_pretrained`` one; every loading failure becomes ``TeacherUnavailableError``,
which tells the user the three ways to provide a model."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


_TEACHER = "options.teacher_model"
#: What a user can do without each model.
_INSTEAD = {
    _TEACHER: "; or label without a teacher, from 2D detections in a JSON file",
    "options.sam_model": "; or keep the teacher's boxes, without SAM",
    "options.text_encoder": "; or embed the part names without one ('hashed')",
}


class TeacherUnavailableError(RuntimeError):
    """The teacher's model cannot be loaded (offline without a cached copy, a missing folder, ...).

    The message names the model, the reason, and the three ways to provide one (a hub id, a local
    folder, or 2D detections instead); it names no command-line option or panel field: ``field`` (the
    request's option, ``options.teacher_model``, ``options.sam_model`` or ``options.text_encoder``)
    crosses the wire, and each front end says where the user sets it. ``teacher``, ``model`` and
    ``reason`` are kept as attributes.
    """

    def __init__(
        self,
        teacher: str,
        model: str,
        reason: str,
        *,
        default_model: str | None = None,
        field: str = _TEACHER,
    ):
        self.teacher, self.model, self.reason, self.field = teacher, model, reason, field
        example = default_model or model or "<hub-id>"
        offline = ""
        if any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in _OFFLINE_VARS):
            offline = " (offline mode is on: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set)"
        instead = _INSTEAD.get(field, "")
        super().__init__(
            f"cannot load the {teacher} model {model!r}: {reason}{offline}. Provide it as a hub id (downloaded on "
            f"first use when this machine is online, e.g. {example}), or as a local folder holding the weights and "
            f"processor files (made with save_pretrained){instead}"
        )


def looks_like_path(model: str) -> bool:
    """True when ``model`` names the file system rather than a hub id ("name" or "org/name")."""
    return (
        model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1 or Path(model).expanduser().exists()
    )


HUB_PROBE_S = 3.0
_probe: dict[str, tuple[float, bool]] = {}


def hub_unreachable(repo_id: str) -> str:
    """Why ``repo_id`` cannot come from the hub right now ("" when it may): not in the local cache and
    the hub does not answer within ``HUB_PROBE_S`` (or offline mode is on). Checked before loading, so
    that an offline machine fails in seconds instead of waiting out the hub client's retries."""
    try:
        from huggingface_hub import constants, try_to_load_from_cache

        cached = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # a malformed id: from_pretrained will say what is wrong with it
        return ""
    if isinstance(cached, str):
        return ""
    if constants.HF_HUB_OFFLINE:
        return "it is not in the local cache and offline mode is on"
    endpoint = constants.ENDPOINT
    now = time.monotonic()
    if endpoint not in _probe or now - _probe[endpoint][0] > 60:
        host = urlparse(endpoint).hostname or "huggingface.co"
        port = urlparse(endpoint).port or (443 if endpoint.startswith("https") else 80)
        try:
            socket.create_connection((host, port), timeout=HUB_PROBE_S).close()
            _probe[endpoint] = (now, True)
        except OSError:
            _probe[endpoint] = (now, False)
    return "" if _probe[endpoint][1] else f"it is not in the local cache and {endpoint} does not answer"


class ModelSpec(Protocol):
    """What a model to load is: ``name`` (for messages), ``default_model``, ``auto_model`` (a
    transformers auto class or model class, e.g. ``"AutoModelForZeroShotObjectDetection"``),
    ``model_types`` (the ``config.model_type`` values accepted), ``processor_parts`` (attributes the
    processor must have) and ``field`` (the request's option that names the model). A
    ``PretrainedModel`` subclass is one."""

    name: str
    default_model: str
    auto_model: str
    model_types: Sequence[str]
    processor_parts: Sequence[str]
    field: str


def load_pretrained(spec: ModelSpec, model: str, device: str = "cpu") -> tuple[Any, Any]:
    """Load ``(processor, model)`` of the kind ``spec`` describes from a hub id or a local folder
    (``save_pretrained`` layout), in eval mode on ``device``. Every failure (missing folder, offline
    without a cache, wrong model type, bad files) becomes a ``TeacherUnavailableError`` that tells the
    user how to provide a model."""

    def unavailable(reason: str) -> TeacherUnavailableError:
        return TeacherUnavailableError(spec.name, model, reason, default_model=spec.default_model, field=spec.field)

    if looks_like_path(model):
        folder = Path(model).expanduser()
        if not folder.is_dir():
            raise unavailable(f"no such folder: {folder}")
        source = str(folder)
    else:
        source = model
        why = hub_unreachable(model)
        if why:
            raise unavailable(why)
    try:
        import transformers

        processor = transformers.AutoProcessor.from_pretrained(source)
        net = getattr(transformers, spec.auto_model).from_pretrained(source)
    except Exception as e:  # OSError, hub errors, bad configs: all mean "no usable model here"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise unavailable(f"{type(e).__name__}: {first}") from e
    model_type = getattr(net.config, "model_type", "")
    if model_type not in spec.model_types:
        raise unavailable(f"it holds a {model_type!r} model, not one of {list(spec.model_types)}")
    missing = [p for p in spec.processor_parts if getattr(processor, p, None) is None]
    if missing:
        raise unavailable(f"its processor lacks {' and '.join(missing)}")
    net.eval().to(device)
    return processor, net
