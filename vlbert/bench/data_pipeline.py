"""Does the data pipeline keep up? Batches/s from shards against the `tiny` model's training rate."""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from vlbert.bench.timing import timed
from vlbert.data.pipeline.answers import AnswerVocab
from vlbert.data.pipeline.loader import DataConfig, make_dataset, make_loader
from vlbert.data.pipeline.tokenize import build_wordpiece_tokenizer
from vlbert.data.shards.records import read_records
from vlbert.data.sources.sort_of_clevr.scenes import ANSWERS
from vlbert.data.sources.sort_of_clevr.shards import make_sort_of_clevr_shards
from vlbert.engine.objectives import OBJECTIVES, ObjectiveConfig
from vlbert.factory import create_model


@dataclass
class PipelineResult:
    loader_batches_per_s: float
    model_batches_per_s: float  # tiny VQA training steps/s on the same batches
    num_workers: int
    batch_size: int

    @property
    def headroom(self) -> float:
        """Loader rate ÷ model rate: above 1 the data is never what the model waits for."""
        return self.loader_batches_per_s / self.model_batches_per_s


def measure_pipeline(images: int, batches: int, batch_size: int, num_workers: int) -> PipelineResult:
    """Built-in shards with region features, read as VQA batches (decode, tokenise, collate)."""
    answers = AnswerVocab(list(ANSWERS))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "shards"
        make_sort_of_clevr_shards(root, {"train": images}, seed=0, regions=True, shard_size=max(1, images // 4))
        texts = [q.question for r in read_records(root, "train") for q in r.meta.questions]
        tokenizer = build_wordpiece_tokenizer(texts, 200, Path(tmp) / "tokenizer")
        cfg = DataConfig(inputs="regions", split="train", max_length=24)

        def loader():
            dataset = make_dataset(root, "questions", tokenizer, cfg, answers)
            return make_loader(dataset, tokenizer, batch_size, num_workers=num_workers, report=None)

        seconds = timed(lambda: list(itertools.islice(iter(loader()), batches)), torch.device("cpu"))
        loaded = list(itertools.islice(iter(loader()), batches))
    model = create_model("tiny", task="vqa", v_feature_size=363, num_answers=len(answers), vocab_size=len(tokenizer)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train() -> None:
        for batch in loaded:
            OBJECTIVES["vqa"](model, batch, ObjectiveConfig()).total.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    train()  # warm-up
    model_seconds = timed(train, torch.device("cpu"))
    return PipelineResult(len(loaded) / seconds, len(loaded) / model_seconds, num_workers, batch_size)
