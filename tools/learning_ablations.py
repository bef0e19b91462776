"""What makes a ViLBERT learn from scratch? Ablations of vlbert's own VQA model on Sort-of-CLEVR.

Each setting trains `VLBertForVQA` at the quickstart's small size (hidden 128, 4 text layers,
3 visual layers, 2 co-attention blocks) with the product's loss, optimizer and schedule on
questions about 10,000 generated scenes held in memory (`vlbert.quickstart.learning`), and
evaluates 500 held-out scenes every `--every` steps: accuracy per question subtype, and the share
of left/right answers that flip when every box is mirrored. A plain `nn.TransformerEncoder` over
the same tokens is the baseline. Results go to stdout (and `--out`, one JSON line per run).

    python tools/learning_ablations.py --settings original,recipe --seeds 0 1 --steps 3000
    python tools/learning_ablations.py --list
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import torch

from vlbert.quickstart.learning import SUBTYPES, Setting, make_data, only_subtypes, question_tokenizer, train
from vlbert.quickstart.plan import LEARNING_RECIPE, SMALL_SIZES

# the recipe's rows were measured without the geometry options it gained later (they are settings of their own)
RECIPE: dict[str, Any] = {k: v for k, v in LEARNING_RECIPE.items() if not k.startswith("v_geometry")}
LINEAR_BOX: dict[str, Any] = {**RECIPE, "v_location_bands": 0}  # the first recipe: the raw 5-d box


def _with(base: dict[str, Any], key: str, value: Any, note: str) -> Setting:
    return Setting({**base, key: value}, schedule="constant", note=note)


SETTINGS: dict[str, Setting] = {
    "original": Setting(note="ViLBERT as published: ReLU poolers, product fusion, LN(feature + location), init 0.02"),
    "recipe": Setting(dict(RECIPE), schedule="constant",
                      note="init 0.05, sum fusion, tanh poolers, box and feature LayerNorms, the box as Fourier "
                           "features (3 bands), constant lr"),
    "recipe-6-bands": _with(RECIPE, "v_location_bands", 6, "the recipe with 6 Fourier bands"),
    "recipe-6-bands-lr-1e-3": Setting({**RECIPE, "v_location_bands": 6}, lr=1e-3, schedule="constant",
                                      note="the recipe with 6 Fourier bands at lr 1e-3"),
    "recipe-geometry": _with(RECIPE, "v_geometry_bias", 32,
                             "the recipe with a box-geometry attention bias in the visual stream (MLP width 32)"),
    "recipe-geometry-prior": Setting({**RECIPE, "v_geometry_bias": 32, "v_geometry_prior": 10.0}, schedule="constant",
                                     note="recipe-geometry whose heads 0 and 1 start biased to the nearest other and "
                                          "the furthest region (v_geometry_prior 10)"),
    "recipe-geometry-prior-relational-first": Setting(
        {**RECIPE, "v_geometry_bias": 32, "v_geometry_prior": 10.0}, schedule="constant",
        first=("shape", "closest", "furthest"), first_steps=1000,
        note="recipe-geometry-prior trained on shape, closest and furthest questions alone for the first 1000 steps"),
    "recipe-geometry-prior-count-last": Setting(
        {**RECIPE, "v_geometry_bias": 32, "v_geometry_prior": 10.0}, schedule="constant",
        first=("shape", "horizontal", "vertical", "closest", "furthest"), first_steps=1500,
        note="recipe-geometry-prior without count questions for the first 1500 steps"),
    "recipe-geometry-prior-relational-twice": Setting(
        {**RECIPE, "v_geometry_bias": 32, "v_geometry_prior": 10.0}, schedule="constant", repeat=("closest", "furthest"),
        note="recipe-geometry-prior with every closest and furthest question twice in the training set"),
    "original-6-bands": Setting(dict(v_location_bands=6), note="the original with the box as 6-band Fourier features"),
    "linear-box": Setting(dict(LINEAR_BOX), schedule="constant", note="the recipe with the raw 5-d box (no Fourier)"),
    "linear-box-relu": _with(LINEAR_BOX, "pooler_act", "relu", "linear-box with ReLU poolers"),
    "linear-box-mul": _with(LINEAR_BOX, "fusion_method", "mul", "linear-box with product fusion"),
    "linear-box-joint-norm": _with(LINEAR_BOX, "v_location_norm", False, "linear-box with LN(feature + location)"),
    "linear-box-raw-features": _with(LINEAR_BOX, "v_feature_norm", False, "linear-box without the feature LayerNorm"),
    "linear-box-init-0.02": _with(LINEAR_BOX, "initializer_range", 0.02, "linear-box with BERT's init std 0.02"),
    "linear-box-decay": Setting(dict(LINEAR_BOX), note="linear-box with linear decay to 0"),
    "linear-box-shape-first": Setting(dict(LINEAR_BOX), schedule="constant", first=("shape",), first_steps=300,
                                      note="linear-box, trained on shape questions alone for the first 300 steps"),
    "linear-box-symbolic": Setting(dict(LINEAR_BOX), schedule="constant", features="symbolic",
                                   note="linear-box on one-hot colour and shape instead of crops"),
    "init-sum": Setting(dict(initializer_range=0.05, fusion_method="sum"), schedule="constant",
                        note="init 0.05 and sum fusion only"),
    "baseline": Setting(baseline=True, note="plain nn.TransformerEncoder, 4 layers, width 128"),
    "baseline-centred": Setting(baseline=True, features="centred", note="the baseline on crops minus the mean crop"),
    "baseline-symbolic": Setting(baseline=True, features="symbolic",
                                 note="the baseline on one-hot colour and shape instead of crops"),
    "baseline-symbolic-fourier": Setting(baseline=True, features="symbolic", box_bands=6,
                                         note="baseline-symbolic with the box as 6-band Fourier features"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default="original,recipe", help="comma-separated names (see --list)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=250, help="evaluate every this many steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-scenes", type=int, default=10000)
    parser.add_argument("--test-scenes", type=int, default=500)
    parser.add_argument("--subtypes", default=",".join(SUBTYPES), help="train on these question subtypes only")
    parser.add_argument("--only-asked", action="store_true", help="show the model only the asked-about region")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="append one JSON line per run to this file")
    parser.add_argument("--list", action="store_true", help="print the settings and exit")
    parser.add_argument("--table", default=None, help="print the markdown table of a --out file and exit")
    return parser


def _at(curve: list[dict[str, float]], step: int, key: str) -> str:
    point = next((p for p in curve if p["step"] == step), None)
    return "" if point is None or key not in point else f"{point[key]:.2f}"


def _first(curve: list[dict[str, float]], key: str, level: float) -> str:
    """The first evaluated step where `key` reached `level`."""
    return next((str(p["step"]) for p in curve if p.get(key, 0.0) >= level), "-")


def table(path: str, steps: tuple[int, ...] = (1000, 2000, 3000)) -> str:
    """One row per run: non-relational / left-right / relational accuracy at `steps`, and the
    first step where shape and position questions pass 0.9."""
    runs = [json.loads(line) for line in open(path) if line.strip()]
    head = ["setting", "seed", *(f"step {s}: non-rel / left-right / rel" for s in steps),
            "shape ≥ 0.9 at", "left-right ≥ 0.9 at"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        curve = run["curve"]
        cells = [" / ".join(_at(curve, s, k) for k in ("nonrelational", "horizontal", "relational")) for s in steps]
        rows.append("| " + " | ".join([run["setting"], str(run["seed"]), *cells, _first(curve, "shape", 0.9),
                                       _first(curve, "horizontal", 0.9)]) + " |")
    return "\n".join(rows)


def _print_point(point: dict[str, float]) -> None:
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in point.items()}), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    if args.list:
        for name, setting in SETTINGS.items():
            print(f"{name:20s} {setting.note}")
        return 0
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        print(f"error: unknown settings {unknown}; --list shows them", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    tokenizer = question_tokenizer()
    train_data = only_subtypes(make_data(args.train_scenes, 1, tokenizer), args.subtypes.split(","))
    test_data = make_data(args.test_scenes, 2, tokenizer)
    train_data.only_asked = test_data.only_asked = args.only_asked
    for name in names:
        for seed in args.seeds:
            print(f"# {name} seed {seed}: {SETTINGS[name].note}", flush=True)
            curve = train(SETTINGS[name], SMALL_SIZES, train_data, test_data, len(tokenizer), seed,
                          args.steps, args.every, args.batch_size, report=_print_point)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps({"setting": name, "seed": seed, "steps": args.steps, "curve": curve}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
