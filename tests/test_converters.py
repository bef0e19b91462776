"""Converters on tiny fixtures in the real public layouts, written inside each test."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.shard_reading import read_manifest, read_samples
from vlbert.cli import main
from vlbert.data.shards.schema import DataError, RegionFeatures
from vlbert.data.sources.converters import WriteOptions, convert_folder, convert_karpathy
from vlbert.data.sources.vqav2 import convert_vqav2


def save_image(path: Path, size: tuple[int, int], color: tuple[int, int, int], fmt: str = "JPEG") -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path.read_bytes()


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def by_image_id(out: Path) -> dict[str, dict]:
    return {s["json"]["image_id"]: s for s in read_samples(out)}


def test_folder_jsonl_keeps_bytes_merges_rows_and_skips_missing(tmp_path: Path) -> None:
    images = tmp_path / "images"
    cat = save_image(images / "cat.jpg", (20, 10), (250, 0, 0))
    dog = save_image(images / "sub" / "dog.png", (7, 9), (0, 250, 0), "PNG")
    rows = [
        {"image": "cat.jpg", "caption": "a cat"},
        {"image": "sub/dog.png", "captions": ["a dog", "a green dog"]},
        {"image": "cat.jpg", "caption": " the same cat "},
        {"image": "gone.jpg", "caption": "missing"},
    ]
    captions = tmp_path / "captions.jsonl"
    captions.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    summary = convert_folder(images, tmp_path / "out", captions, options=WriteOptions(shard_size=1))
    assert summary.total == 2 and summary.skipped == {"missing image": 1}
    assert summary.skipped_examples == [f"missing image: {images / 'gone.jpg'}"]
    assert read_manifest(tmp_path / "out")["total"] == 2
    samples = by_image_id(tmp_path / "out")
    assert samples["cat"]["jpg"] == cat and samples["sub/dog"]["png"] == dog
    assert samples["cat"]["json"]["captions"] == ["a cat", "the same cat"]
    assert samples["sub/dog"]["json"]["captions"] == ["a dog", "a green dog"]
    assert (samples["cat"]["json"]["width"], samples["cat"]["json"]["height"]) == (20, 10)
    assert (samples["sub/dog"]["json"]["width"], samples["sub/dog"]["json"]["height"]) == (7, 9)
    assert samples["cat"]["json"]["source"] == "folder" and samples["cat"]["json"]["split"] == "train"

    with pytest.raises(DataError, match="gone.jpg"):
        convert_folder(images, tmp_path / "raised", captions, options=WriteOptions(on_error="raise"))
    assert not (tmp_path / "raised" / "manifest.json").exists()


def test_folder_csv_and_no_captions(tmp_path: Path) -> None:
    images = tmp_path / "images"
    save_image(images / "a.jpg", (5, 5), (1, 2, 3))
    save_image(images / "b.jpg", (6, 4), (3, 2, 1))
    (images / "notes.txt").write_text("not an image")
    csv_file = tmp_path / "captions.csv"
    csv_file.write_text('image,caption\na.jpg,"one, with a comma"\nb.jpg,two\na.jpg,three\n')
    convert_folder(images, tmp_path / "csv", csv_file, split="val")
    samples = by_image_id(tmp_path / "csv")
    assert samples["a"]["json"]["captions"] == ["one, with a comma", "three"]
    assert samples["b"]["json"]["split"] == "val"
    save_image(images / "c.bmp", (3, 2), (7, 8, 9), "BMP")
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    summary = convert_folder(images, tmp_path / "plain")
    assert summary.total == 3 and summary.skipped == {"unreadable image": 1}
    plain = by_image_id(tmp_path / "plain")
    assert sorted(plain) == ["a", "b", "c"] and plain["a"]["json"]["captions"] == []
    bmp_as_png = np.asarray(Image.open(io.BytesIO(plain["c"]["png"])))  # other formats become PNG
    assert bmp_as_png.shape == (2, 3, 3) and bmp_as_png[0, 0].tolist() == [7, 8, 9]
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("file,text\na.jpg,x\n")
    with pytest.raises(DataError, match="image,caption"):
        convert_folder(images, tmp_path / "bad", bad_csv)


def karpathy_image(imgid: int, filename: str, split: str, sentences: list[str], **extra: object) -> dict:
    sentences_json = [{"raw": s, "tokens": s.split()} for s in sentences]
    return {"imgid": imgid, "filename": filename, "split": split, "sentences": sentences_json, **extra}


def test_coco_karpathy_split_filter_restval_and_paths(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    images = []
    layout = [("train2014", 9, "train"), ("val2014", 42, "restval"), ("val2014", 7, "test")]
    for imgid, (folder, cocoid, split) in enumerate(layout):
        name = f"COCO_{folder}_{cocoid:012d}.jpg"
        save_image(root / folder / name, (10 + imgid, 8), (imgid * 50, 0, 0))
        captions = [f"caption {cocoid} a", f"caption {cocoid} b"]
        images.append(karpathy_image(imgid, name, split, captions, filepath=folder, cocoid=cocoid))
    annotations = write_json(tmp_path / "dataset_coco.json", {"images": images, "dataset": "coco"})
    summary = convert_karpathy(annotations, root, tmp_path / "train", "coco", splits=["train"])
    assert summary.splits == {"train": 2}
    samples = by_image_id(tmp_path / "train")
    assert sorted(samples) == ["42", "9"]
    assert samples["42"]["json"]["captions"] == ["caption 42 a", "caption 42 b"]
    assert samples["42"]["jpg"] == (root / "val2014" / "COCO_val2014_000000000042.jpg").read_bytes()
    assert samples["9"]["json"]["source"] == "coco-karpathy" and samples["9"]["__key__"] == "coco_0"
    kept = convert_karpathy(annotations, root, tmp_path / "kept", "coco", ["restval", "test"], merge_restval=False)
    assert kept.splits == {"restval": 1, "test": 1}


def test_flickr30k_karpathy_without_filepath(tmp_path: Path) -> None:
    root = tmp_path / "flickr30k-images"
    save_image(root / "1000092795.jpg", (12, 9), (0, 0, 200))
    save_image(root / "10002456.jpg", (9, 12), (0, 200, 0))
    images = [
        karpathy_image(0, "1000092795.jpg", "test", ["two men"]),
        karpathy_image(1, "10002456.jpg", "train", ["a dog"]),
    ]
    annotations = write_json(tmp_path / "dataset_flickr30k.json", {"images": images})
    argv = ["make-shards", "flickr30k-karpathy", "--annotations", str(annotations), "--images", str(root)]
    assert main([*argv, "--out", str(tmp_path / "out"), "--split", "test"]) == 0
    samples = read_samples(tmp_path / "out")
    found = [(s["__key__"], s["json"]["image_id"], s["json"]["captions"]) for s in samples]
    assert found == [("flickr30k_0", "1000092795", ["two men"])]


def vqa_annotation(question_id: int, raw: list[str], answer_type: str, question_type: str) -> dict:
    return {
        "question_id": question_id,
        "image_id": question_id // 1000,
        "answer_type": answer_type,
        "question_type": question_type,
        "multiple_choice_answer": raw[0],
        "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(raw)],
    }


def vqa_files(tmp_path: Path, with_annotations: bool = True) -> tuple[Path, Path | None, Path]:
    images = tmp_path / "val2014"
    for image_id in (1, 25):
        save_image(images / f"COCO_val2014_{image_id:012d}.jpg", (16, 12), (image_id * 9, 0, 0))
    questions = [
        {"image_id": 25, "question": "What color is it?", "question_id": 25000},
        {"image_id": 1, "question": "Is it red?", "question_id": 1000},
        {"image_id": 25, "question": "How many?", "question_id": 25001},
        {"image_id": 404, "question": "Where?", "question_id": 404000},
    ]
    q_data = {"data_subtype": "val2014", "task_type": "Open-Ended", "questions": questions}
    q_file = write_json(tmp_path / "questions.json", q_data)
    if not with_annotations:
        return q_file, None, images
    answers = {25000: ["red"] * 7 + ["dark red"] * 3, 1000: ["yes"] * 10, 25001: ["2"] * 9 + ["3"], 404000: ["x"] * 10}
    types = {25000: ("other", "what color is the"), 1000: ("yes/no", "is it"), 25001: ("number", "how many")}
    annotations = [vqa_annotation(qid, raw, *types.get(qid, ("other", "where"))) for qid, raw in answers.items()]
    a_file = write_json(tmp_path / "annotations.json", {"data_subtype": "val2014", "annotations": annotations})
    return q_file, a_file, images


def test_vqav2_groups_questions_per_image_with_raw_answers(tmp_path: Path) -> None:
    questions, annotations, images = vqa_files(tmp_path)
    summary = convert_vqav2(questions, images, tmp_path / "out", annotations)
    assert summary.total == 2 and summary.skipped == {"missing image": 1} and summary.splits == {"val": 2}
    samples = by_image_id(tmp_path / "out")
    first = samples["25"]["json"]["questions"]
    assert [q["question_id"] for q in first] == ["25000", "25001"]
    assert first[0]["answers"] == ["red"] * 7 + ["dark red"] * 3
    assert (first[1]["type"], first[1]["subtype"], first[1]["question"]) == ("number", "how many", "How many?")
    assert samples["1"]["json"]["questions"][0]["answers"] == ["yes"] * 10
    assert samples["25"]["jpg"] == (images / "COCO_val2014_000000000025.jpg").read_bytes()
    assert samples["25"]["__key__"] == "vqav2_25" and samples["25"]["json"]["captions"] == []


def test_vqav2_test_split_without_annotations_and_errors(tmp_path: Path) -> None:
    questions, _, images = vqa_files(tmp_path, with_annotations=False)
    convert_vqav2(questions, images, tmp_path / "out", split="test-dev")
    question = by_image_id(tmp_path / "out")["1"]["json"]["questions"][0]
    assert question["answers"] == [] and by_image_id(tmp_path / "out")["1"]["json"]["split"] == "test-dev"
    with pytest.raises(DataError, match="COCO_val2014_000000000404.jpg"):
        convert_vqav2(questions, images, tmp_path / "raised", options=WriteOptions(on_error="raise"))
    with pytest.raises(DataError, match="questions file not found"):
        convert_vqav2(tmp_path / "nope.json", images, tmp_path / "x")


def test_append_adds_a_split_and_keeps_the_shards_already_there(tmp_path: Path) -> None:
    """VQAv2 comes as one file pair per split; --append puts the second split beside the first."""
    questions, annotations, images = vqa_files(tmp_path)
    out = tmp_path / "out"
    convert_vqav2(questions, images, out, annotations)  # split "val"
    first = read_manifest(out)["shards"]
    with pytest.raises(DataError, match="--append adds new splits"):
        convert_vqav2(questions, images, out, split="test-dev")
    convert_vqav2(questions, images, out, split="test-dev", options=WriteOptions(append=True))
    manifest = read_manifest(out)
    assert manifest["splits"] == {"val": 2, "test-dev": 2} and manifest["total"] == 4
    assert manifest["shards"][: len(first)] == first and manifest["meta"]["skipped"] == {"missing image": 2}
    assert sorted(s["json"]["split"] for s in read_samples(out)) == ["test-dev", "test-dev", "val", "val"]
    with pytest.raises(DataError, match="already holds split val"):
        convert_vqav2(questions, images, out, annotations, options=WriteOptions(append=True))
    assert read_manifest(out) == manifest
    with pytest.raises(DataError, match="exclude each other"):
        WriteOptions(append=True, overwrite=True)
    convert_vqav2(questions, images, tmp_path / "fresh", options=WriteOptions(append=True))  # nothing there yet
    assert read_manifest(tmp_path / "fresh")["splits"] == {"val": 2}


def test_append_refuses_a_second_unsplit_conversion(tmp_path: Path) -> None:
    """Two conversions without a split would write the same shard names: the second is refused."""
    images = tmp_path / "images"
    save_image(images / "a.jpg", (8, 8), (1, 2, 3))
    convert_folder(images, tmp_path / "out", split="")
    before = read_manifest(tmp_path / "out")
    with pytest.raises(DataError, match="already holds split \\(no split\\)"):
        convert_folder(images, tmp_path / "out", split="", options=WriteOptions(append=True))
    assert read_manifest(tmp_path / "out") == before and len(read_samples(tmp_path / "out")) == 1


def test_region_features_are_attached_or_skipped(tmp_path: Path) -> None:
    images, features = tmp_path / "images", tmp_path / "features"
    for name in ("a", "b"):
        save_image(images / f"{name}.jpg", (30, 20), (9, 9, 9))
    features.mkdir()
    boxes = np.array([[0, 0, 10, 10], [5, 5, 30, 20]], np.float32)
    probs = np.eye(2, 3, dtype=np.float32)
    np.savez(features / "a.npz", features=np.full((2, 6), 0.5, np.float32), boxes=boxes, class_probs=probs)
    summary = convert_folder(images, tmp_path / "out", options=WriteOptions(features_dir=features))
    assert summary.total == 1 and summary.skipped == {"missing features": 1}
    sample = read_samples(tmp_path / "out")[0]
    region = RegionFeatures.from_npz_bytes(sample["npz"])
    assert sample["json"]["image_id"] == "a" and region.features.shape == (2, 6)
    np.testing.assert_array_equal(region.boxes, boxes)
    np.testing.assert_array_equal(region.class_probs, np.eye(2, 3))


def test_cli_reports_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["make-shards", "folder", "--images", str(tmp_path / "missing"), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "missing" in error and "Traceback" not in error
    questions, annotations, images = vqa_files(tmp_path)
    argv = ["make-shards", "vqav2", "--questions", str(questions), "--annotations", str(annotations)]
    code = main([*argv, "--images", str(images), "--out", str(tmp_path / "vqa"), "--on-error", "raise"])
    assert code == 2 and "COCO_val2014_000000000404.jpg" in capsys.readouterr().err


def _drop_field(file: Path, key: str, index: int, field: str) -> None:
    data = json.loads(file.read_text())
    del data[key][index][field]
    write_json(file, data)


@pytest.mark.parametrize(
    "which, index, field, where",
    [
        ("annotations", 1, "answers", "annotations[1] (question_id 1000)"),
        ("annotations", 0, "answer_type", "annotations[0] (question_id 25000)"),
        ("annotations", 2, "question_id", "annotations[2]"),
        ("questions", 2, "question_id", "questions[2]"),
        ("questions", 1, "image_id", "questions[1] (question_id 1000)"),
    ],
)
def test_vqav2_record_without_a_field_names_file_record_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str, index: int, field: str, where: str
) -> None:
    questions, annotations, images = vqa_files(tmp_path)
    assert annotations is not None
    blamed = annotations if which == "annotations" else questions
    _drop_field(blamed, which, index, field)
    argv = ["make-shards", "vqav2", "--questions", str(questions), "--annotations", str(annotations),
            "--images", str(images), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error == f"vlbert make-shards: error: {blamed}: {where} has no {field!r}\n"


def test_vqav2_malformed_answers_are_named(tmp_path: Path) -> None:
    questions, annotations, images = vqa_files(tmp_path)
    assert annotations is not None
    data = json.loads(annotations.read_text())
    data["annotations"][3]["answers"] = ["x"] * 10  # strings, not {"answer": ...}
    write_json(annotations, data)
    expected = f"{annotations}: annotations[3] (question_id 404000): 'answers' is not a list of {{'answer': ...}}"
    with pytest.raises(DataError) as raised:
        convert_vqav2(questions, images, tmp_path / "out", annotations)
    assert str(raised.value) == expected
