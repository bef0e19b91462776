"""Run configuration: YAML files in `configs/` plus `key=value` overrides, parsed into typed
dataclasses. An unknown key, a value of the wrong type or a choice (`Literal`) outside its values is
a `ConfigError` naming the key."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vlbert.data.shards.stats import OnError
from vlbert.engine.objectives import ObjectiveConfig
from vlbert.engine.trainer import TrainConfig
from vlbert.tasks import TASKS


class ConfigError(ValueError):
    pass


@dataclass
class ModelSection:
    name: str = "tiny"  # a preset, or a saved model directory
    init: str | None = None  # start from this saved model (e.g. a pre-training run's model/)
    text_pretrained: str | None = None  # a BERT checkpoint for the text stream
    overrides: dict[str, Any] = field(default_factory=dict)  # VLBertConfig keys


@dataclass
class DataSection:
    root: str | None = None  # shard directory (with manifest.json)
    train_split: str | None = "train"  # manifest split names; None = every shard
    val_split: str | None = "val"  # evaluated during and after training; None = no evaluation
    test_split: str | None = "test"  # read by `vlbert evaluate --split test`
    tokenizer: str | None = None  # BERT vocabulary dir / hub name; None = build WordPiece from the data
    vocab_size: int = 1000  # size of a WordPiece vocabulary built from the data
    vocab_max_records: int | None = None  # build that vocabulary from the first N records of each split (None: all)
    vocab_splits: list[str] = field(default_factory=list)  # splits whose texts build it (empty: data.train_split)
    max_length: int = 48  # tokens per text, [CLS] and [SEP] included; longer texts are truncated
    batch_size: int = 32  # training batch per process
    eval_batch_size: int = 64  # evaluation batch
    num_workers: int = 0  # DataLoader worker processes
    shuffle_buffer: int = 1000  # examples shuffled together (shard order is shuffled too)
    num_answers: int = 3129  # VQA answer vocabulary size (top-K)
    label_fraction: float = 1.0  # use this fraction of the training labels (VQA ablations)
    question_subtypes: list[str] = field(default_factory=list)  # VQA training: only these question subtypes (empty: all)
    on_error: OnError = "skip"  # bad samples: "skip" (counted) or "raise"
    blank_images: bool = False  # zero every image input: a text-only (question-only) baseline
    # training captions of an image: "auto" (retrieval: each one is an example; pre-training and
    # captioning: one at random per image and epoch), or "each" / "random" / "first" for any task,
    # or "first+one": the first caption followed by one of the others at random
    train_captions: Literal["auto", "each", "random", "first", "first+one"] = "auto"


@dataclass
class EvalSection:
    retrieval_mode: Literal["two-stage", "all-pairs", "itc"] = "two-stage"  # ITC top-k then ITM, ITM on every pair, or ITC alone
    k: int = 16  # ITC candidates re-ranked by ITM
    num_beams: int = 1  # captioning: 1 = greedy decoding
    max_caption_length: int = 24  # captioning: tokens generated at most
    limit: int | None = None  # evaluate the first N images (retrieval, captioning) or questions (VQA) only
    caption_mode: Literal["each", "first"] = "each"  # retrieval/captioning texts per image: each caption or the first


@dataclass
class RunConfig:
    task: Literal[TASKS] = "pretraining"  # what the run trains
    out_dir: str = "runs/default"  # checkpoints, logs, metrics and the final model/
    device: str | None = None  # "cpu", "cuda", "cuda:1"; None = CUDA when present
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainConfig = field(default_factory=TrainConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    eval: EvalSection = field(default_factory=EvalSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _convert(value: Any, kind: Any, key: str) -> Any:
    """`value` as type `kind` (from a dataclass annotation), or ConfigError."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {kind}, got {value!r}")
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return build(kind, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        inner = typing.get_args(kind)[:1] or (Any,)
        items = [_convert(v, inner[0], f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is Literal:
        return _choice(value, typing.get_args(kind), key)
    return _scalar(value, kind, key)


def _choice(value: Any, choices: tuple[Any, ...], key: str) -> Any:
    """`value` if it is one of `choices` (a `Literal`'s values), else ConfigError naming them."""
    if value in choices and not isinstance(value, bool):
        return value
    raise ConfigError(f"{key}: expected one of {', '.join(map(str, choices))}, got {value!r}")


def _scalar(value: Any, kind: Any, key: str) -> Any:
    if kind is Any:
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if kind in (int, float) and not isinstance(value, bool):
        try:
            converted = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}") from None
        if kind is int and isinstance(value, float) and value != converted:
            raise ConfigError(f"{key}: expected int, got {value!r}")
        return converted
    if kind is str and isinstance(value, str):
        return value
    raise ConfigError(f"{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")


def build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """An instance of dataclass `cls` from a nested dict; unknown keys are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"unknown config key '{where}{unknown[0]}' (known: {', '.join(sorted(names))})")
    kwargs = {k: _convert(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in values.items()}
    defaults = cls()
    for key, value in kwargs.items():  # a mapping merges into its default (weights.mlm=0.5 keeps itc)
        if typing.get_origin(hints[key]) is dict and isinstance(value, dict):
            kwargs[key] = {**getattr(defaults, key), **value}
    return cls(**kwargs)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: '{part}' is not a section")
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """'train.max_steps=100' -> ('train.max_steps', 100); values are YAML scalars."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key=value")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw.strip() else None


def load_run_config(path: str | Path | None, overrides: list[str] = (), **defaults: Any) -> RunConfig:
    """YAML file (or none), then `defaults` (e.g. the task from the subcommand), then overrides."""
    tree: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {path} does not exist")
        loaded = yaml.safe_load(file.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        tree = loaded
    for key, value in defaults.items():
        _set_dotted(tree, key, value)
    for text in overrides:
        _set_dotted(tree, *parse_override(text))
    return build(RunConfig, tree)
