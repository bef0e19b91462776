"""Inference throughput of `vilbert-base`: ITM pairs/s and VQA questions/s, and peak memory."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vlbert.bench.memory import peak_resident_mb
from vlbert.bench.timing import interleaved
from vlbert.bench.train_step import make_inputs
from vlbert.factory import create_model


@dataclass
class InferenceResult:
    itm_pairs_per_s: float
    vqa_questions_per_s: float
    peak_memory_mb: float  # CUDA: max allocated; CPU: the process's peak resident set


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_resident_mb()


def measure_inference(preset: str, device: torch.device, batch: int, repeats: int,
                      autocast: torch.dtype | None) -> InferenceResult:
    inputs = make_inputs(preset, batch, 36, 36, device, seed=1)
    retrieval = create_model(preset, task="retrieval").to(device).eval()
    vqa = create_model(preset, task="vqa", num_answers=3129).to(device).eval()
    kwargs = dict(input_ids=inputs.input_ids, region_features=inputs.features, region_boxes=inputs.boxes)

    def run(model: torch.nn.Module) -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            model(**kwargs)

    seconds = interleaved({"itm": lambda: run(retrieval), "vqa": lambda: run(vqa)}, repeats, 1, device)
    return InferenceResult(batch / seconds["itm"], batch / seconds["vqa"], peak_memory_mb(device))
