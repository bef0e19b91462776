"""Saving and loading the weights of vlbert model directories (`model.safetensors`), side by side.

Loading builds the model normally and then copies the saved tensors in (`copy_into`, also used for
BERT checkpoints), so every buffer (ours and timm's) is initialised as in a fresh model. A backbone
checkpoint loads into any task model (its new heads are reported), and a task checkpoint loads
into the backbone (its heads are skipped). This package maps and copies state dicts; it never
imports the model classes (`vlbert.models` imports it).
"""

from __future__ import annotations

import json
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)  # our keys that received weights
    missing: list[str] = field(default_factory=list)  # our keys the checkpoint lacked
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys with no place here

    def __str__(self) -> str:
        return (
            f"loaded {len(self.loaded)} tensors; missing {len(self.missing)}: {self.missing[:8]}; "
            f"unexpected {len(self.unexpected)}: {self.unexpected[:8]}"
        )


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")  # "name" or "owner/name"


def looks_like_hub_id(name: str) -> bool:
    """Whether `name` (not an existing path) is worth asking the hub for: "owner/name" or "name",
    not a path (absolute, ./ or ../, ~, more than one slash, a backslash) and not under an
    existing local folder (runs/typo when runs/ exists)."""
    if not HUB_ID.fullmatch(name) or ".." in name or name.endswith(".") or "\\" in name:
        return False
    owner, slash, _ = name.partition("/")
    return not (slash and os.path.isdir(owner))


def resolve_directory(name_or_path: str | os.PathLike[str]) -> Path:
    """A local directory, or a hub repository id downloaded (or found in the local cache). A
    path-like name that does not exist fails at once, without asking the hub."""
    name_or_path = os.fspath(name_or_path)
    if os.path.isdir(name_or_path):
        return Path(name_or_path)
    if os.path.exists(name_or_path):
        raise ValueError(f"{name_or_path} is a file; give the directory written by save_pretrained")
    if not looks_like_hub_id(name_or_path):
        raise FileNotFoundError(f"{name_or_path} is not a model directory (no config.json)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name_or_path, allow_patterns=["*.json", "*.safetensors", "*.md"]))
    except Exception as err:  # noqa: BLE001 - any hub failure means "not found" to the user
        raise FileNotFoundError(f"{name_or_path}: no such directory, and the hub could not provide it ({err})") from err


def write_state_dict(state: dict[str, Tensor], directory: Path) -> None:
    """The tensors as `directory/model.safetensors` (contiguous copies where needed)."""
    state = {k: v.detach().contiguous() for k, v in state.items()}
    save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})


def read_state_dict(directory: Path) -> dict[str, Tensor]:
    """All tensors of a saved model, single file or sharded."""
    single = directory / WEIGHTS_NAME
    if single.is_file():
        return load_file(str(single))
    index = directory / INDEX_NAME
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        state: dict[str, Tensor] = {}
        for shard in shards:
            state.update(load_file(str(directory / shard)))
        return state
    raise FileNotFoundError(f"{directory} has no {WEIGHTS_NAME} (pickled weights are not read; convert them)")


def _align_prefix(state: dict[str, Tensor], model: nn.Module, prefix: str) -> dict[str, Tensor]:
    """Add or strip the backbone prefix so a backbone and a task checkpoint fit either model."""
    wants_prefix = hasattr(model, prefix)
    has_prefix = any(k.startswith(prefix + ".") for k in state)
    if wants_prefix and not has_prefix:
        return {f"{prefix}.{k}": v for k, v in state.items()}
    if has_prefix and not wants_prefix:
        return {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
    return state


def copy_into(own: dict[str, Tensor], state: dict[str, Tensor], source: str | Path) -> LoadReport:
    """Copy each tensor of `state` into the tensor of the same name of `own` (a module's
    `state_dict()`, which shares its storage); shapes must match (ValueError naming `source` and the
    key). Keys of `state` with no place in `own` are reported unexpected; `missing` is the caller's."""
    report = LoadReport()
    with torch.no_grad():
        for key, value in state.items():
            if key not in own:
                report.unexpected.append(key)
                continue
            if own[key].shape != value.shape:
                raise ValueError(f"{source}: {key} has shape {tuple(value.shape)}, the model {tuple(own[key].shape)}")
            own[key].copy_(value)
            report.loaded.append(key)
    return report


def load_weights(model: nn.Module, directory: Path, prefix: str = "vlbert") -> LoadReport:
    """Copy a saved state dict into `model`; shapes must match. Tied weights count as loaded."""
    state = _align_prefix(read_state_dict(directory), model, prefix)
    own = model.state_dict()
    report = copy_into(own, state, directory)
    loaded_ptrs = {own[k].data_ptr() for k in report.loaded}
    report.missing = [k for k in own if k not in state and own[k].data_ptr() not in loaded_ptrs]
    return report


def safe_torch_load(path: Path | str) -> Any:
    """`torch.load(weights_only=True)`: tensors and plain data only. A file that would run code or
    build arbitrary objects when unpickled is refused with a one-line ValueError."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = unpickler_reason(str(error))
        detail = f" ({reason})" if reason else ""
        raise ValueError(f"{path}: refused: it holds pickled objects beyond tensors and plain data{detail}") from None


def unpickler_reason(message: str) -> str:
    """What torch's weights-only unpickler objected to, in one line ("" when it does not say):
    the paragraph after "WeightsUnpickler error:", without torch's advice to allowlist globals."""
    _, found, after = message.partition("WeightsUnpickler error:")
    if not found:
        return ""
    paragraph = " ".join(after.strip().split("\n\n")[0].split())
    return paragraph.split(" was not an allowed global")[0].split(". Please")[0].strip()
