"""Which models a server may load, and the teachers it keeps loaded.

A shared backend decides what it loads: clients name a model among those the server allows (by the
name given at start-up), never a folder of the server's file system. Every option that names a file
or a model (``MODEL_OPTIONS``) goes through the one check, :meth:`ModelPolicy.resolve`. The
allow-list is a JSON file::

    {"teacher_models": {"dino-tiny": "IDEA-Research/grounding-dino-tiny", "owl": "/models/owlv2"},
     "sam_models": {"sam-base": "facebook/sam-vit-base"},
     "text_encoders": {"clip-b32": "openai/clip-vit-base-patch32"},
     "backbones": {"procedural": "/models/backbone-procedural"},
     "category_models": {"chair": "/models/chair"}}

"" (the default) is always allowed. Only a server on loopback without keys trusts its local users and
loads what they name, as a command-line run does; any server with keys is closed to all but the
list. A refusal names the option and the allowed names, never a path or whether it exists.

Loaded teachers are kept by (teacher, model, SAM model, device) only, least recently used out first;
thresholds and prompts are per job (``Teacher.with_settings``), so they never load a model again.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions

from ..cancel import Cancelled
from ..teachers import teacher_names
from ..teachers.loading import TeacherUnavailableError

log = logging.getLogger("partdistill.server")

KINDS = {
    "teacher_model": "teacher_models",
    "sam_model": "sam_models",
    "text_encoder": "text_encoders",
    "backbone": "backbones",
    "category_model": "category_models",
}
#: The options of a job that name a file or a model.
MODEL_OPTIONS = tuple(KINDS)


@dataclass
class ModelPolicy:
    """Per option of ``MODEL_OPTIONS``: allowed name -> hub id or folder. ``open``: any name is taken
    as a hub id or folder (a loopback server without keys: its users are this machine's)."""

    allowed: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    open: bool = False

    @classmethod
    def from_file(cls, path: Path) -> ModelPolicy:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ValidationError("models", f"cannot read the model list {path}: {e}") from None
        if not isinstance(doc, dict) or set(doc) - set(KINDS.values()):
            raise ValidationError("models", f"{path}: a map with keys among {sorted(KINDS.values())}")
        allowed = {}
        for option, key in KINDS.items():
            names = doc.get(key, {})
            ok = isinstance(names, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in names.items())
            if not ok:
                raise ValidationError("models", f"{path}: {key} must map names to hub ids or folders")
            allowed[option] = dict(names)
        return cls(allowed, open=False)

    def resolve(self, options: SegmentOptions) -> SegmentOptions:
        """``options`` with every model name replaced by what it stands for; ValidationError for a
        name this server does not allow (saying nothing about its file system)."""
        if options.teacher is not None and options.teacher not in teacher_names():
            raise ValidationError(
                "options.teacher", f"unknown teacher {options.teacher!r}; this server has {', '.join(teacher_names())}"
            )
        if self.open:
            return options
        changes = {}
        for option in KINDS:
            name = getattr(options, option)
            if name in (None, "", "default") or (option == "text_encoder" and name == "hashed"):
                continue  # the defaults, and the hashed part names, read nothing of the server's
            if name not in self.allowed[option]:
                names = ", ".join(sorted(self.allowed[option])) or "none besides the default"
                raise ValidationError(f"options.{option}", f"not an allowed model here (allowed: {names})")
            changes[option] = self.allowed[option][name]
        return replace(options, **changes)

    def names(self) -> dict[str, list[str]]:
        """What clients may ask for (for ``hello``)."""
        return {option: sorted(m) for option, m in self.allowed.items()}


class TeacherCache:
    """Loaded teachers, keyed by what loading depends on; at most ``size`` of them."""

    def __init__(self, size: int = 2, loader: Callable[[SegmentOptions], object] | None = None):
        self.size = size
        self._loader = loader
        self._cache: OrderedDict[tuple, object] = OrderedDict()

    def get(self, options: SegmentOptions, cancel: Callable[[], bool], private: bool):
        """The teacher ``options`` ask for, with its thresholds and prompts for this job. Cancelled
        before and after a load (a load itself cannot be interrupted). ``private``: load errors say
        only that the model could not be loaded (the details go to the server's log)."""
        key = (options.teacher, options.teacher_model, options.sam_model, options.device, options.teacher_precision)
        if key not in self._cache:
            if cancel():
                raise Cancelled()
            self._make_room(options)
            try:
                teacher = self._load(options)
            except TeacherUnavailableError as e:
                if not private:
                    raise
                log.warning("loading %s failed: %s", key, e)
                raise ValidationError("options.teacher_model", "the model could not be loaded on this server") from None
            self._cache[key] = teacher
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
            if cancel():
                raise Cancelled()
        self._cache.move_to_end(key)
        return self._cache[key].with_settings(
            box_threshold=options.box_threshold,
            text_threshold=options.text_threshold,
            prompt_template=options.prompt_template,
            object_name=options.object_name or None,
            batch_size=options.teacher_batch,
            keep_render_size=options.teacher_input == "render",
        )

    def _make_room(self, options: SegmentOptions) -> None:
        """Evict the least recently used teachers while the one ``options`` ask for would not fit in
        the memory free on its device (its size known from its weight files)."""
        from ..device import resolve_device
        from ..teachers import DEFAULT_SAM_MODEL, teacher_class
        from ..teachers.memory import LOAD_FACTOR, free_bytes, weights_bytes

        try:
            models = [options.teacher_model or teacher_class(options.teacher).default_model]
            device = resolve_device(options.device)
        except (ValueError, ValidationError):
            return  # loading says what is wrong with them
        if options.sam_model is not None:
            models.append(options.sam_model or DEFAULT_SAM_MODEL)
        sizes = [weights_bytes(m) for m in models]
        need = int(LOAD_FACTOR * sum(s for s in sizes if s is not None))
        while self._cache and need > free_bytes(device):
            key, _ = self._cache.popitem(last=False)
            log.info("evicted %s: the next teacher needs %.1f GiB", key, need / 2**30)
            release_memory(device)

    def _load(self, options: SegmentOptions):
        if self._loader is not None:
            return self._loader(options)
        from ..teachers import teacher_from_options

        return teacher_from_options(options)

    def __len__(self) -> int:
        return len(self._cache)


def release_memory(device: str) -> None:
    """Give back what evicted models held: Python's garbage, and the GPU's cached blocks."""
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
