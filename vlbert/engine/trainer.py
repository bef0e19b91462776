"""The training loop: accumulation, clipping, bf16 autocast on CUDA, non-finite guard, progress,
TensorBoard, periodic evaluation keeping the best model, and exact resume from checkpoints.

Data comes from `make_batches(epoch, skip)`, which yields the epoch's batches starting after the
first `skip` ones, so a resumed run continues from the same position in the same order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from vlbert._extras import MissingExtra, require
from vlbert.engine import distributed, fsdp
from vlbert.engine.checkpoint import (
    commit_checkpoint,
    latest_checkpoint,
    load_trainer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
    staging_dir,
)
from vlbert.engine.finetune import FinetuneConfig, FinetunePlan
from vlbert.engine.optim import OptimConfig, build_optimizer, build_scheduler, param_groups
from vlbert.losses import LossOutput

logger = logging.getLogger(__name__)

BatchFactory = Callable[[int, int], Iterator[Any]]  # (epoch, batches to skip) -> batches
StepFn = Callable[[nn.Module, Any], LossOutput]
EvalFn = Callable[[nn.Module], dict[str, float]]


@dataclass
class TrainConfig:
    max_steps: int = 1000  # optimizer steps
    grad_accum: int = 1  # batches per optimizer step
    clip_norm: float | None = 1.0  # gradient norm clipping; None = off
    optim: OptimConfig = field(default_factory=OptimConfig)
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # "auto" (bf16 on CUDA, fp32 on CPU) | "fp32" | "bf16"
    gradient_checkpointing: bool = False  # recompute layers in the backward pass to save memory
    compile: bool = False  # torch.compile the model and objective
    seed: int = 0  # model initialisation, data order, masking
    log_every: int = 10  # steps between entries of the training history
    eval_every: int = 0  # 0 = only at the end
    save_every: int = 0  # 0 = only at the end
    keep_checkpoints: int = 2  # newest checkpoints kept in out_dir/checkpoints
    best_metric: str | None = None  # key of the eval dict; higher is better
    nonfinite: Literal["skip", "stop"] = "skip"  # "skip" the step or "stop" the run
    progress: bool = True  # show a progress bar
    deterministic: bool = False  # torch.use_deterministic_algorithms for the run (see docs/distributed.md)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # what trains and how (docs/finetuning.md)
    strategy: Literal["ddp", "fsdp"] = "ddp"  # under torchrun: replicated model, or sharded (DCP checkpoints)


@dataclass
class TrainState:
    step: int = 0  # optimizer steps done
    epoch: int = 0
    batches_in_epoch: int = 0  # batches of this epoch already consumed
    best: float | None = None
    skipped_steps: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class NonFiniteLoss(RuntimeError):
    pass


def use_deterministic_algorithms() -> None:
    """`train.deterministic`: ops without a deterministic kernel raise instead of running, cuDNN
    picks deterministic algorithms without benchmarking, and cuBLAS gets the fixed workspace it
    needs (CUBLAS_WORKSPACE_CONFIG, honoured when CUDA is not yet initialised). The intra-op thread
    count is left as it is: on CPU the measured runs were bit-identical at 2 threads (docs/distributed.md)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    logger.info("train.deterministic: deterministic algorithms only, %d intra-op threads", torch.get_num_threads())


class ObjectiveModule(nn.Module):
    """The model and its objective as one module whose forward returns the loss, so that
    DistributedDataParallel sees every parameter the objective uses (the objectives call the
    model's encoders and heads directly, not only its forward)."""

    def __init__(self, model: nn.Module, step_fn: StepFn) -> None:
        super().__init__()
        self.model, self.step_fn = model, step_fn

    def forward(self, batch: Any) -> LossOutput:
        return self.step_fn(self.model, batch)


class Trainer:
    """Under torchrun every process runs a Trainer: gradients are averaged across processes
    (DistributedDataParallel, or FSDP2 with `strategy="fsdp"`), each process reads its own part of
    the data (`data.batch_size` is per process), every process runs `eval_fn` (which may share the
    work out; rank 0's result counts), and rank 0 alone logs and writes files (but the shards of a
    `fsdp` checkpoint, which every process writes)."""

    def __init__(self, model: nn.Module, step_fn: StepFn, cfg: TrainConfig, out_dir: str | Path,
                 eval_fn: EvalFn | None = None, device: str | torch.device | None = None) -> None:
        fsdp.check_strategy(cfg.strategy)
        self.cfg, self.step_fn, self.eval_fn = cfg, step_fn, eval_fn
        self.out_dir = Path(out_dir)
        self.device = distributed.local_device(distributed.default_device(device))
        self.dist = distributed.init_distributed(self.device)
        if cfg.deterministic:
            use_deterministic_algorithms()
        torch.manual_seed(cfg.seed)
        self.model = model.to(self.device)
        self.plan = FinetunePlan(self.model, cfg.finetune)  # freezing, adapters, lr scales, unfreezing
        logger.info(self.plan.count.line())
        if cfg.gradient_checkpointing:
            self.model.enable_checkpointing()
        self.scalars = fsdp.promote_scalars(self.model) if cfg.strategy == "fsdp" else set()
        objective: nn.Module = ObjectiveModule(self.model, step_fn)
        self.ddp, self.fsdp = None, None
        if self.dist.enabled and cfg.strategy == "fsdp":
            objective = self.fsdp = fsdp.shard(objective, self.model, self.device)
        elif self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            objective = self.ddp = DistributedDataParallel(objective, device_ids=ids, find_unused_parameters=True)
        self.objective = torch.compile(objective) if cfg.compile else objective
        self.optimizer = build_optimizer(self.model, cfg.optim, self.plan)  # every group that will ever train
        self.plan.apply_schedule(0)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, cfg.max_steps)
        self.state = TrainState()
        self.writer = self._tensorboard() if self.dist.is_main else None

    def _tensorboard(self) -> Any:
        """A TensorBoard writer into out_dir/tb; without tensorboard (the `train` extra) the run
        goes on with its metrics.json log and one warning line."""
        try:
            tensorboard = require("torch.utils.tensorboard", "TensorBoard logging")
        except MissingExtra as error:  # the loop must not need it
            logger.warning("%s; training without it", error)
            return None
        return tensorboard.SummaryWriter(str(self.out_dir / "tb"))

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        wanted = self.cfg.precision
        if wanted == "bf16" or (wanted == "auto" and self.device.type == "cuda"):
            return torch.bfloat16
        return None

    def resume(self) -> bool:
        """Restore the latest complete checkpoint in `out_dir`; False when there is none."""
        path = latest_checkpoint(self.out_dir / "checkpoints")
        if path is None:
            return False
        saved = load_trainer_state(path)
        self._load_model_and_optimizer(path, saved)
        self.scheduler.load_state_dict(saved["scheduler"])
        self.state = TrainState(**saved["train_state"])
        self._use_configured_optim()
        per_rank = saved.get("rng_per_rank") or [saved["rng"]]
        if len(per_rank) != self.dist.world_size:
            logger.warning("checkpoint written by %d processes, resumed by %d: random streams differ from an "
                           "uninterrupted run", len(per_rank), self.dist.world_size)
        set_rng_state(per_rank[self.dist.rank % len(per_rank)])
        logger.info("resumed from %s at step %d", path, self.state.step)
        return True

    def _load_model_and_optimizer(self, path: Path, saved: dict[str, Any]) -> None:
        sharded = (path / fsdp.DCP_DIR).is_dir()
        if sharded != (self.cfg.strategy == "fsdp"):
            raise ValueError(f"{path} was written with train.strategy={'fsdp' if sharded else 'ddp'}; "
                             f"resume it with that strategy, not {self.cfg.strategy}")  # fmt: skip
        if sharded:
            fsdp.load_sharded(path, self.model, self.optimizer)
            return
        from vlbert.weights.checkpoint import load_weights

        load_weights(self.model, path)
        self.optimizer.load_state_dict(saved["optimizer"])

    def _use_configured_optim(self) -> None:
        """After loading a checkpoint: this run's learning rates, weight decay and betas (those of
        the checkpoint unless a change was accepted with --override-resume), and the learning rate
        at the checkpoint's step recomputed with this run's schedule (the same value when nothing
        changed; loading alone would keep the checkpoint's settings whatever the config says)."""
        fresh = param_groups(self.model, self.cfg.optim, self.plan)
        groups, scheduler = self.optimizer.param_groups, self.scheduler
        scheduler.base_lrs = [group["lr"] for group in fresh]
        for group, new, base, factor in zip(groups, fresh, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
            group.update(initial_lr=base, lr=base * factor(scheduler.last_epoch), weight_decay=new["weight_decay"],
                         betas=self.cfg.optim.betas)  # fmt: skip
        scheduler._last_lr = [group["lr"] for group in groups]

    def save(self) -> Path | None:
        """Write a checkpoint (rank 0; the other ranks hand over their random states, write their
        shards of a `fsdp` checkpoint, and wait)."""
        per_rank = distributed.all_gather_objects(rng_state())
        trainer_state = {"scheduler": self.scheduler.state_dict(), "train_state": asdict(self.state),
                         "rng": per_rank[0], "rng_per_rank": per_rank}  # fmt: skip
        out_dir, path = self.out_dir / "checkpoints", None
        if self.cfg.strategy == "fsdp":
            path = self._save_sharded(out_dir, trainer_state)
        elif self.dist.is_main:
            trainer_state["optimizer"] = self.optimizer.state_dict()
            path = save_checkpoint(out_dir, self.state.step, self.model, trainer_state, self.cfg.keep_checkpoints)
        distributed.barrier()
        return path

    def _save_sharded(self, out_dir: Path, trainer_state: dict[str, Any]) -> Path | None:
        """Every process writes its shard of the model and optimizer into the staging directory;
        rank 0 then adds the trainer state and renames it into place."""
        tmp = staging_dir(out_dir, self.state.step)
        if self.dist.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        distributed.barrier()
        fsdp.save_sharded(tmp, self.model, self.optimizer)
        distributed.barrier()
        if not self.dist.is_main:
            return None
        self.model.config.save_pretrained(str(tmp))  # what model the shards belong to
        return commit_checkpoint(out_dir, self.state.step, trainer_state, self.cfg.keep_checkpoints)

    def model_state(self) -> dict[str, torch.Tensor]:
        """The whole model's state: on rank 0 only under `fsdp` (every process must call it then)."""
        return fsdp.full_state_dict(self.model, self.scalars)

    def _micro_step(self, batch: Any, sync: bool) -> LossOutput:
        batch = batch.to(self.device)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            fsdp.gradient_sync(self.fsdp, sync)
            with contextlib.nullcontext() if sync or self.ddp is None else self.ddp.no_sync():
                loss = self.objective(batch)
                (loss.total / self.cfg.grad_accum).backward()
        return loss

    def _optimizer_step(self, losses: list[LossOutput]) -> dict[str, float]:
        total = distributed.mean_across_ranks(sum(float(l.total.detach()) for l in losses) / len(losses))
        params = [p for p in self.model.parameters() if p.grad is not None]
        limit = self.cfg.clip_norm or float("inf")
        norm = fsdp.local_value(torch.nn.utils.clip_grad_norm_(params, limit)) if params else torch.tensor(0.0)
        if not (math.isfinite(total) and torch.isfinite(norm)):
            self.optimizer.zero_grad(set_to_none=True)
            self.state.skipped_steps += 1
            message = f"non-finite loss or gradient at step {self.state.step + 1} (loss {total}, grad norm {float(norm)})"
            if self.cfg.nonfinite == "stop":
                raise NonFiniteLoss(message)
            logger.warning("%s: step skipped", message)
            return {}
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1
        logs = {"loss": total, "grad_norm": float(norm), "lr": self.scheduler.get_last_lr()[0]}
        for name in losses[0].parts:
            part = sum(float(l.parts[name].detach()) for l in losses) / len(losses)
            logs[f"loss_{name}"] = distributed.mean_across_ranks(part)
        return logs

    def _batches(self, make_batches: BatchFactory) -> Iterator[Any]:
        """Batches forever, epoch after epoch, from the saved position."""
        while True:
            with contextlib.closing(_Closable(make_batches(self.state.epoch, self.state.batches_in_epoch))) as epoch:
                for batch in epoch:
                    self.state.batches_in_epoch += 1
                    yield batch
            if self.state.batches_in_epoch == 0:
                raise ValueError("the training data yielded no batch")
            self.state.epoch += 1
            self.state.batches_in_epoch = 0

    def fit(self, make_batches: BatchFactory) -> TrainState:
        cfg = self.cfg
        self.model.train()
        batches = self._batches(make_batches)
        progress = _Progress(cfg.max_steps, self.state.step, enabled=cfg.progress and self.dist.is_main)
        try:
            while self.state.step < cfg.max_steps:
                self.plan.apply_schedule(self.state.step)  # gradual unfreezing: a function of the step
                accum = cfg.grad_accum
                losses = [self._micro_step(next(batches), sync=i == accum - 1) for i in range(accum)]
                logs = self._optimizer_step(losses)
                if not logs:
                    continue
                progress.update(self.state.step, logs["loss"])
                self._log(logs)
                last = self.state.step == cfg.max_steps
                if (cfg.eval_every and self.state.step % cfg.eval_every == 0) or last:
                    self.evaluate()
                if (cfg.save_every and self.state.step % cfg.save_every == 0) or last:
                    self.save()
        finally:
            progress.close()
            batches.close()  # the epoch's reader reports what it read so far (see `EpochLoader`)
        return self.state

    def _log(self, logs: dict[str, float]) -> None:
        if self.writer is not None:
            for key, value in logs.items():
                self.writer.add_scalar(f"train/{key}", value, self.state.step)
        if self.state.step % self.cfg.log_every == 0 or self.state.step == 1:
            self.state.history.append({"step": self.state.step, **logs})

    def evaluate(self) -> dict[str, float]:
        """Run `eval_fn` on every process (under `fsdp` with the whole model gathered on each);
        rank 0's metrics are recorded everywhere."""
        if self.eval_fn is None:
            return {}
        self.model.eval()
        with fsdp.gathered(self.fsdp), torch.no_grad():
            metrics = self.eval_fn(self.model)
        self.model.train()
        metrics = distributed.broadcast_object(metrics)
        self._record(metrics)
        return metrics

    def _record(self, metrics: dict[str, float]) -> None:
        self.state.history.append({"step": self.state.step, **{f"eval_{k}": v for k, v in metrics.items()}})
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f"eval/{key}", value, self.state.step)
        key = self.cfg.best_metric
        if key is not None and (self.state.best is None or metrics[key] > self.state.best):
            self.state.best = metrics[key]
            self._save_best()
        if self.dist.is_main:
            self._write_metrics()

    def _save_best(self) -> None:
        state = self.model_state() if self.fsdp is not None else None  # gathered when sharded (a collective)
        if not self.dist.is_main:
            return
        tmp, final = self.out_dir / ".best.tmp", self.out_dir / "best"
        shutil.rmtree(tmp, ignore_errors=True)
        self.plan.save_model(self.model, tmp, state_dict=state)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)

    def _write_metrics(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "metrics.json").write_text(json.dumps(self.state.history, indent=1))


class _Closable:
    """An iterator with ``close()``: the iterator's own, or none to call."""

    def __init__(self, iterable: Any) -> None:
        self.iterator = iter(iterable)

    def __iter__(self) -> Iterator[Any]:
        return self.iterator

    def close(self) -> None:
        close = getattr(self.iterator, "close", None)
        if close is not None:
            close()


class _Progress:
    """A tqdm bar with loss, steps/s and ETA (silent when disabled or tqdm is missing)."""

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)
        self.started, self.last = time.perf_counter(), start

    def update(self, step: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(step - self.last)
            self.bar.set_postfix(loss=f"{loss:.4f}")
        self.last = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
