"""Pre over large collections, data-parallel under torchrun.

With ``torch.distributed`` (launched by ``torchrun``), each process prepares only its share of the
shapes (reading, capture, teacher, lifting — the slow part for thousands of meshes) and trains the
same student on it; gradients and losses are summed across processes every step, so every process
holds the same student throughout.

A step takes ``world_size`` shapes of a shared shuffled order (each shape's loss divided by the
step's size); one process with ``shapes_per_step=world_size`` takes exactly the same steps, which is
how the test checks the parallel result. gloo on CPU, NCCL on GPUs (one GPU per process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class DataParallel:
    """This process's place in a ``torch.distributed`` job: ``rank`` of ``world`` processes. A shape
    of global index g belongs to process g mod world."""

    rank: int
    world: int

    @classmethod
    def from_env(cls, device: str = "auto") -> DataParallel | None:
        """The job ``torchrun`` started this process in (its process group initialised), or None
        when the process runs alone (WORLD_SIZE unset or 1)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        import torch.distributed as dist

        if not dist.is_initialized():
            gpu = device != "cpu" and torch.cuda.is_available()
            if gpu:
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group(backend="nccl" if gpu else "gloo")
        return cls(dist.get_rank(), dist.get_world_size())

    def close(self) -> None:
        """Leave the job after a successful run: wait for every process (rank 0 may still be
        writing), then take the process group down. A process that exits with its gloo group alive
        can abort while the interpreter shuts down ("terminate called without an active
        exception": gloo's threads still hold tensors), depending on timing."""
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    def owns(self, g: int) -> bool:
        return g % self.world == self.rank

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over the processes, in place; returns it."""
        import torch.distributed as dist

        device = _collective_device()
        moved = t.to(device)
        dist.all_reduce(moved, op=dist.ReduceOp.SUM)
        if moved is not t:
            t.copy_(moved)
        return t

    def sum_grads_(self, params: list[torch.nn.Parameter]) -> None:
        """Sum the parameters' gradients over the processes (a process that took no shape in this
        step contributes zeros)."""
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        self.sum_(flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p))
            offset += n


def _collective_device() -> torch.device:
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


@dataclass
class Share:
    """The shapes one process of a data-parallel job holds: ``ids``, their global indices (in the
    order the process passes them) among the job's ``n_shapes``."""

    parallel: DataParallel
    ids: list[int]
    n_shapes: int
