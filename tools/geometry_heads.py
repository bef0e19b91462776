"""Do a saved model's geometry-bias heads still point at the nearest and the furthest region?
For random layouts of `--regions` boxes, each head's bias between every pair of regions
(`v_geometry_bias`, vlbert.models.geometry) is read, and the share of regions whose most favoured
other region is its nearest, and its furthest, is printed per head. With `v_geometry_prior`,
head 0 starts near 1.00 nearest and head 1 near 1.00 furthest (about 0.95: the prior reads the
model's own distance feature, these shares the box centres).

    python tools/geometry_heads.py runs/quickstart/pretrain/model --layouts 200
"""

from __future__ import annotations

import argparse

import torch

from vlbert.eval.saved import model_directory
from vlbert.factory import create_model
from vlbert.models.regions import boxes_to_locations, prepend_global_token
from vlbert.run.predict import model_task


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="saved model directories with a geometry bias")
    parser.add_argument("--layouts", type=int, default=200, help="random layouts (default 200)")
    parser.add_argument("--regions", type=int, default=6, help="boxes per layout (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def head_targets(geometry: torch.nn.Module, layouts: int, regions: int, seed: int,
                 add_global: bool) -> list[tuple[float, float]]:
    """Per head: (share of regions whose top other region is the nearest, the same for the furthest)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(layouts, regions, 2, generator=g) * 0.8 + 0.1  # [B, N, 2]
    boxes = torch.cat([centres - 0.07, centres + 0.07], -1)  # [B, N, 4]
    locations, mask = boxes_to_locations(boxes), torch.ones(layouts, regions, dtype=torch.bool)
    skip = 0
    if add_global:
        _, locations, mask = prepend_global_token(torch.zeros(layouts, regions, 1), locations, mask)
        skip = 1
    with torch.no_grad():
        bias = geometry(locations, mask, torch.float32)[:, :, skip:, skip:]  # [B, H, N, N]
    distance = torch.cdist(centres, centres)  # [B, N, N]
    itself = torch.eye(regions, dtype=torch.bool)
    nearest, furthest = distance.masked_fill(itself, float("inf")).argmin(-1), distance.argmax(-1)  # [B, N]
    shares = []
    for head in range(bias.shape[1]):
        top = bias[:, head].masked_fill(itself, float("-inf")).argmax(-1)  # [B, N]
        shares.append(((top == nearest).float().mean().item(), (top == furthest).float().mean().item()))
    return shares


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for path in args.models:
        directory = model_directory(path)
        model = create_model(str(directory), task=model_task(directory)).eval()
        geometry = model.vlbert.v_geometry
        if geometry is None:
            raise SystemExit(f"{path}: the model has no geometry bias (v_geometry_bias is 0)")
        shares = head_targets(geometry, args.layouts, args.regions, args.seed, model.config.add_global_image_token)
        for head, (near, far) in enumerate(shares):
            print(f"{path}: head {head}: top other region is the nearest {near:.2f}, the furthest {far:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
