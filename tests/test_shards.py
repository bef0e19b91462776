"""The shard writer: round trip through plain webdataset, manifest, splits, errors, reproducibility."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.shard_reading import read_manifest, read_samples
from vlbert.data.shards.schema import DataError, RegionFeatures, SampleQuestion, SampleRecord, ShardSample
from vlbert.data.shards.writer import ShardSetWriter, prepare_output_dir, write_manifest
from vlbert.data.sources.sort_of_clevr.shards import make_sort_of_clevr_shards


def encoded(color: tuple[int, int, int], fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buffer, format=fmt)
    return buffer.getvalue()


def make(key: str, split: str = "train", fmt: str = "PNG", features: RegionFeatures | None = None) -> ShardSample:
    question = SampleQuestion(f"{key}_q0", "what colour?", ["red", "red", "pink"], "other", "what color")
    record = SampleRecord(
        id=key,
        image_id=key.upper(),
        width=8,
        height=6,
        source="test",
        split=split,
        captions=[f"caption of {key}", "ünïcode"],
        questions=[question],
        boxes=[[0.0, 1.0, 4.5, 6.0]],
        labels=["thing"],
    )
    return ShardSample(key, encoded((200, 10, 10), fmt), "png" if fmt == "PNG" else "jpg", record, features)


def write(out: Path, samples: list[ShardSample], shard_size: int) -> list:
    with ShardSetWriter(out, "set", shard_size) as writer:
        for sample in samples:
            writer.write(sample)
    write_manifest(out, "test", writer.shards)
    return writer.shards


def test_round_trip_of_every_field(tmp_path: Path) -> None:
    features = RegionFeatures(
        np.arange(12, dtype=np.float16).reshape(3, 4), np.ones((3, 4), np.float32), np.full((3, 5), 0.2, np.float32)
    )
    samples = [make("a_0", features=features), make("b_1", fmt="JPEG"), make("c_2")]
    write(tmp_path, samples, shard_size=2)
    read = read_samples(tmp_path)
    assert [s["__key__"] for s in read] == ["a_0", "b_1", "c_2"]
    for original, back in zip(samples, read):
        assert back[original.image_format] == original.image
        assert back["json"] == original.record.to_json()
        assert SampleRecord.from_json(back["json"]) == original.record
    assert "npz" not in read[1] and "jpg" in read[1] and "png" not in read[1]
    back_features = RegionFeatures.from_npz_bytes(read[0]["npz"])
    assert back_features.features.dtype == np.float16
    np.testing.assert_array_equal(back_features.features, features.features)
    np.testing.assert_array_equal(back_features.boxes, features.boxes)
    np.testing.assert_array_equal(back_features.class_probs, features.class_probs)
    assert read[0]["json"]["captions"][1] == "ünïcode"


def test_manifest_counts_match_the_tar_files(tmp_path: Path) -> None:
    samples = [make(f"t_{i}") for i in range(5)] + [make(f"v_{i}", split="val") for i in range(3)]
    write(tmp_path, samples, shard_size=2)
    manifest = read_manifest(tmp_path)
    assert manifest["format"] == "vlbert-shards/1" and manifest["source"] == "test"
    assert [(s["name"], s["count"], s["split"]) for s in manifest["shards"]] == [
        ("set-train-000000.tar", 2, "train"),
        ("set-train-000001.tar", 2, "train"),
        ("set-train-000002.tar", 1, "train"),
        ("set-val-000000.tar", 2, "val"),
        ("set-val-000001.tar", 1, "val"),
    ]
    assert manifest["total"] == 8 and manifest["splits"] == {"train": 5, "val": 3}
    for shard in manifest["shards"]:
        with tarfile.open(tmp_path / shard["name"]) as tar:
            assert len(tar.getnames()) == 2 * shard["count"]  # png + json per sample
    assert sorted(os.listdir(tmp_path)) == sorted([s["name"] for s in manifest["shards"]] + ["manifest.json"])


def test_bad_keys_and_duplicates_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="without dots"):
        make("a.b")
    with pytest.raises(DataError, match="duplicate"):
        with ShardSetWriter(tmp_path, "set") as writer:
            writer.write(make("x"))
            writer.write(make("x"))
    assert os.listdir(tmp_path) == []  # the unfinished shard is removed, not left looking complete
    with pytest.raises(DataError, match="features"):
        RegionFeatures(np.zeros((3, 4), np.float32), np.zeros((2, 4), np.float32))


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    write(tmp_path, [make(f"k{i}") for i in range(3)], shard_size=1)
    with pytest.raises(DataError, match="overwrite"):
        prepare_output_dir(tmp_path)
    prepare_output_dir(tmp_path, overwrite=True)
    assert os.listdir(tmp_path) == []


def test_sort_of_clevr_shards_are_reproducible_serial_parallel_and_resumed(tmp_path: Path) -> None:
    splits = {"train": 23, "test": 7}
    serial = make_sort_of_clevr_shards(tmp_path / "serial", splits, seed=9, shard_size=10)
    assert [(s.name, s.count) for s in serial.shards] == [
        ("sortofclevr-train-000000.tar", 10),
        ("sortofclevr-train-000001.tar", 10),
        ("sortofclevr-train-000002.tar", 3),
        ("sortofclevr-test-000000.tar", 7),
    ]
    again = make_sort_of_clevr_shards(tmp_path / "again", splits, seed=9, shard_size=10)
    parallel = make_sort_of_clevr_shards(tmp_path / "parallel", splits, seed=9, shard_size=10, workers=2)
    resumed_dir = tmp_path / "resumed"
    make_sort_of_clevr_shards(resumed_dir, splits, seed=9, shard_size=10)
    (resumed_dir / "manifest.json").unlink()
    (resumed_dir / "sortofclevr-train-000001.tar").unlink()  # as if interrupted
    make_sort_of_clevr_shards(resumed_dir, splits, seed=9, shard_size=10, resume=True)
    for other in (again, parallel):
        assert other.total == 30
    for name in [s.name for s in serial.shards] + ["manifest.json"]:
        reference = (tmp_path / "serial" / name).read_bytes()
        for directory in ("again", "parallel", "resumed"):
            assert (tmp_path / directory / name).read_bytes() == reference, (directory, name)
    make_sort_of_clevr_shards(tmp_path / "seed10", splits, seed=10, shard_size=10)
    first_shard = serial.shards[0].name
    assert (tmp_path / "seed10" / first_shard).read_bytes() != (tmp_path / "serial" / first_shard).read_bytes()


def test_examples_are_the_shards_own_images_with_their_questions(tmp_path: Path) -> None:
    from vlbert.cli import main

    out = tmp_path / "soc"
    assert main(["make-shards", "sort-of-clevr", "--num-images", "4", "--num-test", "3", "--examples", "2",
                 "--out", str(out)]) == 0
    tests = [s for s in read_samples(out) if s["__key__"].startswith("sortofclevr_test_")]
    pngs = sorted((out / "examples").glob("*.png"))
    assert [p.name for p in pngs] == ["test-000.png", "test-001.png"]
    assert [p.read_bytes() for p in pngs] == [s["png"] for s in tests[:2]]
    rows = [line.split("\t") for line in (out / "examples" / "questions.tsv").read_text().splitlines()[1:]]
    asked = {(q["question"], q["answers"][0]) for q in tests[0]["json"]["questions"]}
    assert {(q, a) for f, q, a in rows if f == "test-000.png"} == asked
    assert main(["make-shards", "sort-of-clevr", "--num-images", "4", "--examples", "-1", "--out",
                 str(tmp_path / "bad")]) == 2
