"""How much a saved model's states depend on the region boxes: mirror every box left<->right and
measure the relative change of each state, against a freshly initialised model of the same config.

A model that reads positions keeps its visual states sensitive to the boxes; a stream that has
learnt to ignore them (e.g. after pre-training that never needed positions) changes little.
Scenes and questions come from the built-in Sort-of-CLEVR generator and oracle regions.

    python tools/box_sensitivity.py runs/quickstart/pretrain/model [more model dirs]
"""

from __future__ import annotations

import argparse

import torch

import vlbert
from vlbert.data.pipeline.tokenize import load_tokenizer
from vlbert.quickstart.learning import make_data

STATES = ("unimodal_visual", "visual_hidden", "text_hidden")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="saved model directories (with their tokenizer)")
    parser.add_argument("--scenes", type=int, default=64)
    parser.add_argument("--seed", type=int, default=5)
    return parser


@torch.no_grad()
def mirror_change(model: torch.nn.Module, inputs: dict[str, torch.Tensor], mirrored: dict[str, torch.Tensor],
                  ) -> dict[str, float]:
    """|state(mirrored boxes) - state(boxes)| / |state(boxes)| for each of STATES."""
    outs = []
    for batch in (inputs, mirrored):
        text, image = model.vlbert.encode_pair(**batch)
        outs.append(model.vlbert.fuse(text, image))
    return {name: ((getattr(outs[0], name) - getattr(outs[1], name)).norm()
                   / getattr(outs[0], name).norm()).item() for name in STATES}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for path in args.models:
        data = make_data(args.scenes, args.seed, load_tokenizer(path))
        rows = torch.arange(len(data.answer))[: 4 * args.scenes]
        inputs, mirrored = data.batch(rows), data.batch(rows, mirror=True)
        trained = vlbert.create_model(path, task="vqa").eval()
        torch.manual_seed(0)
        fresh = vlbert.create_model("tiny", task="vqa", **trained.config.to_dict()).eval()
        for name, model in (("initialised", fresh), ("saved", trained)):
            change = mirror_change(model, inputs, mirrored)
            print(f"{path} ({name}): " + ", ".join(f"{k} {v:.3f}" for k, v in change.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
