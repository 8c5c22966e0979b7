"""What a teacher's model needs in memory, what the device has free, and the views per forward that fit.

A model is checked before it is loaded (its weight files' size against the memory free), so a model
that cannot fit is a one-line error, never an out-of-memory kill of the server or of Blender's local
backend. On a GPU the views per forward follow the memory the first view took.
"""

from __future__ import annotations

import os
from pathlib import Path

from .loading import TeacherUnavailableError

#: A model in memory takes about its weights' size times this (buffers, the framework's own).
LOAD_FACTOR = 1.25
#: The share of the memory free that a batch of views may take on a GPU.
BATCH_SHARE = 0.6
#: The most views of one forward pass.
MAX_VIEWS_PER_FORWARD = 16
GIB = 1024**3


class TeacherTooLargeError(TeacherUnavailableError):
    """The model needs more memory than the device has free. One line naming the model, the memory
    it needs and the memory there is; ``field`` names the option, as for any model that cannot load."""

    def __init__(self, teacher: str, model: str, need: int, free: int, device: str, field: str):
        self.teacher, self.model, self.field, self.need, self.free = teacher, model, field, need, free
        self.reason = f"it needs about {need / GIB:.1f} GiB of memory and the {device} has {free / GIB:.1f} GiB free"
        RuntimeError.__init__(
            self,
            f"cannot load the {teacher} model {model!r}: {self.reason}; close what else holds memory, use a "
            "smaller model, or run the teacher on another device",
        )


def free_bytes(device: str) -> int:
    """Bytes free for a new model on ``device`` ("cpu", "cuda[:n]", "mps")."""
    import torch

    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    if device == "mps":
        return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    return cpu_free_bytes()


def cpu_free_bytes() -> int:
    """The memory this process may still take: the system's available memory, or less when a cgroup
    (a container's limit) allows less."""
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        pass
    if free is None:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            free = min(free, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(int(free), 0)


def weights_bytes(model: str) -> int | None:
    """The size of the weight files of ``model`` (a local folder, or a hub id in the local cache), or
    None when they are not on this machine yet."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        try:
            from huggingface_hub import try_to_load_from_cache

            for name in ("model.safetensors", "pytorch_model.bin"):
                cached = try_to_load_from_cache(model, name)
                if isinstance(cached, str):
                    return Path(cached).stat().st_size
        except Exception:  # a malformed id or no hub library: loading will say what is wrong
            return None
        return None
    files = [*folder.glob("*.safetensors"), *folder.glob("pytorch_model*.bin")]
    return sum(f.stat().st_size for f in files) if files else None


def check_fits(spec, model: str, device: str, free: int | None = None) -> int | None:
    """Raise ``TeacherTooLargeError`` when ``model`` (loaded as ``spec`` says, see
    ``loading.ModelSpec``) needs more memory than ``device`` has free; returns the bytes it needs
    (None when its size is not known before loading)."""
    size = weights_bytes(model)
    if size is None:
        return None
    need = int(size * LOAD_FACTOR)
    free = free_bytes(device) if free is None else free
    if need > free:
        raise TeacherTooLargeError(spec.name, model, need, free, device, spec.field)
    return need


def views_that_fit(per_view: int, free: int) -> int:
    """Views per forward pass when one view took ``per_view`` bytes and ``free`` bytes are free."""
    if per_view <= 0:
        return MAX_VIEWS_PER_FORWARD
    return max(1, min(MAX_VIEWS_PER_FORWARD, int(BATCH_SHARE * free / per_view)))


def model_bytes(model) -> int:
    """Bytes held by a loaded model's parameters and buffers."""
    tensors = [*model.parameters(), *model.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))
