"""The quickstart's plan: data sizes, model size and steps per stage, sized for a 2-core CPU."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args, get_type_hints

from vlbert.data.sources.sort_of_clevr.captions import COLUMNS, ROWS
from vlbert.data.sources.sort_of_clevr.scenes import COLORS, SHAPES
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
    vqa_text_pooling="mean",  # VQA reads every text token (MLM trained them on the regions), not the first alone
)
SMALL_MODEL: dict[str, Any] = {**SMALL_SIZES, **LEARNING_RECIPE}

# The words of a scene description that name what the image shows: what MLM masks more often.
FOCUS_WORDS: tuple[str, ...] = (*COLORS, *SHAPES, *ROWS, *COLUMNS)


@dataclass
class QuickstartPlan:
    train_images: int = 10000  # the labelled task data: VQA questions, retrieval and caption pairs
    val_images: int = 200
    test_images: int = 1000  # VQA and retrieval are measured on these held-out images
    # Pre-training reads its own corpus: captioned images only (no questions), none of them a task
    # image, ten times as many as the labelled set, as a real run pre-trains on a large captioned
    # corpus and fine-tunes on a smaller labelled one (the "pretrain" split of the shards).
    pretrain_images: int = 100_000
    # The WordPiece vocabulary: built from the captions of the pre-training corpus and the texts of the
    # task images (questions too: from captions alone, the words of the questions split into letters
    # and relational questions outgrew VQA's 24 tokens), the first 10,000 images of each.
    vocab_size: int = 200
    vocab_records: int = 10_000
    batch_size: int = 64
    lr: float = 5e-4
    warmup_steps: int = 100
    schedule: str = "constant"  # after warm-up; a decaying rate stalls the escape from the early plateau
    # Pre-training reads the boxes after a plateau of 300-400 steps whatever the batch (the mirror
    # check, tools/pretrain_runs.py): at batch 64 the 300 steps left one seed of three blind to
    # them; 600 steps at batch 32 cost the same and read both axes on every seed (docs/model.md).
    pretrain_steps: int = 600
    pretrain_batch_size: int = 32
    # the share of ITM's re-paired negatives scored each pre-training step (objective.itm_negative_fraction):
    # half of the 2B, so with the B box negatives ITM sees two negatives per positive, as ALBEF's
    # ITM does; each negative is a co-attention pass, and the step is a sixth faster
    pretrain_itm_negative_fraction: float = 0.5
    pretrain_max_length: int = 112  # a whole scene description (about 84 tokens) and one more caption fit
    # Pre-training objectives that make the model read the boxes (docs/model.md, "Pre-training that
    # transfers"): MLM masks the description's colour, shape and position words at 0.3 instead of
    # 0.15, and ITM also scores each caption against its image with the boxes moved among the regions.
    pretrain_focus_words: tuple[str, ...] = FOCUS_WORDS
    pretrain_focus_prob: float = 0.3
    pretrain_box_negatives: bool = True
    # the boxes of an ITM negative mirrored left <-> right or top <-> bottom (one at random per image),
    # not rotated among the regions: a rotation is told apart by one axis alone, and the 300-step
    # model then read left/right and not top/bottom (docs/model.md)
    pretrain_box_negative_kind: str = "mirror"
    # Pre-training and retrieval train on each image's full description only ("first" caption):
    # the short captions ("there are two squares and four circles") are true of many images, so
    # in a batch they make false ITC negatives; with them ITC stayed at chance and retrieval read
    # no position (docs/research.md).
    train_captions: str = "first"
    # Pre-training's captions (data.train_captions of its stage): "first+one", the full description
    # followed by one of the image's short captions at random (a shape count, a position, a relation
    # between two objects, or the object closest to / furthest from another), as real captions state
    # relations as well as objects; MLM then masks words that only a relation tells (docs/model.md).
    pretrain_captions: str = "first+one"
    vqa_steps: int = 2500
    # The VQA stage starts from the "pretrained" model, or from "scratch" (the pre-trained model's
    # vocabulary only). From the pre-trained model it unfreezes one level from the top every
    # `vqa_unfreeze_every` steps (gradual unfreezing; 0: everything trains from the first step):
    # when the fresh head's first gradients reach the whole model at once, the pre-trained model
    # read no vertical position by step 2500; unfrozen from the top (with the text read by
    # `vqa_text_pooling="mean"`), it reads both axes and shapes by step 750 (docs/model.md).
    vqa_from: str = "pretrained"
    vqa_unfreeze_every: int = 50
    # The VQA stage's first steps leave out count questions: with them from the start, closest and
    # furthest stayed at 0.64-0.73 for 2500 steps from the pre-trained model (docs/research.md).
    # Asked alone first, closest and furthest are learnt by step 1400 on three seeds, but the
    # position questions then took longer than the rest of the stage on one seed of three
    # (docs/research.md, section 9). 0: every question from the start.
    vqa_first_steps: int = 1500
    vqa_first_subtypes: tuple[str, ...] = ("shape", "horizontal", "vertical", "closest", "furthest")
    question_only_steps: int = 100
    # the pre-trained model ranks well already: seed 0's two-stage R@1 was 0.977 before any retrieval
    # step, 0.971 after 50 and 0.955 after 150 (docs/research.md)
    retrieval_steps: int = 50
    # Retrieval ranks by ITC's top k re-ranked by the ITM head ("two-stage"), or by ITC alone ("itc":
    # a dual encoder, whose ITC-only training step skips the co-attention passes).
    retrieval_mode: str = "two-stage"
    retrieval_itm: bool = True  # train the ITM head as well (what "two-stage" ranking needs)
    caption_steps: int = 100
    caption_eval_images: int = 100
    # the VQA model's answer maps scored against the object each question names (the grounding
    # score, vlbert.run.grounding) on the first test images: removal (the demo's map) and
    # co-attention
    grounding_images: int = 200
    # --ablation: the transfer table. VQA from the pre-trained model and from scratch, the same steps
    # and settings, at each fraction of the labels; and the retrieval stage from scratch. At 400 steps
    # the pre-trained start is only beginning to read positions (gains of +0.02 at 100 and 10 %); at
    # 800 it reads them and scratch mostly does not (docs/results.md).
    transfer_fractions: tuple[float, ...] = (1.0, 0.1, 0.01)
    transfer_vqa_steps: int = 800
    retrieval_k: int = 16
    evals_per_stage: int = 3  # validation points per stage (the figure's curves); the last is at the end
    seed: int = 0
    model: dict[str, Any] = field(default_factory=lambda: dict(SMALL_MODEL))

    def __post_init__(self) -> None:
        if self.vqa_from not in ("scratch", "pretrained"):
            raise ValueError(f"vqa_from must be 'scratch' or 'pretrained', got {self.vqa_from!r}")
        if self.vqa_unfreeze_every < 0:
            raise ValueError(f"vqa_unfreeze_every must be >= 0, got {self.vqa_unfreeze_every}")
        if not 0 <= self.vqa_first_steps < self.vqa_steps:
            raise ValueError(f"vqa_first_steps must be in [0, vqa_steps), got {self.vqa_first_steps}")
        if not self.transfer_fractions or not all(0.0 < f <= 1.0 for f in self.transfer_fractions):
            raise ValueError(f"transfer_fractions must be fractions in (0, 1], got {self.transfer_fractions}")
        # the run configuration's choices, checked now rather than when the stage's config loads
        for name, section, key in (("train_captions", DataSection, "train_captions"),
                                   ("pretrain_captions", DataSection, "train_captions"),
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
            train_images=64, val_images=16, test_images=24, pretrain_images=96, batch_size=16, pretrain_batch_size=8,
            warmup_steps=1,
            pretrain_steps=2, vqa_steps=3, vqa_first_steps=1, vqa_unfreeze_every=1, question_only_steps=2, retrieval_steps=2, caption_steps=2,
            caption_eval_images=4, grounding_images=3, transfer_fractions=(1.0, 0.5), transfer_vqa_steps=2,
        )  # fmt: skip

    @classmethod
    def long(cls) -> "QuickstartPlan":
        """About four times the pre-training and three or more times the task steps of the default
        plan, for the grounding the 15-minute plan has no room for."""
        return cls(pretrain_steps=2400, vqa_steps=8000, vqa_first_steps=4500, question_only_steps=300,
                   retrieval_steps=600, caption_steps=400, caption_eval_images=200, transfer_vqa_steps=2400,
                   evals_per_stage=6)

    def estimated_seconds(self, ablation: bool) -> dict[str, float]:
        """Rough stage times on a 2-core CPU (the display rescales them as it goes)."""
        retrieval = (0.6 if self.retrieval_itm else 0.18) * self.retrieval_steps + 0.01 * self.test_images + 10
        times = {
            "data": 7e-4 * (self.train_images + self.val_images + self.test_images) + 3e-4 * self.pretrain_images,
            "pretrain": (1.0 if self.pretrain_box_negatives else 0.8) * self.pretrain_steps * self.pretrain_batch_size / 64
                        + 20 + 1e-4 * self.pretrain_images,
            "vqa-first": 0.13 * self.vqa_first_steps + 10,
            "vqa": 0.13 * (self.vqa_steps - self.vqa_first_steps) + 10 + 0.1 * self.grounding_images,
            "question-only": 0.13 * self.question_only_steps + 25,
            "retrieval": retrieval,
            "caption": 0.3 * self.caption_steps + 0.1 * self.caption_eval_images,
        }
        if not self.vqa_first_steps:
            del times["vqa-first"]
        if ablation:
            for fraction in self.transfer_fractions:
                for start in ("pretrained", "scratch"):
                    times[transfer_stage(fraction, start)] = 0.13 * self.transfer_vqa_steps + 10
            times["retrieval-scratch"] = retrieval
        return times


def transfer_stage(fraction: float, start: str) -> str:
    """The stage name of a transfer run: "transfer-vqa-0.1-scratch"."""
    return f"transfer-vqa-{fraction:g}-{start}"
