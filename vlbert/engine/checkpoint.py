"""Training checkpoints that survive a kill at any moment.

A checkpoint is a directory `step-{N:08d}` holding the model (`save_pretrained`: config.json +
model.safetensors) and `trainer_state.pt` (optimizer, scheduler, RNG states, step, data
position); under `train.strategy=fsdp` the model and optimizer states are in `dcp/` instead
(`vlbert.engine.fsdp`), written by every process. It is written under a temporary name, every file fsynced, then renamed; the `latest`
file is replaced atomically afterwards; older checkpoints are pruned only then. A kill at any
point leaves `latest` naming a complete checkpoint.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vlbert.weights.checkpoint import safe_torch_load

STATE_NAME = "trainer_state.pt"
LATEST = "latest"


def _fsync_tree(path: Path) -> None:
    for item in sorted(path.rglob("*")):
        if item.is_file():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(_as_tuple(x) for x in state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(x) if isinstance(x, list) else x


def write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def staging_dir(out_dir: Path, step: int) -> Path:
    """Where checkpoint `step` is written before `commit_checkpoint` renames it."""
    return out_dir / f".step-{step:08d}.tmp"


def commit_checkpoint(out_dir: Path, step: int, trainer_state: dict[str, Any], keep: int = 2) -> Path:
    """Add the trainer state to the staged checkpoint `step`, fsync it, rename it into place and
    point `latest` at it; keep the newest `keep`."""
    final, tmp = out_dir / f"step-{step:08d}", staging_dir(out_dir, step)
    torch.save(trainer_state, tmp / STATE_NAME)
    _fsync_tree(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _fsync_dir(out_dir)
    write_atomic_text(out_dir / LATEST, final.name)
    for old in sorted(out_dir.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_checkpoint(out_dir: Path, step: int, model: nn.Module, trainer_state: dict[str, Any], keep: int = 2) -> Path:
    """Write checkpoint `step` atomically and point `latest` at it; keep the newest `keep`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = staging_dir(out_dir, step)
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    return commit_checkpoint(out_dir, step, trainer_state, keep)


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The directory `latest` names, or None when there is no complete checkpoint."""
    pointer = out_dir / LATEST
    if not pointer.is_file():
        return None
    path = out_dir / pointer.read_text().strip()
    return path if (path / STATE_NAME).is_file() else None


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """The trainer state, read without unpickling code (`weights_only=True`)."""
    return safe_torch_load(checkpoint / STATE_NAME)

