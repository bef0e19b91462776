"""Timing helpers: contenders measured alternately in one process, medians, the matmul peak."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int, warmup: int,
                device: torch.device) -> dict[str, float]:
    """Median seconds per call of each contender, calling them in turn (A B A B ...) so that a
    slow patch of the machine hits both alike. The first `warmup` rounds are not counted."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(warmup + repeats):
        for name, fn in contenders.items():
            synchronize(device)
            began = time.perf_counter()
            fn()
            synchronize(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in times.items()}


def timed(fn: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    began = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - began


def matmul_peak_flops(device: torch.device, size: int = 2048, repeats: int = 10,
                      dtype: torch.dtype = torch.float32) -> float:
    """The best FLOP/s of a square matrix product: the practical peak of this device and dtype."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = min(timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * size**3 / best
