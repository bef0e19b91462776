"""One list of task names (`vlbert.tasks.TASKS`): every per-task table has exactly its tasks, and
the CLI accepts the spellings it accepted before (`pretrain`, `finetune caption`, `evaluate --task
pretraining` / `caption`)."""

import typing

import pytest

from vlbert.cli import parse_args
from vlbert.commands.train import FINETUNE_CHOICES
from vlbert.engine.objectives import OBJECTIVES
from vlbert.models.tasks import TASK_BY_CLASS, TASK_MODELS, task_text
from vlbert.run.model_card import INTENDED_USE
from vlbert.runconfig import ConfigError, RunConfig, load_run_config
from vlbert.tasks import SPELLINGS, TASKS, short_name, task_named


def test_every_per_task_table_has_the_registry_tasks():
    assert TASKS == ("pretraining", "vqa", "retrieval", "captioning")
    assert list(TASK_MODELS) == ["backbone", *TASKS]
    assert list(OBJECTIVES) == list(TASKS) and list(INTENDED_USE) == list(TASKS)
    assert typing.get_args(typing.get_type_hints(RunConfig)["task"]) == TASKS
    assert {TASK_BY_CLASS[TASK_MODELS[task].__name__] for task in TASKS} == set(TASKS)


def test_the_cli_spellings_map_to_the_tasks():
    assert [short_name(task) for task in TASKS] == ["pretrain", "vqa", "retrieval", "caption"]
    assert {task_named(name) for name in SPELLINGS} == set(TASKS)
    assert task_named("caption") == task_named("captioning") == "captioning"
    with pytest.raises(ValueError, match="unknown task 'segmentation'; choose one of caption, captioning"):
        task_named("segmentation")
    with pytest.raises(ConfigError, match="task: expected one of pretraining, vqa, retrieval, captioning"):
        load_run_config(None, ["task=caption"])  # the config takes the canonical names only, as before


@pytest.mark.parametrize("spelling", ["pretraining", "vqa", "retrieval", "caption", "pretrain", "captioning"])
def test_evaluate_takes_either_spelling(spelling):
    args = parse_args(["evaluate", "--model", "m", "--task", spelling, "--data", "d"])
    assert task_named(args.task) in TASKS


def test_finetune_takes_the_verbs_it_took_before():
    assert sorted(FINETUNE_CHOICES) == ["caption", "retrieval", "vqa"]
    assert task_named(parse_args(["finetune", "caption"]).task) == "captioning"
    with pytest.raises(SystemExit):
        parse_args(["finetune", "pretraining"])


def test_a_task_says_which_texts_its_examples_read():
    assert {task: task_text(task) for task in TASKS} == {
        "pretraining": "captions", "vqa": "questions", "retrieval": "captions", "captioning": "captions"}
    assert task_text("caption") == "captions"
