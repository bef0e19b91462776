"""Run by tests/test_distributed.py, alone or under torchrun: a tiny VQA model trained for a few
steps on fixed global batches, each process taking its contiguous share of every batch.
Rank 0 writes the first step's (synchronised) gradients, the logged losses and the final weights."""

import sys
from pathlib import Path

import torch
from torch import nn

import vlbert
from vlbert.data.pipeline.batch import Batch
from vlbert.engine import distributed
from vlbert.engine.objectives import OBJECTIVES, ObjectiveConfig
from vlbert.engine.optim import OptimConfig
from vlbert.engine.trainer import TrainConfig, Trainer

GLOBAL_BATCH, STEPS, ACCUM = 8, 3, 2
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, v_hidden_dropout_prob=0.0,
                  v_attention_probs_dropout_prob=0.0, num_answers=10)


def global_batch(step: int) -> Batch:
    g = torch.Generator().manual_seed(step)
    ids = torch.randint(1000, 2000, (GLOBAL_BATCH, 9), generator=g)
    ids[:, 0] = 101
    xy = torch.rand(GLOBAL_BATCH, 5, 2, generator=g) * 0.5
    scores = torch.zeros(GLOBAL_BATCH, 10)
    scores[torch.arange(GLOBAL_BATCH), torch.randint(0, 10, (GLOBAL_BATCH,), generator=g)] = 1.0
    return Batch(input_ids=ids, attention_mask=torch.ones_like(ids, dtype=torch.bool),
                 region_features=torch.randn(GLOBAL_BATCH, 5, 48, generator=g),
                 region_boxes=torch.cat([xy, xy + 0.3], -1), region_mask=torch.ones(GLOBAL_BATCH, 5, dtype=torch.bool),
                 answer_scores=scores)


def main(out: Path) -> None:
    dist = distributed.init_distributed(torch.device("cpu"))
    share = GLOBAL_BATCH // dist.world_size
    rows = slice(dist.rank * share, (dist.rank + 1) * share)

    def batches(epoch: int, skip: int):
        for i in range(skip, STEPS * ACCUM):
            b = global_batch(i)
            yield b.apply(lambda t: t[rows])

    torch.manual_seed(0)
    model = vlbert.create_model("tiny", task="vqa", **NO_DROPOUT)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    cfg = TrainConfig(max_steps=STEPS, grad_accum=ACCUM, clip_norm=None, progress=False, log_every=1,
                      optim=OptimConfig(lr=1e-3, warmup_steps=0))
    step_fn = lambda m, b: OBJECTIVES["vqa"](m, b, ObjectiveConfig())  # noqa: E731
    trainer = Trainer(model, step_fn, cfg, out / f"run-{dist.world_size}", device="cpu")
    grads: dict[str, torch.Tensor] = {}
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        if not grads:
            grads.update({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        return step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    state = trainer.fit(batches)
    if dist.is_main:
        losses = [h["loss"] for h in state.history if "loss" in h]
        torch.save({"grads": grads, "losses": losses, "weights": model.state_dict()}, out / f"result-{dist.world_size}.pt")
    distributed.cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
