"""The C allocator's settings for large tensors on the CPU.

glibc serves blocks above its mmap threshold (32 MiB at most, raised as the program frees such
blocks) straight from the kernel and gives them back when freed, so a model whose activations are
hundreds of MB maps, faults in and unmaps them again on every forward pass: a full-size teacher
spent 62 of its 77 s in the kernel that way, and the student's training pays the same toll on every
epoch. Keeping freed memory in the process lets the next pass reuse it; results are unchanged (the
same arithmetic on the same values). Set for every job on the CPU (``device.prepare_torch``) and
when a CPU teacher loads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the process's heap (and stay there when freed).
MMAP_THRESHOLD = 1 << 30
#: Free memory at the top of the heap is given back to the kernel beyond this (mallopt takes a C int).
TRIM_THRESHOLD = (1 << 31) - 1
#: Set to "system" to leave the allocator as the C library has it.
ENV_VAR = "PARTDISTILL_MALLOC"
_done = False


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process (no-op elsewhere); True when they were set."""
    global _done
    if _done or not sys.platform.startswith("linux") or os.environ.get(ENV_VAR) == "system":
        return _done
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        _done = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator keeps its own policy
        _done = False
    return _done
