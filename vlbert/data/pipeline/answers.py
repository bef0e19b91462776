"""VQA answers: the official evaluation's normalisation, the answer vocabulary and the soft scores
used as classification targets (the accuracy over answer strings is `vlbert.eval.metrics.vqa_accuracy`).

The rules follow the VQA evaluation script (`PythonEvaluationTools/vqaEvaluation/vqaEval.py` in
GT-Vision-Lab/VQA, as of its 2021 "Fixed processing answers bug" revision), quirks included:

- punctuation: each of ``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !`` is deleted when it touches a
  space anywhere in the answer (or when the answer has a comma between digits), else replaced by a
  space; then every "." not followed by a digit is deleted (at most 32 of them, as the script passes
  ``re.UNICODE`` where `re.sub` expects a count). Apostrophes and colons are kept.
- words: lower-cased; number words "none"/"zero" .. "ten" become digits; the articles "a", "an",
  "the" are dropped; contracted forms written without apostrophes are restored ("dont" -> "don't").
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import Tensor

PUNCTUATION = ";/[]\"{}()=+\\_-><@`,?!"
_COMMA_BETWEEN_DIGITS = re.compile(r"(\d)(,)(\d)")
_PERIOD = re.compile(r"\.(?!\d)")  # the script's "(?!<=\d)" prefix is a look-ahead that always holds
_MAX_PERIODS = 32
NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}  # fmt: skip
ARTICLES = frozenset({"a", "an", "the"})

# "written form -> restored form", one pair per line, as the evaluation script's table. Forms with a
# capital ("Im") never match, since words are lower-cased first; that is the script's behaviour too.
_CONTRACTION_PAIRS = """
aint ain't|arent aren't|cant can't|couldve could've|couldnt couldn't|couldn'tve couldn't've
couldnt've couldn't've|didnt didn't|doesnt doesn't|dont don't|hadnt hadn't|hadnt've hadn't've
hadn'tve hadn't've|hasnt hasn't|havent haven't|hed he'd|hed've he'd've|he'dve he'd've|hes he's
howd how'd|howll how'll|hows how's|Id've I'd've|I'dve I'd've|Im I'm|Ive I've|isnt isn't|itd it'd
itd've it'd've|it'dve it'd've|itll it'll|let's let's|maam ma'am|mightnt mightn't
mightnt've mightn't've|mightn'tve mightn't've|mightve might've|mustnt mustn't|mustve must've
neednt needn't|notve not've|oclock o'clock|oughtnt oughtn't|ow's'at 'ow's'at|'ows'at 'ow's'at
'ow'sat 'ow's'at|shant shan't|shed've she'd've|she'dve she'd've|she's she's|shouldve should've
shouldnt shouldn't|shouldnt've shouldn't've|shouldn'tve shouldn't've|somebody'd somebodyd
somebodyd've somebody'd've|somebody'dve somebody'd've|somebodyll somebody'll|somebodys somebody's
someoned someone'd|someoned've someone'd've|someone'dve someone'd've|someonell someone'll
someones someone's|somethingd something'd|somethingd've something'd've
something'dve something'd've|somethingll something'll|thats that's|thered there'd
thered've there'd've|there'dve there'd've|therere there're|theres there's|theyd they'd
theyd've they'd've|they'dve they'd've|theyll they'll|theyre they're|theyve they've|twas 'twas
wasnt wasn't|wed've we'd've|we'dve we'd've|weve we've|werent weren't|whatll what'll|whatre what're
whats what's|whatve what've|whens when's|whered where'd|wheres where's|whereve where've|whod who'd
whod've who'd've|who'dve who'd've|wholl who'll|whos who's|whove who've|whyll why'll|whyre why're
whys why's|wont won't|wouldve would've|wouldnt wouldn't|wouldnt've wouldn't've
wouldn'tve wouldn't've|yall y'all|yall'll y'all'll|y'allll y'all'll|yall'd've y'all'd've
y'alld've y'all'd've|y'all'dve y'all'd've|youd you'd|youd've you'd've|you'dve you'd've
youll you'll|youre you're|youve you've
"""
CONTRACTIONS: dict[str, str] = dict(
    pair.split(" ") for pair in _CONTRACTION_PAIRS.replace("\n", "|").split("|") if pair
)


def process_punctuation(text: str) -> str:
    """The evaluation script's punctuation step (see the module doc)."""
    delete_all = _COMMA_BETWEEN_DIGITS.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        touches_space = mark + " " in text or " " + mark in text
        out = out.replace(mark, "" if delete_all or touches_space else " ")
    return _PERIOD.sub("", out, count=_MAX_PERIODS)


def process_digit_article(text: str) -> str:
    """Lower-case, number words to digits, drop articles, restore contractions."""
    words = [NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    return " ".join(CONTRACTIONS.get(word, word) for word in words if word not in ARTICLES)


def clean_answer(text: str) -> str:
    """Newlines and tabs to spaces, the ends stripped: what the evaluation does to every answer first."""
    return text.replace("\n", " ").replace("\t", " ").strip()


def normalize_answer(answer: str) -> str:
    """The evaluation script's full normalisation: "Two" -> "2", "a dog." -> "dog"."""
    return process_digit_article(process_punctuation(clean_answer(answer)))


@dataclass
class AnswerVocab:
    """The answer classes: normalised answers, most frequent first."""

    answers: list[str]
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {answer: i for i, answer in enumerate(self.answers)}
        if len(self._index) != len(self.answers):
            raise ValueError("answer vocabulary entries must be unique")

    @classmethod
    def build(cls, answer_lists: Iterable[Sequence[str]], top_k: int = 3129, min_count: int = 1) -> AnswerVocab:
        """The ``top_k`` most frequent normalised answers (each annotator answer counts once) seen
        at least ``min_count`` times; ties are broken alphabetically so the order is reproducible."""
        counts = Counter(normalize_answer(a) for answers in answer_lists for a in answers)
        counts.pop("", None)
        ranked = sorted((a for a, n in counts.items() if n >= min_count), key=lambda a: (-counts[a], a))
        return cls(ranked[:top_k])

    def __len__(self) -> int:
        return len(self.answers)

    def index(self, answer: str, normalized: bool = False) -> int | None:
        """The class of ``answer`` (normalised first unless ``normalized``), or None if unknown."""
        return self._index.get(answer if normalized else normalize_answer(answer))

    def save(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"answers": self.answers, "normalization": "vqa-eval"}, f, ensure_ascii=False, indent=0)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AnswerVocab:
        with open(path, encoding="utf-8") as f:
            return cls(list(json.load(f)["answers"]))


def soft_scores(answers: Sequence[str], vocab: AnswerVocab) -> Tensor:
    """VQA soft targets [A]: for each answer class, ``min(1, count / 3)`` over the normalised
    annotator answers (answers outside the vocabulary are dropped). With fewer than 3 annotators
    the divisor is their number, so a single-answer dataset gets 1.0 for its answer."""
    scores = torch.zeros(len(vocab))  # [A]
    if not answers:
        return scores
    needed = min(3, len(answers))
    for answer, count in Counter(normalize_answer(a) for a in answers).items():
        index = vocab.index(answer, normalized=True)
        if index is not None:
            scores[index] = min(1.0, count / needed)
    return scores


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles lists, dicts, strings and numbers only: a file that names any class or function
    (which unpickling would import and may call) is refused."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"refused: the file names {module}.{name}, not plain data")


def read_answer_list(path: str | os.PathLike[str]) -> AnswerVocab:
    """An answer list in the order of a VQA head's outputs, kept as written (not normalised again):
    vilbert-multi-task's `trainval_label2ans.pkl` (a pickled list of strings, read without running
    pickled code), a JSON list or vlbert's own `answers.json`, or a text file of one answer a line."""
    path = Path(path)
    if path.suffix in (".pkl", ".pickle"):
        answers = _PlainDataUnpickler(io.BytesIO(path.read_bytes())).load()
    elif path.suffix == ".json":
        answers = json.loads(path.read_text(encoding="utf-8"))
        answers = answers.get("answers") if isinstance(answers, dict) else answers
    else:
        answers = path.read_text(encoding="utf-8").splitlines()
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise ValueError(f"{path}: not a list of answer strings")
    return AnswerVocab(answers)
