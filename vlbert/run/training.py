"""`run_training`: a whole run from a `RunConfig`: build, train with periodic evaluation, save.

The output directory receives `config.yaml` (the resolved run configuration), `metrics.json`,
`checkpoints/` (resumable), `best/` (when `train.best_metric` is set), and `model/`, the final
model with its tokenizer (and answers), which `evaluate`, `predict` and `finetune` read.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch
from torch import nn

from vlbert.data.pipeline.batch import Batch
from vlbert.data.pipeline.loader import batch_factory, report_skips
from vlbert.data.shards.records import resolve_shards
from vlbert.data.shards.schema import DataError
from vlbert.engine import distributed
from vlbert.engine.finetune import FinetunePlan
from vlbert.engine.objectives import OBJECTIVES
from vlbert.engine.regularizers import wrap_objective
from vlbert.engine.trainer import Trainer
from vlbert.eval.saved import ANSWERS_FILE, RunParts, model_directory, save_model_dir
from vlbert.eval.split import evaluate_parts
from vlbert.factory import create_model
from vlbert.models.tasks import task_text
from vlbert.run.model_card import write_model_card
from vlbert.run.resume import check_resume, record_config, say_differences
from vlbert.run.setup import build_parts
from vlbert.runconfig import ConfigError, RunConfig
from vlbert.rundata import collate_config, data_config, maybe_blank

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    out_dir: Path
    model_dir: Path
    metrics: dict[str, float]  # final evaluation on the validation split (empty without one)
    steps: int
    parts: RunParts  # the trained model, its tokenizer and answers
    history: list[dict[str, float]]  # the trainer's log (metrics.json)
    trainable_params: int = 0  # parameters that trained (adapters and heads only, with peft)


def _step_fn(cfg: RunConfig) -> Callable[[nn.Module, Batch], object]:
    """The task's objective, with adversarial training and distillation when `train.finetune` asks."""
    objective = OBJECTIVES[cfg.task]
    finetune = cfg.train.finetune
    teacher = None
    if finetune.teacher:
        teacher = create_model(str(model_directory(finetune.teacher)), task=cfg.task)
    return wrap_objective(lambda model, batch: objective(model, batch, cfg.objective), finetune, teacher)


def _build_parts_once(cfg: RunConfig, out_dir: Path, dist: distributed.DistInfo) -> RunParts:
    """Rank 0 builds the parts (a vocabulary built from the data is written to `out_dir`);
    the other ranks then read that vocabulary, so every process tokenises alike."""
    if not dist.enabled:
        return build_parts(cfg, out_dir)
    if dist.is_main:
        parts = build_parts(cfg, out_dir)
        distributed.barrier()
        return parts
    distributed.barrier()
    built = out_dir / "tokenizer"
    if not cfg.data.tokenizer and (built / "tokenizer_config.json").is_file():
        cfg = replace(cfg, data=replace(cfg.data, tokenizer=str(built)))
    return build_parts(cfg, out_dir)


def run_training(cfg: RunConfig, resume: bool = True, override_resume: bool = False) -> RunResult:
    """Train `cfg.task` on `cfg.data.root`; resumes from `out_dir`'s checkpoints when present, with
    the settings saved in `out_dir/config.yaml` (`override_resume`: with this `cfg`'s; see `vlbert.run.resume`)."""
    if cfg.task not in OBJECTIVES:
        raise ConfigError(f"task must be one of {', '.join(OBJECTIVES)}, got {cfg.task!r}")
    if cfg.data.root is None:
        raise ConfigError("data.root: the training shard directory is required")
    if "://" not in cfg.data.root and not Path(cfg.data.root).exists():
        raise ConfigError(f"data.root: no such shard directory: {cfg.data.root}")
    cfg = checked_val_split(cfg)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dist = distributed.init_distributed(distributed.default_device(cfg.device))
    check = check_resume(cfg, override_resume) if resume else None
    distributed.barrier()  # every process has read the saved config before rank 0 writes it
    if dist.is_main:
        say_differences(check)
        record_config(cfg, check)
    torch.manual_seed(cfg.train.seed)
    parts = _build_parts_once(cfg, out_dir, dist)
    factory = batch_factory(
        cfg.data.root, task_text(cfg.task), parts.tokenizer, cfg.data.batch_size,
        data_config(cfg, parts.model, cfg.data.train_split, train=True),
        collate_config(cfg, parts.model, train=True), parts.answers, cfg.data.num_workers,
        report=partial(report_skips, prefix=f"rank {dist.rank}: " if dist.enabled else ""),
    )

    def make_batches(epoch: int, skip: int) -> Iterable[Batch]:
        return maybe_blank(factory(epoch, skip), cfg.data.blank_images)

    val = cfg.data.val_split
    eval_fn = (lambda model: evaluate_parts(cfg, parts, val)) if val else None
    trainer = Trainer(parts.model, _step_fn(cfg), cfg.train, out_dir, eval_fn=eval_fn, device=cfg.device)
    if dist.is_main:
        print(trainer.plan.count.line(), file=sys.stderr, flush=True)
    if resume:
        trainer.resume()
    model_dir = out_dir / "model"
    try:
        state = trainer.fit(make_batches)
    except Exception:
        if trainer.state.step >= cfg.train.max_steps and trainer.dist.is_main and trainer.fsdp is None:  # evaluating failed
            save_adapter_dir(cfg, parts, trainer.plan, out_dir / "adapter")
            _save_after_failure(cfg, parts, out_dir, trainer.state.step)
        raise
    evals = [h for h in state.history if any(k.startswith("eval_") for k in h)]
    metrics = {k[len("eval_"):]: v for k, v in evals[-1].items() if k.startswith("eval_")} if evals else {}
    # a sharded model's weights, gathered from every process (a collective); else the model saves itself
    weights = trainer.model_state() if trainer.fsdp is not None else None
    if trainer.dist.is_main:
        save_adapter_dir(cfg, parts, trainer.plan, out_dir / "adapter")
        _save_run(cfg, parts, out_dir, state.step, metrics, weights)
    distributed.barrier()
    return RunResult(out_dir, model_dir, metrics, state.step, parts, state.history, trainer.plan.count.trainable)


def save_adapter_dir(cfg: RunConfig, parts: RunParts, plan: FinetunePlan, directory: Path) -> None:
    """With peft: the adapter (and the heads), tokenizer and answers in `directory`; LoRA adapters are
    then merged into `parts.model`, which `model/` holds as a plain model. Else nothing."""
    from vlbert.engine.adapters import save_adapter, save_prompt_adapter

    if cfg.train.finetune.peft == "prompt":
        save_prompt_adapter(plan.trained_state(parts.model), directory, parts.model.config.num_prompt_tokens,
                            task=cfg.task, base=cfg.model.init)  # fmt: skip
    elif plan.peft_model is not None:
        save_adapter(plan.peft_model, directory, task=cfg.task, base=cfg.model.init)
        plan.peft_model.merge_and_unload()  # in place: parts.model is a plain task model again
        plan.peft_model = None
    else:
        return
    parts.tokenizer.save_pretrained(str(directory))
    if parts.answers is not None:
        parts.answers.save(directory / ANSWERS_FILE)


def _save_run(cfg: RunConfig, parts: RunParts, out_dir: Path, steps: int, metrics: dict[str, float],
              weights: dict[str, torch.Tensor] | None = None) -> None:
    """The final model directory (with its model card) and final_metrics.json."""
    model_dir = out_dir / "model"
    save_model_dir(parts, model_dir, weights)
    write_model_card(model_dir, cfg, parts, steps, metrics)
    (out_dir / "final_metrics.json").write_text(json.dumps(metrics, indent=1))


def _save_after_failure(cfg: RunConfig, parts: RunParts, out_dir: Path, steps: int) -> None:
    """Keep a finished training whose final evaluation (or checkpoint) failed."""
    try:
        _save_run(cfg, parts, out_dir, steps, {})
    except OSError as error:
        logger.warning("training finished, but the model could not be saved either: %s", error)
        return
    logger.warning("training finished and the model is saved in %s, but the run then failed:", out_dir / "model")


def checked_val_split(cfg: RunConfig) -> RunConfig:
    """`cfg`, or without validation (warned on stderr) when the shards have no `data.val_split`:
    found out before the first step, not after the last."""
    split = cfg.data.val_split
    if not split or cfg.data.root is None:
        return cfg
    try:
        resolve_shards(cfg.data.root, split)
    except DataError as error:
        logger.warning("data.val_split=%s: %s; training without validation (data.val_split=null)", split, error)
        return replace(cfg, data=replace(cfg.data, val_split=None))
    return cfg
