"""Convert checkpoints of the original ViLBERT code (facebookresearch/vilbert-multi-task).

Key mapping, original -> vlbert (backbone under `bert.` -> `vlbert.`):

| original | vlbert |
|---|---|
| `bert.embeddings.*`, `bert.v_embeddings.*`, `bert.encoder.layer.*`, `bert.encoder.v_layer.*` | same names |
| `bert.embeddings.task_embeddings` (12-in-1, `--task_specific_tokens`) | same name; turns `task_specific_tokens` on |
| `bert.encoder.c_layer.k.biattention.{query,key,value}1` (visual side) | `...c_layer.k.attention.v_qkv` (rows q, k, v) |
| `bert.encoder.c_layer.k.biattention.{query,key,value}2` (text side) | `...c_layer.k.attention.t_qkv` |
| `bert.encoder.c_layer.k.biOutput.{dense,LayerNorm}1` | `...c_layer.k.v_attention_output.{dense,LayerNorm}` |
| `bert.encoder.c_layer.k.biOutput.{dense,LayerNorm}2` | `...c_layer.k.t_attention_output.{dense,LayerNorm}` |
| `bert.encoder.c_layer.k.biOutput.q_dense{1,2}` | dropped: the original forward never uses them |
| `bert.encoder.c_layer.k.{v,t}_{intermediate,output}.*`, `bert.{t,v}_pooler.*` | same names |
| `cls.predictions.*` | `mlm_head.*` (decoder tied to the word embeddings) |
| `cls.bi_seq_relationship` | `itm_head.classifier`, rows swapped: the original's class 0 = aligned, ours 1 |
| `cls.imagePredictions.transform.{dense,LayerNorm}`, `.decoder` | `region_head.{dense,LayerNorm,decoder}` |
| `vil_prediction.logit_fc.*` (12-in-1 VQA) | `vqa_head.logit_fc.*` |
| `vil_logit` (retrieval score) | `itm_head.classifier` row 1 (row 0 zero) when converting for retrieval |

Old checkpoints with LayerNorm `gamma`/`beta` and a `module.` prefix (DataParallel) are accepted.
This module maps state dicts only; `vlbert.factory.convert_checkpoint` builds and saves the model
from them, and reports by name every original tensor it drops, every converted tensor the
target task model has no place for, and every original config key it ignores (`ConversionReport`).
Checkpoints are opened with `torch.load(weights_only=True)`: no pickled code runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vlbert.config import VLBertConfig, original_config_kwargs
from vlbert.weights.checkpoint import safe_torch_load

# Original keys the original forward never reads, or heads vlbert does not have.
_UNUSED = re.compile(
    r"(.*\.q_dense[12]\..*"
    r"|vil_prediction_gqa\..*|vil_binary_prediction\..*|vil_tri_prediction\..*"
    r"|vision_logit\..*|linguisic_logit\..*|vil_logit\..*"
    r"|.*\.position_ids)$"
)
_CO = re.compile(r"bert\.encoder\.c_layer\.(\d+)\.(.*)")
_CO_RENAMES = {
    "biOutput.dense1.": "v_attention_output.dense.",
    "biOutput.LayerNorm1.": "v_attention_output.LayerNorm.",
    "biOutput.dense2.": "t_attention_output.dense.",
    "biOutput.LayerNorm2.": "t_attention_output.LayerNorm.",
}
_QKV_SIDES = {"1": "v_qkv", "2": "t_qkv"}
_HEAD_RENAMES = {
    "cls.predictions.": "mlm_head.",
    "cls.imagePredictions.transform.dense.": "region_head.dense.",
    "cls.imagePredictions.transform.LayerNorm.": "region_head.LayerNorm.",
    "cls.imagePredictions.decoder.": "region_head.decoder.",
    "vil_prediction.logit_fc.": "vqa_head.logit_fc.",
}


@dataclass
class ConversionReport:
    state_dict: dict[str, Tensor]
    dropped: list[str] = field(default_factory=list)  # known-unused original keys
    unknown: list[str] = field(default_factory=list)  # keys this converter does not know
    new_heads: list[str] = field(default_factory=list)  # modules of the target model left newly initialised
    not_loaded: list[str] = field(default_factory=list)  # converted tensors the target task model lacks
    ignored_config: dict[str, str] = field(default_factory=dict)  # original config key -> why ignored
    task_specific_tokens: bool = False  # the checkpoint has 12-in-1's task embedding
    default_task_id: int | None = None  # the converted model's task id when forward gets none


def load_original_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Open an original `pytorch_model_*.bin` safely and normalise old key spellings."""
    state = safe_torch_load(path)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a state dict of tensors")
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        key = re.sub(r"LayerNorm(\d?)\.gamma$", r"LayerNorm\1.weight", key)
        key = re.sub(r"LayerNorm(\d?)\.beta$", r"LayerNorm\1.bias", key)
        out[key] = value
    return out


def _rename(key: str) -> str | None:
    """The vlbert name of a one-to-one original key (None for the fused or special ones)."""
    if key.startswith("bert."):
        match = _CO.fullmatch(key)
        if match:
            block, rest = match.groups()
            if rest.startswith("biattention."):
                return None  # fused into v_qkv / t_qkv
            for old, new in _CO_RENAMES.items():
                rest = rest.replace(old, new) if rest.startswith(old) else rest
            return f"vlbert.encoder.c_layer.{block}.{rest}"
        return "vlbert." + key[len("bert.") :]
    for old, new in _HEAD_RENAMES.items():
        if key.startswith(old):
            return new + key[len(old) :]
    return None


def _swap_rows(t: Tensor) -> Tensor:
    return t.flip(0).clone()


def original_to_vlbert(original: dict[str, Tensor], task: str = "pretraining") -> ConversionReport:
    """Map an original state dict to vlbert names (see the module docstring)."""
    report = ConversionReport(state_dict={})
    out = report.state_dict
    qkv: dict[tuple[str, str, str], dict[str, Tensor]] = {}
    for key, value in original.items():
        co = _CO.fullmatch(key)
        biatt = re.fullmatch(r"biattention\.(query|key|value)([12])\.(weight|bias)", co.group(2)) if co else None
        if biatt:
            part, side, kind = biatt.groups()
            qkv.setdefault((co.group(1), side, kind), {})[part] = value
        elif key.startswith("cls.bi_seq_relationship."):
            out["itm_head.classifier." + key.rsplit(".", 1)[1]] = _swap_rows(value)
        elif task == "retrieval" and key.startswith("vil_logit."):
            kind = key.rsplit(".", 1)[1]
            out[f"itm_head.classifier.{kind}"] = torch.cat([torch.zeros_like(value), value], dim=0)
        elif _UNUSED.fullmatch(key):
            report.dropped.append(key)
        elif (name := _rename(key)) is not None:
            out[name] = value
        else:
            report.unknown.append(key)
    for (block, side, kind), parts in sorted(qkv.items()):
        if set(parts) != {"query", "key", "value"}:
            raise ValueError(f"c_layer.{block} side {side} {kind}: incomplete q/k/v {sorted(parts)}")
        fused = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)
        out[f"vlbert.encoder.c_layer.{block}.attention.{_QKV_SIDES[side]}.{kind}"] = fused
    if "mlm_head.bias" in out:
        out["mlm_head.decoder.bias"] = out["mlm_head.bias"]
    return report


def vlbert_to_original(state: dict[str, Tensor], v_hidden_size: int, hidden_size: int) -> dict[str, Tensor]:
    """The inverse mapping, for exporting and for checking that the mapping is complete. The
    unused `q_dense` weights are written as zeros so the original code loads the result strictly.
    `state` is a task model's state dict, or a backbone's (keys without the `vlbert.` prefix)."""
    if not any(k.startswith("vlbert.") for k in state):
        state = {f"vlbert.{k}": v for k, v in state.items()}
    inverse_heads = {new: old for old, new in _HEAD_RENAMES.items()}
    inverse_co = {new: old for old, new in _CO_RENAMES.items()}
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key == "mlm_head.decoder.bias":
            continue  # tied to mlm_head.bias
        if key.startswith("itm_head.classifier."):
            out["cls.bi_seq_relationship." + key.rsplit(".", 1)[1]] = _swap_rows(value)
            continue
        if key.startswith("itc_head."):
            continue  # no original counterpart
        fused = re.fullmatch(r"vlbert\.encoder\.c_layer\.(\d+)\.attention\.([vt])_qkv\.(weight|bias)", key)
        if fused:
            block, side, kind = fused.groups()
            num = "1" if side == "v" else "2"
            for part, chunk in zip(("query", "key", "value"), value.chunk(3, dim=0)):
                out[f"bert.encoder.c_layer.{block}.biattention.{part}{num}.{kind}"] = chunk.clone()
            continue
        co = re.fullmatch(r"vlbert\.encoder\.c_layer\.(\d+)\.(.*)", key)
        if co:
            block, rest = co.groups()
            for new, old in inverse_co.items():
                rest = old + rest[len(new) :] if rest.startswith(new) else rest
            out[f"bert.encoder.c_layer.{block}.{rest}"] = value
            continue
        if key.startswith("vlbert."):
            out["bert." + key[len("vlbert.") :]] = value
            continue
        for new, old in inverse_heads.items():
            if key.startswith(new):
                out[old + key[len(new) :]] = value
                break
        else:
            raise KeyError(f"no original name for {key}")
    blocks = {m.group(1) for k in out if (m := re.match(r"bert\.encoder\.c_layer\.(\d+)\.", k))}
    for block in blocks:
        ref = out[f"bert.encoder.c_layer.{block}.biattention.query1.weight"]
        bi = ref.shape[0]
        for num, width in (("1", v_hidden_size), ("2", hidden_size)):
            out[f"bert.encoder.c_layer.{block}.biOutput.q_dense{num}.weight"] = ref.new_zeros(width, bi)
            out[f"bert.encoder.c_layer.{block}.biOutput.q_dense{num}.bias"] = ref.new_zeros(width)
    if "cls.predictions.bias" in out:
        out["cls.predictions.decoder.weight"] = out["bert.embeddings.word_embeddings.weight"]
    return out


def config_from_original(path: str | Path | None, **overrides: Any) -> VLBertConfig:
    """`VLBertConfig` from an original config JSON (None: the `vilbert-base` defaults); warns
    naming each ignored key, refuses keys that change the computation (`from_original_dict`)."""
    original = json.loads(Path(path).read_text()) if path is not None else {}
    return VLBertConfig.from_original_dict(original, **overrides)


TASK_EMBEDDINGS = "vlbert.embeddings.task_embeddings.weight"


def implied_config(report: ConversionReport, task: str, head_task_id: int | None = None) -> dict[str, Any]:
    """The config keys the converted tensors imply: the VQA answer count, and for a checkpoint with
    12-in-1's task embeddings `task_specific_tokens`, their number, and `default_task_id` =
    `head_task_id` (the 12-in-1 task whose head `task` takes over) when there is one. Sets
    `report.task_specific_tokens`."""
    state, implied = report.state_dict, {}
    if task == "vqa" and "vqa_head.logit_fc.3.weight" in state:
        implied["num_answers"] = state["vqa_head.logit_fc.3.weight"].shape[0]
    if TASK_EMBEDDINGS in state:
        report.task_specific_tokens = True
        implied.update(task_specific_tokens=True, num_task_embeddings=state[TASK_EMBEDDINGS].shape[0])
        if head_task_id is not None:
            implied["default_task_id"] = head_task_id
    return implied


def read_original_config(path: str | Path | None, report: ConversionReport) -> dict[str, Any]:
    """`VLBertConfig` keyword arguments of an original config JSON (None: none); the keys it
    ignores go to `report.ignored_config`."""
    original = json.loads(Path(path).read_text()) if path is not None else {}
    kwargs, report.ignored_config = original_config_kwargs(original)
    return kwargs
