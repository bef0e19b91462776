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

from vlbert.data.shards.schema import DataError, SampleQuestion
from vlbert.data.shards.writer import WriteSummary
from vlbert.data.sources.converters import ImageEntry, WriteOptions, require_dir, require_file, write_entries

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


_Annotation = tuple[dict[str, Any], str, str]  # the record, its file, its place in the file


def _record_name(record: dict[str, Any], where: str) -> str:
    """How an error names a record: `questions[3] (question_id 25000)`."""
    return f"{where} (question_id {record['question_id']})" if "question_id" in record else where


def _field(record: Any, key: str, file: str | os.PathLike[str], where: str) -> Any:
    """`record[key]`, or a DataError naming the file, the record and the missing field."""
    if not isinstance(record, dict):
        raise DataError(f"{file}: {where} is not a JSON object")
    if key not in record:
        raise DataError(f"{file}: {_record_name(record, where)} has no {key!r}")
    return record[key]


def _answers(annotation: dict[str, Any], file: str | os.PathLike[str], where: str) -> list[str]:
    raw = _field(annotation, "answers", file, where)
    if not isinstance(raw, list) or not all(isinstance(a, dict) and "answer" in a for a in raw):
        raise DataError(f"{file}: {_record_name(annotation, where)}: 'answers' is not a list of {{'answer': ...}}")
    return [str(a["answer"]) for a in raw]


def _question(question: dict[str, Any], file: str | os.PathLike[str], where: str,
              annotation: _Annotation | None) -> SampleQuestion:
    question_id = str(_field(question, "question_id", file, where))
    text = str(_field(question, "question", file, where))
    if annotation is None:
        return SampleQuestion(question_id, text, [], NO_ANSWER_TYPE, None)
    record, a_file, a_where = annotation
    answers = _answers(record, a_file, a_where)
    answer_type = _field(record, "answer_type", a_file, a_where)
    return SampleQuestion(question_id, text, answers, answer_type, _field(record, "question_type", a_file, a_where))


def _annotations_by_question(annotations: str | os.PathLike[str] | None) -> dict[Any, _Annotation] | None:
    if annotations is None:
        return None
    records = _load_json(annotations, "annotations file", "annotations")["annotations"]
    by_question: dict[Any, _Annotation] = {}
    for index, record in enumerate(records):
        where = f"annotations[{index}]"
        by_question[_field(record, "question_id", annotations, where)] = (record, str(annotations), where)
    return by_question


def _image_id(question: dict[str, Any], file: str | os.PathLike[str], where: str) -> int:
    value = _field(question, "image_id", file, where)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DataError(f"{file}: {_record_name(question, where)}: 'image_id' is not an integer ({value!r})") from None


def read_vqav2_entries(
    questions: str | os.PathLike[str],
    images_dir: str | os.PathLike[str] | None,
    annotations: str | os.PathLike[str] | None = None,
    subtype: str | None = None,
    split: str | None = None,
) -> list[ImageEntry]:
    """One entry per image, its questions in file order. ``subtype`` overrides the file's
    ``data_subtype``; ``split`` overrides the split label derived from it. A record missing a
    field is an error naming the file, the record and the field."""
    data = _load_json(questions, "questions file", "questions")
    subtype = subtype or data.get("data_subtype")
    if not subtype:
        raise DataError(f"{questions}: no 'data_subtype'; give the image subtype (e.g. val2014)")
    root = require_dir(images_dir, "images directory") if images_dir is not None else None  # None: features only
    by_question = _annotations_by_question(annotations)
    entries: dict[int, ImageEntry] = {}
    for index, question in enumerate(data["questions"]):
        where = f"questions[{index}]"
        image_id, question_id = _image_id(question, questions, where), _field(question, "question_id", questions, where)
        annotation = None if by_question is None else by_question.get(question_id)
        if by_question is not None and annotation is None:
            raise DataError(f"{annotations}: no annotation for question {question_id}")
        if image_id not in entries:
            path = None if root is None else root / f"COCO_{image_subtype(subtype)}_{image_id:012d}.jpg"
            label = split or split_name(subtype)
            entries[image_id] = ImageEntry(path, f"{SOURCE}_{image_id}", str(image_id), label)
        entries[image_id].questions.append(_question(question, questions, where, annotation))
    return list(entries.values())


def convert_vqav2(
    questions: str | os.PathLike[str],
    images_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    annotations: str | os.PathLike[str] | None = None,
    subtype: str | None = None,
    split: str | None = None,
    options: WriteOptions | None = None,
) -> WriteSummary:
    entries = read_vqav2_entries(questions, images_dir, annotations, subtype, split)
    return write_entries(entries, out_dir, SOURCE, options or WriteOptions())
