import dataclasses
import typing

import pytest

from vlbert.runconfig import ConfigError, RunConfig, load_run_config, parse_override


def test_yaml_then_defaults_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  name: tiny\ntrain:\n  max_steps: 50\n  optim:\n    lr: 3.0e-4\n")
    cfg = load_run_config(path, ["train.max_steps=7", "objective.weights.mlm=0.5"], task="vqa")
    assert cfg.task == "vqa" and cfg.train.max_steps == 7 and cfg.train.optim.lr == pytest.approx(3e-4)
    assert cfg.objective.weights == dict(mlm=0.5, mrm=1.0, itm=1.0, itc=1.0)  # merged into the defaults


def test_values_are_typed():
    assert parse_override("train.optim.lr=1e-4") == ("train.optim.lr", "1e-4")  # YAML 1.1 reads a string...
    assert load_run_config(None, ["train.optim.lr=1e-4"]).train.optim.lr == pytest.approx(1e-4)  # ...we convert
    assert load_run_config(None, ["eval.limit=null"]).eval.limit is None
    assert load_run_config(None, ["data.tokenizer=/x/vocab"]).data.tokenizer == "/x/vocab"


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.max_stepz=5", "unknown config key 'train.max_stepz'"),
        ("trian.max_steps=5", "unknown config key 'trian'"),
        ("train.max_steps=abc", "train.max_steps: expected int"),
        ("train.max_steps=2.5", "train.max_steps: expected int"),
        ("train.progress=maybe", "train.progress: expected true or false"),
        ("model=3", "model: expected a mapping"),
        ("no_equals_sign", "is not key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(None, [override])


def test_missing_file_and_bad_top_level(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_run_config(tmp_path / "nope.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_run_config(path)


# Every setting that takes one of a few values, with its values: a value outside them is refused
# when the config loads, with one line naming the key and the choices.
CHOICES = {
    "task": ("pretraining", "vqa", "retrieval", "captioning"),
    "train.precision": ("auto", "fp32", "bf16"),
    "train.nonfinite": ("skip", "stop"),
    "train.strategy": ("ddp", "fsdp"),
    "train.optim.schedule": ("linear", "cosine", "constant"),
    "objective.negatives": ("hard", "random"),
    "objective.box_negative_kind": ("rotate", "mirror"),
    "eval.retrieval_mode": ("two-stage", "all-pairs", "itc"),
    "eval.caption_mode": ("each", "first"),
    "data.on_error": ("skip", "raise"),
    "data.train_captions": ("auto", "each", "random", "first", "first+one"),
}


def _get(cfg, dotted: str):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


@pytest.mark.parametrize("key", sorted(CHOICES))
def test_choice_settings_accept_their_values(key):
    for value in CHOICES[key]:
        assert _get(load_run_config(None, [f"{key}={value}"]), key) == value


@pytest.mark.parametrize("key", sorted(CHOICES))
def test_choice_settings_refuse_other_values_naming_key_and_choices(key):
    with pytest.raises(ConfigError) as error:
        load_run_config(None, [f"{key}=fp16"])
    assert str(error.value) == f"{key}: expected one of {', '.join(CHOICES[key])}, got 'fp16'"


def test_choices_are_checked_in_yaml_files_too(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  nonfinite: ignore\n")
    with pytest.raises(ConfigError, match=r"^train.nonfinite: expected one of skip, stop, got 'ignore'$"):
        load_run_config(path)
    path.write_text("train:\n  precision: true\n")  # YAML booleans are not choices
    with pytest.raises(ConfigError, match="train.precision: expected one of auto, fp32, bf16, got True"):
        load_run_config(path)


def test_the_table_above_lists_every_choice_setting():
    def literals(cls, prefix=""):
        for f in dataclasses.fields(cls):
            kind = typing.get_type_hints(cls)[f.name]
            if dataclasses.is_dataclass(kind):
                yield from literals(kind, f"{prefix}{f.name}.")
            elif typing.get_origin(kind) is typing.Literal:
                yield f"{prefix}{f.name}", typing.get_args(kind)

    assert dict(literals(RunConfig)) == CHOICES


@pytest.mark.parametrize(("task", "setting", "mode"), [
    ("retrieval", "auto", "each"), ("pretraining", "auto", "random"), ("captioning", "auto", "random"),
    ("retrieval", "first", "first"), ("pretraining", "each", "each"),
])
def test_training_captions_per_task_and_as_set(task, setting, mode):
    from vlbert.rundata import train_caption_mode

    assert train_caption_mode(load_run_config(None, [f"data.train_captions={setting}"], task=task)) == mode
