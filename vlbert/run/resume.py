"""Resuming a run with the settings it was trained with.

A run that resumes from a checkpoint in `out_dir` compares its configuration with the
`out_dir/config.yaml` the run wrote when it started. A difference that changes the result (the
learning rate, the batch size, the data, the model, ...) is refused with a one-line error naming
each key (``old -> new``), unless the command line says ``--override-resume``: then each difference
is said on stderr, the new values are used from the checkpoint's step on, the old configuration is
kept as `config.until-step-N.yaml` and `config.yaml` records the new one. The keys of
`RESUME_FREE_KEYS` change how a run is watched, saved or how long it runs, not what it computes,
and may differ (each is said on stderr too).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vlbert.engine.checkpoint import latest_checkpoint, write_atomic_text
from vlbert.runconfig import ConfigError, RunConfig, build

CONFIG_FILE = "config.yaml"

RESUME_FREE_KEYS: frozenset[str] = frozenset({
    "out_dir",  # the run directory may have been moved
    "device",  # where the run goes on (train.precision is compared)
    "train.max_steps",  # extend a run (the learning-rate schedule then runs to the new total)
    "train.progress",  # the progress bar
    "train.log_every",  # entries of metrics.json
    "train.eval_every",  # evaluation cadence (what is evaluated, eval.*, is compared)
    "train.save_every",  # checkpoint cadence
    "train.keep_checkpoints",  # checkpoints kept on disk
    "train.nonfinite",  # skip or stop at a non-finite step: the steps taken are the same
    "data.test_split",  # read by `vlbert evaluate`, not by training
})  # fmt: skip

_UNSET = "(unset)"


@dataclass
class ConfigChange:
    key: str  # dotted, e.g. "train.optim.lr"
    old: Any  # the saved value
    new: Any  # this run's value

    def __str__(self) -> str:
        return f"{self.key} {_show(self.old)} -> {_show(self.new)}"


@dataclass
class ResumeCheck:
    step: int  # the checkpoint's step
    changes: list[ConfigChange]  # differences that change the result
    free: list[ConfigChange]  # differences of `RESUME_FREE_KEYS`


def _show(value: Any) -> str:
    return value if value is _UNSET else json.dumps(value, default=str)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"optim": {"lr": 1e-4}}} -> {"train.optim.lr": 1e-4}; tuples become lists."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):  # an empty mapping adds no key
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = list(value) if isinstance(value, tuple) else value
    return flat


def compare_configs(saved: dict[str, Any], new: dict[str, Any]) -> tuple[list[ConfigChange], list[ConfigChange]]:
    """(differences that change the result, differences of `RESUME_FREE_KEYS`), by key."""
    old_flat, new_flat = flatten(saved), flatten(new)
    changes, free = [], []
    for key in sorted(old_flat.keys() | new_flat.keys()):
        old, value = old_flat.get(key, _UNSET), new_flat.get(key, _UNSET)
        if old != value:
            (free if key in RESUME_FREE_KEYS else changes).append(ConfigChange(key, old, value))
    return changes, free


def load_saved_config(path: Path) -> dict[str, Any]:
    """`config.yaml` as `RunConfig.to_dict` gives it (keys added since it was written take their defaults)."""
    try:
        tree = yaml.safe_load(path.read_text()) or {}
        return build(RunConfig, tree).to_dict()
    except (yaml.YAMLError, ConfigError) as error:
        message = str(error).splitlines()[0]
        raise ConfigError(f"{path}: cannot compare it with this run ({message}); --no-resume starts over") from None


def check_resume(cfg: RunConfig, override: bool = False) -> ResumeCheck | None:
    """None when `cfg.out_dir` has no checkpoint to resume from (or no saved configuration).
    Raises `ConfigError` naming every difference that changes the result, unless `override`."""
    out_dir = Path(cfg.out_dir)
    checkpoint = latest_checkpoint(out_dir / "checkpoints")
    if checkpoint is None or not (out_dir / CONFIG_FILE).is_file():
        return None
    changes, free = compare_configs(load_saved_config(out_dir / CONFIG_FILE), cfg.to_dict())
    step = int(checkpoint.name.split("-")[-1])
    if changes and not override:
        listed = ", ".join(str(change) for change in changes)
        raise ConfigError(f"{out_dir} was trained to step {step} with other settings: {listed}; "
                          f"pass --override-resume to go on with the new values, or --no-resume to start over")
    return ResumeCheck(step, changes, free)


def say_differences(check: ResumeCheck | None) -> None:
    """Each difference on stderr, whatever the logging setup."""
    if check is None:
        return
    for change in check.free:
        print(f"resuming at step {check.step}: {change}", file=sys.stderr, flush=True)
    for change in check.changes:
        print(f"resuming at step {check.step}: {change} (--override-resume: the new value is used from "
              f"here on)", file=sys.stderr, flush=True)  # fmt: skip


def record_config(cfg: RunConfig, check: ResumeCheck | None) -> None:
    """Write `config.yaml`; a configuration overridden on resume is kept as `config.until-step-N.yaml`."""
    out_dir = Path(cfg.out_dir)
    if check is not None and check.changes:
        os.replace(out_dir / CONFIG_FILE, out_dir / f"config.until-step-{check.step}.yaml")
    write_atomic_text(out_dir / CONFIG_FILE, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
