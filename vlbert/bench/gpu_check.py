"""The GPU path checked end to end (`tools/gpu_check.py`): a short pre-training and a short VQA
fine-tune of `vilbert-base` in bf16 autocast, each against the same steps in fp32 (same
initialisation, same batches), with step time, peak memory and MFU against the GPU's bf16 peak.

`dry_run=True` runs the same code on the CPU with the `tiny` preset (bf16 autocast on CPU, no
CUDA timing or memory), so the tool itself is tested where there is no GPU.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from vlbert.bench.timing import timed
from vlbert.bench.train_step import count_flops, make_inputs, vlbert_step
from vlbert.factory import create_model
from vlbert.losses import vqa_loss

# Dense bf16 tensor-core peaks (TFLOP/s, without sparsity) from the vendors' data sheets, matched
# against torch.cuda.get_device_name() in this order (the first contained key wins).
BF16_PEAK_TFLOPS: dict[str, float] = {
    "GH200": 989.0, "H200": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.0,  # SXM: "H100 80GB HBM3"
    "B200": 2250.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0, "L40": 181.0, "L4": 121.0,
    "A6000": 155.0, "A10G": 70.0, "A10": 125.0, "RTX 4090": 165.0, "RTX 3090": 71.0,
}  # fmt: skip


@dataclass
class CheckConfig:
    dry_run: bool = False  # CPU, `tiny`, no CUDA specifics
    steps: int = 6  # optimizer steps per run (the first is not timed)
    batch: int = 16
    tokens: int = 36
    regions: int = 36
    num_answers: int = 3129
    tolerance: float = 0.05  # |bf16 - fp32| / |fp32| allowed for every step's loss
    peak_tflops: float | None = None  # the device's bf16 peak; None = look the device name up

    @property
    def preset(self) -> str:
        return "tiny" if self.dry_run else "vilbert-base"


@dataclass
class RunReport:
    name: str  # "pretraining" or "vqa"
    losses_fp32: list[float]
    losses_bf16: list[float]
    max_relative_diff: float
    step_seconds: float  # median bf16 step after the first
    peak_memory_gb: float | None  # CUDA peak allocated in the bf16 run (None on CPU)
    tflops_per_step: float  # forward + backward FLOPs (torch's counter) / 1e12
    mfu: float | None  # achieved FLOP/s over the bf16 peak (None without a peak)
    failures: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    device: str
    preset: str
    peak_tflops: float | None
    tolerance: float
    runs: list[RunReport]

    @property
    def failures(self) -> list[str]:
        return [f"{run.name}: {failure}" for run in self.runs for failure in run.failures]

    def as_dict(self) -> dict:
        return {**asdict(self), "failures": self.failures}


def device_peak(name: str, given: float | None) -> float | None:
    """The bf16 peak (TFLOP/s): `given`, else the table's entry for the device name, else None."""
    if given is not None:
        return given
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in name), None)


StepFactory = Callable[[torch.dtype | None], Callable[[], Tensor]]  # autocast dtype -> one step


def pretraining_steps(cfg: CheckConfig, device: torch.device) -> StepFactory:
    inputs = make_inputs(cfg.preset, cfg.batch, cfg.tokens, cfg.regions, device)

    def factory(autocast: torch.dtype | None) -> Callable[[], Tensor]:
        torch.manual_seed(0)
        return vlbert_step(cfg.preset, device, inputs, autocast)[1]

    return factory


def vqa_steps(cfg: CheckConfig, device: torch.device) -> StepFactory:
    """A VQA fine-tuning step (BCE on soft scores, AdamW) on fixed random questions and regions."""
    inputs = make_inputs(cfg.preset, cfg.batch, cfg.tokens, cfg.regions, device)
    g = torch.Generator().manual_seed(1)
    scores = (torch.rand(cfg.batch, cfg.num_answers, generator=g) < 3 / cfg.num_answers).float().to(device)  # [B, A]

    def factory(autocast: torch.dtype | None) -> Callable[[], Tensor]:
        torch.manual_seed(0)
        model = create_model(cfg.preset, task="vqa", num_answers=cfg.num_answers).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def step() -> Tensor:
            with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
                logits = model(inputs.input_ids, region_features=inputs.features, region_boxes=inputs.boxes).logits
                loss = vqa_loss(logits, scores)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss.detach()

        return step

    return factory


def _losses_and_times(step: Callable[[], Tensor], steps: int, device: torch.device) -> tuple[list[float], list[float]]:
    losses, seconds = [], []
    for _ in range(steps):
        holder: list[Tensor] = []
        seconds.append(timed(lambda: holder.append(step()), device))
        losses.append(float(holder[0]))
    return losses, seconds


def check_run(name: str, factory: StepFactory, cfg: CheckConfig, device: torch.device, peak: float | None) -> RunReport:
    """fp32 then bf16 from the same initialisation; the bf16 run is timed and counted."""
    fp32, _ = _losses_and_times(factory(None), cfg.steps, device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    bf16_step = factory(torch.bfloat16)
    bf16, seconds = _losses_and_times(bf16_step, cfg.steps, device)
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    flops = count_flops(bf16_step)  # one more step, counted
    step_seconds = statistics.median(seconds[1:] or seconds)
    diffs = [abs(b - f) / max(abs(f), 1e-12) for f, b in zip(fp32, bf16, strict=True)]
    report = RunReport(name, fp32, bf16, max(diffs), step_seconds, memory, flops / 1e12,
                       flops / step_seconds / (peak * 1e12) if peak else None)  # fmt: skip
    if not all(math.isfinite(x) for x in fp32 + bf16):
        report.failures.append(f"non-finite loss (fp32 {fp32}, bf16 {bf16})")
    elif report.max_relative_diff > cfg.tolerance:
        report.failures.append(f"bf16 loss differs from fp32 by {report.max_relative_diff:.4f} relative "
                               f"(tolerance {cfg.tolerance})")  # fmt: skip
    return report


def run_checks(cfg: CheckConfig) -> CheckReport:
    """Both runs; raises RuntimeError when the GPU path cannot run at all (no CUDA, unknown peak)."""
    if cfg.dry_run:
        device, name = torch.device("cpu"), "cpu (dry run)"
    elif not torch.cuda.is_available():
        raise RuntimeError("no CUDA device: run on a GPU machine, or pass --dry-run to check the tool on the CPU")
    else:
        device, name = torch.device("cuda"), torch.cuda.get_device_name()
    peak = device_peak(name, cfg.peak_tflops)
    if peak is None and not cfg.dry_run:
        raise RuntimeError(f"no bf16 peak known for {name!r}: pass --peak-tflops (the data sheet's dense bf16 TFLOP/s)")
    runs = [check_run("pretraining", pretraining_steps(cfg, device), cfg, device, peak),
            check_run("vqa", vqa_steps(cfg, device), cfg, device, peak)]  # fmt: skip
    return CheckReport(name, cfg.preset, peak, cfg.tolerance, runs)


def table(report: CheckReport) -> str:
    """A Markdown table of the runs."""
    lines = [f"device: {report.device}, model: {report.preset}, bf16 peak: {report.peak_tflops or 'unknown'} TFLOP/s, "
             f"loss tolerance: {report.tolerance} relative",
             "", "| run | max rel. loss diff | step (s) | peak memory (GiB) | TFLOP/step | MFU | result |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for run in report.runs:
        memory = f"{run.peak_memory_gb:.2f}" if run.peak_memory_gb is not None else "-"
        mfu = f"{run.mfu:.3f}" if run.mfu is not None else "-"
        result = "; ".join(run.failures) or "ok"
        lines.append(f"| {run.name} | {run.max_relative_diff:.4f} | {run.step_seconds:.4f} | {memory} | "
                     f"{run.tflops_per_step:.3f} | {mfu} | {result} |")  # fmt: skip
    return "\n".join(lines)
