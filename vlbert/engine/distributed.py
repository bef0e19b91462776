"""Process groups under `torchrun`: one process per device, gloo on CPU, nccl on CUDA.

`init_distributed` reads the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT). Run without torchrun it does nothing and every helper here behaves as
for a single process, so the same code serves both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched() -> bool:
    """True under torchrun (or any launcher that sets WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes (once); a single process gets DistInfo()."""
    if not launched():
        return DistInfo()
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # collectives (and FSDP's default device) use this GPU
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return info()


def info() -> DistInfo:
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def default_device(device: str | torch.device | None = None) -> torch.device:
    """`device`, or CUDA when there is one, else the CPU: every run's default."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def local_device(device: torch.device) -> torch.device:
    """Under torchrun each process takes the GPU of its local rank."""
    if device.type == "cuda" and device.index is None and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def barrier() -> None:
    if info().enabled:
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order ([obj] for a single process)."""
    if not info().enabled:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def mean_across_ranks(value: float) -> float:
    """The mean of a Python float over all ranks (the value itself for a single process)."""
    if not info().enabled:
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist.get_world_size()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if not info().enabled:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
