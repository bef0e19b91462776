"""What makes a ViLBERT learn from scratch? Ablations of vlbert's own VQA model on Sort-of-CLEVR.

Each setting trains `VLBertForVQA` (the quickstart's small size) with the product's loss
(`vqa_loss`), optimizer and schedule on questions about generated scenes held in memory (the
product's generator and oracle regions, no shards, so a run is all model), and evaluates held-out
scenes as it goes: accuracy per question subtype, and how many left/right answers flip when every
box is mirrored (a model that reads positions flips them all; a box-blind one flips none).
A plain `nn.TransformerEncoder` over the same tokens (question words + regions) is the baseline.

    python tools/learning_ablations.py --settings original,quickstart --seeds 0 1 --steps 2000
    python tools/learning_ablations.py --list
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vlbert.config import VLBertConfig
from vlbert.data.sort_of_clevr import ANSWERS, NONRELATIONAL, RELATIONAL, render_scene, sample_questions, sample_scene
from vlbert.data.sort_of_clevr_regions import oracle_regions
from vlbert.data.tokenize import build_wordpiece_tokenizer
from vlbert.engine.optim import OptimConfig, build_optimizer, build_scheduler
from vlbert.losses import vqa_loss
from vlbert.models.tasks import VLBertForVQA
from vlbert.presets import PRESETS
from vlbert.quickstart.plan import SMALL_MODEL

SUBTYPES = (*NONRELATIONAL, *RELATIONAL)


@dataclass
class Setting:
    """A model configuration (overrides of the quickstart's small model) and training settings."""

    model: dict[str, Any] = field(default_factory=dict)
    lr: float = 5e-4
    warmup: int = 100
    schedule: str = "linear"
    baseline: bool = False  # the plain transformer instead of vlbert's model
    features: str = "crops"  # "crops" (the oracle detector's), "centred" (minus the mean crop), "symbolic"
    note: str = ""


RECIPE: dict[str, Any] = dict(initializer_range=0.05, fusion_method="sum", pooler_act="tanh", v_location_norm=True,
                              v_feature_norm=True)


def _without(key: str, value: Any, note: str) -> Setting:
    return Setting({**RECIPE, key: value}, schedule="constant", note=note)


SETTINGS: dict[str, Setting] = {
    "original": Setting(note="ViLBERT as published: ReLU poolers, product fusion, LN(feature + location), init 0.02"),
    "recipe": Setting(dict(RECIPE), schedule="constant",
                      note="init 0.05, sum fusion, tanh poolers, box and feature LayerNorms, constant lr"),
    "recipe-relu": _without("pooler_act", "relu", "the recipe with ReLU poolers"),
    "recipe-mul": _without("fusion_method", "mul", "the recipe with product fusion"),
    "recipe-joint-norm": _without("v_location_norm", False, "the recipe with LN(feature + location)"),
    "recipe-raw-features": _without("v_feature_norm", False, "the recipe without the feature LayerNorm"),
    "recipe-init-0.02": _without("initializer_range", 0.02, "the recipe with BERT's init std 0.02"),
    "recipe-decay": Setting(dict(RECIPE), note="the recipe with linear decay to 0"),
    "recipe-lr-1e-3": Setting(dict(RECIPE), lr=1e-3, schedule="constant", note="the recipe at lr 1e-3"),
    "init-sum": Setting(dict(initializer_range=0.05, fusion_method="sum"), schedule="constant",
                        note="init 0.05 and sum fusion only"),
    "baseline": Setting(baseline=True, note="plain nn.TransformerEncoder, 4 layers, width 128"),
    "baseline-symbolic": Setting(baseline=True, features="symbolic",
                                 note="the baseline on one-hot colour and shape instead of crops"),
}


@dataclass
class Data:
    """Tokenised questions and the regions of their scenes, as tensors."""

    ids: Tensor  # [Q, L] token ids, padded with 0
    mask: Tensor  # [Q, L] bool
    scene: Tensor  # [Q] row of the scene in features/boxes
    answer: Tensor  # [Q] index in ANSWERS
    subtype: Tensor  # [Q] index in SUBTYPES
    features: Tensor  # [S, 6, 363]
    boxes: Tensor  # [S, 6, 4] normalised x1, y1, x2, y2
    classes: Tensor  # [S, 6] colour-shape class of each region

    def batch(self, rows: Tensor, mirror: bool = False) -> dict[str, Tensor]:
        scenes = self.scene[rows]
        boxes = self.boxes[scenes]
        if mirror:  # x -> 1 - x: left and right swap, nothing else changes
            boxes = torch.stack([1 - boxes[..., 2], boxes[..., 1], 1 - boxes[..., 0], boxes[..., 3]], -1)
        return dict(input_ids=self.ids[rows], attention_mask=self.mask[rows], region_features=self.features[scenes],
                    region_boxes=boxes, region_mask=torch.ones(boxes.shape[:2], dtype=torch.bool))


def make_data(num_scenes: int, seed: int, tokenizer: Any) -> Data:
    rng = random.Random(seed)
    feats, boxes, classes, texts, scene_rows, answers, subtypes = [], [], [], [], [], [], []
    for index in range(num_scenes):
        scene = sample_scene(rng)
        regions = oracle_regions(scene, render_scene(scene), rng)
        feats.append(torch.from_numpy(regions.features.astype("float32")))
        boxes.append(torch.from_numpy(regions.boxes) / scene.size)
        classes.append(torch.from_numpy(regions.class_probs).argmax(-1))
        seen = set()
        for question in sample_questions(scene, rng):
            if question.question in seen:
                continue
            seen.add(question.question)
            texts.append(question.question)
            scene_rows.append(index)
            answers.append(ANSWERS.index(question.answer))
            subtypes.append(SUBTYPES.index(question.subtype))
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    return Data(encoded["input_ids"], encoded["attention_mask"].bool(), torch.tensor(scene_rows),
                torch.tensor(answers), torch.tensor(subtypes), torch.stack(feats), torch.stack(boxes),
                torch.stack(classes))


def only_subtypes(data: Data, names: list[str]) -> Data:
    keep = torch.isin(data.subtype, torch.tensor([SUBTYPES.index(n) for n in names]))  # [Q]
    return replace(data, ids=data.ids[keep], mask=data.mask[keep], scene=data.scene[keep],
                   answer=data.answer[keep], subtype=data.subtype[keep])


def with_features(data: Data, mode: str, mean_crop: Tensor) -> Data:
    """The regions as the setting reads them: crops, crops minus the mean crop, or one-hot classes."""
    if mode == "crops":
        return data
    if mode == "centred":
        return replace(data, features=data.features - mean_crop)
    if mode == "symbolic":  # one-hot colour (6) + one-hot shape (2)
        colour = torch.nn.functional.one_hot(data.classes // 2, 6)
        shape = torch.nn.functional.one_hot(data.classes % 2, 2)
        return replace(data, features=torch.cat([colour, shape], -1).float())
    raise ValueError(f"unknown features {mode!r}")


class PlainTransformer(nn.Module):
    """The baseline: one post-LN transformer over [CLS, words..., regions...], a classifier on CLS."""

    def __init__(self, vocab: int, feature_size: int, width: int = 128, layers: int = 4) -> None:
        super().__init__()
        self.words = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(64, width)
        self.regions = nn.Linear(feature_size, width)
        self.boxes = nn.Linear(4, width)
        self.kind = nn.Embedding(2, width)
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.classifier = nn.Linear(width, len(ANSWERS))

    def forward(self, input_ids: Tensor, attention_mask: Tensor, region_features: Tensor, region_boxes: Tensor,
                region_mask: Tensor) -> Tensor:
        positions = torch.arange(input_ids.shape[1])
        text = self.words(input_ids) + self.positions(positions) + self.kind.weight[0]  # [B, L, D]
        image = self.regions(region_features) + self.boxes(region_boxes) + self.kind.weight[1]  # [B, N, D]
        pad = torch.cat([~attention_mask, ~region_mask], 1)  # [B, L + N]
        hidden = self.encoder(torch.cat([text, image], 1), src_key_padding_mask=pad)
        return self.classifier(hidden[:, 0])  # [B, answers]


def build_model(setting: Setting, vocab: int, seed: int, feature_size: int) -> nn.Module:
    torch.manual_seed(seed)
    if setting.baseline:
        return PlainTransformer(vocab, feature_size)
    values = {**PRESETS["tiny"], **SMALL_MODEL, "vocab_size": vocab, "num_answers": len(ANSWERS),
              "v_feature_size": feature_size, **setting.model}
    return VLBertForVQA(VLBertConfig(**values), dropout=0.0)


def logits_of(model: nn.Module, inputs: dict[str, Tensor]) -> Tensor:
    out = model(**inputs)
    return out if isinstance(out, Tensor) else out.logits


@torch.no_grad()
def evaluate(model: nn.Module, data: Data) -> dict[str, float]:
    model.eval()
    correct, flipped = [], []
    for start in range(0, len(data.answer), 512):
        rows = torch.arange(start, min(start + 512, len(data.answer)))
        predicted = logits_of(model, data.batch(rows)).argmax(-1)
        correct.append(predicted == data.answer[rows])
        horizontal = data.subtype[rows] == SUBTYPES.index("horizontal")
        mirrored = logits_of(model, data.batch(rows[horizontal], mirror=True)).argmax(-1)
        flipped.append(mirrored != predicted[horizontal])
    model.train()
    hits, flips = torch.cat(correct).float(), torch.cat(flipped).float()
    metrics = {name: hits[data.subtype == i].mean().item() for i, name in enumerate(SUBTYPES)}
    metrics["nonrelational"] = hits[data.subtype < len(NONRELATIONAL)].mean().item()
    metrics["relational"] = hits[data.subtype >= len(NONRELATIONAL)].mean().item()
    metrics["mirror_flips"] = flips.mean().item()
    return metrics


def train(setting: Setting, train_data: Data, test_data: Data, vocab: int, seed: int, steps: int, every: int,
          batch_size: int) -> list[dict[str, float]]:
    mean_crop = train_data.features.mean((0, 1))  # [363]
    train_data = with_features(train_data, setting.features, mean_crop)
    test_data = with_features(test_data, setting.features, mean_crop)
    model = build_model(setting, vocab, seed, train_data.features.shape[-1])
    optim_cfg = OptimConfig(lr=setting.lr, warmup_steps=setting.warmup, schedule=setting.schedule)
    optimizer = build_optimizer(model, optim_cfg)
    scheduler = build_scheduler(optimizer, optim_cfg, steps)
    gen = torch.Generator().manual_seed(seed)
    targets = torch.eye(len(ANSWERS))
    curve, began = [], time.perf_counter()
    for step in range(1, steps + 1):
        rows = torch.randint(len(train_data.answer), (batch_size,), generator=gen)
        loss = vqa_loss(logits_of(model, train_data.batch(rows)), targets[train_data.answer[rows]])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % every == 0 or step == steps:
            point = {"step": step, "loss": loss.item(), "seconds": time.perf_counter() - began, **evaluate(model, test_data)}
            curve.append(point)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in point.items()}), flush=True)
    return curve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default="original,baseline", help="comma-separated names (see --list)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=250, help="evaluate every this many steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-scenes", type=int, default=10000)
    parser.add_argument("--test-scenes", type=int, default=500)
    parser.add_argument("--subtypes", default=",".join(SUBTYPES), help="train on these question subtypes only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="append one JSON line per run to this file")
    parser.add_argument("--list", action="store_true", help="print the settings and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for name, setting in SETTINGS.items():
            print(f"{name:16s} {setting.note}")
        return 0
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        print(f"error: unknown settings {unknown}; --list shows them", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    texts = [q.question for q in sample_questions(sample_scene(random.Random(0)), random.Random(0), per_type=200)]
    tokenizer = build_wordpiece_tokenizer(texts, 200, Path("/tmp") / "vlbert-ablation-vocab")
    train_data = make_data(args.train_scenes, 1, tokenizer)
    test_data = make_data(args.test_scenes, 2, tokenizer)
    train_data = only_subtypes(train_data, args.subtypes.split(","))
    for name in names:
        for seed in args.seeds:
            print(f"# {name} seed {seed}: {SETTINGS[name].note}", flush=True)
            curve = train(SETTINGS[name], train_data, test_data, len(tokenizer), seed, args.steps, args.every,
                          args.batch_size)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps({"setting": name, "seed": seed, "curve": curve}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
