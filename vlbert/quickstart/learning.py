"""Does the model learn? VQA on Sort-of-CLEVR held in memory, for ablations and learning tests.

The product's generator and oracle regions give each scene's region crops and boxes and its
questions; everything is kept as tensors, so a training step costs the model and nothing else.
`train` fits `VLBertForVQA` (or `PlainTransformer`, a baseline) with the product's loss,
optimizer and schedule and evaluates held-out scenes as it goes: accuracy per question subtype,
and how many left/right answers flip when every box is mirrored (a model that reads positions
flips them all, a box-blind one none). `tools/learning_ablations.py` is its command line.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from vlbert.config import VLBertConfig
from vlbert.data.pipeline.tokenize import build_wordpiece_tokenizer
from vlbert.data.sources.sort_of_clevr.regions import CLASSES, oracle_regions
from vlbert.data.sources.sort_of_clevr.scenes import (
    ANSWERS,
    NONRELATIONAL,
    RELATIONAL,
    render_scene,
    sample_questions,
    sample_scene,
)
from vlbert.engine.optim import OptimConfig, build_optimizer, build_scheduler
from vlbert.losses import vqa_loss
from vlbert.models.embeddings import box_fourier_features
from vlbert.models.tasks import VLBertForVQA
from vlbert.presets import PRESETS

SUBTYPES = (*NONRELATIONAL, *RELATIONAL)


@dataclass
class Setting:
    """A model configuration (overrides of `base`) and how it is trained."""

    model: dict[str, Any] = field(default_factory=dict)
    lr: float = 5e-4
    warmup: int = 100
    schedule: str = "linear"
    baseline: bool = False  # the plain transformer instead of vlbert's model
    features: str = "crops"  # "crops" (the oracle detector's), "centred" (minus the mean crop), "symbolic"
    box_bands: int = 0  # the baseline's box as Fourier features at this many octaves (0: the raw box)
    first: tuple[str, ...] = ()  # curriculum: train the first `first_steps` steps on these subtypes only
    first_steps: int = 0
    repeat: tuple[str, ...] = ()  # these subtypes' questions appear twice in the training set
    note: str = ""


@dataclass
class Data:
    """Tokenised questions and the regions of their scenes, as tensors."""

    ids: Tensor  # [Q, L] token ids, padded with 0
    mask: Tensor  # [Q, L] bool
    scene: Tensor  # [Q] row of the question's scene
    answer: Tensor  # [Q] index in ANSWERS
    subtype: Tensor  # [Q] index in SUBTYPES
    asked: Tensor  # [Q] region (0..5) of the object the question names
    features: Tensor  # [S, 6, 363] region crops
    boxes: Tensor  # [S, 6, 4] normalised x1, y1, x2, y2
    classes: Tensor  # [S, 6] colour-shape class of each region (index in CLASSES)
    only_asked: bool = False  # show the model just the asked-about region

    def batch(self, rows: Tensor, mirror: bool = False) -> dict[str, Tensor]:
        scenes = self.scene[rows]
        features, boxes = self.features[scenes], self.boxes[scenes]  # [B, 6, Df], [B, 6, 4]
        if self.only_asked:
            pick = self.asked[rows][:, None, None]  # [B, 1, 1]
            features = features.gather(1, pick.expand(-1, 1, features.shape[-1]))
            boxes = boxes.gather(1, pick.expand(-1, 1, 4))
        if mirror:  # x -> 1 - x: left and right swap, nothing else changes
            boxes = torch.stack([1 - boxes[..., 2], boxes[..., 1], 1 - boxes[..., 0], boxes[..., 3]], -1)
        return dict(input_ids=self.ids[rows], attention_mask=self.mask[rows], region_features=features,
                    region_boxes=boxes, region_mask=torch.ones(boxes.shape[:2], dtype=torch.bool))

    def select(self, keep: Tensor) -> Data:
        """The questions where `keep` [Q] is True (scenes stay)."""
        return replace(self, ids=self.ids[keep], mask=self.mask[keep], scene=self.scene[keep],
                       answer=self.answer[keep], subtype=self.subtype[keep], asked=self.asked[keep])


def question_tokenizer(vocab_size: int = 200) -> Any:
    """The WordPiece vocabulary of every question template and colour (as the quickstart builds it)."""
    texts = [q.question for q in sample_questions(sample_scene(random.Random(0)), random.Random(0), per_type=200)]
    with tempfile.TemporaryDirectory(prefix="vlbert-vocab-") as directory:  # the tokenizer stays in memory
        return build_wordpiece_tokenizer(texts, vocab_size, directory)


def make_data(num_scenes: int, seed: int, tokenizer: Any) -> Data:
    """`num_scenes` scenes with their regions and their distinct questions."""
    rng = random.Random(seed)
    feats, boxes, classes, texts, rows, answers, subtypes, asked = [], [], [], [], [], [], [], []
    for index in range(num_scenes):
        scene = sample_scene(rng)
        regions = oracle_regions(scene, render_scene(scene), rng)
        labels = regions.class_probs.argmax(-1)  # [6]
        colours = [CLASSES[label].split()[0] for label in labels]
        feats.append(torch.from_numpy(regions.features.astype("float32")))
        boxes.append(torch.from_numpy(regions.boxes) / scene.size)
        classes.append(torch.from_numpy(labels))
        for question in {q.question: q for q in sample_questions(scene, rng)}.values():
            texts.append(question.question)
            rows.append(index)
            answers.append(ANSWERS.index(question.answer))
            subtypes.append(SUBTYPES.index(question.subtype))
            asked.append(colours.index(question.color))
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    return Data(encoded["input_ids"], encoded["attention_mask"].bool(), torch.tensor(rows), torch.tensor(answers),
                torch.tensor(subtypes), torch.tensor(asked), torch.stack(feats), torch.stack(boxes),
                torch.stack(classes))


def only_subtypes(data: Data, names: list[str]) -> Data:
    return data.select(torch.isin(data.subtype, torch.tensor([SUBTYPES.index(n) for n in names])))


def with_features(data: Data, mode: str, mean_crop: Tensor) -> Data:
    """The regions as the setting reads them: crops, crops minus the mean crop, or one-hot classes."""
    if mode == "crops":
        return data
    if mode == "centred":
        return replace(data, features=data.features - mean_crop)
    if mode == "symbolic":  # one-hot colour (6) + one-hot shape (2)
        colour = nn.functional.one_hot(data.classes // 2, 6)
        shape = nn.functional.one_hot(data.classes % 2, 2)
        return replace(data, features=torch.cat([colour, shape], -1).float())
    raise ValueError(f"features must be crops, centred or symbolic, got {mode!r}")


class PlainTransformer(nn.Module):
    """The baseline: one post-LN transformer over [CLS, words..., regions...], a classifier on CLS."""

    def __init__(self, vocab: int, feature_size: int, width: int = 128, layers: int = 4, box_bands: int = 0) -> None:
        super().__init__()
        self.words = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(64, width)
        self.regions = nn.Linear(feature_size, width)
        self.box_bands = box_bands
        self.boxes = nn.Linear(4 * 2 * box_bands if box_bands else 4, width)
        self.kind = nn.Embedding(2, width)
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.classifier = nn.Linear(width, len(ANSWERS))

    def forward(self, input_ids: Tensor, attention_mask: Tensor, region_features: Tensor, region_boxes: Tensor,
                region_mask: Tensor) -> Tensor:
        positions = torch.arange(input_ids.shape[1])
        text = self.words(input_ids) + self.positions(positions) + self.kind.weight[0]  # [B, L, D]
        if self.box_bands:
            region_boxes = box_fourier_features(region_boxes, self.box_bands)  # [B, N, 8K]
        image = self.regions(region_features) + self.boxes(region_boxes) + self.kind.weight[1]  # [B, N, D]
        pad = torch.cat([~attention_mask, ~region_mask], 1)  # [B, L + N]
        hidden = self.encoder(torch.cat([text, image], 1), src_key_padding_mask=pad)
        return self.classifier(hidden[:, 0])  # [B, answers]


def build_model(setting: Setting, base: dict[str, Any], vocab: int, seed: int, feature_size: int) -> nn.Module:
    torch.manual_seed(seed)
    if setting.baseline:
        return PlainTransformer(vocab, feature_size, box_bands=setting.box_bands)
    values = {**PRESETS["tiny"], **base, "vocab_size": vocab, "num_answers": len(ANSWERS),
              "v_feature_size": feature_size, **setting.model}
    return VLBertForVQA(VLBertConfig(**values), dropout=0.0)


def logits_of(model: nn.Module, inputs: dict[str, Tensor]) -> Tensor:
    out = model(**inputs)
    return out if isinstance(out, Tensor) else out.logits


@torch.no_grad()
def evaluate(model: nn.Module, data: Data) -> dict[str, float]:
    """Accuracy per subtype present, non-relational / relational, and the mirrored-box flip rate."""
    model.eval()
    correct, flipped = [], []
    for start in range(0, len(data.answer), 512):
        rows = torch.arange(start, min(start + 512, len(data.answer)))
        predicted = logits_of(model, data.batch(rows)).argmax(-1)
        correct.append(predicted == data.answer[rows])
        horizontal = rows[data.subtype[rows] == SUBTYPES.index("horizontal")]
        if len(horizontal):
            mirrored = logits_of(model, data.batch(horizontal, mirror=True)).argmax(-1)
            flipped.append(mirrored != predicted[horizontal - start])
    model.train()
    hits = torch.cat(correct).float()
    metrics = {name: hits[data.subtype == i].mean().item() for i, name in enumerate(SUBTYPES) if (data.subtype == i).any()}
    for kind, chosen in (("nonrelational", data.subtype < len(NONRELATIONAL)), ("relational", data.subtype >= len(NONRELATIONAL))):
        if chosen.any():
            metrics[kind] = hits[chosen].mean().item()
    if flipped:
        metrics["mirror_flips"] = torch.cat(flipped).float().mean().item()
    return metrics


def train(setting: Setting, base: dict[str, Any], train_data: Data, test_data: Data, vocab: int, seed: int,
          steps: int, every: int, batch_size: int, report: Callable[[dict[str, float]], None] | None = None,
          ) -> list[dict[str, float]]:
    """Train from scratch for `steps`; evaluate every `every` steps and at the end. Returns the curve."""
    mean_crop = train_data.features.mean((0, 1))  # [Df]
    train_data = with_features(train_data, setting.features, mean_crop)
    test_data = with_features(test_data, setting.features, mean_crop)
    model = build_model(setting, base, vocab, seed, train_data.features.shape[-1])
    optim_cfg = OptimConfig(lr=setting.lr, warmup_steps=min(setting.warmup, steps), schedule=setting.schedule)
    optimizer = build_optimizer(model, optim_cfg)
    scheduler = build_scheduler(optimizer, optim_cfg, steps)
    gen = torch.Generator().manual_seed(seed)
    targets = torch.eye(len(ANSWERS))
    curve, began = [], time.perf_counter()
    if setting.repeat:
        again = torch.isin(train_data.subtype, torch.tensor([SUBTYPES.index(n) for n in setting.repeat]))
        train_data = train_data.select(torch.cat([torch.arange(len(train_data.answer)), again.nonzero().flatten()]))
    early = only_subtypes(train_data, list(setting.first)) if setting.first else train_data
    for step in range(1, steps + 1):
        data = early if step <= setting.first_steps else train_data
        rows = torch.randint(len(data.answer), (batch_size,), generator=gen)
        loss = vqa_loss(logits_of(model, data.batch(rows)), targets[data.answer[rows]])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % every == 0 or step == steps:
            point = {"step": step, "loss": loss.item(), "seconds": time.perf_counter() - began,
                     **evaluate(model, test_data)}
            curve.append(point)
            if report is not None:
                report(point)
    return curve
