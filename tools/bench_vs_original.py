"""vlbert's `vilbert-base` pre-training step against the original vilbert-multi-task code, side by side.

The original's model file is imported from a checkout you give (`--original`, the repository's
root: https://github.com/facebookresearch/vilbert-multi-task); nothing of it is part of vlbert.
Its `vilbert/utils.py` pulls in boto3, tensorboardX and an old torch, so this tool registers a
stand-in `vilbert.utils` holding only what the model file uses (`PreTrainedModel`'s constructor
and weight tying) before importing `vilbert/vilbert.py`.

Both steps: batch 8, 36 tokens, 36 regions + IMG, fp32, MLM, masked-region KL over the 1601
detector classes and image-text alignment, backward, AdamW (torch's for the original, vlbert's
fused one for vlbert, which also scores the MLM vocabulary at the masked tokens only). They run
alternately in one process; a round counts only when both steps kept every thread busy (CPU time
>= 0.9 x threads x wall time). Run it alone on the machine:

    python tools/bench_vs_original.py --original ~/src/vilbert-multi-task --rounds 8
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from vlbert.bench.train_step import StepInputs, make_inputs, vlbert_step

CONFIG = "config/bert_base_6layer_6conect.json"


class _PreTrainedModel(nn.Module):
    """What the original model file uses of its `utils.PreTrainedModel`."""

    def __init__(self, config: object, *inputs: object, **kwargs: object) -> None:
        super().__init__()
        self.config = config

    def _tie_or_clone_weights(self, first: nn.Module, second: nn.Module) -> None:
        first.weight = second.weight


def load_original(root: Path) -> types.ModuleType:
    """The original `vilbert/vilbert.py` as a module, with the stand-in `vilbert.utils`."""
    source = root / "vilbert" / "vilbert.py"
    if not source.is_file() or not (root / CONFIG).is_file():
        raise SystemExit(f"--original: {root} is not a vilbert-multi-task checkout (no vilbert/vilbert.py or {CONFIG})")
    package = types.ModuleType("vilbert")
    package.__path__ = [str(root / "vilbert")]
    utils = types.ModuleType("vilbert.utils")
    utils.PreTrainedModel = _PreTrainedModel
    sys.modules.update({"vilbert": package, "vilbert.utils": utils})
    spec = importlib.util.spec_from_file_location("vilbert.vilbert", source)
    module = importlib.util.module_from_spec(spec)
    sys.modules["vilbert.vilbert"] = module
    spec.loader.exec_module(module)
    return module


def original_step(original: types.ModuleType, root: Path, inputs: StepInputs) -> tuple[nn.Module, Callable[[], None]]:
    config = original.BertConfig.from_json_file(str(root / CONFIG))
    model = original.BertForMultiModalPreTraining(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    batch = inputs.input_ids.shape[0]
    # the original takes the IMG token as the first region (mean feature, whole-image box with area)
    features = torch.cat([inputs.features.mean(1, keepdim=True), inputs.features], 1)  # [B, 37, 2048]
    boxes = inputs.boxes
    area = ((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]))[..., None]  # [B, 36, 1]
    locations = torch.cat([torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]).expand(batch, 1, 5), torch.cat([boxes, area], -1)], 1)
    mlm_labels = inputs.mlm_labels.masked_fill(inputs.mlm_labels == -100, -1)  # its ignore index is -1
    kwargs = dict(token_type_ids=torch.zeros_like(inputs.input_ids), attention_mask=torch.ones_like(inputs.input_ids),
                  image_attention_mask=torch.ones(batch, features.shape[1], dtype=torch.long),
                  masked_lm_labels=mlm_labels, image_label=inputs.region_labels.long(),
                  image_target=inputs.class_probs, next_sentence_label=inputs.matched)

    def step() -> None:
        losses = model(inputs.input_ids, features, locations, **kwargs)
        (losses[0] + losses[1] + losses[2]).backward()  # MLM, masked-region KL, alignment
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return model, step


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", type=Path, required=True, help="root of a vilbert-multi-task checkout")
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds after one warm-up round")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    original = load_original(args.original)
    torch.manual_seed(0)
    inputs = make_inputs("vilbert-base", 8, 36, 36, torch.device("cpu"), seed=0)
    theirs, their_step = original_step(original, args.original, inputs)
    ours, our_step = vlbert_step("vilbert-base", torch.device("cpu"), inputs, None)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    print(f"parameters: original {count(theirs):,}, vlbert {count(ours):,}; {torch.get_num_threads()} threads")
    steps = {"original": their_step, "vlbert": our_step}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(args.rounds + 1):
        row = {}
        for name, step in steps.items():
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            row[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        busy = all(c >= 0.9 * torch.get_num_threads() * w for w, c in row.values())
        kept = round_ > 0 and busy
        print(f"round {round_}: " + ", ".join(f"{n} {w:.2f} s" for n, (w, _) in row.items())
              + ("" if kept else " (not counted)"), flush=True)
        for name in steps:
            if kept:
                times[name].append(row[name][0])
    if not times["vlbert"]:
        raise SystemExit("no round kept both steps busy: run it alone on the machine")
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"median s/step over {len(times['vlbert'])} rounds: original {medians['original']:.3f}, "
          f"vlbert {medians['vlbert']:.3f}; vlbert speed-up {medians['original'] / medians['vlbert']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
