"""`train.strategy=fsdp`: parameters, gradients and optimizer states sharded across processes with
PyTorch's FSDP2 (`fully_shard`), checkpoints in `torch.distributed.checkpoint` (DCP) format.

Every text layer, visual layer and co-attention block is its own FSDP unit (its weights are
gathered just before it runs and freed after); the rest (embeddings, poolers, heads, the image
encoder) belongs to the root unit, the `ObjectiveModule`, whose forward runs the whole objective.

A DCP checkpoint holds the model and optimizer states keyed by parameter name with their global
shapes, each process writing its own shard: it loads into any number of processes, sharded or
not (one process with `strategy=fsdp` trains an unsharded model and reads and writes the same format).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import Tensor, nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor

STRATEGIES = ("ddp", "fsdp")
DCP_DIR = "dcp"  # the checkpoint's sharded model + optimizer states


def check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"train.strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


def layer_units(model: nn.Module) -> list[nn.Module]:
    """The text layers, visual layers and co-attention blocks of a vlbert model, in that order."""
    encoder = model.vlbert.encoder if hasattr(model, "vlbert") else model.encoder
    return [*encoder.layer, *encoder.v_layer, *encoder.c_layer]


def promote_scalars(model: nn.Module) -> set[str]:
    """Replace each 0-d parameter (the ITC temperature) by a [1] one, which FSDP can shard; the
    names replaced. Done under `fsdp` whatever the number of processes, so that every DCP
    checkpoint has the same shapes; `full_state_dict` gives the original shapes back."""
    names = set()
    for module_name, module in model.named_modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if param.ndim == 0:
                setattr(module, name, nn.Parameter(param.detach().reshape(1), requires_grad=param.requires_grad))
                names.add(f"{module_name}.{name}" if module_name else name)
    return names


def shard(root: nn.Module, model: nn.Module, device: torch.device) -> FSDPModule:
    """`fully_shard` each layer of `model`, then `root` (which holds `model`), over all processes."""
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    for layer in layer_units(model):
        fully_shard(layer, mesh=mesh)
    return fully_shard(root, mesh=mesh)


def gradient_sync(root: nn.Module | None, enabled: bool) -> None:
    """Reduce-scatter gradients after this backward (the last micro-batch) or keep accumulating locally."""
    if isinstance(root, FSDPModule):
        root.set_requires_gradient_sync(enabled)


def local_value(tensor: Tensor) -> Tensor:
    """A plain tensor: the whole of a DTensor (a collective), or `tensor` itself."""
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


@contextlib.contextmanager
def gathered(root: nn.Module | None) -> Iterator[None]:
    """Every unit's full weights on every process while inside (for evaluation, which calls the
    model's parts directly and runs a different number of batches on each process), resharded after."""
    if not isinstance(root, FSDPModule):
        yield
        return
    units = [m for m in root.modules() if isinstance(m, FSDPModule)]
    for unit in units:
        unit.set_reshard_after_forward(False, recurse=False)
        unit.unshard()
    try:
        yield
    finally:
        for unit in units:
            unit.set_reshard_after_forward(unit is not root, recurse=False)  # fully_shard's defaults
        root.reset_iter_state()  # reshards every unit and forgets the evaluation's forward order


def full_state_dict(model: nn.Module, scalars: set[str] = frozenset()) -> dict[str, Tensor]:
    """The whole model state on the CPU (on rank 0 only when sharded; a collective then), the
    `scalars` that `promote_scalars` made [1] back to 0-d."""
    if any(isinstance(p, DTensor) for p in model.parameters()):
        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        state = model.state_dict()
    return {key: value.reshape(()) if key in scalars else value for key, value in state.items()}


def save_sharded(directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Model and optimizer states into `directory/dcp` (every process writes its shard)."""
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(directory / DCP_DIR),
             no_dist=not dist.is_initialized())


def load_sharded(directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Read `directory/dcp` into `model` and `optimizer`, resharded to this run's processes."""
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=str(directory / DCP_DIR), no_dist=not dist.is_initialized())
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
