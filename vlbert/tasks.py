"""The task names: the one list every per-task table derives from or is checked against
(tests/test_tasks.py): the task models (`vlbert.models.tasks.TASK_MODELS`), the run config's `task`
choices, the CLI's task arguments, the objectives, the model card, `predict`'s class lookup.

It imports nothing, so the command line can build its parser without importing the models.
"""

from __future__ import annotations

TASKS: tuple[str, ...] = ("pretraining", "vqa", "retrieval", "captioning")  # what a run trains
SHORT_NAMES = {"pretraining": "pretrain", "captioning": "caption"}  # the CLI's verbs: `vlbert pretrain`, `finetune caption`
SPELLINGS = {**{task: task for task in TASKS}, **{short: task for task, short in SHORT_NAMES.items()}}


def short_name(task: str) -> str:
    """The CLI's spelling of a task: "pretrain", "vqa", "retrieval", "caption"."""
    return SHORT_NAMES.get(task, task)


def task_named(name: str) -> str:
    """The task a spelling names: the canonical name or the CLI's ("caption" -> "captioning")."""
    if name not in SPELLINGS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(sorted(SPELLINGS))}")
    return SPELLINGS[name]
