"""Parameter-efficient fine-tuning with the `peft` library (the optional extra `vlbert[peft]`).

LoRA: `peft.get_peft_model` wraps the Linear layers named in `train.finetune.lora_targets` (by
default the self-attention `query`/`key`/`value` of both streams and the co-attention `v_qkv`/
`t_qkv` projections) with low-rank adapters, in place: the task model keeps its class, its
methods and its parameter names (adapters add `...lora_A.default.weight`, ...). The task heads are
peft `modules_to_save` (they are new for the task, so they train and are saved with the adapter);
the MLM head keeps its decoder tied to the frozen word embeddings and saves only its transform.

An adapter directory holds peft's `adapter_config.json` and `adapter_model.safetensors` (the
adapters and the heads: a few MB), plus `vlbert_adapter.json` (the method and the base model it
was trained from), and the run adds its tokenizer (and VQA answers). `load_adapter` applies it to
a base model and merges it (`merge_and_unload`), giving a plain task model.

Prompt tuning (`vlbert/models/prompt.py`) has nothing to merge: its adapter directory holds the
prompt tokens and the heads (`adapter_model.safetensors`) and `vlbert_adapter.json` with the number
of tokens; `load_adapter` copies them into a base model built with that many prompt tokens
(`adapter_overrides`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import Tensor, nn

ADAPTER_INFO = "vlbert_adapter.json"
WEIGHTS = "adapter_model.safetensors"  # peft's name, used for prompt adapters too


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise ImportError("train.finetune.peft and --adapter need the peft library: pip install 'vlbert[peft]'") from None
    return peft


def head_modules(model: nn.Module) -> list[str]:
    """The task heads peft saves with the adapter: each top-level module with weights but the
    backbone; of the MLM head only its transform (its decoder is tied to the word embeddings)."""
    names = []
    for name, module in model.named_children():
        if name == "vlbert" or not any(True for _ in module.parameters()):
            continue
        names.append("mlm_head.transform" if name == "mlm_head" else name)
    return names


def add_lora(model: nn.Module, cfg: Any) -> Any:
    """LoRA adapters on `cfg.lora_targets` of `model`, in place; returns the `PeftModel` around it
    (for saving and merging). Everything but the adapters and the heads is frozen."""
    peft = _peft()
    config = peft.LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                             target_modules=list(cfg.lora_targets), modules_to_save=head_modules(model))  # fmt: skip
    return peft.get_peft_model(model, config)


def save_adapter(peft_model: Any, directory: str | Path, task: str | None = None, base: str | None = None) -> None:
    """peft's adapter files plus `vlbert_adapter.json` naming the method, the task and the base model."""
    directory = Path(directory)
    peft_model.save_pretrained(str(directory))
    info = {"method": "lora", "task": task, "base": base}
    (directory / ADAPTER_INFO).write_text(json.dumps(info, indent=1))


def adapter_info(directory: str | Path) -> dict[str, Any]:
    """`vlbert_adapter.json` of an adapter directory ({} when absent)."""
    path = Path(directory) / ADAPTER_INFO
    return json.loads(path.read_text()) if path.is_file() else {}


def save_prompt_adapter(state: dict[str, Tensor], directory: str | Path, num_prompt_tokens: int,
                        task: str | None = None, base: str | None = None) -> None:
    """The prompt tokens and heads (`state`, by parameter name) and `vlbert_adapter.json`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(directory / WEIGHTS))
    info = {"method": "prompt", "num_prompt_tokens": num_prompt_tokens, "task": task, "base": base}
    (directory / ADAPTER_INFO).write_text(json.dumps(info, indent=1))


def is_adapter_dir(directory: str | Path) -> bool:
    return (Path(directory) / "adapter_config.json").is_file() or (Path(directory) / ADAPTER_INFO).is_file()


def adapter_overrides(directory: str | Path) -> dict[str, Any]:
    """Config keys the base model needs before an adapter fits it (prompt tuning: its tokens)."""
    info = adapter_info(directory)
    return {"num_prompt_tokens": info["num_prompt_tokens"]} if info.get("method") == "prompt" else {}


def load_adapter(model: nn.Module, directory: str | Path) -> nn.Module:
    """`model` (a base task model) with the adapter of `directory` applied (LoRA: and merged)."""
    if not is_adapter_dir(directory):
        raise ValueError(f"--adapter {directory}: not an adapter directory (no adapter_config.json)")
    if adapter_info(directory).get("method") == "prompt":
        return _load_prompt(model, Path(directory))
    wrapped = _peft().PeftModel.from_pretrained(model, str(directory))
    return wrapped.merge_and_unload()


def _load_prompt(model: nn.Module, directory: Path) -> nn.Module:
    state, own = load_file(str(directory / WEIGHTS)), model.state_dict()
    for name, value in state.items():
        if name not in own or own[name].shape != value.shape:
            raise ValueError(f"--adapter {directory}: {name} does not fit the base model")
        own[name].copy_(value)
    return model
