"""The quickstart's plan: data sizes, model size and steps per stage, sized for a 2-core CPU."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args, get_type_hints

from vlbert.runconfig import DataSection, EvalSection

# A small ViLBERT over the built-in data's oracle regions (11 x 11 RGB crops, 12 classes).
# Two visual layers run before the first co-attention block, so the unimodal IMG state that ITC
# reads has seen the regions (the IMG token itself is the mean region: alike for every scene).
# No dropout: the data is generated without limit, and dropout costs a fifth of a CPU step.
SMALL_SIZES: dict[str, Any] = dict(
    hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256,
    v_feature_size=363, v_hidden_size=128, v_num_hidden_layers=3, v_num_attention_heads=4,
    v_intermediate_size=256, v_target_size=12, bi_hidden_size=128, bi_num_attention_heads=4,
    t_biattention_id=[2, 3], v_biattention_id=[2, 3], itc_dim=64, max_position_embeddings=128,
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    v_hidden_dropout_prob=0.0, v_attention_probs_dropout_prob=0.0,
)  # fmt: skip

# What lets this small ViLBERT learn from scratch (docs/model.md, "Learning from scratch": measured
# with tools/learning_ablations.py). Each is a config option whose default is the original's.
LEARNING_RECIPE: dict[str, Any] = dict(
    initializer_range=0.05,  # BERT's 0.02 is sized for width 768; 0.02 * sqrt(768 / 128) ~ 0.05
    fusion_method="sum",  # pooled text + pooled image, not their product
    pooler_act="tanh",  # BERT's pooler, not ViLBERT's ReLU
    v_location_norm=True,  # the box embedding normalised apart from the feature embedding (LXMERT)
    v_feature_norm=True,  # each region's input crop standardised
    v_location_bands=3,  # the box as sin/cos at 3 octaves: near positions told apart, LayerNorm-proof
    v_geometry_bias=32,  # an attention bias per head from each pair of boxes (closest / furthest questions)
    v_geometry_prior=10.0,  # two of its heads start on the nearest other and the furthest region
)
SMALL_MODEL: dict[str, Any] = {**SMALL_SIZES, **LEARNING_RECIPE}


@dataclass
class QuickstartPlan:
    train_images: int = 10000
    val_images: int = 200
    test_images: int = 1000  # VQA and retrieval are measured on these held-out images
    vocab_size: int = 200  # WordPiece vocabulary built from the training text
    batch_size: int = 64
    lr: float = 5e-4
    warmup_steps: int = 100
    schedule: str = "constant"  # after warm-up; a decaying rate stalls the escape from the early plateau
    pretrain_steps: int = 250
    pretrain_max_length: int = 96  # a whole scene description fits (about 80 tokens)
    # Pre-training and retrieval train on each image's full description only ("first" caption):
    # the short captions ("there are two squares and four circles") are true of many images, so
    # in a batch they make false ITC negatives; with them ITC stayed at chance and retrieval read
    # no position (README, "Quickstart results").
    train_captions: str = "first"
    vqa_steps: int = 2500
    # The VQA stage starts from "scratch" (the pre-trained model's vocabulary only) or the
    # "pretrained" model. Measured: 300 pre-training steps make the visual stream ignore the boxes
    # (its states change 4x less when every box is mirrored), and VQA from there reads no position
    # in 1000 steps where VQA from scratch reads them (left/right 0.99): README, "Quickstart results".
    vqa_from: str = "scratch"
    # The VQA stage's first steps leave out count questions: with them from the start, finding the
    # named object takes ~1000 steps longer (tools/learning_ablations.py, "count-last").
    vqa_first_steps: int = 1500
    vqa_first_subtypes: tuple[str, ...] = ("shape", "horizontal", "vertical", "closest", "furthest")
    question_only_steps: int = 100
    retrieval_steps: int = 700
    # Retrieval trains and ranks by ITC alone: an ITC-only step skips the co-attention passes (0.18 s
    # against 0.65 s on 2 cores), and at this budget ITM re-ranking ranked worse than ITC (README).
    retrieval_mode: str = "itc"
    retrieval_itm: bool = False  # train the ITM head as well (what "two-stage" ranking needs)
    caption_steps: int = 100
    caption_eval_images: int = 100
    ablation_steps: int = 400
    ablation_fraction: float = 0.1
    # Both ablation runs (pre-trained and scratch) start on the position questions alone: asked
    # every question from the start, the pre-trained model answers left/right at chance for 1000
    # steps, yet asked only these it reads them within 250 (docs/model.md, "Pre-training and VQA").
    ablation_first_steps: int = 150
    ablation_first_subtypes: tuple[str, ...] = ("horizontal", "vertical")
    retrieval_k: int = 16
    evals_per_stage: int = 3  # validation points per stage (the figure's curves); the last is at the end
    seed: int = 0
    model: dict[str, Any] = field(default_factory=lambda: dict(SMALL_MODEL))

    def __post_init__(self) -> None:
        if self.vqa_from not in ("scratch", "pretrained"):
            raise ValueError(f"vqa_from must be 'scratch' or 'pretrained', got {self.vqa_from!r}")
        for first, total in (("vqa_first_steps", "vqa_steps"), ("ablation_first_steps", "ablation_steps")):
            if not 0 <= getattr(self, first) < getattr(self, total):
                raise ValueError(f"{first} must be in [0, {total}), got {getattr(self, first)}")
        # the run configuration's choices, checked now rather than when the stage's config loads
        for name, section, key in (("train_captions", DataSection, "train_captions"),
                                   ("retrieval_mode", EvalSection, "retrieval_mode")):
            choices = get_args(get_type_hints(section)[key])
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.retrieval_mode != "itc" and not self.retrieval_itm:
            raise ValueError(f"retrieval_mode {self.retrieval_mode!r} ranks with the ITM head: set retrieval_itm=True")

    @classmethod
    def smoke(cls) -> "QuickstartPlan":
        """A few steps of everything, for tests."""
        return cls(
            train_images=64, val_images=16, test_images=24, batch_size=16, warmup_steps=1,
            pretrain_steps=2, vqa_steps=3, vqa_first_steps=1, question_only_steps=2, retrieval_steps=2, caption_steps=2,
            caption_eval_images=4, ablation_steps=2, ablation_first_steps=1, ablation_fraction=0.5,
        )  # fmt: skip

    @classmethod
    def long(cls) -> "QuickstartPlan":
        """Six times the pre-training and three times the VQA and retrieval steps of the default plan, for the
        grounding the 15-minute plan has no room for: 51 min 39 s on 2 CPU cores, relational 0.971 and
        text->image R@1 0.924 (README, measured 2026-12-01)."""
        return cls(pretrain_steps=1500, vqa_steps=8000, vqa_first_steps=4500, question_only_steps=300, retrieval_steps=2400,
                   caption_steps=400, caption_eval_images=200, ablation_steps=1600, ablation_first_steps=450,
                   evals_per_stage=6)

    def estimated_seconds(self, ablation: bool) -> dict[str, float]:
        """Rough stage times on a 2-core CPU (measured 2026-11-30; the display rescales them as it goes)."""
        times = {
            "data": 7e-4 * (self.train_images + self.val_images + self.test_images),
            "pretrain": 0.8 * self.pretrain_steps + 20,
            "vqa-first": 0.13 * self.vqa_first_steps + 10,
            "vqa": 0.13 * (self.vqa_steps - self.vqa_first_steps) + 10,
            "question-only": 0.13 * self.question_only_steps + 25,
            "retrieval": (0.6 if self.retrieval_itm else 0.18) * self.retrieval_steps + 0.01 * self.test_images + 10,
            "caption": 0.3 * self.caption_steps + 0.1 * self.caption_eval_images,
        }
        if ablation:
            for run in ("ablation-pretrained", "ablation-scratch"):
                if self.ablation_first_steps:
                    times[f"{run}-first"] = 0.13 * self.ablation_first_steps + 10
                times[run] = 0.13 * (self.ablation_steps - self.ablation_first_steps) + 10
        return times
