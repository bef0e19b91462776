"""Convert VQAv2 (questions JSON, optional annotations JSON, COCO images) into vlbert shards.

All questions about one image become one sample, each with its 10 raw annotator answers (scoring,
``min(#matches / 3, 1)``, is the loader's job). Test splits have no annotations: answers are [].
Images are looked up as ``{images_dir}/COCO_{subtype}_{image_id:012d}.jpg``, ``subtype`` taken
from the questions file's ``data_subtype`` (test-dev images live in ``test2015``).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from vlbert.data.converters import ImageEntry, WriteOptions, require_dir, require_file, write_entries
from vlbert.data.schema import DataError, SampleQuestion
from vlbert.data.shards import WriteSummary

SOURCE = "vqav2"
NO_ANSWER_TYPE = "unknown"  # the question type recorded when there are no annotations


def _load_json(path: str | os.PathLike[str], what: str, key: str) -> dict[str, Any]:
    file = require_file(path, what)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{file}: not JSON ({error})") from None
    if not isinstance(data, dict) or key not in data:
        raise DataError(f"{file}: a VQAv2 {what} has a top-level {key!r} list")
    return data


def split_name(subtype: str) -> str:
    """The sample split of a VQA data subtype: "train2014" -> "train", "test-dev2015" -> "test-dev"."""
    return re.sub(r"\d+$", "", subtype)


def image_subtype(subtype: str) -> str:
    """The COCO image folder of a VQA data subtype (test-dev questions ask about test2015 images)."""
    return subtype.replace("test-dev", "test")


def _question(question: dict[str, Any], annotation: dict[str, Any] | None) -> SampleQuestion:
    if annotation is None:
        return SampleQuestion(str(question["question_id"]), question["question"], [], NO_ANSWER_TYPE, None)
    answers = [str(a["answer"]) for a in annotation["answers"]]
    question_id, text = str(question["question_id"]), question["question"]
    return SampleQuestion(question_id, text, answers, annotation["answer_type"], annotation["question_type"])


def _annotations_by_question(annotations: str | os.PathLike[str] | None) -> dict[int, dict[str, Any]] | None:
    if annotations is None:
        return None
    return {a["question_id"]: a for a in _load_json(annotations, "annotations file", "annotations")["annotations"]}


def read_vqav2_entries(
    questions: str | os.PathLike[str],
    images_dir: str | os.PathLike[str],
    annotations: str | os.PathLike[str] | None = None,
    subtype: str | None = None,
    split: str | None = None,
) -> list[ImageEntry]:
    """One entry per image, its questions in file order. ``subtype`` overrides the file's
    ``data_subtype``; ``split`` overrides the split label derived from it."""
    data = _load_json(questions, "questions file", "questions")
    subtype = subtype or data.get("data_subtype")
    if not subtype:
        raise DataError(f"{questions}: no 'data_subtype'; give the image subtype (e.g. val2014)")
    root = require_dir(images_dir, "images directory")
    by_question = _annotations_by_question(annotations)
    entries: dict[int, ImageEntry] = {}
    try:
        for question in data["questions"]:
            image_id = int(question["image_id"])
            annotation = None if by_question is None else by_question.get(question["question_id"])
            if by_question is not None and annotation is None:
                raise DataError(f"{annotations}: no annotation for question {question['question_id']}")
            if image_id not in entries:
                path = root / f"COCO_{image_subtype(subtype)}_{image_id:012d}.jpg"
                label = split or split_name(subtype)
                entries[image_id] = ImageEntry(path, f"{SOURCE}_{image_id}", str(image_id), label)
            entries[image_id].questions.append(_question(question, annotation))
    except DataError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{questions}: malformed VQAv2 question ({error!r})") from None
    return list(entries.values())


def convert_vqav2(
    questions: str | os.PathLike[str],
    images_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    annotations: str | os.PathLike[str] | None = None,
    subtype: str | None = None,
    split: str | None = None,
    options: WriteOptions | None = None,
) -> WriteSummary:
    entries = read_vqav2_entries(questions, images_dir, annotations, subtype, split)
    return write_entries(entries, out_dir, SOURCE, options or WriteOptions())
