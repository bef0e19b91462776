"""Bad input made for real: each is skipped and counted, or raises naming the shard and the key."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from tests.shard_factory import Sample, good_sample, image_bytes, make_meta, make_regions, truncate_file, write_shards
from vlbert.data.pipeline.answers import AnswerVocab, soft_scores
from vlbert.data.pipeline.images import ImageConfig, build_image_transform, decode_image
from vlbert.data.pipeline.loader import DataConfig, make_dataset, make_loader
from vlbert.data.pipeline.tokenize import load_tokenizer
from vlbert.data.shards.stats import SampleError, ShardReadError

PIXELS = dict(inputs="pixels", image=ImageConfig(size=16), shuffle_buffer=0)


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return load_tokenizer(minilm_path)


def _run(source, tokenizer, text="captions", num_workers=0, answer_vocab=None, **config):
    """Every row's (key, text) and the epoch's stats; the summary lines reported."""
    lines: list[str] = []
    dataset = make_dataset(source, text, tokenizer, DataConfig(**config), answer_vocab=answer_vocab)
    loader = make_loader(dataset, tokenizer, 3, num_workers=num_workers, report=lambda r: lines.append(r.line()))
    rows = [(k, t) for b in loader for k, t in zip(b.keys, b.texts)]
    assert len(lines) == 1 and "\n" not in lines[0]
    return rows, loader.stats, lines[0]


def _with_bad(tmp_path, bad: Sample, per_shard: int = 3):
    """Shard 0: good, bad, good...; shard 1: good samples."""
    first = [good_sample(0), bad] + [good_sample(i) for i in range(1, per_shard)]
    second = [good_sample(10 + i) for i in range(per_shard)]
    return write_shards(tmp_path / "shards", [first, second])


def _expect_skipped(shard_set, tokenizer, bad_key: str, reason: str, **config):
    rows, stats, line = _run(shard_set.directory, tokenizer, **config)
    assert stats.skipped == {reason: 1}, stats.skipped
    good = {k for k in shard_set.samples if k != bad_key}
    assert {k for k, _ in rows} == good
    for key, text in rows:  # labels stay with their own sample
        assert text in shard_set.samples[key].meta["captions"]
    assert f"{reason} 1" in line
    with pytest.raises(ShardReadError) as raised:
        _run(shard_set.directory, tokenizer, on_error="raise", **config)
    assert raised.value.reason == reason and raised.value.key == bad_key
    assert shard_set.urls[0] in str(raised.value) and bad_key in str(raised.value)


def _bad(key: str, **members) -> Sample:
    return Sample(key, make_meta(key, [f"caption of {key}"]), **members)


def _noise_png(size=(40, 30)) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return image_bytes(Image.fromarray(pixels))


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_corrupt_image(tmp_path, tokenizer, kind):
    data = b"\x89PNG not really an image" if kind == "garbage" else _noise_png()[:1500]
    shard_set = _with_bad(tmp_path, _bad("bad", image=data))
    _expect_skipped(shard_set, tokenizer, "bad", "corrupt_image", **PIXELS)


def test_missing_image_member_and_missing_features(tmp_path, tokenizer):
    no_image = good_sample(99)
    no_image.key, no_image.image = "noimage", None
    no_image.meta = make_meta("noimage", ["caption of noimage"])
    shard_set = _with_bad(tmp_path, no_image)
    _expect_skipped(shard_set, tokenizer, "noimage", "missing_image", **PIXELS)
    # Region inputs do not need the image, so the same sample is fine there ...
    rows, stats, _ = _run(shard_set.directory, tokenizer)
    assert stats.num_skipped == 0 and "noimage" in {k for k, _ in rows}
    # ... but do need the npz.
    no_npz = _with_bad(tmp_path / "b", _bad("nofeat", image=_noise_png()))
    _expect_skipped(no_npz, tokenizer, "nofeat", "missing_features")


def test_bad_json(tmp_path, tokenizer):
    bad = Sample("badjson", None, image=_noise_png(), raw_json=b'{"id": "badjson", "captions": [')
    _expect_skipped(_with_bad(tmp_path, bad), tokenizer, "badjson", "bad_json", **PIXELS)


@pytest.mark.parametrize("array", ["features", "class_probs"])
def test_non_finite_region_features(tmp_path, tokenizer, array):
    regions = make_regions(3, seed=99)
    getattr(regions, array)[1, 2] = np.nan  # NaN class_probs would make the masked-region loss NaN
    _expect_skipped(_with_bad(tmp_path, _bad("nan", regions=regions)), tokenizer, "nan", "bad_features")


def test_empty_captions_are_dropped_and_counted(tmp_path, tokenizer):
    partly = Sample("partly", make_meta("partly", ["", "a real caption"]), image=_noise_png())
    empty = Sample("empty", make_meta("empty", ["   "]), image=_noise_png())
    shard_set = write_shards(tmp_path / "shards", [[good_sample(0), partly, empty, good_sample(1)]])
    rows, stats, line = _run(shard_set.directory, tokenizer, **PIXELS)
    assert stats.skipped == {"empty_text": 2, "no_text": 1}
    assert line == "epoch 0: skipped 1 of 4 samples: no_text 1; dropped 2 texts: empty_text 2"
    assert ("partly", "a real caption") in rows and "empty" not in {k for k, _ in rows}
    with pytest.raises(ShardReadError, match="partly"):
        _run(shard_set.directory, tokenizer, on_error="raise", **PIXELS)


def test_decompression_bomb(tmp_path, tokenizer, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # warning above 1000 pixels, error above 2000
    small = [_bad(f"ok{i}", image=image_bytes(Image.new("RGB", (20, 20), (9, 9, 9)))) for i in range(3)]
    warns = _bad("warns", image=image_bytes(Image.new("RGB", (40, 30))))  # 1200 pixels
    errors = _bad("errors", image=image_bytes(Image.new("RGB", (64, 64))))  # 4096 pixels
    with pytest.raises(SampleError, match="decompression_bomb"):
        decode_image(warns.image)
    shard_set = write_shards(tmp_path / "shards", [[small[0], warns, small[1], errors, small[2]]])
    rows, stats, _ = _run(shard_set.directory, tokenizer, **PIXELS)
    assert stats.skipped == {"decompression_bomb": 2}
    assert sorted(k for k, _ in rows) == ["ok0", "ok1", "ok2"]
    with pytest.raises(ShardReadError, match="warns"):
        _run(shard_set.directory, tokenizer, on_error="raise", **PIXELS)


def test_over_long_text_is_truncated_and_counted_or_refused(tmp_path, tokenizer):
    words = " ".join(["circle"] * 100)
    long = Sample("long", make_meta("long", [words]), image=_noise_png())
    shard_set = _with_bad(tmp_path, long)
    dataset = make_dataset(shard_set.directory, "captions", tokenizer, DataConfig(max_length=16, **PIXELS))
    loader = make_loader(dataset, tokenizer, 8, report=None)
    batch = next(b for b in loader if "long" in b.keys)
    row = batch.keys.index("long")
    assert batch.input_ids[row].tolist() == [101] + [4418] * 14 + [102]
    assert loader.stats.truncated_texts == 1 and loader.stats.num_skipped == 0
    _expect_skipped(shard_set, tokenizer, "long", "long_text", max_length=16, on_long_text="error", **PIXELS)


def _member_offset(path: str, name: str) -> tuple[int, int]:
    with tarfile.open(path) as tar:
        info = tar.getmember(name)
        return info.offset, info.offset_data + info.size // 2


@pytest.mark.parametrize("where", ["mid_member", "block_boundary"])
def test_truncated_tar(tmp_path, tokenizer, where):
    shards = [[good_sample(i) for i in range(5)], [good_sample(10 + i) for i in range(5)]]
    shard_set = write_shards(tmp_path / "shards", shards)
    header, middle = _member_offset(shard_set.urls[0], "s0002.png")
    next_header, _ = _member_offset(shard_set.urls[0], "s0003.json")
    truncate_file(shard_set.urls[0], middle if where == "mid_member" else next_header)
    rows, stats, line = _run(shard_set.directory, tokenizer)
    # s0000 and s0001 are whole; s0002 may be cut and is dropped; s0003, s0004 are lost.
    assert stats.skipped == {"truncated_tar": 1, "incomplete_sample": 1, "missing_samples": 2}, stats.skipped
    assert {k for k, _ in rows} == {"s0000", "s0001"} | {f"s{10 + i:04d}" for i in range(5)}
    assert line == ("epoch 0: skipped 3 of 10 samples: incomplete_sample 1, missing_samples 2; "
                    "broken shards: truncated_tar 1")
    with pytest.raises(ShardReadError) as raised:
        _run(shard_set.directory, tokenizer, on_error="raise")
    assert raised.value.reason == "truncated_tar" and raised.value.key == "s0002"
    assert shard_set.urls[0] in str(raised.value)


def test_shard_shorter_than_its_manifest(tmp_path, tokenizer):
    shard_set = write_shards(tmp_path / "shards", [[good_sample(i) for i in range(3)]])
    manifest = json.loads((shard_set.directory / "manifest.json").read_text())
    manifest["shards"][0]["count"] = 4
    (shard_set.directory / "manifest.json").write_text(json.dumps(manifest))
    rows, stats, _ = _run(shard_set.directory, tokenizer)
    assert stats.skipped == {"missing_samples": 1} and len(rows) == 6
    with pytest.raises(ShardReadError, match="manifest promises 4"):
        _run(shard_set.directory, tokenizer, on_error="raise")


def test_missing_shard_file(tmp_path, tokenizer):
    shard_set = write_shards(tmp_path / "shards", [[good_sample(0)], [good_sample(1)]])
    (shard_set.directory / "test-000001.tar").unlink()
    rows, stats, _ = _run(shard_set.directory, tokenizer)
    assert stats.skipped == {"bad_tar": 1, "missing_samples": 1} and {k for k, _ in rows} == {"s0000"}


def _mode_images() -> dict[str, tuple[bytes, tuple[int, int, int]]]:
    """Encoded images in non-RGB modes and the RGB colour each must decode to."""
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    transparent = palette.copy()
    transparent.info["transparency"] = 1
    sixteen = Image.fromarray(np.full((8, 8), 32896, dtype=np.uint16))  # 32896 / 257 = 128
    return {
        "L": (image_bytes(Image.new("L", (8, 8), 100)), (100, 100, 100)),
        "P": (image_bytes(palette), (10, 200, 30)),
        "P-transparent": (image_bytes(transparent), (255, 255, 255)),
        "RGBA": (image_bytes(Image.new("RGBA", (8, 8), (0, 0, 255, 0))), (255, 255, 255)),
        "RGBA-half": (image_bytes(Image.new("RGBA", (8, 8), (0, 0, 255, 128))), (127, 127, 255)),
        "LA": (image_bytes(Image.new("LA", (8, 8), (0, 255))), (0, 0, 0)),
        "CMYK": (image_bytes(Image.new("CMYK", (8, 8), (255, 0, 0, 0)), "JPEG"), (0, 255, 255)),
        "I;16": (image_bytes(sixteen), (128, 128, 128)),
    }


@pytest.mark.parametrize("mode", list(_mode_images()))
def test_non_rgb_images_decode_to_rgb(mode):
    data, colour = _mode_images()[mode]
    image = decode_image(data)
    assert image.mode == "RGB" and image.size == (8, 8)
    assert np.abs(np.asarray(image).astype(int) - np.array(colour)).max() <= 2, np.asarray(image)[0, 0]


def test_non_rgb_images_pass_through_the_pipeline(tmp_path, tokenizer):
    images = _mode_images()
    samples = [Sample(f"m{i}", make_meta(f"m{i}", [f"mode {m}"]), image=data, image_ext="jpg" if m == "CMYK" else "png")
               for i, (m, (data, _)) in enumerate(images.items())]  # fmt: skip
    shard_set = write_shards(tmp_path / "shards", [samples])
    config = ImageConfig(size=8)
    data_config = DataConfig(inputs="pixels", image=config, shuffle_buffer=0)
    dataset = make_dataset(shard_set.directory, "captions", tokenizer, data_config)
    transform = build_image_transform(config)
    rows = 0
    for batch in make_loader(dataset, tokenizer, 4, report=None):
        assert batch.stats.num_skipped == 0
        for row, key in enumerate(batch.keys):
            assert torch.equal(batch.pixel_values[row], transform(decode_image(shard_set.samples[key].image)))
            rows += 1
    assert rows == len(images)


def test_skipped_samples_never_shift_labels(tmp_path, tokenizer):
    samples = [good_sample(i) for i in range(12)]
    samples[5].image = b"broken"
    shard_set = write_shards(tmp_path / "shards", [samples[:7], samples[7:]])
    questions = {q["question_id"]: q for s in shard_set.samples.values() for q in s.meta["questions"]}
    vocab = AnswerVocab.build(q["answers"] for q in questions.values())
    for workers in (0, 2):
        lines: list[str] = []
        config = DataConfig(inputs="pixels", image=ImageConfig(size=8), shuffle_buffer=5)
        dataset = make_dataset(shard_set.directory, "questions", tokenizer, config, answer_vocab=vocab)
        loader = make_loader(dataset, tokenizer, 4, num_workers=workers, report=lambda r: lines.append(r.line()))
        seen = set()
        for batch in loader:
            for row, question_id in enumerate(batch.question_ids):
                question = questions[question_id]
                assert question_id.startswith(batch.keys[row] + "-") and batch.texts[row] == question["question"]
                assert torch.equal(batch.answer_scores[row], soft_scores(question["answers"], vocab))
                seen.add(question_id)
        # The bad image has two questions; it is counted once, as one sample.
        assert loader.stats.skipped == {"corrupt_image": 1} and "corrupt_image 1" in lines[0]
        assert seen == {q for q in questions if not q.startswith("s0005")}
        assert loader.stats.samples == 12 and loader.stats.examples == 22
