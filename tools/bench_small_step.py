"""Steps per second of the quickstart's small model (VQA stage shapes), by optimizer implementation.

Times forward, loss, backward, gradient clipping and the optimizer step of `VLBertForVQA` at the
quickstart's size and recipe (`SMALL_MODEL`: width 128, batch 64, 24 tokens, 6 regions + IMG),
alternating rounds between vlbert's `build_optimizer` (fused AdamW) and torch's per-parameter
AdamW loop, and prints the median milliseconds per step of each. Run it alone on the machine.

    python tools/bench_small_step.py --rounds 5 --steps 20
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from vlbert.config import VLBertConfig
from vlbert.engine.optim import OptimConfig, build_optimizer, param_groups
from vlbert.losses import vqa_loss
from vlbert.models.tasks import VLBertForVQA
from vlbert.quickstart.plan import SMALL_MODEL


def make_step(optimizer_kind: str, batch: int, seed: int = 0) -> Callable[[], None]:
    torch.manual_seed(seed)
    model = VLBertForVQA(VLBertConfig(**SMALL_MODEL, vocab_size=200, num_answers=12)).train()
    cfg = OptimConfig(lr=5e-4)
    optimizer = (build_optimizer(model, cfg) if optimizer_kind == "fused"
                 else torch.optim.AdamW(param_groups(model, cfg), betas=cfg.betas))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 200, (batch, 24), generator=g)  # [B, L]
    xy = torch.rand(batch, 6, 2, generator=g) * 0.8
    inputs = dict(input_ids=ids, attention_mask=torch.ones_like(ids, dtype=torch.bool),
                  region_features=torch.rand(batch, 6, 363, generator=g), region_boxes=torch.cat([xy, xy + 0.15], -1))
    targets = torch.eye(12)[torch.randint(12, (batch,), generator=g)]  # [B, 12]

    def step() -> None:
        loss = vqa_loss(model(**inputs).logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    kinds = ("fused", "loop")
    steps = {kind: make_step(kind, args.batch) for kind in kinds}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for kind in kinds:  # warm-up
        for _ in range(3):
            steps[kind]()
    for _ in range(args.rounds):
        for kind in kinds:
            began = time.perf_counter()
            for _ in range(args.steps):
                steps[kind]()
            times[kind].append((time.perf_counter() - began) / args.steps)
    print(f"# quickstart VQA step, batch {args.batch}, {torch.get_num_threads()} threads, "
          f"{args.rounds} rounds x {args.steps} steps (median)")
    for kind in kinds:
        ms = statistics.median(times[kind]) * 1e3
        print(f"{kind:>6}: {ms:7.1f} ms/step  {1e3 / ms:6.2f} steps/s")
    ratio = statistics.median(times["loop"]) / statistics.median(times["fused"])
    print(f"fused speed-up: {ratio:.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
