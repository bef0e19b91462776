"""Run by tests/test_fsdp.py, alone or under torchrun: the tiny VQA model of `ddp_worker` trained
with `train.strategy=fsdp` on fixed global batches (each process takes its contiguous share), a
checkpoint and an evaluation (the loss on a held-out batch, the best model kept) every 2 steps,
4 steps in all. A run directory that holds a checkpoint is resumed from
it, whatever number of processes wrote it. Rank 0 writes the first step's gradients (fresh runs),
the logged losses and the final weights to `RUN_DIR/result.pt`. Several run directories are
trained one after the other in the same processes (one start-up for all).

    python tests/fsdp_worker.py RUN_DIR [RUN_DIR ...]"""

import sys
from pathlib import Path

import torch
from ddp_worker import GLOBAL_BATCH, NO_DROPOUT, global_batch
from torch import nn

import vlbert
from vlbert.engine import distributed
from vlbert.engine.fsdp import local_value
from vlbert.engine.objectives import OBJECTIVES, ObjectiveConfig
from vlbert.engine.optim import OptimConfig
from vlbert.engine.trainer import TrainConfig, Trainer

STEPS, ACCUM, EPOCH = 4, 2, 8  # optimizer steps, batches per step, batches per epoch


def train(out: Path) -> None:
    dist = distributed.info()
    share = GLOBAL_BATCH // dist.world_size
    rows = slice(dist.rank * share, (dist.rank + 1) * share)

    def batches(epoch: int, skip: int):
        for i in range(skip, EPOCH):
            yield global_batch(EPOCH * epoch + i).apply(lambda t: t[rows])

    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="vqa", **NO_DROPOUT)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    cfg = TrainConfig(max_steps=STEPS, grad_accum=ACCUM, clip_norm=1.0, progress=False, log_every=1, save_every=2,
                      eval_every=2, best_metric="neg_loss", keep_checkpoints=3, strategy="fsdp",
                      optim=OptimConfig(lr=1e-3, schedule="constant"))  # fmt: skip
    step_fn = lambda m, b: OBJECTIVES["vqa"](m, b, ObjectiveConfig())  # noqa: E731
    held_out = global_batch(1000)
    eval_fn = lambda m: {"neg_loss": -float(step_fn(m, held_out).total)}  # noqa: E731  (calls the model's parts)
    trainer = Trainer(model, step_fn, cfg, out, eval_fn=eval_fn, device="cpu")
    resumed = trainer.resume()
    grads: dict[str, torch.Tensor] = {}
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        if not grads and not resumed:
            grads.update({n: local_value(p.grad).clone() for n, p in model.named_parameters() if p.grad is not None})
        return step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    state = trainer.fit(batches)
    weights = trainer.model_state()
    if dist.is_main:
        losses = [h["loss"] for h in state.history if "loss" in h]
        evals = [h["eval_neg_loss"] for h in state.history if "eval_neg_loss" in h]
        torch.save({"grads": grads, "losses": losses, "evals": evals, "weights": weights}, out / "result.pt")
    distributed.barrier()


if __name__ == "__main__":
    distributed.init_distributed(torch.device("cpu"))
    for run_dir in sys.argv[1:]:
        train(Path(run_dir))
    distributed.cleanup()
