"""VQA answer normalisation, soft scores, answer vocabulary and the official accuracy.

Expected values are derived by hand from the rules of the official `vqaEval.py` (see the module
docs of `vlbert.data.pipeline.answers` and `vlbert.eval.metrics`).
"""

from __future__ import annotations

import pytest
import torch

from vlbert.data.pipeline.answers import CONTRACTIONS, AnswerVocab, normalize_answer, process_punctuation, soft_scores
from vlbert.eval.metrics import answer_accuracy, vqa_accuracy


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Two", "2"),  # lower-case, then number word -> digit
        ("a dog.", "dog"),  # "." not before a digit is deleted; the article goes
        ("dont", "don't"),  # contraction table
        ("yes!", "yes"),  # "!" touches no space -> replaced by a space, stripped by the split
        ("10 ", "10"),
        ("the cat's", "cat's"),  # apostrophes are not punctuation for the script
        ("Im", "im"),  # the table's "Im" never matches: words are lower-cased first
        ("none", "0"),
        ("Ten dogs", "10 dogs"),
        ("3.5", "3.5"),  # a period before a digit stays
        ("1,000", "1000"),  # a comma between digits: every punctuation mark is deleted
        ("red, white", "red white"),  # "," touches a space -> deleted
        ("red,white", "red white"),  # otherwise replaced by a space
        ("(a) b", "b"),  # ")" touches a space -> deleted; "(" -> space; article "a" dropped
        ("An Apple\tTree\n", "apple tree"),
        ("hot-dog", "hot dog"),
        ("yes.", "yes"),
        ("what's up?", "what's up"),
        ("whats", "what's"),
        ("a", ""),
    ],
)
def test_normalize_answer_follows_the_official_rules(raw, expected):
    assert normalize_answer(raw) == expected


def test_punctuation_step_alone_and_the_period_limit():
    assert process_punctuation("yes!") == "yes "
    assert process_punctuation("ok ?") == "ok "
    # The script passes re.UNICODE (32) as re.sub's count: only the first 32 periods go.
    assert process_punctuation("." * 40) == "." * 8


def test_contraction_table_spot_checks():
    assert len(CONTRACTIONS) == 120
    assert CONTRACTIONS["wont"] == "won't" and CONTRACTIONS["yall'll"] == "y'all'll"
    assert CONTRACTIONS["somebody'd"] == "somebodyd"  # reversed in the script's table, kept as is


def _vocab() -> AnswerVocab:
    return AnswerVocab(["yes", "no", "2", "dog", "red white"])


def test_soft_scores_count_normalised_answers():
    answers = ["Two", "2", "two.", "dog", "a dog", "cat", "cat", "cat", "cat", "no"]
    scores = soft_scores(answers, _vocab())
    # "2" three times -> 1; "dog" twice -> 2/3; "no" once -> 1/3; "cat" is not in the vocabulary.
    assert torch.allclose(scores, torch.tensor([0.0, 1 / 3, 1.0, 2 / 3, 0.0]))
    assert soft_scores(["yes"], _vocab()).tolist() == [1.0, 0, 0, 0, 0]  # single-answer data: 1.0
    assert soft_scores([], _vocab()).sum() == 0


def test_answer_vocab_top_k_order_and_round_trip(tmp_path):
    lists = [["Yes", "yes", "no"], ["two", "2", "Dog"], ["no", "yes"], ["dog!", "cat"]]
    vocab = AnswerVocab.build(lists, top_k=4)
    # counts: yes 3, 2 2, dog 2, no 2, cat 1 -> ties alphabetical: "2" < "dog" < "no"; cat is cut.
    assert vocab.answers == ["yes", "2", "dog", "no"]
    assert vocab.index("Two") == 1 and vocab.index("a dog.") == 2 and vocab.index("cat") is None
    vocab.save(tmp_path / "answers.json")
    assert AnswerVocab.load(tmp_path / "answers.json").answers == vocab.answers
    assert AnswerVocab.build(lists, min_count=3).answers == ["yes"]


def _ten(matching: int, answer: str = "2", other: str = "3") -> list[str]:
    return [answer] * matching + [other] * (10 - matching)


@pytest.mark.parametrize(
    "matches, expected",
    [
        # acc = (m * min(1, (m - 1) / 3) + (10 - m) * min(1, m / 3)) / 10
        (0, 0.0),
        (1, 0.3),  # (1 * 0 + 9 * 1/3) / 10
        (2, 0.6),  # (2 * 1/3 + 8 * 2/3) / 10
        (3, 0.9),  # (3 * 2/3 + 7 * 1) / 10 -- not min(3/3, 1) = 1
        (4, 1.0),  # (4 * 1 + 6 * 1) / 10
        (10, 1.0),
    ],
)
def test_vqa_accuracy_averages_over_annotator_subsets(matches, expected):
    assert vqa_accuracy("2", _ten(matches)) == pytest.approx(expected)
    # It agrees with min(#matches / 3, 1) at 0 and from 4 matches on, and is lower in between.
    simple = min(matches / 3, 1.0)
    assert (vqa_accuracy("2", _ten(matches)) == pytest.approx(simple)) == (matches == 0 or matches >= 4)


def test_vqa_accuracy_normalises_both_sides_when_annotators_disagree():
    assert vqa_accuracy("Two.", _ten(3)) == pytest.approx(0.9)  # "Two." -> "2"
    assert vqa_accuracy("the dog", ["a dog."] * 3 + ["cat"] * 7) == pytest.approx(0.9)  # both -> "dog"
    assert vqa_accuracy("red white", ["red,white"] * 4 + ["blue"] * 6) == pytest.approx(1.0)
    assert vqa_accuracy("dog", ["dog?"] * 4 + ["cat"] * 6) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        vqa_accuracy("yes", [])


def test_vqa_accuracy_does_not_normalise_when_annotators_agree():
    # The script normalises only when the answers differ; otherwise only ends are stripped.
    assert vqa_accuracy("Two", ["2"] * 10) == 0.0
    assert vqa_accuracy(" 2\n", ["2"] * 10) == 1.0
    assert vqa_accuracy("Two", ["2"] * 9 + ["3"]) == pytest.approx(1.0)


def test_answer_accuracy_for_single_answer_data():
    assert vqa_accuracy("circle", ["circle"]) == 0.0  # the official formula with one annotator
    assert answer_accuracy("Circle.", ["circle"]) == 1.0
    assert answer_accuracy("square", ["circle"]) == 0.0
    assert answer_accuracy("2", _ten(3)) == pytest.approx(0.9)
