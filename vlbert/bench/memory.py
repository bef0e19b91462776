"""Where inference memory goes: runtime, weights and activations, each measured in a fresh process.

Peak resident memory is a property of a whole process. Measured inside a process that has already
trained two large models (as `make bench` did before), it counts their weights, optimizer state and
activations too. Here each account runs in a new process (the `spawn` start method), which reads
its resident set after importing the libraries, after building the model and at the peak of one
inference forward.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
from dataclasses import dataclass

import torch


@dataclass
class MemoryAccount:
    preset: str
    task: str
    batch: int
    runtime_mb: float  # resident after importing torch, transformers and vlbert: no model yet
    weights_mb: float  # growth from building the model
    parameter_mb: float  # parameters x bytes per element: what the weights must take
    activations_mb: float  # peak during the forward above the resident set before it
    peak_mb: float  # the process's peak resident set


def resident_mb() -> float:
    """The current resident set (Linux /proc); elsewhere the peak so far, an upper bound."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_resident_mb()


def peak_resident_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def _account(preset: str, task: str, batch: int, threads: int) -> MemoryAccount:
    """Runs in the fresh process."""
    torch.set_num_threads(threads)
    from vlbert.bench.train_step import make_inputs
    from vlbert.factory import create_model

    runtime = resident_mb()
    extra = {"num_answers": 3129} if task == "vqa" else {}
    model = create_model(preset, task=task, **extra).eval()
    built = resident_mb()
    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    inputs = make_inputs(preset, batch, 36, 36, torch.device("cpu"), seed=1)
    before = resident_mb()
    with torch.inference_mode():
        model(input_ids=inputs.input_ids, region_features=inputs.features, region_boxes=inputs.boxes)
    peak = peak_resident_mb()
    return MemoryAccount(preset, task, batch, runtime, built - runtime, parameter_bytes / 2**20,
                         max(0.0, peak - before), peak)


def account_inference_memory(preset: str, task: str, batch: int, threads: int | None = None) -> MemoryAccount:
    """One CPU inference forward of `preset` for `task` ("retrieval" or "vqa") at `batch`, in a new process."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_account, (preset, task, batch, threads or torch.get_num_threads()))
