"""Shards -> dataset -> DataLoader -> Batch, with exact values; tokenizers; resuming; DDP split."""

from __future__ import annotations

import inspect
import os

import pytest
import torch

import vlbert
from tests.shard_factory import FEATURE_DIM, HEIGHT, WIDTH, good_shards
from vlbert.data.pipeline.answers import AnswerVocab, soft_scores
from vlbert.data.pipeline.batch import MODEL_INPUTS, Batch
from vlbert.data.pipeline.collate import CollateConfig
from vlbert.data.pipeline.images import ImageConfig, build_image_transform, decode_image
from vlbert.data.pipeline.loader import DataConfig, StreamPosition, batch_factory, make_dataset, make_loader
from vlbert.data.pipeline.tokenize import TextEncoder, TextSpec, build_wordpiece_tokenizer, load_tokenizer
from vlbert.data.shards.records import read_records
from vlbert.data.shards.schema import DataError
from vlbert.losses import PreTrainingTargets, pretraining_loss
from vlbert.models.backbone import VLBertModel


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return load_tokenizer(minilm_path)


@pytest.fixture
def shards(tmp_path):
    return good_shards(tmp_path / "shards")


def _rows(loader) -> list[tuple[int, str, str]]:
    """(worker, key, text) of every row, in the order the loader gives them."""
    return [(b.worker, k, t) for b in loader for k, t in zip(b.keys, b.texts)]


def _loader(source, tokenizer, text="captions", batch_size=3, num_workers=0, collate=None, **config):
    dataset = make_dataset(source, text, tokenizer, DataConfig(**config))
    return make_loader(dataset, tokenizer, batch_size, collate, num_workers=num_workers, report=None)


# --- tokenisation ---------------------------------------------------------------------------------


def test_load_tokenizer_from_directory_vocab_file_and_cache(minilm_path, monkeypatch):
    from_dir = load_tokenizer(minilm_path)
    from_vocab = load_tokenizer(os.path.join(minilm_path, "vocab.txt"))
    text = "A red circle, left of the blue square."
    assert from_dir(text)["input_ids"] == from_vocab(text)["input_ids"]
    assert from_dir(text)["input_ids"][0] == 101 and from_dir(text)["input_ids"][-1] == 102
    spec = TextSpec.from_tokenizer(from_dir)
    assert (spec.pad_id, spec.mask_id, spec.vocab_size) == (0, 103, 30522)
    assert set(spec.special_ids) == {0, 100, 101, 102, 103}
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="offline"):
        load_tokenizer("no-such-org/no-such-tokenizer")


def test_text_encoder_truncates_and_keeps_the_final_sep(tokenizer):
    encode = TextEncoder(tokenizer, max_length=6)
    short = encode("red circle")
    assert short.ids == [101, 2417, 4418, 102] and not short.truncated
    long = encode("one two three four five six seven")
    assert long.truncated and len(long.ids) == 6 and long.ids[0] == 101 and long.ids[-1] == 102
    assert long.ids[1:5] == tokenizer("one two three four")["input_ids"][1:5]


def test_wordpiece_builder_trains_saves_and_reloads(shards, tmp_path):
    texts = [t for r in read_records(shards.directory) for t in r.meta.captions]
    built = build_wordpiece_tokenizer(texts, vocab_size=120, out_dir=tmp_path / "wp")
    assert [built.convert_tokens_to_ids(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    assert len(built) <= 120
    ids = built("The blue square is LEFT")["input_ids"]
    assert ids[0] == 2 and ids[-1] == 3 and built.unk_token_id not in ids
    reloaded = load_tokenizer(tmp_path / "wp")
    assert reloaded("The blue square is LEFT")["input_ids"] == ids
    assert TextSpec.from_tokenizer(reloaded).pad_id == 0


# --- round trips ------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_workers", [0, 2])
def test_region_round_trip_has_exact_values(shards, tokenizer, num_workers):
    loader = _loader(shards.directory, tokenizer, num_workers=num_workers, max_regions=4)
    seen = set()
    for batch in loader:
        assert isinstance(batch, Batch) and batch.region_features.shape[-1] == FEATURE_DIM
        assert batch.pixel_values is None and batch.input_ids.dtype == torch.long
        for row, (key, text) in enumerate(zip(batch.keys, batch.texts)):
            sample = shards.samples[key]
            assert text in sample.meta["captions"] and batch.image_ids[row] == sample.meta["image_id"]
            assert batch.captions[row] == sample.meta["captions"]
            length = int(batch.attention_mask[row].sum())
            assert batch.input_ids[row, :length].tolist() == tokenizer(text)["input_ids"]
            assert (batch.input_ids[row, length:] == 0).all()
            regions, n = sample.regions, min(4, len(sample.regions.features))
            assert int(batch.region_mask[row].sum()) == n and batch.region_mask[row, :n].all()
            assert torch.equal(batch.region_features[row, :n], torch.from_numpy(regions.features[:n]))
            expected = torch.from_numpy(regions.boxes[:n]) / torch.tensor([WIDTH, HEIGHT, WIDTH, HEIGHT])
            assert torch.allclose(batch.region_boxes[row, :n], expected, atol=0, rtol=1e-6)
            assert float(batch.region_boxes[row, :n].max()) <= 1.0
            assert torch.equal(batch.region_class_probs[row, :n], torch.from_numpy(regions.class_probs[:n]))
            assert not batch.region_features[row, n:].any()
            seen.add((key, text))
    assert seen == {(k, c) for k, s in shards.samples.items() for c in s.meta["captions"]}
    assert (loader.stats.samples, loader.stats.examples, loader.stats.num_skipped) == (10, 20, 0)


def test_vqa_rows_carry_their_own_answers(shards, tokenizer):
    questions = {q["question_id"]: q for s in shards.samples.values() for q in s.meta["questions"]}
    vocab = AnswerVocab.build(q["answers"] for q in questions.values())
    dataset = make_dataset(shards.directory, "questions", tokenizer, DataConfig(shuffle_buffer=8), answer_vocab=vocab)
    loader = make_loader(dataset, tokenizer, batch_size=4, report=None)
    rows = 0
    for batch in loader:
        assert batch.answer_scores.shape == (len(batch), len(vocab))
        for row, question_id in enumerate(batch.question_ids):
            question = questions[question_id]
            assert question_id.startswith(batch.keys[row]) and batch.texts[row] == question["question"]
            assert batch.answers[row] == question["answers"] and batch.question_types[row] == question["type"]
            assert batch.question_subtypes[row] == question["subtype"]
            assert torch.equal(batch.answer_scores[row], soft_scores(question["answers"], vocab))
            rows += 1
    assert rows == len(questions) == 20


def test_pixel_inputs_use_the_timm_transform(shards, tokenizer):
    image = ImageConfig(size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    loader = _loader(shards.directory, tokenizer, inputs="pixels", image=image, shuffle_buffer=0)
    transform = build_image_transform(image)
    batch = next(iter(loader))
    assert batch.pixel_values.shape == (3, 3, 32, 32) and batch.region_features is None
    for row, key in enumerate(batch.keys):
        expected = transform(decode_image(shards.samples[key].image))
        assert torch.equal(batch.pixel_values[row], expected)


def test_image_transform_keeps_the_whole_image_and_never_flips():
    import timm
    from PIL import Image

    wide = Image.new("RGB", (64, 32), (0, 0, 0))
    wide.paste((255, 255, 255), (0, 0, 8, 32))  # a white strip at the left edge
    pixels = build_image_transform(ImageConfig(size=32, mean=(0, 0, 0), std=(1, 1, 1)))(wide)
    assert pixels.shape == (3, 32, 32) and pixels[:, :, :3].min() > 0.9 and pixels[:, :, 6:].max() < 0.1
    augment = build_image_transform(ImageConfig(size=32, augment=True))
    names = [type(t).__name__ for t in augment.transforms]
    assert "RandomHorizontalFlip" not in names
    config = ImageConfig.from_model(timm.create_model("resnet10t", pretrained=False))
    assert config.size == 176 and config.mean == (0.485, 0.456, 0.406)


def test_model_inputs_are_the_forward_arguments_and_run_a_model(shards, tokenizer):
    # `forward(input_ids, **inputs)` takes the arguments of `encode_pair`; `causal` and `task_ids`
    # (12-in-1's task tokens) belong to the model and task, not to the data.
    forward = set(inspect.signature(VLBertModel.encode_pair).parameters) - {"self", "causal", "task_ids"}
    assert set(MODEL_INPUTS) == forward
    loader = _loader(shards.directory, tokenizer, batch_size=4, collate=CollateConfig.pretraining())
    batch = next(iter(loader)).to("cpu")
    assert set(batch.model_inputs()) == forward and len(batch) == 4
    image_arguments = set(inspect.signature(VLBertModel.encode_image).parameters) - {"self", "masked_regions"}
    assert set(batch.image_inputs()) == image_arguments
    model = vlbert.create_model("tiny", task="pretraining").eval()
    with torch.no_grad():
        out = model(**batch.model_inputs())
    targets = PreTrainingTargets(mlm_labels=batch.mlm_labels, region_labels=batch.mrm_labels,
                                 region_targets=batch.region_class_probs)  # fmt: skip
    loss = pretraining_loss(out, targets, {"mlm": 1.0, "mrm": 1.0}, "kl")
    assert torch.isfinite(loss.total)


# --- order, resuming, splitting -----------------------------------------------------------------------


def test_shuffle_is_seeded_by_seed_and_epoch(shards, tokenizer):
    def order(seed: int, epoch: int) -> list[tuple[int, str, str]]:
        config = DataConfig(seed=seed, shuffle_buffer=6)
        dataset = make_dataset(shards.directory, "captions", tokenizer, config, epoch=epoch)
        return _rows(make_loader(dataset, tokenizer, 4, report=None))

    first = order(0, 0)
    assert first == order(0, 0)
    assert first != order(0, 1) and first != order(1, 0)
    assert sorted(first) == sorted(order(0, 1))


@pytest.mark.parametrize("start", [5, 8])
def test_resuming_at_k_gives_the_same_tail(shards, tokenizer, start):
    def rows(begin: int) -> list[tuple[int, str, str]]:
        config = DataConfig(shuffle_buffer=6)
        dataset = make_dataset(shards.directory, "captions", tokenizer, config, epoch=3, start=begin)
        return _rows(make_loader(dataset, tokenizer, 4, report=None))

    assert rows(start) == rows(0)[start:]


def test_resuming_at_a_batch_boundary_gives_the_same_masked_batches(shards, tokenizer):
    def batches(begin: int) -> list[Batch]:
        dataset = make_dataset(shards.directory, "captions", tokenizer, DataConfig(shuffle_buffer=6), start=begin)
        return list(make_loader(dataset, tokenizer, 4, CollateConfig.pretraining(seed=3), report=None))

    full, resumed = batches(0), batches(8)
    assert len(resumed) == len(full) - 2
    for ours, theirs in zip(resumed, full[2:]):
        for name in ("input_ids", "mlm_labels", "masked_regions", "mrm_labels", "region_features"):
            assert torch.equal(getattr(ours, name), getattr(theirs, name)), name
        assert ours.texts == theirs.texts and ours.keys == theirs.keys


def test_resuming_with_workers_from_the_trainers_batch_count(shards, tokenizer):
    """The trainer saves how many batches it consumed; `after_batches` makes that each worker's
    position, and each worker's stream continues exactly from there."""
    def loader(start: StreamPosition | int):
        dataset = make_dataset(shards.directory, "captions", tokenizer, DataConfig(shuffle_buffer=6), start=start)
        return make_loader(dataset, tokenizer, 2, num_workers=2, report=None)

    full = _rows(loader(0))
    position = StreamPosition.after_batches(epoch=0, batches=3, batch_size=2, num_workers=2)
    assert position.offsets == {0: 4, 1: 2}  # worker 0 gave batches 0 and 2, worker 1 batch 1
    resumed = _rows(loader(position))
    for worker, done in position.offsets.items():
        assert [r for r in resumed if r[0] == worker] == [r for r in full if r[0] == worker][done:]
    with pytest.raises(DataError, match="saved with 2 workers; resume with as many, not 1"):
        list(make_loader(make_dataset(shards.directory, "captions", tokenizer, start=position), tokenizer, 2))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batch_factory_skips_batches_as_the_trainer_asks(shards, tokenizer, num_workers):
    make_batches = batch_factory(shards.directory, "captions", tokenizer, 2, DataConfig(shuffle_buffer=6),
                                 num_workers=num_workers, report=None)  # fmt: skip
    full = [(b.worker, b.keys, b.texts) for b in make_batches(1, 0)]
    tail = [(b.worker, b.keys, b.texts) for b in make_batches(1, 3)]
    assert len(tail) == len(full) - 3
    for worker in range(max(1, num_workers)):  # batches come from the workers in turn
        assert [b for b in tail if b[0] == worker] == [b for b in full[3:] if b[0] == worker]


def test_split_by_node_gives_disjoint_ranks(shards, tokenizer, monkeypatch):
    keys = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        keys.append({k for _, k, _ in _rows(_loader(shards.directory, tokenizer))})
    assert keys[0].isdisjoint(keys[1]) and keys[0] | keys[1] == set(shards.samples)


def test_one_random_caption_per_image(shards, tokenizer):
    def rows(epoch: int) -> list[tuple[int, str, str]]:
        config = DataConfig(caption_mode="random", shuffle_buffer=0)
        dataset = make_dataset(shards.directory, "captions", tokenizer, config, epoch=epoch)
        return _rows(make_loader(dataset, tokenizer, 4, report=None))

    first = rows(0)
    assert [k for _, k, _ in first] == sorted(shards.samples)  # no shuffle: shard order
    assert first == rows(0) and first != rows(1)


def test_manifest_split_and_sources(shards, tokenizer):
    assert len(_rows(_loader(shards.directory, tokenizer, split="train"))) == 20
    assert len(_rows(_loader(shards.urls, tokenizer))) == 20  # a list of urls
    assert len(_rows(_loader(shards.urls[0], tokenizer))) == 10  # one tar
    with pytest.raises(DataError, match="split"):
        make_dataset(shards.directory, "captions", tokenizer, DataConfig(split="val"))
    with pytest.raises(DataError, match="text"):
        make_dataset(shards.directory, "segmentation", tokenizer)


def test_label_fraction_keeps_a_fixed_subset_of_questions():
    from vlbert.data.pipeline.items import keeps_label

    ids = [f"img{i}_q{j:02d}" for i in range(500) for j in range(20)]
    kept = [q for q in ids if keeps_label(q, 0.1)]
    assert 0.09 < len(kept) / len(ids) < 0.11
    assert kept == [q for q in ids if keeps_label(q, 0.1)]  # the same subset every epoch and run
    assert set(kept) <= {q for q in ids if keeps_label(q, 0.5)}  # nested fractions
    assert all(keeps_label(q, 1.0) for q in ids)


def test_question_subtypes_keep_only_those_questions(tmp_path, tokenizer):
    from vlbert.data.sources.sort_of_clevr.shards import make_sort_of_clevr_shards

    make_sort_of_clevr_shards(tmp_path, {"train": 4}, shard_size=4, regions=True, questions_per_type=2)

    def subtypes(chosen: tuple[str, ...]) -> list[str]:
        config = DataConfig(inputs="regions", split="train", shuffle_buffer=0, question_subtypes=chosen)
        return [e.question_subtype for e in make_dataset(tmp_path, "questions", tokenizer, config)]

    every = subtypes(())
    assert len(every) == 16 and len(set(every)) >= 3  # 4 images, 4 questions each
    two = sorted(set(every))[:2]
    chosen = subtypes(tuple(two))
    assert 0 < len(chosen) < len(every) and sorted(chosen) == sorted(s for s in every if s in two)
    assert subtypes(("no such subtype",)) == []


def test_the_vocabulary_can_be_built_from_the_first_records(tmp_path):
    from vlbert.data.sources.sort_of_clevr.shards import make_sample, make_sort_of_clevr_shards
    from vlbert.run.setup import _texts, resolve_tokenizer
    from vlbert.runconfig import load_run_config

    make_sort_of_clevr_shards(tmp_path / "soc", {"train": 6}, shard_size=4, questions_per_type=1)
    per_record = len(make_sample(0, questions_per_type=1).record.captions) + 2
    assert len(_texts(str(tmp_path / "soc"), "train")) == 6 * per_record
    first = _texts(str(tmp_path / "soc"), "train", 2)
    assert first == _texts(str(tmp_path / "soc"), "train")[: 2 * per_record]
    cfg = load_run_config(None, [f"data.root={tmp_path / 'soc'}", "data.vocab_size=80", "data.vocab_max_records=2"])
    tokenizer = resolve_tokenizer(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "tokenizer" / "tokenizer_config.json").is_file() and len(tokenizer) <= 80
    # from the texts of several splits: a caption-only corpus's words and the task's questions' words
    make_sort_of_clevr_shards(tmp_path / "two", {"train": 4, "pretrain": 4}, questions_per_type=1,
                              caption_only=("pretrain",))
    base = [f"data.root={tmp_path / 'two'}", "data.vocab_size=120", "data.train_split=pretrain"]
    captions_only = resolve_tokenizer(load_run_config(None, base), tmp_path / "a")
    both = resolve_tokenizer(load_run_config(None, [*base, "data.vocab_splits=[pretrain,train]"]), tmp_path / "b")
    assert "what" not in captions_only.get_vocab() and "what" in both.get_vocab()


def test_first_plus_one_caption_is_the_first_and_another_drawn_per_epoch():
    import random
    from types import SimpleNamespace

    from vlbert.data.pipeline.items import caption_items
    from vlbert.data.shards.stats import ErrorPolicy

    captions = ["a full description.", "short one.", "short two.", "short three."]
    record = SimpleNamespace(meta=SimpleNamespace(captions=captions), url="u", key="k")
    texts = {caption_items(record, ErrorPolicy("raise"), "first+one", random.Random(seed))[0].text for seed in range(40)}
    assert texts == {f"{captions[0]} {other}" for other in captions[1:]}  # each other caption, after the first
    alone = SimpleNamespace(meta=SimpleNamespace(captions=captions[:1]), url="u", key="k")
    assert [i.text for i in caption_items(alone, ErrorPolicy("raise"), "first+one", random.Random(0))] == captions[:1]
