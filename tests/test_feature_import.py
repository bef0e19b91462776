"""Importing published region features (the original LMDB, its .npy dicts, the bottom-up /
LXMERT TSV) through `vlbert make-shards`: exact round trips, the original reader's model inputs,
id matching, corrupt records, and a stopped or killed import resumed to the same shards."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.feature_files import (
    lmdb_record,
    make_images,
    original_reader,
    write_lmdb,
    write_npy_dicts,
    write_tsv,
    write_vqa_questions,
)
from tests.helpers import ROOT
from tests.shard_reading import read_manifest, read_samples
from vlbert.cli import main
from vlbert.data.shards.schema import DataError, RegionFeatures
from vlbert.data.sources.converters import WriteOptions
from vlbert.data.sources.features.stores import IdIndex, detect_format, open_feature_store
from vlbert.data.sources.vqav2 import convert_vqav2

pytest.importorskip("lmdb")
IMAGES = make_images()
LAYOUTS = ("lmdb-base64", "lmdb-arrays", "npy", "tsv-lxmert", "tsv-bottom-up")


def write_layout(layout: str, tmp_path: Path, images=IMAGES) -> Path:
    if layout.startswith("lmdb"):
        return write_lmdb(tmp_path / "features.lmdb", images, encoded=layout == "lmdb-base64")
    if layout == "npy":
        return write_npy_dicts(tmp_path / "npy", images)
    return write_tsv(tmp_path / "features.tsv", images, layout.removeprefix("tsv-"))


def imported(out: Path) -> dict[str, tuple[dict, RegionFeatures, set[str]]]:
    """image_id -> (json record, features, member names) of every sample in `out`."""
    return {s["json"]["image_id"]: (s["json"], RegionFeatures.from_npz_bytes(s["npz"]), set(s))
            for s in read_samples(out)}  # fmt: skip


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_round_trips_exactly(layout, tmp_path):
    store = write_layout(layout, tmp_path)
    questions = write_vqa_questions(tmp_path / "q.json", IMAGES)
    summary = convert_vqav2(questions, None, tmp_path / "out", options=WriteOptions(features_dir=store, shard_size=2))
    assert summary.total == len(IMAGES) and summary.num_skipped == 0
    samples = imported(tmp_path / "out")
    for image in IMAGES:
        record, regions, members = samples[str(image.image_id)]
        assert not members & {"png", "jpg"}  # features without the image
        assert (record["width"], record["height"]) == (image.width, image.height) == regions.image_size
        assert regions.features.dtype == np.float32 and np.array_equal(regions.features, image.features)  # bit-equal
        np.testing.assert_allclose(regions.boxes, image.boxes, atol=1e-6, rtol=0)
        if layout.startswith("tsv"):
            assert regions.class_probs is None  # a TSV holds the top class and its score only
        else:
            assert np.array_equal(regions.class_probs, image.cls_prob)


def test_formats_are_told_apart_by_what_the_path_holds(tmp_path):
    assert [detect_format(write_layout(layout, tmp_path)) for layout in LAYOUTS] == ["lmdb", "lmdb", "npy", "tsv", "tsv"]
    (tmp_path / "npz").mkdir()
    assert detect_format(tmp_path / "npz") == "npz"
    with pytest.raises(DataError, match="not found"):
        detect_format(tmp_path / "absent")


def test_model_inputs_equal_the_original_readers(tmp_path):
    """Shards -> loader -> model: what the visual embedding receives (IMG token = mean region at
    (0, 0, 1, 1, 1); boxes over width and height; area over the image area) is what the original
    project's reader gives its model."""
    from vlbert.data.pipeline.loader import DataConfig, make_dataset, make_loader
    from vlbert.data.pipeline.tokenize import build_wordpiece_tokenizer
    from vlbert.factory import create_model

    store = write_lmdb(tmp_path / "features.lmdb", IMAGES)
    convert_vqav2(write_vqa_questions(tmp_path / "q.json", IMAGES), None, tmp_path / "out",
                  options=WriteOptions(features_dir=store))  # fmt: skip
    tokenizer = build_wordpiece_tokenizer(["what is this?"], 40, tmp_path / "tok")
    dataset = make_dataset(tmp_path / "out", "questions", tokenizer, DataConfig(shuffle_buffer=0))
    (batch,) = list(make_loader(dataset, tokenizer, batch_size=len(IMAGES)))
    model = create_model("tiny", v_feature_size=2048).eval()
    seen = {}
    model.v_embeddings.register_forward_pre_hook(lambda module, args: seen.update(features=args[0], locations=args[1]))
    with torch.no_grad():
        model(batch.input_ids, attention_mask=batch.attention_mask, region_features=batch.region_features,
              region_boxes=batch.region_boxes, region_mask=batch.region_mask)  # fmt: skip
    for row, image_id in enumerate(batch.image_ids):
        image = next(i for i in IMAGES if str(i.image_id) == image_id)
        features, locations = original_reader(lmdb_record(image, encoded=True))
        n = len(features)
        assert batch.region_mask[row].sum() == n - 1
        torch.testing.assert_close(seen["features"][row, :n], torch.from_numpy(features), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(seen["locations"][row, :n], torch.from_numpy(locations), rtol=1e-6, atol=1e-7)


def test_ids_match_across_the_original_scripts_namings():
    index = IdIndex(["COCO_val2014_000000000042", "7", "COCO_train2014_000000000007", "flickr_1000092795"])
    assert index.find("42") == "COCO_val2014_000000000042"  # VQA's numeric id, LXMERT's file-stem id
    assert index.find("COCO_val2014_000000000042") == "COCO_val2014_000000000042"
    assert index.find("COCO_val2014_000000000007") == "7"  # a stem against a numeric key
    assert index.find("7") == "7"  # exact first
    assert index.find("1000092795") == "flickr_1000092795" and index.find("43") is None


def test_images_without_features_are_skipped_and_counted(tmp_path):
    store = write_lmdb(tmp_path / "features.lmdb", IMAGES[:3])
    questions = write_vqa_questions(tmp_path / "q.json", IMAGES)
    summary = convert_vqav2(questions, None, tmp_path / "out", options=WriteOptions(features_dir=store))
    assert summary.total == 3 and summary.skipped == {"missing features": 2}
    assert str(IMAGES[3].image_id) in summary.skipped_examples[0]
    with pytest.raises(DataError, match=str(IMAGES[3].image_id)):
        convert_vqav2(questions, None, tmp_path / "raised", options=WriteOptions(features_dir=store, on_error="raise"))


def test_a_pickled_record_cannot_run_code(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    bad = IMAGES[1].image_id
    store = write_lmdb(tmp_path / "features.lmdb", IMAGES, raw={bad: pickle.dumps({"features": Exploit()})})
    with open_feature_store(store) as features, pytest.raises(DataError, match=f"image {bad}: corrupt.*refused"):
        features.read(str(bad))
    assert not (tmp_path / "pwned").exists()


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_a_corrupt_record_stops_cleanly_and_a_rerun_resumes_to_the_same_shards(tmp_path):
    questions = write_vqa_questions(tmp_path / "q.json", IMAGES)
    good = write_lmdb(tmp_path / "good.lmdb", IMAGES)
    convert_vqav2(questions, None, tmp_path / "whole", options=WriteOptions(features_dir=good, shard_size=2))
    bad_id = IMAGES[4].image_id
    broken = write_lmdb(tmp_path / "broken.lmdb", IMAGES, raw={bad_id: b"\x80\x04truncated"})
    with pytest.raises(DataError, match=f"image {bad_id}: corrupt.*2 finished shards.*--resume"):
        convert_vqav2(questions, None, tmp_path / "out", options=WriteOptions(features_dir=broken, shard_size=2))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["vqav2-val-000000.tar", "vqav2-val-000001.tar"]
    with pytest.raises(DataError, match="corrupt"):  # resumed on the same broken file: stops at the same place
        convert_vqav2(questions, None, tmp_path / "out", options=WriteOptions(features_dir=broken, shard_size=2, resume=True))
    convert_vqav2(questions, None, tmp_path / "out", options=WriteOptions(features_dir=good, shard_size=2, resume=True))
    assert shard_bytes(tmp_path / "out") == shard_bytes(tmp_path / "whole")
    with pytest.raises(DataError, match="already complete"):
        convert_vqav2(questions, None, tmp_path / "out", options=WriteOptions(features_dir=good, resume=True))


KILL_AFTER = """
import os, signal, sys
from vlbert.data.shards import writer
write, count = writer.ShardSetWriter.write, [0]
def write_then_die(self, sample):
    count[0] += 1
    if count[0] == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    write(self, sample)
writer.ShardSetWriter.write = write_then_die
from vlbert.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_import_resumes_to_the_same_shards(tmp_path):
    images = make_images(count=9, boxes=4, dim=16, classes=5)
    store = write_lmdb(tmp_path / "features.lmdb", images)
    questions = write_vqa_questions(tmp_path / "q.json", images)
    argv = ["make-shards", "vqav2", "--questions", str(questions), "--features", str(store), "--shard-size", "2",
            "--no-progress"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KILL_AT": "6"}
    done = subprocess.run([sys.executable, "-c", KILL_AFTER, *argv, "--out", str(tmp_path / "out")], env=env,
                          capture_output=True, timeout=120)  # fmt: skip
    assert done.returncode == -9
    left = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert left == ["vqav2-val-000000.tar", "vqav2-val-000001.tar", "vqav2-val-000002.tar.partial"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--resume"]) == 0
    assert shard_bytes(tmp_path / "out") == shard_bytes(tmp_path / "whole")
    assert read_manifest(tmp_path / "out")["total"] == 9


def test_cli_imports_without_images_and_names_what_is_missing(tmp_path, capsys):
    store = write_npy_dicts(tmp_path / "npy", IMAGES)
    rows = tmp_path / "captions.jsonl"
    rows.write_text("".join(f'{{"image": "{i.image_id}", "caption": "a picture"}}\n' for i in IMAGES))
    assert main(["make-shards", "folder", "--captions", str(rows), "--features", str(store), "--out",
                 str(tmp_path / "out"), "--no-progress"]) == 0  # fmt: skip
    assert len(read_samples(tmp_path / "out")) == len(IMAGES)
    assert main(["make-shards", "folder", "--captions", str(rows), "--out", str(tmp_path / "x")]) == 2
    assert "give --images, or --features" in capsys.readouterr().err


def test_lmdb_is_an_extra(monkeypatch, tmp_path):
    from vlbert._extras import MissingExtra

    store = write_lmdb(tmp_path / "features.lmdb", IMAGES[:1])
    monkeypatch.setitem(sys.modules, "lmdb", None)
    with pytest.raises(MissingExtra, match=r"pip install 'vlbert\[lmdb\]'"):
        open_feature_store(store)


def test_resume_with_two_splits_written_side_by_side(tmp_path):
    """Entries of two splits interleaved (as in Karpathy's JSON): each series resumes after its own
    finished shards."""
    from vlbert.data.sources.converters import ImageEntry, write_entries

    images = make_images(count=11, boxes=3, dim=8, classes=4)
    entries = [ImageEntry(None, f"img_{i.image_id}", str(i.image_id), ("train", "val")[n % 2], ["a caption"])
               for n, i in enumerate(images)]  # fmt: skip
    good = write_lmdb(tmp_path / "good.lmdb", images)
    broken = write_lmdb(tmp_path / "broken.lmdb", images, raw={images[9].image_id: b"garbage"})
    write_entries(entries, tmp_path / "whole", "mixed", WriteOptions(features_dir=good, shard_size=2))
    with pytest.raises(DataError, match=f"image {images[9].image_id}"):
        write_entries(entries, tmp_path / "out", "mixed", WriteOptions(features_dir=broken, shard_size=2))
    summary = write_entries(entries, tmp_path / "out", "mixed", WriteOptions(features_dir=good, shard_size=2, resume=True))
    assert summary.total == 11 and shard_bytes(tmp_path / "out") == shard_bytes(tmp_path / "whole")
    assert read_manifest(tmp_path / "out") == read_manifest(tmp_path / "whole")
