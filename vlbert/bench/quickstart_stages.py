"""Steps per second and model FLOP utilisation of each quickstart training stage, through the product.

Each stage is run by `run_training` with the quickstart's own configuration (`Quickstart.config` and
`stage_overrides`), so the time includes the data path, the collate, the objective, the optimizer
and the engine's bookkeeping. Setup (vocabulary, model build, saving) is cancelled out by timing
two runs, of `warmup` and of `warmup + steps` steps, and dividing the difference by `steps`. A
first run before them measures the setup a user's first run pays (with `train.compile=true`, a
compile with torch's caches cold; the two timed runs then find them warm, and pay alike). The
FLOPs of one step are counted by torch's `FlopCounterMode` around a one-step run (forward and
backward; matrix products and attention only, as for the large model's MFU).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import torch
from torch.utils.flop_counter import FlopCounterMode

from vlbert.bench.timing import matmul_peak_flops
from vlbert.quickstart.pipeline import Quickstart, stage_overrides
from vlbert.quickstart.plan import QuickstartPlan
from vlbert.run.training import run_training

# stage name -> task, as the quickstart runs them
STAGES: dict[str, str] = {"pretrain": "pretraining", "vqa": "vqa", "retrieval": "retrieval", "caption": "captioning"}


@dataclass
class StageSpeed:
    stage: str
    task: str
    batch: int
    seconds_per_step: float
    steps_per_s: float
    step_flops: int  # forward + backward of one step
    achieved_flops_per_s: float
    mfu: float  # over the measured fp32 matmul peak
    setup_s: float  # a first `warmup`-step run's time less its steps: vocabulary, model build, saving (and compiling)


def _timed_run(qs: Quickstart, stage: str, steps: int, out: Path, overrides: tuple[str, ...] = ()) -> float:
    cfg = qs.config(STAGES[stage], str(out), steps, *stage_overrides(qs.plan)[stage],
                    "data.val_split=null", "train.eval_every=0", "train.log_every=1000000", *overrides)  # out: absolute
    began = time.perf_counter()
    run_training(cfg, resume=False)
    return time.perf_counter() - began


def _step_flops(qs: Quickstart, stage: str, out: Path) -> int:
    with FlopCounterMode(display=False) as counter:
        _timed_run(qs, stage, 1, out)
    return counter.get_total_flops()


def measure_stages(plan: QuickstartPlan, stages: list[str], steps: int, warmup: int,
                   work_dir: str | Path | None = None, overrides: tuple[str, ...] = ()) -> tuple[float, list[StageSpeed]]:
    """(matmul peak FLOP/s, one `StageSpeed` per stage) on built-in data of the plan's sizes;
    `overrides` are added to every stage's configuration (e.g. "train.compile=true")."""
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; choose from {', '.join(STAGES)}")
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp, \
            patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": f"{tmp}/inductor"}):  # a compile cache that starts empty
        qs = Quickstart(Path(tmp), plan, ablation=False, progress=False)
        qs.make_data()
        peak = matmul_peak_flops(torch.device("cpu"))
        results = []
        for stage in stages:
            flops = _step_flops(qs, stage, Path(tmp) / f"{stage}-flops")
            # the first run pays what a user's first run pays (with compiling: a cold compile cache);
            # the two timed runs after it pay alike, so their difference is `steps` steps
            first = _timed_run(qs, stage, warmup, Path(tmp) / f"{stage}-first", overrides)
            short = _timed_run(qs, stage, warmup, Path(tmp) / f"{stage}-short", overrides)
            long = _timed_run(qs, stage, warmup + steps, Path(tmp) / f"{stage}-long", overrides)
            seconds = max(long - short, 1e-9) / steps
            achieved = flops / seconds
            results.append(StageSpeed(stage, STAGES[stage], plan.batch_size, seconds, 1 / seconds, flops,
                                      achieved, achieved / peak, first - warmup * seconds))
    return peak, results
